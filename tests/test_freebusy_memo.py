"""make-freebusy's memo tells the truth: for every "now" in the span that
:func:`imiptools.maintenance.derive_event` gives, deriving the event's
free/busy afresh gives the periods it wrote (issue 15 item 3).

Each event is stored, derived once at NOW, then derived again by a fresh
:class:`~imiptools.records.UserRecords` at times across the span (its
start, just inside its end, points between); the periods must be equal.
Just past the span something must differ for events whose span ends,
or the span was shorter than it needed to be only by the lookahead.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from imiptools import check, maintenance
from imiptools.config import Settings
from imiptools.dates import FixedClock
from imiptools.site import Site, open_site

USER = "mailto:room@example.com"
NOW = datetime(2030, 1, 15, 12, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def _event(uid: str, start: str, end: str, *extra: str, tzid: str = "") -> str:
    zone = f";TZID={tzid}" if tzid else ""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//test//EN",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20300101T000000Z",
        f"DTSTART{zone}:{start}",
        f"DTEND{zone}:{end}",
        "ORGANIZER:mailto:alice@example.com",
        f"ATTENDEE;PARTSTAT=ACCEPTED:{USER}",
        *extra,
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"


def _override(uid: str, rid: str, start: str, end: str, *extra: str) -> str:
    return _event(uid, start, end, f"RECURRENCE-ID{';' + extra[0] if extra else ''}:{rid}")


EVENTS = {
    "future single": (_event("a", "20300301T100000Z", "20300301T110000Z"), {}),
    "single ending soon": (_event("b", "20300110T100000Z", "20300110T110000Z"), {}),
    "single beyond the window": (_event("c", "20310301T100000Z", "20310301T110000Z"), {}),
    "daily without end": (
        _event("d", "20300101T090000Z", "20300101T093000Z", "RRULE:FREQ=DAILY"),
        {},
    ),
    "weekly with count": (
        _event("e", "20300104T090000Z", "20300104T100000Z", "RRULE:FREQ=WEEKLY;COUNT=60"),
        {},
    ),
    "monthly until beyond": (
        _event(
            "f", "20291231T120000Z", "20291231T130000Z", "RRULE:FREQ=MONTHLY;UNTIL=20320101T000000Z"
        ),
        {},
    ),
    "local daily across DST": (
        _event("g", "20300101T080000", "20300101T083000", "RRULE:FREQ=DAILY", tzid="Europe/Berlin"),
        {},
    ),
    "rdate and exdate": (
        _event(
            "h",
            "20300120T100000Z",
            "20300120T110000Z",
            "RDATE:20300125T100000Z,20310118T100000Z",
            "EXDATE:20300120T100000Z",
        ),
        {},
    ),
    "override moved beyond the window": (
        _event("i", "20300102T150000Z", "20300102T160000Z", "RRULE:FREQ=WEEKLY;COUNT=60"),
        {
            "20300122T150000Z": _override(
                "i", "20300122T150000Z", "20310120T150000Z", "20310120T160000Z"
            )
        },
    ),
    "override moved into the past": (
        _event("j", "20300102T170000Z", "20300102T180000Z", "RRULE:FREQ=DAILY;COUNT=40"),
        {
            "20300201T170000Z": _override(
                "j", "20300201T170000Z", "20300109T170000Z", "20300109T180000Z"
            )
        },
    ),
    "all-day yearly": (
        _event("k", "20300116", "20300117", "RRULE:FREQ=YEARLY")
        .replace("DTSTART:20300116", "DTSTART;VALUE=DATE:20300116")
        .replace("DTEND:20300117", "DTEND;VALUE=DATE:20300117"),
        {},
    ),
}


def _site(tmp_path: Path, now: datetime) -> Site:
    settings = Settings(store=str(tmp_path / "store"), preferences=str(tmp_path / "prefs"))
    return open_site(settings, FixedClock(now))


def _periods_at(site: Site, uid: str, now: datetime) -> list[str]:
    records = site.records(USER, now)
    stored = records.stored(uid)
    assert stored is not None
    return sorted(p.to_line() for p in records.periods(stored))


def _held(site: Site, uid: str) -> list[str]:
    return sorted(p.to_line() for p in site.store.all_freebusy(USER) if p.uid == uid)


@pytest.mark.parametrize("name", EVENTS)
def test_the_span_of_a_derivation_holds(tmp_path: Path, name: str) -> None:
    text, overrides = EVENTS[name]
    uid = text.split("UID:", 1)[1].split("\r\n", 1)[0]
    site = _site(tmp_path, NOW)
    site.store.set_object(USER, uid, text)
    for rid, override in overrides.items():
        site.store.set_recurrence(USER, uid, rid, override)
    span = maintenance.derive_event(site.records(USER, NOW), uid)
    assert span is not None
    since, until = span
    assert since == NOW
    written = _held(site, uid)
    assert written == _periods_at(site, uid, NOW)
    end = until if until is not None else NOW + timedelta(days=800)
    steps = [NOW + (end - NOW) * k / 16 for k in range(16)] + [end - TICK]
    for when in steps:
        assert _periods_at(site, uid, when) == written, f"{name}: differs at {when}"
    if until is not None and until < NOW + maintenance.LOOKAHEAD:
        later = [_periods_at(site, uid, until + timedelta(minutes=m)) for m in (0, 1, 60)]
        assert any(p != written for p in later), f"{name}: the span could be longer"


def test_a_single_event_in_the_future_holds_until_it_leaves(tmp_path: Path) -> None:
    site = _site(tmp_path, NOW)
    site.store.set_object(USER, "a", EVENTS["future single"][0])
    span = maintenance.derive_event(site.records(USER, NOW), "a")
    history = NOW - site.records(USER, NOW).limits().window_start
    assert span == (NOW, datetime(2030, 3, 1, 11, tzinfo=UTC) + history)


def test_an_event_beyond_a_bound_is_not_memoised(tmp_path: Path) -> None:
    """An expansion cut short by the instance cap cannot tell when the next
    instance enters: derived as usual, no span."""
    site = _site(tmp_path, NOW)
    text = _event("m", "20300101T000000Z", "20300101T000100Z", "RRULE:FREQ=MINUTELY;INTERVAL=5")
    site.store.set_object(USER, "m", text)
    records = site.records(USER, NOW)
    assert maintenance.derive_event(records, "m") is None
    assert _held(site, "m") == _periods_at(site, "m", NOW)


# -- imip-admin check takes the memo's word for an event derived from its texts ----------


def _refreshed(tmp_path: Path, *names: str) -> Site:
    """A site holding the events ``names`` of :data:`EVENTS`, after a make-freebusy run."""
    site = _site(tmp_path, NOW)
    for name in names:
        text, overrides = EVENTS[name]
        uid = text.split("UID:", 1)[1].split("\r\n", 1)[0]
        site.store.set_object(USER, uid, text)
        for rid, override in overrides.items():
            site.store.set_recurrence(USER, uid, rid, override)
    with maintenance.locked_records(site, USER, NOW) as records:
        maintenance.refresh_window(records)
    return site


def _vouched(site: Site, uid: str, now: datetime = NOW) -> bool:
    records = site.records(USER, now)
    held = [p for p in site.store.all_freebusy(USER) if p.uid == uid]
    entry = maintenance.read_memo(records).get(uid)
    return check._vouched(records, check._StoredTexts.read(records, uid), held, entry)


def _check(site: Site, now: datetime = NOW) -> list[str]:
    return [f.line() for f in check.check_store(site, [USER], now, repair=False).findings]


@pytest.mark.parametrize("name", EVENTS)
def test_check_takes_the_memos_word_only_for_what_a_full_check_passes(
    tmp_path: Path, name: str
) -> None:
    site = _refreshed(tmp_path, name)
    uid = EVENTS[name][0].split("UID:", 1)[1].split("\r\n", 1)[0]
    entry = maintenance.read_memo(site.records(USER, NOW)).get(uid)
    assert _vouched(site, uid) == (entry is not None)
    assert _check(site) == []


def test_check_finds_a_period_missing_behind_the_memos_back(tmp_path: Path) -> None:
    site = _refreshed(tmp_path, "daily without end")
    assert _vouched(site, "d")
    periods = [p for p in site.store.all_freebusy(USER) if p.uid == "d"]
    site.store.set_freebusy_for_uid(USER, "d", periods[1:])
    assert not _vouched(site, "d")
    assert _check(site) == [
        f'{USER}: free/busy of "d" differs from the stored event: '
        "1 period(s) missing, 0 not in the event"
    ]


def test_check_parses_an_event_changed_since_make_freebusy(tmp_path: Path) -> None:
    site = _refreshed(tmp_path, "future single")
    site.store.set_object(USER, "a", "BEGIN:VCALENDAR\r\nnot iCalendar\r\n")
    assert not _vouched(site, "a")
    assert any('the stored object of event "a" does not parse' in line for line in _check(site))


def test_check_parses_what_the_memo_does_not_cover(tmp_path: Path) -> None:
    """A counter-proposal is not among what free/busy is derived from."""
    site = _refreshed(tmp_path, "future single")
    site.store.set_counter(USER, "a", "mailto:bob@example.com", "not iCalendar")
    assert _vouched(site, "a")
    assert any(
        "the counter-proposal of" in line and "does not parse" in line for line in _check(site)
    )


def test_check_derives_again_once_the_memos_span_has_passed(tmp_path: Path) -> None:
    site = _refreshed(tmp_path, "single ending soon")
    later = NOW + timedelta(days=800)
    assert not _vouched(site, "b", later)
