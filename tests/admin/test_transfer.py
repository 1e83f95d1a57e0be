"""import, copy-store and show."""

from __future__ import annotations

import json

from tests.admin.conftest import ROOM, admin_ok, answer, book, busy, vevent
from tests.support import Agent, calendar_text, imip_message

MONTH = ("20300101T000000Z", "20300201T000000Z")


def _bookings(agent: Agent) -> str:
    """A previous system's export: two bookings and one without UID."""
    path = agent.root / "old-system.ics"
    events = [
        vevent("old-1", "20300110T090000Z", "20300110T100000Z", organiser="carol@example.com"),
        vevent("old-2", "20300111T090000Z", "20300111T100000Z", extra="RRULE:FREQ=WEEKLY"),
        vevent("", "20300112T090000Z", "20300112T100000Z").replace("UID:\n", ""),
    ]
    path.write_text(calendar_text(*events, method=""))
    return str(path)


def test_import_loads_bookings_that_then_block(agent: Agent) -> None:
    path = _bookings(agent)
    out = admin_ok(agent, "import", ROOM, path, "--accept")
    assert out == (f"imported 2 event(s) for mailto:{ROOM}\nskipped 1 event(s) without UID\n")
    periods = busy(agent, *MONTH)
    assert "20300110T090000Z/20300110T100000Z" in periods
    assert "20300118T090000Z/20300118T100000Z" in periods  # the series' second week
    clash = vevent("new", "20300110T093000Z", "20300110T103000Z", organiser="bob@example.com")
    assert answer(book(agent, clash, sender="bob@example.com")) == "DECLINED"
    again = admin_ok(agent, "import", ROOM, path)
    assert "imported 0 event(s)" in again and "kept 2 stored event(s)" in again
    assert admin_ok(agent, "check") == ""


def test_import_refuses_what_does_not_parse(agent: Agent) -> None:
    path = agent.root / "broken.ics"
    path.write_text("BEGIN:VCALENDAR\nnonsense")
    result = agent.admin("import", ROOM, str(path))
    assert result.returncode == 65 and result.stdout.count("\n") == 1
    missing = agent.admin("import", ROOM, str(agent.root / "absent.ics"))
    assert missing.returncode == 64


def test_copy_store_copies_everything_and_converges(agent: Agent) -> None:
    assert answer(book(agent, vevent("a", extra="RRULE:FREQ=DAILY;COUNT=3"))) == "ACCEPTED"
    assert answer(book(agent, vevent("b", "20300108T103000Z", "20300108T113000Z"))) == "DECLINED"
    target = agent.root / "copy"
    assert admin_ok(agent, "copy-store", "--all", "--to", str(target)) == (
        f"copied 1 user(s) to {target}\n"
    )
    admin_ok(agent, "copy-store", "--all", "--to", str(target))  # a rerun adds nothing
    copy = Agent(agent.root, now=agent.now)
    original_export = admin_ok(agent, "export", ROOM)
    original_log = admin_ok(agent, "log", ROOM)
    original_busy = busy(agent, *MONTH)
    copied = ["-S", str(target)]
    assert admin_ok(copy, "export", ROOM, *copied) == original_export
    assert admin_ok(copy, "log", ROOM, *copied) == original_log
    assert admin_ok(copy, "freebusy", ROOM, "--start", MONTH[0], "--end", MONTH[1], *copied) == (
        original_busy
    )
    assert admin_ok(copy, "check", *copied) == ""
    itself = agent.admin("copy-store", "--all", "--to", str(agent.root / "store"))
    assert itself.returncode == 64


def test_show_lists_upcoming_events_as_a_table_and_json(agent: Agent) -> None:
    book(agent, vevent("a", summary="Board meeting", extra="RRULE:FREQ=DAILY;COUNT=2"))
    book(agent, vevent("b", "20300108T103000Z", "20300108T113000Z", summary="Clash"))
    text = admin_ok(agent, "show", ROOM, "--days", "30")
    assert text.startswith(f"mailto:{ROOM}\n\nUpcoming:\nstart ")
    assert "20300108T100000Z  20300108T110000Z  BUSY    Board meeting" in text
    assert "20300109T100000Z" in text
    assert "FREE" in text and "Clash" in text  # declined: kept, not blocking
    assert "Awaiting the user: (none)" in text
    data = json.loads(admin_ok(agent, "show", ROOM, "--json"))
    assert [row["uid"] for row in data["upcoming"]] == ["a", "b", "a"]
    assert data["upcoming"][0]["status"] == "BUSY"
    assert data["requests"] == [] and data["offers"] == [] and data["counters"] == []
    assert agent.admin("show", "nobody@example.com").returncode == 67


def test_show_lists_what_awaits_a_person(agent: Agent) -> None:
    invitation = vevent("party", attendees=("bob@example.com",), summary="Party")
    message = imip_message(calendar_text(invitation), to="bob@example.com")
    assert agent.person(message, "bob@example.com").code == 0
    data = json.loads(admin_ok(agent, "show", "bob@example.com", "--json"))
    assert data["requests"] == [
        {"uid": "party", "instance": "", "kind": "REQUEST", "summary": "Party"}
    ]
    assert data["upcoming"][0]["status"] == "BUSY-TENTATIVE"
    text = admin_ok(agent, "show", "bob@example.com")
    assert "Awaiting the user:\nkind     uid    instance  summary\nREQUEST  party" in text
