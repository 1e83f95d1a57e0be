"""Translations: language choice, English fallback, and the committed catalogues.

The checks that need GNU gettext (``msgfmt``, ``msgcmp``, ``xgettext``) are
skipped where it is not installed; the others read the compiled ``.mo`` files
through the stdlib only.
"""

from __future__ import annotations

import gettext
import shutil
import string
import subprocess
from pathlib import Path

import pytest

from imiptools.i18n import (
    DOMAIN,
    LOCALE_DIR,
    N_,
    N_plural,
    candidates,
    translator,
)

ROOT = Path(__file__).resolve().parent.parent
PO_FILES = sorted(LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))
POT = LOCALE_DIR / f"{DOMAIN}.pot"
DAYS = (
    "the event does not occur within the next {count} day",
    "the event does not occur within the next {count} days",
)


def catalog(mo: Path) -> dict[str | tuple[str, int], str]:
    """The messages of a compiled catalogue, without its header."""
    with mo.open("rb") as file:
        found: dict[str | tuple[str, int], str] = gettext.GNUTranslations(file)._catalog  # type: ignore[attr-defined]
    return {key: value for key, value in found.items() if key != ""}


def placeholders(text: str) -> set[str]:
    """The ``str.format`` field names in ``text``."""
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def need(*tools: str) -> None:
    """Skip the calling test unless all of ``tools`` are installed."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"GNU gettext not installed ({', '.join(missing)})")


def test_there_is_a_german_catalogue() -> None:
    assert LOCALE_DIR / "de" / "LC_MESSAGES" / f"{DOMAIN}.po" in PO_FILES
    assert all(po.with_suffix(".mo").is_file() for po in PO_FILES)


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("de", ("de",)),
        ("DE", ("de",)),
        ("de_DE", ("de_DE", "de")),
        ("de-AT", ("de_AT", "de")),
        ("de-at", ("de_AT", "de")),
        ("de_DE.UTF-8", ("de_DE", "de")),
        ("de_DE@euro", ("de_DE", "de")),
        ("sr-Latn-RS", ("sr_RS", "sr")),
        ("es-419", ("es_419", "es")),
        ("en", ("en",)),
        ("", ()),
        ("C", ()),
        ("../../etc/passwd", ()),
        ("de/../x", ()),
    ],
)
def test_candidates(lang: str, expected: tuple[str, ...]) -> None:
    assert candidates(lang) == expected


@pytest.mark.parametrize("lang", ["en", "en_GB", "xx", "", "C", "../de", "de/x"])
def test_english_is_the_msgid(lang: str) -> None:
    t = translator(lang)
    assert t.gettext("Accepted: {summary}") == "Accepted: {summary}"
    assert t.ngettext(*DAYS, 1) == DAYS[0]
    assert t.ngettext(*DAYS, 30) == DAYS[1]


@pytest.mark.parametrize("lang", ["de", "de_DE", "de-AT", "de_DE.UTF-8", "de-CH"])
def test_german(lang: str) -> None:
    t = translator(lang)
    assert t.gettext("Accepted: {summary}").format(summary="Raum") == "Angenommen: Raum"
    assert t.ngettext(*DAYS, 1).format(count=1).endswith(" 1 Tag statt")
    assert t.ngettext(*DAYS, 30).format(count=30).endswith(" 30 Tage statt")


def test_an_unknown_message_stays_english() -> None:
    assert translator("de").gettext("not in any catalogue") == "not in any catalogue"


def test_translators_are_cached_per_language() -> None:
    assert translator("de-AT") is translator("de_AT.UTF-8")


def test_the_process_environment_does_not_choose(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.setenv(name, "de_DE.UTF-8")
    assert translator("fr").gettext("Accepted: {summary}") == "Accepted: {summary}"


def test_markers_return_their_arguments() -> None:
    assert N_("Calendar summary") == "Calendar summary"
    assert N_plural(*DAYS) == DAYS


@pytest.mark.parametrize("po", PO_FILES, ids=lambda po: po.parent.parent.name)
def test_translations_keep_the_placeholders(po: Path) -> None:
    messages = catalog(po.with_suffix(".mo"))
    assert messages
    for key, translation in messages.items():
        msgid = key[0] if isinstance(key, tuple) else key
        assert translation.strip(), key
        assert placeholders(translation) == placeholders(msgid), key


@pytest.mark.parametrize("po", PO_FILES, ids=lambda po: po.parent.parent.name)
def test_every_message_of_the_template_is_translated(po: Path) -> None:
    need("msgcmp")
    # msgcmp ignores untranslated and fuzzy entries, so they count as missing.
    result = subprocess.run(["msgcmp", po, POT], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("po", PO_FILES, ids=lambda po: po.parent.parent.name)
def test_compiled_catalogue_is_up_to_date(po: Path, tmp_path: Path) -> None:
    need("msgfmt")
    fresh = tmp_path / f"{DOMAIN}.mo"
    # --check: a python-brace-format translation must use the msgid's placeholders.
    result = subprocess.run(["msgfmt", "--check", "-o", fresh, po], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert catalog(po.with_suffix(".mo")) == catalog(fresh), "run tools/i18n"


def test_catalogues_match_the_sources() -> None:
    need("xgettext", "msgmerge", "msgfmt", "msgcmp", "msgattrib")
    result = subprocess.run([ROOT / "tools" / "i18n", "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
