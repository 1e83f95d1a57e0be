"""Quota scenarios: imip-resource with check_quota, schedule_across_quota and
schedule_for_delegate, quota files managed with ``imip-admin quota``.

The clock is 2030-01-01 12:00 UTC (a Tuesday); bookings are in the week
from Monday 2030-01-07. Every reply is parsed by icalendar and vobject.
"""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from icalendar import Calendar

from tests.scenarios.test_resource import raw_calendar
from tests.support import (
    BIN,
    Agent,
    Run,
    calendar_text,
    imip_message,
    parse_calendar_part,
    partstat_of,
    vevent,
)

ROOM1 = "room1@example.com"
ROOM2 = "room2@example.com"
CHECKED = "check_quota rooms\nschedule_in_freebusy"


def admin(agent: Agent, *args: str) -> str:
    result = agent.admin(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def setup(agent: Agent, functions: str = CHECKED, rooms: tuple[str, ...] = (ROOM1,)) -> None:
    for room in rooms:
        agent.set_pref(room, "scheduling_function", functions)
        agent.set_pref(room, "TZID", "UTC")


def book(
    agent: Agent,
    uid: str,
    start: str,
    end: str,
    *,
    room: str = ROOM1,
    organiser: str = "alice@example.com",
    sequence: int = 0,
    extra: str = "",
    now: str | None = None,
) -> Run:
    event = vevent(
        uid, start, end, organiser=organiser, attendees=(room,), sequence=sequence, extra=extra
    )
    message = imip_message(
        calendar_text(event), sender=organiser, to=room, message_id=f"<{uid}.{sequence}@t>"
    )
    run = agent.resource(message, recipient=room, sender=organiser, now=now)
    assert run.code == 0, run.stdout + run.stderr
    return run


def cancel(agent: Agent, uid: str, start: str, end: str, room: str = ROOM1) -> Run:
    event = vevent(uid, start, end, attendees=(room,), sequence=1, dtstamp="20300101T100000Z")
    message = imip_message(
        calendar_text(event, method="CANCEL"), to=room, method="CANCEL", message_id=f"<c-{uid}@t>"
    )
    run = agent.resource(message, recipient=room)
    assert run.code == 0, run.stdout + run.stderr
    return run


def answer(run: Run, room: str = ROOM1) -> tuple[str, Calendar, EmailMessage]:
    [mail] = run.generated()
    [reply] = run.replies()
    return partstat_of(reply, room), reply, mail


def comment(reply: Calendar) -> str:
    return str(reply.walk("VEVENT")[0]["COMMENT"])


def hour(day: int, at: int) -> tuple[str, str]:
    return f"203001{day:02d}T{at:02d}0000Z", f"203001{day:02d}T{at + 1:02d}0000Z"


def bookings(agent: Agent, quota: str = "rooms") -> list[tuple[str, str, str]]:
    ledger = agent.site().ledger
    return [(b.user, b.resource, b.uid) for b in ledger.bookings(quota)]


def test_accepted_until_the_limit_then_declined_naming_it(agent: Agent) -> None:
    setup(agent)
    admin(agent, "quota", "set-limit", "rooms", "*", "PT3H", "--per", "week")
    partstat, reply, mail = answer(book(agent, "a", *hour(8, 9)))
    assert partstat == "ACCEPTED"
    text = mail.get_body(("plain",)).get_content()
    assert "Note: 2 hours of the 3 hours for the week of 2030-01-07 allowed for you" in text
    assert "2 hours of the 3 hours" in comment(reply)
    for uid, day in (("b", 9), ("c", 10)):
        assert answer(book(agent, uid, *hour(day, 9)))[0] == "ACCEPTED"
    partstat, reply, mail = answer(book(agent, "d", *hour(11, 9)))
    assert partstat == "DECLINED"
    assert b"\r\nREQUEST-STATUS:3.8;No authority\r\n" in raw_calendar(mail)
    assert comment(reply) == (
        "the booking would exceed the 3 hours for the week of 2030-01-07 allowed for you"
        " in rooms (3 hours already booked)"
    )
    assert "3 hours for the week of 2030-01-07" in mail.get_body(("plain",)).get_content()
    # The next week is another week.
    assert answer(book(agent, "e", *hour(14, 9)))[0] == "ACCEPTED"
    assert len(bookings(agent)) == 4


def test_a_cancel_gives_the_allowance_back(agent: Agent) -> None:
    setup(agent)
    admin(agent, "quota", "set-limit", "rooms", "*", "1", "--per", "week")
    assert answer(book(agent, "a", *hour(8, 9)))[0] == "ACCEPTED"
    assert answer(book(agent, "b", *hour(9, 9)))[0] == "DECLINED"
    cancel(agent, "a", *hour(8, 9))
    assert bookings(agent) == []
    assert answer(book(agent, "b", *hour(9, 9), sequence=1))[0] == "ACCEPTED"


def test_an_update_that_shortens_gives_time_back(agent: Agent) -> None:
    setup(agent)
    admin(agent, "quota", "set-limit", "rooms", "*", "PT3H")
    assert answer(book(agent, "a", "20300108T090000Z", "20300108T120000Z"))[0] == "ACCEPTED"
    assert answer(book(agent, "b", *hour(9, 9)))[0] == "DECLINED"
    run = book(agent, "a", "20300108T090000Z", "20300108T100000Z", sequence=1)
    assert answer(run)[0] == "ACCEPTED"
    assert answer(book(agent, "b", *hour(9, 9), sequence=1))[0] == "ACCEPTED"


def test_group_members_share_a_pooled_limit(agent: Agent) -> None:
    setup(agent)
    admin(agent, "quota", "set-limit", "rooms", "staff", "2", "--per", "month")
    for user in ("alice@example.com", "bob@example.com"):
        admin(agent, "quota", "set-group", "rooms", user, "staff")
    assert answer(book(agent, "a", *hour(8, 9)))[0] == "ACCEPTED"
    assert answer(book(agent, "b", *hour(9, 9), organiser="bob@example.com"))[0] == "ACCEPTED"
    partstat, reply, _ = answer(book(agent, "c", *hour(10, 9), organiser="bob@example.com"))
    assert partstat == "DECLINED"
    assert "2 bookings for 2030-01 allowed for your group staff" in comment(reply)
    # Not in the group, and no '*' line: no limit.
    assert answer(book(agent, "d", *hour(10, 9), organiser="carol@example.com"))[0] == "ACCEPTED"


def test_two_resources_share_one_quota(agent: Agent) -> None:
    setup(agent, rooms=(ROOM1, ROOM2))
    admin(agent, "quota", "set-limit", "rooms", "*", "2")
    assert answer(book(agent, "a", *hour(8, 9), room=ROOM1), ROOM1)[0] == "ACCEPTED"
    assert answer(book(agent, "b", *hour(8, 9), room=ROOM2), ROOM2)[0] == "ACCEPTED"
    partstat, reply, _ = answer(book(agent, "c", *hour(9, 9), room=ROOM1), ROOM1)
    assert partstat == "DECLINED"
    assert "2 bookings booked ahead at any one time" in comment(reply)
    assert sorted(r for _, r, _ in bookings(agent)) == [f"mailto:{ROOM1}", f"mailto:{ROOM2}"]


def test_exempt_users_pass(agent: Agent) -> None:
    setup(agent)
    admin(agent, "quota", "set-limit", "rooms", "*", "0")
    admin(agent, "quota", "exempt", "rooms", "boss@example.com")
    assert answer(book(agent, "a", *hour(8, 9)))[0] == "DECLINED"
    assert answer(book(agent, "b", *hour(9, 9), organiser="boss@example.com"))[0] == "ACCEPTED"


def test_collective_scheduling_stops_simultaneous_bookings(agent: Agent) -> None:
    setup(agent, "schedule_across_quota rooms\nschedule_in_freebusy", rooms=(ROOM1, ROOM2))
    assert answer(book(agent, "a", *hour(8, 9), room=ROOM1), ROOM1)[0] == "ACCEPTED"
    run = book(agent, "b", "20300108T093000Z", "20300108T103000Z", room=ROOM2)
    partstat, reply, _ = answer(run, ROOM2)
    assert partstat == "DECLINED"
    assert "you already hold room1@example.com of rooms" in comment(reply)
    assert answer(book(agent, "c", *hour(8, 11), room=ROOM2), ROOM2)[0] == "ACCEPTED"
    other = book(agent, "d", *hour(8, 9), room=ROOM2, organiser="bob@example.com")
    assert answer(other, ROOM2)[0] == "ACCEPTED"


def test_collective_scheduling_declines_only_a_few_overlapping_instances(agent: Agent) -> None:
    setup(agent, "schedule_across_quota rooms\nschedule_in_freebusy", rooms=(ROOM1, ROOM2))
    agent.set_pref(ROOM2, "max_conflict_instances", "1")
    agent.set_pref(ROOM2, "max_conflict_percent", "50")
    assert answer(book(agent, "a", *hour(15, 9), room=ROOM1), ROOM1)[0] == "ACCEPTED"
    run = book(agent, "w", *hour(8, 9), room=ROOM2, extra="RRULE:FREQ=WEEKLY;COUNT=4")
    [mail] = run.generated()
    [reply] = run.replies()
    events = reply.walk("VEVENT")
    declined = [e for e in events if "RECURRENCE-ID" in e]
    assert [str(e["ATTENDEE"].params["PARTSTAT"]) for e in declined] == ["DECLINED"]
    assert declined[0].decoded("RECURRENCE-ID").day == 15
    text = mail.get_body(("plain",)).get_content()
    assert "you hold another resource of rooms at 2030-01-15 09:00-10:00" in text
    busy = admin(agent, "freebusy", ROOM2, "--start", "20300101T000000Z", "--end", "20300201")
    assert "20300115T090000Z" not in busy and "20300122T090000Z" in busy


def test_delegation_forwards_to_a_free_pool_member(agent: Agent) -> None:
    setup(agent, "schedule_for_delegate rooms\nschedule_in_freebusy", rooms=(ROOM1, ROOM2))
    admin(agent, "quota", "set-delegates", "rooms", ROOM1, ROOM2)
    assert answer(book(agent, "a", *hour(8, 9), organiser="bob@example.com"))[0] == "ACCEPTED"
    run = book(agent, "b", *hour(8, 9))
    replies = [m for m in run.generated() if m["To"] == "alice@example.com"]
    forwards = [m for m in run.generated() if m["To"] == ROOM2]
    assert len(replies) == 1 and len(forwards) == 1
    [reply] = [c for c in run.replies() if str(c["METHOD"]) == "REPLY"]
    assert partstat_of(reply, ROOM1) == "DELEGATED"
    attendee = reply.walk("VEVENT")[0]["ATTENDEE"]
    assert attendee.params["DELEGATED-TO"] == f"mailto:{ROOM2}"
    assert "passed the request to room2@example.com" in comment(reply)
    # The pool member gets the request with itself added, and answers alice.
    forward = forwards[0]
    assert forward["From"] == ROOM1
    delegated = agent.resource(forward.as_bytes(), recipient=ROOM2, sender=ROOM1)
    assert delegated.code == 0, delegated.stdout
    [mail] = delegated.generated()
    assert mail["To"] == "alice@example.com"
    assert partstat_of(delegated.replies()[0], ROOM2) == "ACCEPTED"
    busy = admin(agent, "freebusy", ROOM2, "--start", "20300108T000000Z", "--end", "20300109")
    assert "20300108T090000Z/20300108T100000Z" in busy
    room1 = admin(agent, "freebusy", ROOM1, "--start", "20300108T000000Z", "--end", "20300109")
    assert room1.count("\nFREEBUSY") == 1  # bob's booking only


def test_delegation_declines_when_the_whole_pool_is_busy(agent: Agent) -> None:
    setup(agent, "schedule_for_delegate rooms\nschedule_in_freebusy", rooms=(ROOM1, ROOM2))
    admin(agent, "quota", "set-delegates", "rooms", ROOM1, ROOM2)
    book(agent, "a", *hour(8, 9), room=ROOM1, organiser="bob@example.com")
    book(agent, "b", *hour(8, 9), room=ROOM2, organiser="bob@example.com")
    partstat, reply, _ = answer(book(agent, "c", *hour(8, 9)))
    assert partstat == "DECLINED"
    assert "every other resource of rooms" in comment(reply)


def test_expiry_retires_bookings_that_no_longer_count(agent: Agent) -> None:
    setup(agent)
    admin(agent, "quota", "set-limit", "rooms", "*", "PT5H", "--per", "week")
    book(agent, "a", *hour(8, 9))
    book(agent, "b", *hour(14, 9))
    # Wednesday of the first week: its booking still counts for its week.
    agent.admin("quota", "expire", now="2030-01-09T12:00:00Z")
    assert len(bookings(agent)) == 2
    result = agent.admin("-v", "quota", "expire", now="2030-01-15T12:00:00Z")
    assert "rooms: 1 booking retired" in result.stdout
    assert [uid for _, _, uid in bookings(agent)] == ["b"]


def test_outstanding_allowance_returns_once_a_booking_is_over(agent: Agent) -> None:
    setup(agent)
    admin(agent, "quota", "set-limit", "rooms", "*", "1")
    book(agent, "a", *hour(8, 9))
    assert answer(book(agent, "b", *hour(9, 9)))[0] == "DECLINED"
    later = book(agent, "b", *hour(9, 9), sequence=1, now="2030-01-08T11:00:00Z")
    assert answer(later)[0] == "ACCEPTED"


def test_counter_with_a_truncated_series_when_it_does_not_fit(agent: Agent) -> None:
    setup(agent)
    agent.set_pref(ROOM1, "limit_action", "counter")
    admin(agent, "quota", "set-limit", "rooms", "*", "3")
    run = book(agent, "s", *hour(8, 9), extra="RRULE:FREQ=WEEKLY;COUNT=10")
    [mail] = run.generated()
    counter = parse_calendar_part(mail)
    assert str(counter["METHOD"]) == "COUNTER"
    event = counter.walk("VEVENT")[0]
    assert event["RRULE"].to_ical() == b"FREQ=WEEKLY;COUNT=3"
    assert "offers its first 3 instances" in str(event["COMMENT"])


def test_counter_with_a_shorter_booking_when_time_runs_short(agent: Agent) -> None:
    setup(agent)
    agent.set_pref(ROOM1, "limit_action", "counter")
    admin(agent, "quota", "set-limit", "rooms", "*", "PT2H", "--per", "day")
    run = book(agent, "a", "20300108T090000Z", "20300108T120000Z")
    counter = parse_calendar_part(run.generated()[0])
    event = counter.walk("VEVENT")[0]
    assert str(counter["METHOD"]) == "COUNTER"
    assert event.decoded("DTEND") - event.decoded("DTSTART") == timedelta(hours=2)


def test_redelivery_records_each_booking_once(agent: Agent) -> None:
    setup(agent)
    admin(agent, "quota", "set-limit", "rooms", "*", "PT3H", "--per", "week")
    book(agent, "a", *hour(8, 9), extra="RRULE:FREQ=DAILY;COUNT=2")
    book(agent, "a", *hour(8, 9), extra="RRULE:FREQ=DAILY;COUNT=2")
    assert len(bookings(agent)) == 2


def test_admin_files_are_validated_and_shown(agent: Agent) -> None:
    bad = agent.admin("quota", "set-limit", "rooms", "*", "six hours")
    assert bad.returncode == 65 and "bad limit" in bad.stdout
    bad = agent.admin("quota", "set-limit", "rooms", "*", "PT6H", "--per", "fortnight")
    assert bad.returncode == 65
    admin(agent, "quota", "set-limit", "rooms", "*", "PT6H", "--per", "week")
    admin(agent, "quota", "set-limit", "rooms", "*", "PT8H", "--per", "week")  # replaces
    admin(agent, "quota", "set-limit", "rooms", "bob@example.com", "PT2H", "--per", "P7D")
    admin(agent, "quota", "set-zone", "rooms", "Europe/Berlin")
    shown = admin(agent, "quota", "show", "rooms")
    assert "  * time week PT8H" in shown and "PT6H" not in shown
    assert "  mailto:bob@example.com time rolling:P7D PT2H" in shown
    assert "Europe/Berlin" in shown
    assert agent.admin("quota", "set-zone", "rooms", "Mars/Olympus").returncode == 65


def test_report_shows_use_and_what_remains(agent: Agent) -> None:
    setup(agent)
    admin(agent, "quota", "set-limit", "rooms", "*", "PT3H", "--per", "week")
    book(agent, "a", *hour(8, 9))
    report = agent.admin("quota", "report", "rooms", "--json", now="2030-01-08T12:00:00Z")
    rows = json.loads(report.stdout)["rows"]
    assert rows == [
        {
            "who": "mailto:alice@example.com",
            "limit": "* time week PT3H",
            "used": "PT1H",
            "remaining": "PT2H",
            "from": "2030-01-07T00:00:00+00:00",
        }
    ]
    text = admin(agent, "quota", "report", "rooms", "--user", "alice@example.com")
    assert "mailto:alice@example.com" in text


def test_report_shows_a_pooled_allowance_once_per_group(agent: Agent) -> None:
    setup(agent)
    admin(agent, "quota", "set-limit", "rooms", "staff", "3", "--per", "month")
    for user in ("alice@example.com", "bob@example.com"):
        admin(agent, "quota", "set-group", "rooms", user, "staff")
    book(agent, "a", *hour(8, 9))
    book(agent, "b", *hour(9, 9), organiser="bob@example.com")
    rows = json.loads(admin(agent, "quota", "report", "rooms", "--json"))["rows"]
    pooled = [r for r in rows if r["who"] == "@staff"]
    assert len(pooled) == 1 and pooled[0]["used"] == "2" and pooled[0]["remaining"] == "1"


def test_journal_path_is_the_agents_option(tmp_path: Path) -> None:
    agent = Agent(tmp_path)
    setup(agent)
    admin(agent, "quota", "set-limit", "rooms", "*", "1")
    book(agent, "a", *hour(8, 9))
    bookings = tmp_path / "journal" / "rooms" / "bookings" / "mailto:alice@example.com"
    assert bookings.read_text().count("\n") == 1


@pytest.mark.files
def test_whatif_leaves_the_quota_journal_alone(agent: Agent) -> None:
    setup(agent)
    admin(agent, "quota", "set-limit", "rooms", "*", "1")
    book(agent, "a", *hour(8, 9))
    journal = agent.root / "journal" / "rooms" / "bookings" / "mailto:alice@example.com"
    before = journal.read_bytes()
    event = vevent("b", *hour(9, 9), attendees=(ROOM1,))
    message = imip_message(calendar_text(event), to=ROOM1, message_id="<whatif@t>")
    argv = [str(BIN / "imip-admin"), *agent.store_options, "--now", agent.now]
    result = subprocess.run(
        [*argv, "whatif", ROOM1], input=message, capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stdout
    assert b"DECLINED" in result.stdout and b"allowed for you in rooms" in result.stdout
    cancelling = imip_message(
        calendar_text(vevent("a", *hour(8, 9), attendees=(ROOM1,), sequence=1), method="CANCEL"),
        to=ROOM1,
        method="CANCEL",
    )
    result = subprocess.run(
        [*argv, "whatif", ROOM1], input=cancelling, capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stdout
    assert journal.read_bytes() == before
