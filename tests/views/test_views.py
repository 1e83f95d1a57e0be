"""The views as library functions: typed results a front end can use."""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from imiptools.config import Settings
from imiptools.dates import FixedClock
from imiptools.maintenance import locked_records
from imiptools.quota.limits import QuotaBooking
from imiptools.quota.overlay import OverlayLedger
from imiptools.site import Site, open_site
from imiptools.transfer import import_calendar
from imiptools.views.decisions import LoggedDecision, UnreadableLine, parse_decision
from imiptools.views.freebusy import freebusy_calendar, freebusy_span
from imiptools.views.overview import overview
from imiptools.views.quota import ReportRow, expire_quota, quota_summary, report_rows
from imiptools.views.whatif import what_if
from tests.support import (
    ROOM,
    calendar_text,
    imip_message,
    parse_calendar_part,
    partstat_of,
    vevent,
)

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
ROOM_URI = f"mailto:{ROOM}"
ALICE = "mailto:alice@example.com"


@pytest.fixture
def site(tmp_path: Path) -> Site:
    settings = Settings(
        store=str(tmp_path / "store"),
        preferences=str(tmp_path / "prefs"),
        journal=str(tmp_path / "journal"),
    )
    return open_site(settings, FixedClock(NOW))


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def record(uid: str, hours: float) -> QuotaBooking:
    start = NOW + timedelta(hours=hours)
    return QuotaBooking(ALICE, ROOM_URI, uid, "", start, start + timedelta(hours=1))


# -- what-if -------------------------------------------------------------------------


def test_what_if_returns_the_decision_and_the_reply_and_changes_nothing(
    site: Site, tmp_path: Path
) -> None:
    site.preferences.set(ROOM_URI, "scheduling_function", "check_quota rooms")
    site.ledger.write_admin_file("rooms", "limits", ["* count outstanding 1"])
    site.ledger.add_bookings("rooms", [record("earlier", 24)])
    before = files_under(tmp_path)
    message = imip_message(calendar_text(vevent("b@example.com")), to=ROOM)
    forecast = what_if(site, ROOM, message)
    (decision,) = forecast.decisions
    assert isinstance(decision, LoggedDecision)
    assert (decision.answer, decision.code, decision.uid) == ("DECLINED", "quota", "b@example.com")
    (reply,) = forecast.messages
    assert reply.recipients == ["alice@example.com"]
    parsed = email.message_from_bytes(reply.message, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert partstat_of(parse_calendar_part(parsed)) == "DECLINED"
    assert forecast.status.startswith("2.0.0 ")
    assert files_under(tmp_path) == before


# -- the decision log ----------------------------------------------------------------


def test_decision_line_is_read_as_typed_fields() -> None:
    line = json.dumps(
        {"time": "T", "answer": "ACCEPTED", "code": "accepted", "uid": "u",
         "recurrence_id": "20300108T100000Z", "organiser": "o", "reason": "r"}
    )  # fmt: skip
    assert parse_decision(line) == LoggedDecision(
        "T", "ACCEPTED", "accepted", "u", "20300108T100000Z", "o", "r", line
    )


@pytest.mark.parametrize("line", ["[1]", '"text"', "3", "{}", "{", '{"answer": null}'])
def test_decision_line_that_is_not_a_decision_is_unreadable(line: str) -> None:
    assert parse_decision(line) == UnreadableLine(line)


# -- free/busy -----------------------------------------------------------------------


def test_freebusy_calendar_of_the_span(site: Site) -> None:
    text = calendar_text(vevent(), method="")
    with locked_records(site, ROOM_URI, NOW) as records:
        import_calendar(records, text, accept=True)
    records = site.records(ROOM_URI)
    start, end = freebusy_span(records)
    assert (start, end) == (NOW - timedelta(days=7), NOW + site.settings.window)
    calendar = freebusy_calendar(records, start, end)
    (component,) = calendar.walk("VFREEBUSY")
    assert str(component["ORGANIZER"]) == ROOM_URI
    assert "20300108T100000Z" in calendar.to_ical().decode()
    with pytest.raises(ValueError):
        freebusy_calendar(records, end, start)


# -- show ----------------------------------------------------------------------------


def test_overview_rows_are_typed_and_keep_their_json_keys(site: Site) -> None:
    with locked_records(site, ROOM_URI, NOW) as records:
        import_calendar(records, calendar_text(vevent(), method=""), accept=True)
    found = overview(site.records(ROOM_URI), timedelta(days=30))
    (row,) = found.upcoming
    assert row.uid == "event-1@example.com" and row.status == "BUSY"
    assert list(row.as_dict()) == [
        "start", "end", "summary", "organiser", "status", "uid", "instance"
    ]  # fmt: skip
    assert list(found.sections()) == ["upcoming", "requests", "counters", "offers"]


# -- quotas --------------------------------------------------------------------------


def test_quota_summary_report_and_expiry(site: Site) -> None:
    ledger = site.ledger
    ledger.write_admin_file("rooms", "limits", ["# weekly", "* count week 3"])
    ledger.add_bookings("rooms", [record("old", -24 * 30), record("next", 24)])
    state = ledger.snapshot("rooms")
    summary = quota_summary(ledger, state)
    assert summary.lists["limits"] == ["# weekly", "* count week 3"]
    assert summary.lists["tzid"] == [] and summary.bookings == 2
    (row,) = report_rows(state, NOW)
    assert row == ReportRow(ALICE, "* count week 3", "1", "2", "2029-12-31T00:00:00+00:00")
    assert row.as_dict()["from"] == row.start
    assert expire_quota(ledger, state, NOW) == 1
    assert ledger.bookings("rooms") == [record("next", 24)]


def test_overlay_ledger_keeps_its_writes_to_itself(site: Site) -> None:
    site.ledger.add_bookings("rooms", [record("kept", 1)])
    overlay = OverlayLedger(site.ledger)
    with overlay.locked(["rooms"], 0):
        overlay.add_bookings("rooms", [record("new", 2)])
        overlay.remove_bookings("rooms", ALICE, ROOM_URI, "kept")
    overlay.write_admin_file("rooms", "exempt", [ALICE])
    assert overlay.bookings("rooms") == [record("new", 2)]
    assert overlay.is_exempt("rooms", ALICE)
    assert site.ledger.bookings("rooms") == [record("kept", 1)]
    assert not site.ledger.is_exempt("rooms", ALICE)
    overlay.remove_bookings("rooms", ALICE, ROOM_URI, "new")
    assert overlay.booking_users("rooms") == []
    assert site.ledger.booking_users("rooms") == [ALICE]
