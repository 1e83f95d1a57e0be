"""The peers' own iTIP test suites, one pytest case per peer case.

``../shared/peer-itip`` holds expected-outcome cases ported from
sabre/vobject's iTIP broker tests (``cases/``) and Apple CalendarServer's
``test_itip.py`` (``ccs-cases/``); its ``run.py`` drives them through the
programs (``imip-admin import``, ``imip-person``, ``imip-admin export``) and
compares the export with the peer's expectation on meaning. This module
reads that folder in place (never a copy) and runs every case in process,
through the same library calls the programs make
(:func:`imiptools.transfer.import_calendar` under the user's lock,
:func:`imiptools.agent.run` with the person handler,
:func:`imiptools.transfer.export_calendar`), judged by ``run.py``'s own
comparison (``state``, ``compare``). In process, 74 cases take a few
seconds instead of over a minute of process starts; one more test runs
``run.py``'s own driver on one case, so the command-line contract it relies
on is checked too.

Deliberate differences: where a case's expectation is a documented
preference's non-default value, the preference is set for that case, from
the case's ``meta.json`` (``"preferences": {...}``) or, until the shared
cases say so themselves, from :data:`PEER_PREFERENCES` here.

Without the folder the cases skip with a message; in CI (``CI=true``) they
fail, so that a clone without it cannot pass unnoticed.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from imiptools import agent
from imiptools.config import load_settings
from imiptools.dates import FixedClock, parse_datetime
from imiptools.handlers.common import Envelope
from imiptools.handlers.person import PersonHandler
from imiptools.itip.objects import to_text
from imiptools.mail.send import DirectorySender
from imiptools.maintenance import locked_records
from imiptools.preferences import DEFINITIONS, validate
from imiptools.site import open_site
from imiptools.stores.names import normalise_user
from imiptools.transfer import export_calendar, import_calendar
from tests.support import BIN, ROOT, SHARED

PEER_ITIP = Path(os.environ.get("IMIP_PEER_ITIP", SHARED / "peer-itip"))
SUITES = (("ccs", "ccs-cases"), ("sabre", "cases"))
IN_CI = os.environ.get("CI", "").lower() == "true"

#: The peers' behaviour where the project's default differs, available as a
#: preference (README "Tests"; docs/development/testing.md "Peer test suites").
#: sabre/vobject adds an attendee who was not invited and replies ("party
#: crasher"); the project ignores such a REPLY unless ``uninvited_replies=add``.
#: The same as site defaults, for ``run.py``: see the README.
PEER_CONFIG = Path(__file__).with_name("peer-behaviour.toml")
PEER_PREFERENCES: dict[str, dict[str, str]] = {
    "cases/013-reply-party-crasher": {"uninvited_replies": "add"},
    "cases/019-reply-party-crash-create-exception": {"uninvited_replies": "add"},
    "cases/034-attendeereply-party-crasher-1": {"uninvited_replies": "add"},
}


def _cases() -> list[Any]:
    if not (PEER_ITIP / "run.py").is_file():
        return [pytest.param(None, id="peer-itip-missing")]
    found = []
    for label, folder in SUITES:
        for case in sorted(p for p in (PEER_ITIP / folder).iterdir() if p.is_dir()):
            found.append(pytest.param(case, id=f"{label}/{case.name}"))
    return found


def _missing() -> None:
    message = (
        f"the peer iTIP suites are not at {PEER_ITIP} (../shared/peer-itip beside the "
        "checkout, or IMIP_PEER_ITIP)"
    )
    if IN_CI:
        pytest.fail(f"{message}: CI must run them", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def runner() -> ModuleType | None:
    """``run.py`` loaded as a module (its comparison is the judge); None
    when the folder is missing (each test then says so)."""
    if not (PEER_ITIP / "run.py").is_file():
        return None
    spec = importlib.util.spec_from_file_location("peer_itip_run", PEER_ITIP / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.BIN = BIN  # the programs of the venv running the tests, wherever it is
    return module


@dataclass
class Decisions(logging.Handler):
    """Collects the agent's decision lines and anything logged with a traceback."""

    lines: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        logging.Handler.__init__(self, logging.INFO)

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.tracebacks.append(record.getMessage())
        elif record.name == "imiptools.decisions" or record.levelno >= logging.WARNING:
            self.lines.append(record.getMessage())

    def __hash__(self) -> int:
        return id(self)


@pytest.fixture
def decisions() -> Iterator[Decisions]:
    handler = Decisions()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def preferences_of(case: Path) -> dict[str, str]:
    meta = json.loads((case / "meta.json").read_text())
    given = meta.get("preferences")
    if isinstance(given, dict):
        return {str(k): str(v) for k, v in given.items()}
    return PEER_PREFERENCES.get(f"{case.parent.name}/{case.name}", {})


def process(case: Path, root: Path, runner: ModuleType) -> str:
    """What ``run.py`` does for ``case``, in process; the user's export."""
    meta = json.loads((case / "meta.json").read_text())
    user, sender = normalise_user(meta["user"]), meta["sender"]
    now = parse_datetime(meta["now"])
    settings = load_settings(None).updated(
        store=str(root / "store"),
        preferences=str(root / "prefs"),
        journal=str(root / "journal"),
        publishing=str(root / "static"),
    )
    site = open_site(settings, FixedClock(now))
    prefs = site.preferences
    for name, value in preferences_of(case).items():
        prefs.set(user, name, value)
    if (case / "old.ics").exists():
        with locked_records(site, user, now) as records:
            import_calendar(records, (case / "old.ics").read_text())
    out = DirectorySender(root / "out")
    context = agent.Context(settings, site.store, prefs, site.clock, out, site.outbox, out)
    message = runner.wrap((case / "message.ics").read_text(), sender, meta["user"])
    result = agent.run(message, [Envelope(meta["user"], sender)], context, PersonHandler)
    assert result.code == 0, f"imip-person would exit {int(result.code)}: {result.status}"
    return to_text(export_calendar(site.records(user, now)))


@pytest.mark.parametrize("case", _cases())
def test_peer_case(
    case: Path | None, tmp_path: Path, runner: ModuleType | None, decisions: Decisions
) -> None:
    if case is None or runner is None:
        _missing()
        return
    exported = process(case, tmp_path, runner)
    meta = json.loads((case / "meta.json").read_text())
    expected = (case / "expected.ics").read_text() if (case / "expected.ics").exists() else None
    texts = [expected, _text(case / "old.ics"), (case / "message.ics").read_text()]
    start = runner.first_start(texts, meta["uid"])
    h0 = (start or runner.dt.datetime(2030, 1, 1, tzinfo=runner.UTC)) - timedelta(days=1)
    diffs, _ = runner.compare(
        runner.state(expected, meta["uid"], h0), runner.state(exported, meta["uid"], h0)
    )
    assert not decisions.tracebacks, f"logged with a traceback: {decisions.tracebacks}"
    assert not diffs, "; ".join(diffs) + "\nagent: " + "; ".join(decisions.lines)


def _text(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def test_peer_preferences_are_documented_non_defaults_listed_in_the_readme() -> None:
    """A case runs with a preference only where its expectation is the
    peer's behaviour that a documented preference offers and the project's
    default differs from (issue 12); the README names each such case and
    preference, the preference page describes it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    guide = (ROOT / "docs" / "admin" / "preferences.md").read_text(encoding="utf-8")
    for case, preferences in PEER_PREFERENCES.items():
        assert case.split("/")[1][:3] in readme, case
        for name, value in preferences.items():
            assert validate(name, value) == value
            assert DEFINITIONS[name].default != value, f"{case}: {name} {value} is the default"
            assert f"`{name} = {value}`" in readme.replace("\n", " "), name
            assert f"| `{name}` |" in guide, name


def test_the_peer_configuration_gives_each_peer_preference() -> None:
    """``peer-behaviour.toml`` (the README's one command for ``run.py``)
    sets as site defaults exactly the preferences the cases here are given."""
    wanted = {name: value for given in PEER_PREFERENCES.values() for name, value in given.items()}
    assert dict(load_settings(str(PEER_CONFIG)).preference_defaults) == wanted


def test_run_py_holds_every_case_under_the_peer_configuration(
    tmp_path: Path, runner: ModuleType | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run.py`` sets no preferences (the shared cases are read-only): under
    ``IMIP_AGENT_CONFIG=tests/peers/peer-behaviour.toml`` the programs it runs
    take the peers' behaviour as the site's default, and the cases that need
    it hold through the programs too."""
    if runner is None:
        _missing()
        return
    monkeypatch.setenv("IMIP_TMP", str(tmp_path))
    monkeypatch.setenv("IMIP_AGENT_CONFIG", str(PEER_CONFIG))
    for case in PEER_PREFERENCES:
        held, detail = runner.run_case(PEER_ITIP / case, False)
        assert held, f"{case}: {detail}"


def test_run_py_drives_the_programs(
    tmp_path: Path, runner: ModuleType | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run.py``'s own driver (imip-admin import, imip-person, imip-admin
    export as processes) on one case of each suite: the command-line
    contract the shared runner relies on still holds."""
    if runner is None:
        _missing()
        return
    monkeypatch.setenv("IMIP_TMP", str(tmp_path))
    for label, folder in SUITES:
        case = sorted(p for p in (PEER_ITIP / folder).iterdir() if p.is_dir())[0]
        held, detail = runner.run_case(case, False)
        assert held, f"{label}/{case.name}: {detail}"
