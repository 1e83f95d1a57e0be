"""check: a deliberately damaged store is detected, described and repaired."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from imiptools.dates import parse_utc
from imiptools.periods import Period
from imiptools.records import Held, derivation_record, periods_digest
from tests.admin.conftest import ROOM, admin_ok, answer, book, busy, vevent
from tests.support import Agent

USER_DIR = f"mailto:{ROOM}"
YEAR = ("20300101T000000Z", "20310101T000000Z")


def _book_three(agent: Agent) -> None:
    for uid, day in (("a", "20300108"), ("b", "20300212"), ("c", "20300305")):
        assert answer(book(agent, vevent(uid, f"{day}T100000Z", f"{day}T110000Z"))) == "ACCEPTED"


def _damage(agent: Agent) -> Path:
    """An orphan period, a lost bucket, a lost index, a stray temporary file."""
    store = agent.site().store
    start = parse_utc("20300109T100000Z")
    store.set_freebusy_for_uid(ROOM, "ghost", [Period(start, start + timedelta(hours=1), "ghost")])
    base = agent.root / "store" / USER_DIR
    (base / "freebusy" / "2030-02").unlink()
    (base / "freebusy-index" / "c").unlink()
    stray = base / "objects" / ".a.0123456789abcdef.tmp"
    stray.write_text("half a file")
    return stray


def test_check_finds_and_repairs_a_damaged_store(agent: Agent) -> None:
    _book_three(agent)
    healthy = busy(agent, *YEAR)
    assert admin_ok(agent, "check") == ""
    stray = _damage(agent)

    found = agent.admin("check")
    assert found.returncode == 65
    lines = found.stdout.splitlines()
    assert (
        f'{USER_DIR}: free/busy holds 1 period(s) of "ghost", which is not a stored event' in lines
    )
    assert any('free/busy of "b" differs from the stored event: 1 period(s) missing' in line
               for line in lines)  # fmt: skip
    assert any('hold periods of "c" that its index does not name' in line for line in lines)
    assert any(f"stray temporary file {stray}" in line for line in lines)
    assert lines[-1] == "5.6.0 check: 3 problem(s), 0 repaired, 1 note(s)"
    assert stray.exists()  # a check alone changes nothing

    repaired = agent.admin("check", "--repair")
    assert repaired.returncode == 0, repaired.stdout
    assert repaired.stdout.count("(repaired)") == 4
    assert repaired.stdout.endswith("check: 3 problem(s), 3 repaired, 1 note(s)\n")
    assert not stray.exists()
    assert admin_ok(agent, "check") == ""
    assert busy(agent, *YEAR) == healthy
    clash = vevent("d", "20300212T103000Z", "20300212T113000Z", organiser="bob@example.com")
    assert answer(book(agent, clash, sender="bob@example.com")) == "DECLINED"


def test_unreadable_free_busy_is_regenerated(agent: Agent) -> None:
    _book_three(agent)
    bucket = agent.root / "store" / USER_DIR / "freebusy" / "2030-01"
    bucket.write_text(bucket.read_text() + "not a period line\n")
    found = agent.admin("check")
    assert found.returncode == 65
    assert "the free/busy records cannot be read" in found.stdout
    assert agent.admin("check", "--repair").returncode == 0
    assert admin_ok(agent, "check") == ""
    assert "20300108T100000Z/20300108T110000Z" in busy(agent, *YEAR)


def test_what_cannot_be_derived_is_reported_and_fails(agent: Agent) -> None:
    _book_three(agent)
    (agent.root / "prefs" / USER_DIR).mkdir(parents=True, exist_ok=True)
    (agent.root / "prefs" / USER_DIR / "max_duration").write_text("forever\n")
    (agent.root / "store" / USER_DIR / "objects" / "a").write_text("BEGIN:VCALENDAR\nnonsense\n")
    result = agent.admin("check", "--repair")
    assert result.returncode == 65
    assert 'the stored object of event "a" does not parse' in result.stdout
    assert "preference max_duration is invalid" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("5.6.0 check: 2 problem(s), 0 repaired")
    # the unreadable event keeps its free/busy: nothing is lost
    assert "20300108T100000Z/20300108T110000Z" in busy(agent, *YEAR)


def test_check_full_believes_no_derivation_record(agent: Agent) -> None:
    """The agents' records vouch for their events (check parses none); a
    record vouching for free/busy that is not what the event gives (written
    by hand here, with a digest that holds) is believed by check, not by
    check --full, which parses and derives every event."""
    _book_three(agent)
    site = agent.site()
    assert all(site.store.get_derivation(ROOM, uid) for uid in "abc")
    assert admin_ok(agent, "check") == ""
    records = site.records(USER_DIR, datetime.fromisoformat(agent.now))
    day = timedelta(days=1)
    moved = [
        replace(p, start=p.start + day, end=p.end + day)
        for p in site.store.all_freebusy(ROOM)
        if p.uid == "a"
    ]
    site.store.set_freebusy_for_uid(ROOM, "a", moved)
    held = Held(records.fingerprint("a"), records.now, None, periods_digest(moved))
    record = derivation_record(records.derivation_context(), "a", held)
    site.store.set_derivation(ROOM, "a", record)
    assert admin_ok(agent, "check") == ""
    full = agent.admin("check", "--full")
    assert full.returncode == 65
    assert 'free/busy of "a" differs from the stored event: 1 period(s) missing' in full.stdout
