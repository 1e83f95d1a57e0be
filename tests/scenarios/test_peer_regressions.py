"""Regression tests for what the peers' iTIP suites found (issue 12).

Each test is named after the cause of the defect; the messages are files
under ``tests/fixtures/peers/``. The peer cases themselves run in
``tests/peers/test_peer_itip.py``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import recurring_ical_events
from icalendar import Calendar

from tests.support import ROOM, Agent, calendar_text, imip_message, partstat_of, vevent

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "peers"
BOB, ORGANISER = "bob@example.com", "olivia@example.net"
NOW = "2030-01-01T12:00:00Z"


def fixture_message(name: str, to: str, sender: str = ORGANISER, method: str = "REQUEST") -> bytes:
    """The fixture ``name`` as an iMIP message."""
    return imip_message((FIXTURES / name).read_text(), sender=sender, to=to, method=method)


def starts(calendar: Calendar, uid: str) -> list[str]:
    """The UTC starts of ``uid``'s instances in January 2030, as clients see them."""
    window = (dt.datetime(2030, 1, 1, tzinfo=dt.UTC), dt.datetime(2030, 2, 1, tzinfo=dt.UTC))
    return sorted(
        e["DTSTART"].dt.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        for e in recurring_ical_events.of(calendar).between(*window)
        if str(e["UID"]) == uid
    )


# -- item 3: an occurrence excluded by EXDATE, sent again -------------------------

STANDUP = "daily-standup-exdate@example.net"


def test_an_instance_sent_again_is_no_longer_excluded_by_exdate(tmp_path: Path) -> None:
    agent = Agent(tmp_path, now=NOW)
    assert agent.person(fixture_message("daily-with-exdate-request.ics", BOB), BOB).code == 0
    assert agent.person(fixture_message("daily-reinstate-instance.ics", BOB), BOB).code == 0
    exported = agent.exported(BOB)
    assert starts(exported, STANDUP) == [
        "20300108T090000Z",
        "20300109T090000Z",
        "20300111T090000Z",
    ]
    (master,) = [e for e in exported.walk("VEVENT") if "RECURRENCE-ID" not in e]
    assert [d.dt.isoformat() for d in master["EXDATE"].dts] == ["2030-01-10T09:00:00+00:00"]
    shown = agent.admin("show", BOB, "--days", "30").stdout
    assert "20300109T090000Z" in shown


def test_a_room_blocks_an_occurrence_reinstated_after_exdate(tmp_path: Path) -> None:
    agent = Agent(tmp_path, now=NOW)
    for name in ("daily-with-exdate-request.ics", "daily-reinstate-instance.ics"):
        run = agent.resource(fixture_message(name, ROOM))
        assert run.code == 0 and partstat_of(run.replies()[0]) == "ACCEPTED"
    clash = vevent("clash@example.com", "20300109T093000Z", "20300109T100000Z")
    run = agent.resource(imip_message(calendar_text(clash), sender="carol@example.com"))
    assert partstat_of(run.replies()[0]) == "DECLINED"
