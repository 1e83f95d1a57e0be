"""Translations of the texts the agent writes for people: subjects, reply text parts, summaries.

Contract:

- :func:`translator` maps a calendar user's ``LANG`` preference (``en``, ``de``,
  ``de_DE``, ``de-AT``, ``de_DE.UTF-8``) to a :class:`Translator`. Region,
  encoding and modifier are tried from the most to the least specific
  (``de-AT`` -> ``de_AT``, then ``de``); a language without a catalogue, an
  empty or malformed value gives English, the msgids themselves. The process
  environment (``LANGUAGE``, ``LC_ALL``...) is never consulted: the language
  is the recipient's, not the MTA's.
- Messages are English ``str.format`` templates with named placeholders
  (``"Accepted: {summary}"``): translate first, then format, so that a
  translation may move the placeholders::

      t = translator(preferences.get("LANG"))
      subject = t.gettext("Accepted: {summary}").format(summary=summary)
      text = t.ngettext("... {days} day", "... {days} days", days).format(days=days)

- A text fixed at import time, or decided before the recipient's language is
  known (a scheduling decision), is marked with :func:`N_` (:func:`N_plural`
  for a singular/plural pair) and translated where it is rendered.

Catalogues live beside this module: ``locale/imip-agent.pot`` (the template),
``locale/<lang>/LC_MESSAGES/imip-agent.po`` (a translation) and the compiled
``imip-agent.mo``, committed so that an installation needs no build step.

To add a language (``fr``): ``msginit -i imiptools/locale/imip-agent.pot -l fr
-o imiptools/locale/fr/LC_MESSAGES/imip-agent.po --no-translator``, translate
every entry (keep each ``{placeholder}``), then run ``tools/i18n``, which
extracts the messages again, merges them into every ``.po`` and compiles the
``.mo`` files. ``tests/test_i18n.py`` checks every catalogue for completeness
and placeholders.
"""

from __future__ import annotations

import functools
import gettext
import re
from pathlib import Path
from typing import Protocol

#: The gettext domain: the catalogue file name without its extension.
DOMAIN = "imip-agent"

#: The directory holding ``<lang>/LC_MESSAGES/imip-agent.mo``.
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

# A language tag or POSIX locale name: language, then subtags (script,
# region, variant) separated by "-" or "_", then an optional ".encoding" and
# "@modifier". Only names of this shape ever reach the file system.
_LOCALE_NAME = re.compile(
    r"(?P<language>[A-Za-z]{2,3})(?P<subtags>(?:[-_][A-Za-z0-9]{1,8})*)"
    r"(?:\.[A-Za-z0-9_-]+)?(?:@[A-Za-z0-9_-]+)?"
)
_REGION = re.compile(r"[A-Za-z]{2}|[0-9]{3}")


class Translator(Protocol):
    """What the agent needs of a translation (``gettext.NullTranslations`` has it)."""

    def gettext(self, message: str, /) -> str:
        """The translation of ``message``, or ``message`` itself."""
        ...

    def ngettext(self, singular: str, plural: str, n: int, /) -> str:
        """The translation of the form of ``singular``/``plural`` that suits ``n``."""
        ...


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it (translate when rendering)."""
    return message


def N_plural(singular: str, plural: str) -> tuple[str, str]:
    """Mark a singular/plural pair for extraction; render with ``Translator.ngettext``."""
    return singular, plural


def candidates(lang: str) -> tuple[str, ...]:
    """The catalogue names to try for ``lang``, most specific first.

    ``de-AT`` and ``de_AT.UTF-8`` give ``("de_AT", "de")``, ``DE`` gives
    ``("de",)``; an empty or malformed value (or ``C``/``POSIX``) gives ``()``.
    """
    match = _LOCALE_NAME.fullmatch(lang.strip())
    if match is None:
        return ()
    language = match["language"].lower()
    regions = [s for s in re.split(r"[-_]", match["subtags"]) if _REGION.fullmatch(s)]
    if regions:
        return (f"{language}_{regions[0].upper()}", language)
    return (language,)


def translator(lang: str) -> Translator:
    """The translator for a ``LANG`` preference value; English when none fits."""
    return _translator(candidates(lang))


@functools.lru_cache(maxsize=64)
def _translator(languages: tuple[str, ...]) -> Translator:
    return gettext.translation(
        DOMAIN, localedir=LOCALE_DIR, languages=list(languages), fallback=True
    )
