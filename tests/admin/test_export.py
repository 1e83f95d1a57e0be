"""imip-admin export: what a client reading the export sees is what the agents hold.

Regression tests for issue 12: instances cancelled one by one were kept
aside by the store but written back into the exported series as if they
still happened (sabre/vobject's instance-CANCEL cases 007 and 008), and a
VTIMEZONE made from a Windows zone name carried TZNAME ``1:00:00``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import recurring_ical_events
from icalendar import Calendar

from tests.support import Agent, imip_message

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "peers"
BOB, ORGANISER = "bob@example.com", "olivia@example.net"
NOW = "2030-01-01T12:00:00Z"


def _deliver(agent: Agent, name: str, method: str) -> None:
    text = (FIXTURES / name).read_text()
    message = imip_message(text, sender=ORGANISER, to=BOB, method=method)
    assert agent.person(message, BOB).code == 0


def _starts(calendar: Calendar) -> list[str]:
    window = (dt.datetime(2030, 1, 1, tzinfo=dt.UTC), dt.datetime(2030, 3, 1, tzinfo=dt.UTC))
    return sorted(
        e["DTSTART"].dt.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        for e in recurring_ical_events.of(calendar).between(*window)
    )


def test_export_excludes_instances_cancelled_one_by_one(tmp_path: Path) -> None:
    agent = Agent(tmp_path, now=NOW)
    _deliver(agent, "outlook-weekly-request.ics", "REQUEST")
    _deliver(agent, "outlook-weekly-cancel-one.ics", "CANCEL")
    exported = agent.exported(BOB)
    assert _starts(exported) == ["20300108T090000Z", "20300122T090000Z", "20300129T090000Z"]
    (master,) = exported.walk("VEVENT")
    assert [d.dt.isoformat() for d in master["EXDATE"].dts] == ["2030-01-15T10:00:00+01:00"]
    assert master["EXDATE"].params["TZID"] == "Romance Standard Time"


def test_exported_timezone_names_come_from_the_zone_database(tmp_path: Path) -> None:
    """The sender's nameless VTIMEZONE, cached by icalendar under its TZID,
    used to be what the export described (TZNAME 1:00:00)."""
    agent = Agent(tmp_path, now=NOW)
    _deliver(agent, "outlook-weekly-request.ics", "REQUEST")
    (zone,) = agent.exported(BOB).walk("VTIMEZONE")
    assert str(zone["TZID"]) == "Romance Standard Time"
    names = {str(rule["TZNAME"]) for rule in zone.subcomponents}
    assert names == {"CET", "CEST"}
