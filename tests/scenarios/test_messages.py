"""What the replies, the decision log and the admin's free/busy say (issue 14
item 5): a clash names the booking in the way, a series says how many
instances were checked and which were declined, a cancelled instance is
logged, the free/busy table, and the room's own CN in its answers.

Every reply is read by icalendar and vobject (``Run.replies``) and checked
against RFC 5546 §3.2.3.
"""

from __future__ import annotations

import email
import json
import os
import subprocess
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import vobject
from icalendar import Calendar

from tests.support import (
    ROOM,
    ROOT,
    Agent,
    Run,
    calendar_text,
    imip_message,
    parse_calendar_part,
    partstat_of,
    vevent,
)

WEEKLY = "RRULE:FREQ=WEEKLY;COUNT=5"


@pytest.fixture
def room(agent: Agent) -> Agent:
    """A room in Berlin named "Meeting Room 1" (its CN preference)."""
    agent.set_pref(ROOM, "TZID", "Europe/Berlin")
    agent.set_pref(ROOM, "CN", "Meeting Room 1")
    return agent


def send(agent: Agent, *components: str, sender: str = "alice@example.com", **kw: str) -> Run:
    method = kw.pop("method", "REQUEST")
    message = imip_message(calendar_text(*components, method=method), sender=sender, method=method)
    return agent.resource(message, sender=sender)


def answer(run: Run) -> tuple[str, Calendar, str]:
    """(PARTSTAT, the REPLY, its text part) of the one reply a run sent."""
    assert run.code == 0, run.stdout + run.stderr
    assert len(run.sent) == 1, [m["Subject"] for m in run.sent]
    [reply] = run.replies()
    return partstat_of(reply), reply, text_of(run.sent[0])


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


def comment_of(reply: Calendar, index: int = 0) -> str:
    return str(reply.walk("VEVENT")[index]["COMMENT"])


def planning(agent: Agent) -> None:
    """Alice's "Planning meeting", 10:00-11:00 in Berlin on 2030-01-08, accepted."""
    run = send(
        agent,
        vevent("planning", "20300108T090000Z", "20300108T100000Z", summary="Planning meeting"),
    )
    assert answer(run)[0] == "ACCEPTED"


def review(agent: Agent, uid: str = "review", organiser: str = "bob@example.com") -> Run:
    """A request for 10:30-11:30 in Berlin, which clashes with the planning meeting."""
    event = vevent(
        uid, "20300108T093000Z", "20300108T103000Z", organiser=organiser, summary="Design review"
    )
    return send(agent, event, sender=organiser)


# -- a clash names the booking in the way ------------------------------------


def test_a_clash_decline_names_the_booking_in_the_way_not_the_requested_time(room: Agent) -> None:
    planning(room)
    partstat, reply, text = answer(review(room))
    assert partstat == "DECLINED"
    expected = "the resource is already booked 2030-01-08 10:00-11:00 (CET)"
    assert comment_of(reply) == expected
    assert str(reply.walk("VEVENT")[0]["REQUEST-STATUS"]).startswith("4.0;")
    assert f"Reason: {expected}.\n" in text
    assert "11:30" not in text.splitlines()[1]  # the reason line: not the requested slot
    # Bob may not learn the title of Alice's meeting (conflict_details is no).
    assert "Planning meeting" not in text + comment_of(reply)


def test_the_organiser_of_the_booking_in_the_way_is_told_its_name(room: Agent) -> None:
    planning(room)
    _, reply, _ = answer(review(room, "review-2", organiser="alice@example.com"))
    assert comment_of(reply) == (
        'the resource is already booked 2030-01-08 10:00-11:00 (CET) for "Planning meeting"'
    )


def test_conflict_details_tell_anyone_the_name_and_the_holder(room: Agent) -> None:
    planning(room)
    room.set_pref(ROOM, "conflict_details", "yes")
    _, reply, text = answer(review(room))
    expected = (
        "the resource is already booked 2030-01-08 10:00-11:00 (CET)"
        ' for "Planning meeting" by alice@example.com'
    )
    assert comment_of(reply) == expected
    assert f"Reason: {expected}.\n" in text


def test_the_booking_in_the_way_in_german(room: Agent) -> None:
    room.set_pref(ROOM, "LANG", "de")
    planning(room)
    _, reply, _ = answer(review(room))
    assert comment_of(reply) == "die Ressource ist bereits belegt: 2030-01-08 10:00-11:00 (CET)"


def test_every_booking_in_the_way_is_named_up_to_a_limit(room: Agent) -> None:
    room.set_pref(ROOM, "scheduling_function", "schedule_in_freebusy 2")
    for uid, start, end in (
        ("a", "20300108T090000Z", "20300108T093000Z"),
        ("b", "20300108T090000Z", "20300108T100000Z"),
    ):
        assert answer(send(room, vevent(uid, start, end)))[0] == "ACCEPTED"
    event = vevent("c", "20300108T090000Z", "20300108T100000Z", organiser="carol@example.com")
    partstat, reply, _ = answer(send(room, event, sender="carol@example.com"))
    assert partstat == "DECLINED"
    assert comment_of(reply) == (
        "the resource is already booked 2030-01-08 10:00-10:30 (CET), 2030-01-08 10:00-11:00 (CET)"
    )


# -- a series: how many instances were checked, which were declined -----------


def standup(uid: str = "standup") -> str:
    """A weekly 09:00-09:30 (Berlin) standup, five Wednesdays from 2030-01-09."""
    return vevent(uid, "20300109T080000Z", "20300109T083000Z", summary="Standup", extra=WEEKLY)


def test_accepting_a_series_says_so_and_how_many_instances_were_checked(room: Agent) -> None:
    partstat, reply, text = answer(send(room, standup()))
    assert partstat == "ACCEPTED"
    expected = (
        "the resource is free at all 5 instances of the series checked (2030-01-09 to 2030-02-06)"
    )
    assert comment_of(reply) == expected
    assert text.startswith(
        'Meeting Room 1 has accepted the series "Standup" starting 2030-01-09 09:00 CET.\n'
        f"Reason: {expected}.\n"
    )


def test_a_single_event_is_not_called_a_series(room: Agent) -> None:
    _, reply, text = answer(send(room, vevent()))
    assert comment_of(reply) == "the resource is free at the requested time"
    assert text.startswith('Meeting Room 1 has accepted the invitation "Meeting" starting')


def test_accepting_a_series_with_declined_instances_says_which(room: Agent) -> None:
    room.set_pref(ROOM, "max_conflict_instances", "1")
    room.set_pref(ROOM, "max_conflict_percent", "50")
    busy = vevent("busy", "20300116T080000Z", "20300116T090000Z", organiser="bob@example.com")
    assert answer(send(room, busy, sender="bob@example.com"))[0] == "ACCEPTED"
    partstat, reply, text = answer(send(room, standup()))
    assert partstat == "ACCEPTED"
    expected = (
        "the resource is free at 4 of the 5 instances checked; 1 is declined, as the resource"
        " is already booked then: 2030-01-16 09:00-09:30 (CET)"
    )
    assert comment_of(reply) == expected
    assert f"Reason: {expected}.\n" in text
    assert text.startswith('Meeting Room 1 has accepted the series "Standup"')
    declined = [e for e in reply.walk("VEVENT") if "RECURRENCE-ID" in e]
    assert [e.decoded("RECURRENCE-ID").strftime("%Y%m%dT%H%M%SZ") for e in declined] == [
        "20300116T080000Z"
    ]
    assert str(declined[0]["ATTENDEE"].params["PARTSTAT"]) == "DECLINED"


def test_declining_a_series_says_how_many_instances_clash_and_the_first(room: Agent) -> None:
    room.set_pref(ROOM, "max_conflict_instances", "1")
    room.set_pref(ROOM, "max_conflict_percent", "50")
    for uid, day in (("b1", "20300116"), ("b2", "20300123")):
        event = vevent(uid, f"{day}T080000Z", f"{day}T090000Z", organiser="bob@example.com")
        assert answer(send(room, event, sender="bob@example.com"))[0] == "ACCEPTED"
    partstat, reply, text = answer(send(room, standup()))
    assert partstat == "DECLINED"
    expected = (
        "2 of the 5 instances checked clash; the first at 2030-01-16 09:00-09:30 (CET),"
        " when the resource is already booked 2030-01-16 09:00-10:00 (CET)"
    )
    assert comment_of(reply) == expected
    assert text.startswith('Meeting Room 1 has declined the series "Standup"')
    assert f"Reason: {expected}.\n" in text


# -- a cancelled instance is in the decision log --------------------------------


def cancel(agent: Agent, extra: str, sender: str = "alice@example.com") -> Run:
    event = vevent("standup", "20300116T080000Z", "20300116T083000Z", sequence=1, extra=extra)
    return send(agent, event, sender=sender, method="CANCEL")


def log_lines(agent: Agent, *args: str) -> list[str]:
    result = agent.admin("log", ROOM, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_a_cancelled_instance_is_logged(room: Agent) -> None:
    assert answer(send(room, standup()))[0] == "ACCEPTED"
    run = cancel(room, "RECURRENCE-ID:20300116T080000Z\nSTATUS:CANCELLED")
    assert (run.code, run.sent) == (0, [])
    last = log_lines(room)[-1]
    assert last.endswith(
        "CANCELLED cancel             standup [20300116T080000Z] from alice@example.com:"
        " the organiser cancelled the instance of 2030-01-16 09:00 (CET)"
    )
    entry = json.loads(log_lines(room, "--json")[-1])
    assert (entry["answer"], entry["code"], entry["recurrence_id"]) == (
        "CANCELLED",
        "cancel",
        "20300116T080000Z",
    )
    table = room.admin(
        "freebusy", ROOM, "--start", "2030-01-07", "--end", "2030-01-21", "--format", "table"
    )
    assert "2030-01-09" in table.stdout and "2030-01-16" not in table.stdout


def test_this_and_future_and_whole_cancellations_are_logged(room: Agent) -> None:
    assert answer(send(room, standup()))[0] == "ACCEPTED"
    run = cancel(room, "RECURRENCE-ID;RANGE=THISANDFUTURE:20300123T080000Z")
    assert run.code == 0
    assert log_lines(room)[-1].endswith(
        "the organiser cancelled the instance of 2030-01-23 09:00 (CET) and the 2 following"
    )
    whole = vevent("standup", "20300109T080000Z", "20300109T083000Z", sequence=2, extra=WEEKLY)
    assert send(room, whole, method="CANCEL").code == 0
    assert log_lines(room)[-1].endswith(
        "CANCELLED cancel             standup from alice@example.com:"
        " the organiser cancelled the event"
    )


def test_a_refused_cancellation_is_not_logged_as_one(room: Agent) -> None:
    assert answer(send(room, standup()))[0] == "ACCEPTED"
    before = log_lines(room)
    run = cancel(room, "RECURRENCE-ID:20300116T080000Z", sender="mallory@example.com")
    assert run.code == 0
    assert log_lines(room) == before


# -- the admin's free/busy table ----------------------------------------------


def test_freebusy_table_in_the_rooms_zone_with_event_names(room: Agent) -> None:
    planning(room)
    assert answer(send(room, standup()))[0] == "ACCEPTED"
    result = room.admin(
        "freebusy", ROOM, "--start", "2030-01-07", "--end", "2030-01-17", "--format", "table"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "Free/busy of room@example.com from 2030-01-07 00:00 to 2030-01-17 00:00"
        " (Europe/Berlin)\n"
        "Day             Time         Status  Event\n"
        "Tue 2030-01-08  10:00-11:00  busy    Planning meeting (alice@example.com)\n"
        "Wed 2030-01-09  09:00-09:30  busy    Standup (alice@example.com)\n"
        "Wed 2030-01-16  09:00-09:30  busy    Standup (alice@example.com)\n"
    )


def test_freebusy_table_of_a_free_room(room: Agent) -> None:
    planning(room)  # on 2030-01-08, after the span shown
    result = room.admin(
        "freebusy", ROOM, "--start", "2030-01-07", "--end", "2030-01-08", "--format", "table"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == ["free throughout"]


def test_freebusy_default_format_is_still_the_vfreebusy(room: Agent) -> None:
    planning(room)
    args = ("freebusy", ROOM, "--start", "2030-01-07", "--end", "2030-01-14")
    default, ical = room.admin(*args), room.admin(*args, "--format", "ical")
    assert default.returncode == 0 and default.stdout == ical.stdout
    vobject.readOne(default.stdout)
    component = Calendar.from_ical(default.stdout).walk("VFREEBUSY")[0]
    assert "FREEBUSY;FBTYPE=BUSY;VALUE=PERIOD:20300108T090000Z/20300108T100000Z" in default.stdout
    assert str(component["ORGANIZER"]) == f"mailto:{ROOM}"


def test_freebusy_table_refusals(room: Agent) -> None:
    unknown = room.admin("freebusy", "nobody@example.com", "--format", "table")
    assert unknown.returncode == 67
    store = room.root / "store"
    assert (
        unknown.stdout
        == f"5.1.1 the store {store} holds no calendar user mailto:nobody@example.com\n"
    )
    bad = room.admin("freebusy", ROOM, "--format", "xml")
    assert bad.returncode == 64
    assert bad.stdout.startswith(
        "5.5.4 imip-admin freebusy: argument --format: invalid choice: 'xml'"
    )
    assert "[--format {ical,table}]" in bad.stderr


# -- the room's own CN --------------------------------------------------------


def named(event: str, cn: str) -> str:
    return event.replace("ATTENDEE;PARTSTAT", f"ATTENDEE;CN={cn};PARTSTAT", 1)


def attendee_cns(message: EmailMessage) -> list[str]:
    """The CN of every ATTENDEE of the calendar part, as icalendar and vobject read it."""
    calendar = parse_calendar_part(message)
    by_icalendar = [str(e["ATTENDEE"].params.get("CN", "")) for e in calendar.walk("VEVENT")]
    part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    parsed = vobject.readOne(data.decode("utf-8"))
    by_vobject = [a.params.get("CN", [""])[0] for e in parsed.vevent_list for a in e.attendee_list]
    assert by_icalendar == by_vobject
    return by_icalendar


def test_replies_carry_the_rooms_own_cn(room: Agent) -> None:
    run = send(room, named(vevent(), "Meeting Room"))
    assert answer(run)[0] == "ACCEPTED"
    assert attendee_cns(run.sent[0]) == ["Meeting Room 1"]
    declined = review(room, "other")  # the declined one too
    assert answer(declined)[0] == "DECLINED"
    assert attendee_cns(declined.sent[0]) == ["Meeting Room 1"]


def test_declined_instances_of_a_series_carry_the_rooms_own_cn(room: Agent) -> None:
    room.set_pref(ROOM, "max_conflict_instances", "1")
    room.set_pref(ROOM, "max_conflict_percent", "50")
    busy = vevent("busy", "20300116T080000Z", "20300116T090000Z", organiser="bob@example.com")
    assert answer(send(room, busy, sender="bob@example.com"))[0] == "ACCEPTED"
    run = send(room, named(standup(), '"Raum"'))
    assert answer(run)[0] == "ACCEPTED"
    assert attendee_cns(run.sent[0]) == ["Meeting Room 1", "Meeting Room 1"]


def test_without_a_cn_preference_the_requests_cn_is_kept(agent: Agent) -> None:
    run = send(agent, named(vevent(), "Meeting Room"))
    assert answer(run)[0] == "ACCEPTED"
    assert attendee_cns(run.sent[0]) == ["Meeting Room"]


def test_a_counter_proposal_carries_the_rooms_own_cn(room: Agent) -> None:
    room.set_pref(ROOM, "scheduling_function", "schedule_next_available_in_freebusy")
    planning(room)
    run = send(
        room,
        named(
            vevent("c", "20300108T093000Z", "20300108T103000Z", organiser="bob@example.com"), "X"
        ),
        sender="bob@example.com",
    )
    assert run.code == 0 and len(run.sent) == 1
    [calendar] = run.replies()
    assert str(calendar["METHOD"]) == "COUNTER"
    assert attendee_cns(run.sent[0]) == ["Meeting Room 1"]


# -- the demo -----------------------------------------------------------------


def test_the_demo_shows_the_booking_in_the_way_the_series_the_cancellation_and_the_table(
    tmp_path: Path,
) -> None:
    """./demo, run as a new user would (its store under IMIP_DEMO_DIR)."""
    env = {**os.environ, "IMIP_DEMO_DIR": str(tmp_path)}
    result = subprocess.run(
        [ROOT / "demo"], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "    exit code 0\n" in out and "exit code 6" not in out and "exit code 7" not in out
    # 02: the clash names Alice's booking (10:00-11:00), not Bob's slot (10:30-11:30).
    assert "| Reason: the resource is already booked 2030-01-08 10:00-11:00 (CET).\n" in out
    # 03: the weekly series says it is one, and how many instances were checked.
    assert '| Meeting Room 1 has accepted the series "Weekly standup" starting' in out
    assert "free at all 20 instances of the series checked (2030-01-09 to 2030-05-22)" in out
    # 06: the cancelled instance is in the decision log, in the room's zone.
    assert (
        "    log: 20300101T120000Z CANCELLED cancel             "
        "040000008200E00074C5B7101A82E00800000000weekly [20300116T080000Z] from"
        " carol@example.com: the organiser cancelled the instance of 2030-01-16 09:00 (CET)\n"
    ) in out
    # The room's own CN in every answer, never the "Meeting Room" of the requests.
    assert "ATTENDEE;CN=Meeting Room;" not in out
    assert out.count("ATTENDEE;CN=Meeting Room 1;PARTSTAT=") == 5
    # The final free/busy: a table in Berlin time with the events' names.
    assert out.endswith(
        "Day             Time         Status  Event\n"
        "Tue 2030-01-08  10:30-11:30  busy    Design review (bob@example.com)\n"
        "Tue 2030-01-08  14:00-15:00  busy    Planning meeting (moved) (alice@example.com)\n"
        "Wed 2030-01-09  09:00-09:30  busy    Weekly standup (carol@example.com)\n"
        f"=== The store is in {tmp_path}/store; try: .venv/bin/imip-admin -S {tmp_path}/store"
        " export room@example.com\n"
    )
    # Every reply the demo wrote, read by icalendar and vobject.
    sent = sorted((tmp_path / "outbox").glob("*/*"))
    assert len(sent) == 6
    for path in sent:
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        parse_calendar_part(message)
