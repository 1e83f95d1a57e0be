"""Derivation records: whoever derives an event's free/busy through the
library keeps what it derived it from, and ``imip-admin check`` takes that
record's word, as make-freebusy's memo's, only when every hash in it holds
(issue 15: check at most 0.3 ms per object on a store the agents wrote).

A record is a claim about a pure function: "these texts, at any "now" in
this span, with these settings, give periods hashing so". It is believed
only when its own digest holds and the texts and periods stored now hash
as it says, so a record that is old, torn, forged for another event or
written for other settings makes check parse the event in full.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from imiptools import agent, check, maintenance
from imiptools.config import Settings
from imiptools.dates import FixedClock
from imiptools.handlers.common import Envelope
from imiptools.handlers.resource import ResourceHandler
from imiptools.mail.send import DirectorySender
from imiptools.periods import Period
from imiptools.records import (
    Held,
    derivation_record,
    fingerprint_of,
    periods_digest,
    read_derivation,
)
from imiptools.site import Site, open_site
from tests.support import ROOM, calendar_text, imip_message, vevent

USER = f"mailto:{ROOM}"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _site(tmp_path: Path, now: datetime = NOW) -> Site:
    settings = Settings(store=str(tmp_path / "store"), preferences=str(tmp_path / "prefs"))
    return open_site(settings, FixedClock(now))


def _deliver(site: Site, tmp_path: Path, *events: str) -> agent.Result:
    """The resource agent answers an invitation holding ``events``."""
    context = agent.Context(
        settings=site.settings,
        store=site.store,
        preferences=site.preferences,
        clock=site.clock,
        sender=DirectorySender(tmp_path / "out"),
        spool=site.outbox,
    )
    message = imip_message(calendar_text(*events))
    result = agent.run(message, [Envelope(ROOM, "alice@example.com")], context, ResourceHandler)
    assert result.code == 0, result
    return result


def _booked(tmp_path: Path) -> Site:
    """A room that accepted a single event "a" and a weekly series "w"."""
    site = _site(tmp_path)
    _deliver(site, tmp_path, vevent("a"))
    weekly = vevent("w", "20300110T140000Z", "20300110T150000Z", extra="RRULE:FREQ=WEEKLY;COUNT=10")
    _deliver(site, tmp_path, weekly)
    assert len([p for p in site.store.all_freebusy(USER) if p.uid == "w"]) == 10
    return site


def _vouched(site: Site, uid: str, now: datetime = NOW) -> bool:
    """Whether check takes ``uid``'s derivation record's word (no memo)."""
    records = site.records(USER, now)
    held = [p for p in site.store.all_freebusy(USER) if p.uid == uid]
    texts = check._StoredTexts.read(records, uid)
    return check._vouched(records, texts, held, records.derivation(uid))


def _check(site: Site, now: datetime = NOW, full: bool = False) -> list[str]:
    report = check.check_store(site, [USER], now, repair=False, full=full)
    return [f.line() for f in report.findings]


@pytest.fixture
def booked(tmp_path: Path) -> Site:
    return _booked(tmp_path)


def test_the_agents_records_vouch_for_what_they_derived(booked: Site) -> None:
    assert maintenance.read_memo(booked.records(USER, NOW)) == {}  # no make-freebusy run
    assert _vouched(booked, "a") and _vouched(booked, "w")
    assert _check(booked) == [] == _check(booked, full=True)


def test_a_record_is_written_without_a_store_write(booked: Site, tmp_path: Path) -> None:
    """The record is no recorded call of the unit of work (nor in its outcome)."""
    result = _deliver(booked, tmp_path, vevent("b", "20300109T100000Z", "20300109T110000Z"))
    outcomes = [o for recipient in result.recipients for o in recipient.objects]
    operations = {write.operation for outcome in outcomes for write in outcome.writes}
    assert "set_freebusy_for_uid" in operations
    assert not any("derivation" in operation for operation in operations)
    assert _vouched(booked, "b")


def test_a_changed_text_is_parsed(booked: Site) -> None:
    booked.store.set_object(USER, "a", "BEGIN:VCALENDAR\r\nnot iCalendar\r\n")
    assert not _vouched(booked, "a")
    assert any('the stored object of event "a" does not parse' in line for line in _check(booked))


def test_a_period_lost_behind_the_records_back_is_found(booked: Site) -> None:
    periods = [p for p in booked.store.all_freebusy(USER) if p.uid == "w"]
    booked.store.set_freebusy_for_uid(USER, "w", periods[1:])
    assert not _vouched(booked, "w")
    assert _check(booked) == [
        f'{USER}: free/busy of "w" differs from the stored event: '
        "1 period(s) missing, 0 not in the event"
    ]


def test_a_cancelled_instance_is_in_what_the_record_hashes(booked: Site) -> None:
    booked.store.cancel_recurrence(USER, "w", "20300117T140000Z", "cancelled")
    assert not _vouched(booked, "w")


def test_a_record_is_not_believed_past_its_span(booked: Site) -> None:
    later = NOW + timedelta(days=400)
    assert not _vouched(booked, "a", later)


def test_a_record_of_other_settings_is_not_believed(booked: Site) -> None:
    assert _vouched(booked, "a")
    booked.preferences.set(USER, "TZID", "Europe/Berlin")
    assert booked.records(USER, NOW).derivation("a") is None
    assert _check(booked) == []


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # torn
        lambda text: "",  # emptied by a power failure
        lambda text: text.replace("imip-derived-1", "imip-derived-9"),
        lambda text: text[:20] + ("0" if text[20] != "0" else "1") + text[21:],  # a bit flipped
    ],
    ids=["torn", "empty", "other format", "flipped"],
)
def test_a_damaged_record_is_not_believed(booked: Site, damage: object) -> None:
    text = booked.store.get_derivation(USER, "a")
    assert text is not None
    booked.store.set_derivation(USER, "a", damage(text))  # type: ignore[operator]
    assert booked.records(USER, NOW).derivation("a") is None
    assert not _vouched(booked, "a")
    assert _check(booked) == []


def test_a_record_of_another_event_is_not_believed(booked: Site) -> None:
    booked.store.set_derivation(USER, "a", booked.store.get_derivation(USER, "w"))
    assert booked.records(USER, NOW).derivation("a") is None


def test_the_record_digest_covers_context_uid_and_fields() -> None:
    held = Held("f" * 32, NOW, NOW + timedelta(days=1), "0" * 32)
    text = derivation_record("context", "a", held)
    assert read_derivation("context", "a", text) == held
    assert read_derivation("other context", "a", text) is None
    assert read_derivation("context", "b", text) is None
    assert read_derivation("context", "a", text.replace("f" * 32, "e" * 32)) is None
    assert read_derivation("context", "a", text.rstrip("\n")) is None


def _forged(site: Site, uid: str) -> None:
    """Free/busy of ``uid`` wrong by a day, with a record vouching for it:
    what only a full parse finds (the record's claim is believed as is)."""
    records = site.records(USER, NOW)
    periods = [p for p in site.store.all_freebusy(USER) if p.uid == uid]
    day = timedelta(days=1)
    moved = [replace(p, start=p.start + day, end=p.end + day) for p in periods]
    site.store.set_freebusy_for_uid(USER, uid, moved)
    until = NOW + timedelta(days=2)
    held = Held(records.fingerprint(uid), NOW, until, periods_digest(moved))
    site.store.set_derivation(USER, uid, derivation_record(records.derivation_context(), uid, held))


def test_check_full_believes_no_record(booked: Site) -> None:
    _forged(booked, "a")
    assert _vouched(booked, "a")
    assert _check(booked) == []
    assert _check(booked, full=True) == [
        f'{USER}: free/busy of "a" differs from the stored event: '
        "1 period(s) missing, 1 not in the event"
    ]


def test_check_full_believes_no_memo(tmp_path: Path) -> None:
    site = _booked(tmp_path)
    with maintenance.locked_records(site, USER, NOW) as records:
        maintenance.refresh_window(records)
    _forged(site, "a")
    site.store.set_derivation(USER, "a", None)
    records = site.records(USER, NOW)
    memo = maintenance.read_memo(records)
    periods = [p for p in site.store.all_freebusy(USER) if p.uid == "a"]
    memo["a"] = Held(memo["a"].fingerprint, NOW, NOW + timedelta(days=2), periods_digest(periods))
    maintenance.write_memo(records, memo)
    assert _check(site) == []
    assert len(_check(site, full=True)) == 1


def test_purging_an_event_drops_its_record(booked: Site) -> None:
    assert booked.store.get_derivation(USER, "a") is not None
    with maintenance.locked_records(booked, USER, NOW + timedelta(days=30)) as records:
        maintenance.purge(records, NOW + timedelta(days=20))
    assert booked.store.get_derivation(USER, "a") is None
    assert booked.store.get_derivation(USER, "w") is not None


def test_the_hashes_are_those_of_make_freebusys_memo_version_2() -> None:
    """Moved from maintenance to records and hashed without hashlib: the
    same digests, so memos written before stay valid (values from then)."""
    overrides = [("20300101T100000Z", "text"), ("20300108T100000Z", None)]
    text = "BEGIN:VCALENDAR\r\nX:é\r\n"
    assert fingerprint_of("a", text, overrides, ["20300115T100000Z"]) == (
        "e879cc15049052dcac4500c840433fc9"
    )
    assert fingerprint_of("b", None, [], []) == "91ce314c0a497422917fd072edfe96ee"
    period = Period(datetime(2030, 1, 1, 10, tzinfo=UTC), datetime(2030, 1, 1, 11, tzinfo=UTC), "a")
    assert periods_digest([period]) == "a639cd23f3c350886f8fbdf9f7a1d7ee"
