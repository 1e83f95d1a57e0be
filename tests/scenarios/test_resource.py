"""Scenario tests: imip-resource driven as Postfix's pipe(8) drives it.

Each test pipes messages on stdin, checks the exit code, reads the replies
written by ``--output`` (parsed by icalendar and vobject, checked against
RFC 5546 §3.2.3) and looks at the store through ``imip-admin``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
import recurring_ical_events

from tests.support import (
    ROOM,
    Agent,
    calendar_text,
    check_reply,
    imip_message,
    partstat_of,
    vevent,
)


def raw_calendar(message: EmailMessage) -> bytes:
    """The calendar part as sent (content lines as they are on the wire)."""
    part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    return data


def request(agent: Agent, *components: str, sender: str = "alice@example.com", **kw: object):
    message = imip_message(calendar_text(*components), sender=sender)
    return agent.resource(message, sender=sender, **kw)  # type: ignore[arg-type]


def only_reply(run) -> str:  # type: ignore[no-untyped-def]
    assert run.code == 0, run.stdout
    assert len(run.sent) == 1, [m["Subject"] for m in run.sent]
    return partstat_of(run.replies()[0])


def freebusy(agent: Agent, start: str = "20300101T000000Z", end: str = "20300201T000000Z") -> str:
    result = agent.admin("freebusy", ROOM, "--start", start, "--end", end)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_free_slot_is_accepted_and_blocks_free_busy(agent: Agent) -> None:
    run = request(agent, vevent())
    assert only_reply(run) == "ACCEPTED"
    assert b"\r\nREQUEST-STATUS:2.0;Success\r\n" in raw_calendar(run.sent[0])
    mail = run.sent[0]
    assert mail["To"] == "alice@example.com"
    assert mail["From"] == ROOM
    assert mail["Auto-Submitted"] == "auto-replied"
    assert mail["In-Reply-To"] == "<m1@example.com>"
    assert "20300108T100000Z/20300108T110000Z" in freebusy(agent)


def test_clashing_request_is_declined_with_reason_and_not_stored(agent: Agent) -> None:
    request(agent, vevent())
    run = request(
        agent,
        vevent(
            "other@example.com", "20300108T103000Z", "20300108T113000Z", organiser="bob@example.com"
        ),
        sender="bob@example.com",
    )
    assert only_reply(run) == "DECLINED"
    event = run.replies()[0].walk("VEVENT")[0]
    assert "already booked" in str(event["COMMENT"])
    assert b"\r\nREQUEST-STATUS:4.0;Event conflict" in raw_calendar(run.sent[0])
    assert "already booked" in run.sent[0].get_body(("plain",)).get_content()
    assert "20300108T113000Z" not in freebusy(agent)


def test_capacity_allows_n_overlapping_bookings(agent: Agent) -> None:
    agent.set_pref(ROOM, "scheduling_function", "schedule_in_freebusy 2")
    assert only_reply(request(agent, vevent("a"))) == "ACCEPTED"
    assert only_reply(request(agent, vevent("b"))) == "ACCEPTED"
    assert only_reply(request(agent, vevent("c"))) == "DECLINED"


def test_cancel_frees_the_slot(agent: Agent) -> None:
    request(agent, vevent())
    cancel = vevent(sequence=1, dtstamp="20300101T100000Z")
    run = agent.resource(imip_message(calendar_text(cancel, method="CANCEL"), method="CANCEL"))
    assert run.code == 0 and run.sent == []
    assert "FREEBUSY;" not in freebusy(agent)
    second = request(agent, vevent("b", organiser="bob@example.com"), sender="bob@example.com")
    assert only_reply(second) == "ACCEPTED"


def test_update_moves_the_booking(agent: Agent) -> None:
    request(agent, vevent())
    moved = vevent(
        start="20300108T140000Z", end="20300108T150000Z", sequence=1, dtstamp="20300101T100000Z"
    )
    assert only_reply(request(agent, moved)) == "ACCEPTED"
    periods = freebusy(agent)
    assert "20300108T140000Z/20300108T150000Z" in periods
    assert "20300108T100000Z" not in periods
    assert (
        only_reply(
            request(agent, vevent("b", organiser="bob@example.com"), sender="bob@example.com")
        )
        == "ACCEPTED"
    )


def test_stale_and_duplicate_updates_change_nothing_and_send_nothing(agent: Agent) -> None:
    request(agent, vevent(sequence=2))
    stale = vevent(
        start="20300108T140000Z", end="20300108T150000Z", sequence=1, dtstamp="20300101T110000Z"
    )
    run = request(agent, stale)
    assert run.code == 0 and run.sent == []
    duplicate = request(agent, vevent(sequence=2))
    assert duplicate.code == 0 and duplicate.sent == []
    assert "20300108T100000Z/20300108T110000Z" in freebusy(agent)
    assert "20300108T140000Z" not in freebusy(agent)


def test_same_sequence_newer_dtstamp_is_an_update(agent: Agent) -> None:
    request(agent, vevent())
    bumped = vevent(start="20300108T140000Z", end="20300108T150000Z", dtstamp="20300101T100000Z")
    assert only_reply(request(agent, bumped)) == "ACCEPTED"
    assert "20300108T140000Z" in freebusy(agent)


def test_recurring_request_is_checked_over_all_instances(agent: Agent) -> None:
    # A single booking on the fifth Tuesday clashes with the weekly series.
    request(
        agent,
        vevent("single", "20300205T100000Z", "20300205T110000Z", organiser="bob@example.com"),
        sender="bob@example.com",
    )
    weekly = vevent(
        "weekly", "20300108T100000Z", "20300108T103000Z", extra="RRULE:FREQ=WEEKLY;COUNT=10"
    )
    run = request(agent, weekly)
    assert only_reply(run) == "DECLINED"
    assert "2030-02-05" in str(run.replies()[0].walk("VEVENT")[0]["COMMENT"])


def test_recurring_request_accepted_blocks_every_instance(agent: Agent) -> None:
    weekly = vevent(
        "weekly", "20300108T100000Z", "20300108T103000Z", extra="RRULE:FREQ=WEEKLY;COUNT=3"
    )
    assert only_reply(request(agent, weekly)) == "ACCEPTED"
    periods = freebusy(agent, end="20300301T000000Z")
    for day in ("20300108", "20300115", "20300122"):
        assert f"{day}T100000Z/{day}T103000Z" in periods
    assert "20300129" not in periods


def test_instance_update_touches_only_that_instance(agent: Agent) -> None:
    weekly = vevent(
        "weekly", "20300108T100000Z", "20300108T103000Z", extra="RRULE:FREQ=WEEKLY;COUNT=3"
    )
    request(agent, weekly)
    moved = vevent(
        "weekly",
        "20300115T140000Z",
        "20300115T143000Z",
        sequence=1,
        dtstamp="20300101T100000Z",
        extra="RECURRENCE-ID:20300115T100000Z",
    )
    run = request(agent, moved)
    assert only_reply(run) == "ACCEPTED"
    event = run.replies()[0].walk("VEVENT")[0]
    assert event.decoded("RECURRENCE-ID").strftime("%Y%m%dT%H%M%SZ") == "20300115T100000Z"
    periods = freebusy(agent)
    assert "20300108T100000Z/20300108T103000Z" in periods
    assert "20300115T140000Z/20300115T143000Z" in periods
    assert "20300115T100000Z" not in periods
    assert "20300122T100000Z/20300122T103000Z" in periods
    exported = agent.admin("export", ROOM).stdout
    assert exported.count("BEGIN:VEVENT") == 2


def test_instance_cancel_touches_only_that_instance(agent: Agent) -> None:
    weekly = vevent(
        "weekly", "20300108T100000Z", "20300108T103000Z", extra="RRULE:FREQ=WEEKLY;COUNT=3"
    )
    request(agent, weekly)
    cancel = vevent(
        "weekly",
        "20300115T100000Z",
        "20300115T103000Z",
        sequence=1,
        dtstamp="20300101T100000Z",
        extra="RECURRENCE-ID:20300115T100000Z",
    )
    run = agent.resource(imip_message(calendar_text(cancel, method="CANCEL"), method="CANCEL"))
    assert run.code == 0
    periods = freebusy(agent)
    assert "20300108T100000Z" in periods and "20300122T100000Z" in periods
    assert "20300115T100000Z" not in periods


def test_vfreebusy_request_is_answered_with_busy_periods_in_range(agent: Agent) -> None:
    request(agent, vevent())
    request(agent, vevent("late", "20300301T100000Z", "20300301T110000Z"))
    fb = calendar_text("""BEGIN:VFREEBUSY
UID:fb-1
DTSTAMP:20300101T000000Z
DTSTART:20300107T000000Z
DTEND:20300114T000000Z
ORGANIZER:mailto:dave@example.com
ATTENDEE:mailto:room@example.com
END:VFREEBUSY""")
    run = agent.resource(imip_message(fb, sender="dave@example.com"))
    assert run.code == 0 and len(run.sent) == 1
    reply = run.replies()[0]
    assert str(reply["METHOD"]) == "REPLY"
    component = reply.walk("VFREEBUSY")[0]
    assert str(component["ORGANIZER"]) == "mailto:dave@example.com"
    assert str(component["ATTENDEE"]) == f"mailto:{ROOM}"
    text = component.to_ical().decode()
    assert "20300108T100000Z/20300108T110000Z" in text
    assert "20300301" not in text.split("DTEND")[1]


def test_add_is_answered_with_refresh_by_default(agent: Agent) -> None:
    request(agent, vevent("weekly", extra="RRULE:FREQ=WEEKLY;COUNT=3"))
    add = vevent(
        "weekly", "20300201T100000Z", "20300201T110000Z", sequence=1, dtstamp="20300101T100000Z"
    )
    run = agent.resource(imip_message(calendar_text(add, method="ADD"), method="ADD"))
    assert run.code == 0 and len(run.sent) == 1
    refresh = run.replies()[0]
    assert str(refresh["METHOD"]) == "REFRESH"
    assert str(refresh.walk("VEVENT")[0]["ATTENDEE"]) == f"mailto:{ROOM}"


def test_past_event_is_declined_with_reason(agent: Agent) -> None:
    run = request(agent, vevent(start="20200108T100000Z", end="20200108T110000Z"))
    assert only_reply(run) == "DECLINED"
    assert "past" in str(run.replies()[0].walk("VEVENT")[0]["COMMENT"])


def test_all_day_event_in_the_users_zone(agent: Agent) -> None:
    agent.set_pref(ROOM, "TZID", "Europe/Berlin")
    run = request(agent, vevent(start=";VALUE=DATE:20300108", end=";VALUE=DATE:20300109"))
    assert only_reply(run) == "ACCEPTED"
    assert "20300107T230000Z/20300108T230000Z" in freebusy(agent)


def test_windows_time_zone_names_are_understood(agent: Agent) -> None:
    start = ';TZID="W. Europe Standard Time":20300108T100000'
    end = ';TZID="W. Europe Standard Time":20300108T110000'
    assert only_reply(request(agent, vevent(start=start, end=end))) == "ACCEPTED"
    assert "20300108T090000Z/20300108T100000Z" in freebusy(agent)


def test_uninvited_resource_does_not_answer(agent: Agent) -> None:
    run = request(agent, vevent(attendees=("someone@example.com",)))
    assert run.code == 0 and run.sent == []


def test_floating_times_are_read_in_the_resources_zone(agent: Agent) -> None:
    agent.set_pref(ROOM, "TZID", "America/New_York")
    run = request(agent, vevent(start="20300108T100000", end="20300108T110000"))
    assert only_reply(run) == "ACCEPTED"
    assert "20300108T150000Z/20300108T160000Z" in freebusy(agent)


@pytest.mark.files
def test_site_defaults_come_from_the_configuration(agent: Agent) -> None:
    config = agent.root / "site.toml"
    config.write_text('[preferences]\nscheduling_function = "schedule_in_freebusy 2"\n')
    args = ("-c", str(config))
    assert only_reply(request(agent, vevent("a"), args=args)) == "ACCEPTED"
    assert only_reply(request(agent, vevent("b"), args=args)) == "ACCEPTED"
    assert only_reply(request(agent, vevent("c"), args=args)) == "DECLINED"


@pytest.mark.files
def test_unknown_scheduling_function_declines_as_misconfigured(agent: Agent) -> None:
    prefs = agent.root / "prefs" / f"mailto:{ROOM}"
    prefs.mkdir(parents=True)
    (prefs / "scheduling_function").write_text("no_such_function\n")
    run = request(agent, vevent())
    assert only_reply(run) == "DECLINED"
    assert "misconfigured" in str(run.replies()[0].walk("VEVENT")[0]["COMMENT"])


@pytest.mark.files
def test_calendar_system_address_sends_with_sent_by(agent: Agent) -> None:
    config = agent.root / "site.toml"
    config.write_text('[agent]\ncalendar_address = "calendar@example.com"\n')
    run = request(agent, vevent(), args=("-c", str(config)))
    assert only_reply(run) == "ACCEPTED"
    assert run.sent[0]["From"] == "calendar@example.com"
    attendee = run.replies()[0].walk("VEVENT")[0]["ATTENDEE"]
    assert str(attendee.params["SENT-BY"]).lower() == "mailto:calendar@example.com"


def test_add_with_add_method_response_add_books_the_new_instance(agent: Agent) -> None:
    agent.set_pref(ROOM, "add_method_response", "add")
    request(agent, vevent("weekly", extra="RRULE:FREQ=WEEKLY;COUNT=2"))
    add = vevent(
        "weekly", "20300201T100000Z", "20300201T110000Z", sequence=1, dtstamp="20300101T100000Z"
    )
    run = agent.resource(imip_message(calendar_text(add, method="ADD"), method="ADD"))
    assert only_reply(run) == "ACCEPTED"
    assert "20300201T100000Z/20300201T110000Z" in freebusy(agent, end="20300301T000000Z")


def test_add_is_ignored_when_configured(agent: Agent) -> None:
    agent.set_pref(ROOM, "add_method_response", "ignore")
    request(agent, vevent("weekly", extra="RRULE:FREQ=WEEKLY;COUNT=2"))
    add = vevent("weekly", "20300201T100000Z", "20300201T110000Z", sequence=1)
    run = agent.resource(imip_message(calendar_text(add, method="ADD"), method="ADD"))
    assert run.code == 0 and run.sent == []


def test_this_and_future_cancel_frees_later_instances(agent: Agent) -> None:
    request(
        agent,
        vevent("weekly", "20300108T100000Z", "20300108T103000Z", extra="RRULE:FREQ=WEEKLY;COUNT=4"),
    )
    cancel = vevent(
        "weekly",
        "20300122T100000Z",
        "20300122T103000Z",
        sequence=1,
        dtstamp="20300101T100000Z",
        extra="RECURRENCE-ID;RANGE=THISANDFUTURE:20300122T100000Z",
    )
    run = agent.resource(imip_message(calendar_text(cancel, method="CANCEL"), method="CANCEL"))
    assert run.code == 0
    periods = freebusy(agent, end="20300301T000000Z")
    assert "20300108T100000Z" in periods and "20300115T100000Z" in periods
    assert "20300122T100000Z" not in periods and "20300129T100000Z" not in periods


def test_stale_cancel_is_ignored(agent: Agent) -> None:
    request(agent, vevent(sequence=3))
    cancel = vevent(sequence=1, dtstamp="20300101T100000Z")
    run = agent.resource(imip_message(calendar_text(cancel, method="CANCEL"), method="CANCEL"))
    assert run.code == 0
    assert "20300108T100000Z" in freebusy(agent)


def test_request_after_cancel_with_higher_sequence_books_again(agent: Agent) -> None:
    request(agent, vevent())
    cancel = vevent(sequence=1, dtstamp="20300101T100000Z")
    agent.resource(imip_message(calendar_text(cancel, method="CANCEL"), method="CANCEL"))
    stale = request(agent, vevent())
    assert stale.code == 0 and stale.sent == []
    again = request(agent, vevent(sequence=2, dtstamp="20300101T110000Z"))
    assert only_reply(again) == "ACCEPTED"
    assert "20300108T100000Z" in freebusy(agent)


@pytest.mark.files
def test_published_freebusy_of_others_is_stored_not_merged(agent: Agent) -> None:
    fb = calendar_text(
        """BEGIN:VFREEBUSY
UID:fb-pub
DTSTAMP:20300101T000000Z
DTSTART:20300107T000000Z
DTEND:20300114T000000Z
ORGANIZER:mailto:dave@example.com
FREEBUSY;FBTYPE=BUSY:20300109T100000Z/20300109T120000Z
END:VFREEBUSY""",
        method="PUBLISH",
    )
    run = agent.resource(imip_message(fb, sender="dave@example.com", method="PUBLISH"))
    assert run.code == 0 and run.sent == []
    assert "20300109" not in freebusy(agent)
    others = list((agent.root / "store").glob("*/freebusy-other/*"))
    assert len(others) == 1 and "20300109T100000Z" in others[0].read_text()


def test_two_recipients_in_one_run(agent: Agent) -> None:
    other = "projector@example.com"
    message = imip_message(calendar_text(vevent(attendees=(ROOM, other))))
    run = agent.resource(message, args=("-o", other))
    assert run.code == 0 and len(run.sent) == 2
    repliers = sorted(str(c.walk("VEVENT")[0]["ATTENDEE"]) for c in run.replies())
    assert repliers == [f"mailto:{other}", f"mailto:{ROOM}"]


def test_export_shows_events_with_the_resources_partstat(agent: Agent) -> None:
    request(agent, vevent())
    request(agent, vevent("b", organiser="bob@example.com"), sender="bob@example.com")
    exported = agent.admin("export", ROOM)
    assert exported.returncode == 0
    import vobject

    calendar = vobject.readOne(exported.stdout)
    states = sorted(
        a.params["PARTSTAT"][0]
        for event in calendar.vevent_list
        for a in event.attendee_list
        if a.value.lower() == f"mailto:{ROOM}"
    )
    assert states == ["ACCEPTED", "DECLINED"]


def test_decisions_are_logged_and_shown_by_imip_admin_log(agent: Agent) -> None:
    request(agent, vevent())
    request(agent, vevent("b", organiser="bob@example.com"), sender="bob@example.com")
    shown = agent.admin("log", ROOM)
    assert shown.returncode == 0
    lines = shown.stdout.splitlines()
    assert len(lines) == 2
    assert "ACCEPTED" in lines[0] and "event-1@example.com" in lines[0]
    assert "DECLINED" in lines[1] and "conflict" in lines[1] and "bob@example.com" in lines[1]
    import json

    entries = [json.loads(line) for line in agent.admin("log", ROOM, "--json").stdout.splitlines()]
    assert entries[1]["verdicts"] == [["schedule_in_freebusy", "DECLINED", "conflict"]]
    assert entries[1]["message_id"] == "<m1@example.com>"


def test_access_rules_combined_with_capacity(agent: Agent) -> None:
    agent.set_pref(
        ROOM, "scheduling_function", "same_domain_only partner.example\nschedule_in_freebusy 2"
    )
    outsider = request(
        agent, vevent("x", organiser="eve@elsewhere.example"), sender="eve@elsewhere.example"
    )
    assert only_reply(outsider) == "DECLINED"
    assert b"REQUEST-STATUS:3.8;No authority" in raw_calendar(outsider.sent[0])
    assert only_reply(request(agent, vevent("a"))) == "ACCEPTED"
    partner = request(
        agent, vevent("p", organiser="pat@partner.example"), sender="pat@partner.example"
    )
    assert only_reply(partner) == "ACCEPTED"
    assert only_reply(request(agent, vevent("c"))) == "DECLINED"  # capacity 2 reached


def test_access_control_list_first_match_wins(agent: Agent) -> None:
    agent.set_pref(ROOM, "acl", "decline organiser bob@example.com\naccept domain example.com")
    agent.set_pref(ROOM, "scheduling_function", "access_control_list\nschedule_in_freebusy")
    bob = request(agent, vevent("b", organiser="bob@example.com"), sender="bob@example.com")
    assert only_reply(bob) == "DECLINED"
    assert "do not allow" in str(bob.replies()[0].walk("VEVENT")[0]["COMMENT"])
    assert only_reply(request(agent, vevent("a"))) == "ACCEPTED"
    log = agent.admin("log", ROOM, "--json").stdout.splitlines()
    assert '"access_control_list", "DECLINED", "acl"' in log[0]


def test_event_limits_decline_with_reasons(agent: Agent) -> None:
    agent.set_pref(ROOM, "max_duration", "PT2H")
    agent.set_pref(ROOM, "min_notice", "PT1H")
    agent.set_pref(ROOM, "booking_window", "P30D")
    long = request(agent, vevent("long", "20300108T100000Z", "20300108T130000Z"))
    assert only_reply(long) == "DECLINED"
    assert "longer than the 2 hours" in str(long.replies()[0].walk("VEVENT")[0]["COMMENT"])
    assert b"REQUEST-STATUS:3.1;" in raw_calendar(long.sent[0])
    soon = request(agent, vevent("soon", "20300101T123000Z", "20300101T130000Z"))
    assert only_reply(soon) == "DECLINED"
    assert "in advance" in str(soon.replies()[0].walk("VEVENT")[0]["COMMENT"])
    far = request(agent, vevent("far", "20300301T100000Z", "20300301T110000Z"))
    assert only_reply(far) == "DECLINED"
    assert only_reply(request(agent, vevent("ok"))) == "ACCEPTED"
    assert "20300108T100000Z/20300108T110000Z" in freebusy(agent)


def test_indefinite_minutely_series_declined_by_allow_indefinite(agent: Agent) -> None:
    agent.set_pref(ROOM, "allow_indefinite", "no")
    bomb = vevent("bomb", "20300108T100000Z", "20300108T100100Z", extra="RRULE:FREQ=MINUTELY")
    run = request(agent, bomb)
    assert only_reply(run) == "DECLINED"
    assert "without end" in str(run.replies()[0].walk("VEVENT")[0]["COMMENT"])
    assert b"REQUEST-STATUS:3.6;" in raw_calendar(run.sent[0])


def test_frequency_and_instance_limits(agent: Agent) -> None:
    agent.set_pref(ROOM, "permitted_frequencies", "DAILY WEEKLY")
    agent.set_pref(ROOM, "max_instances", "5")
    hourly = vevent("h", "20300108T100000Z", "20300108T103000Z", extra="RRULE:FREQ=HOURLY;COUNT=3")
    assert only_reply(request(agent, hourly)) == "DECLINED"
    many = vevent("m", "20300108T100000Z", "20300108T103000Z", extra="RRULE:FREQ=DAILY;COUNT=6")
    assert only_reply(request(agent, many)) == "DECLINED"
    few = vevent("f", "20300108T100000Z", "20300108T103000Z", extra="RRULE:FREQ=DAILY;COUNT=5")
    assert only_reply(request(agent, few)) == "ACCEPTED"


def test_limit_reasons_in_german(agent: Agent) -> None:
    agent.set_pref(ROOM, "LANG", "de")
    agent.set_pref(ROOM, "allow_indefinite", "no")
    run = request(agent, vevent("w", extra="RRULE:FREQ=WEEKLY"))
    assert only_reply(run) == "DECLINED"
    assert run.sent[0]["Subject"].startswith("Abgelehnt")
    assert "ohne Ende" in run.sent[0].get_body(("plain",)).get_content()


def test_series_with_a_few_clashes_is_accepted_with_those_instances_declined(
    agent: Agent,
) -> None:
    agent.set_pref(ROOM, "max_conflict_instances", "1")
    agent.set_pref(ROOM, "max_conflict_percent", "25")
    request(
        agent,
        vevent("single", "20300115T100000Z", "20300115T110000Z", organiser="bob@example.com"),
        sender="bob@example.com",
    )
    weekly = vevent(
        "weekly", "20300108T100000Z", "20300108T103000Z", extra="RRULE:FREQ=WEEKLY;COUNT=4"
    )
    run = request(agent, weekly)
    assert run.code == 0 and len(run.sent) == 1
    reply = run.replies()[0]
    check_reply(reply)
    answers = {
        str(e.get("RECURRENCE-ID").to_ical().decode() if "RECURRENCE-ID" in e else ""): str(
            e["ATTENDEE"].params["PARTSTAT"]
        )
        for e in reply.walk("VEVENT")
    }
    assert answers == {"": "ACCEPTED", "20300115T100000Z": "DECLINED"}
    assert len(reply.walk("VEVENT")) == 2  # one component per instance answered
    assert "2030-01-15" in run.sent[0].get_body(("plain",)).get_content()
    periods = freebusy(agent, end="20300301T000000Z")
    assert "20300108T100000Z/20300108T103000Z" in periods
    assert "20300122T100000Z/20300122T103000Z" in periods
    assert "20300115T100000Z/20300115T103000Z" not in periods
    # Two clashes exceed max_conflict_instances 1: the series is declined.
    request(
        agent,
        vevent("single2", "20300205T100000Z", "20300205T110000Z", organiser="bob@example.com"),
        sender="bob@example.com",
    )
    other = vevent(
        "weekly2", "20300115T100000Z", "20300115T103000Z", extra="RRULE:FREQ=WEEKLY;COUNT=4"
    )
    assert only_reply(request(agent, other)) == "DECLINED"


def test_conflict_details_name_the_holder_when_allowed(agent: Agent) -> None:
    request(agent, vevent())
    agent.set_pref(ROOM, "conflict_details", "yes")
    run = request(agent, vevent("b", organiser="bob@example.com"), sender="bob@example.com")
    assert only_reply(run) == "DECLINED"
    assert "by alice@example.com" in str(run.replies()[0].walk("VEVENT")[0]["COMMENT"])


def counter_of(run) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """(DTSTART, DTEND) of the one COUNTER a run sent, checked by both parsers."""
    assert run.code == 0 and len(run.sent) == 1, run.stdout
    [calendar] = run.replies()
    assert str(calendar["METHOD"]) == "COUNTER"
    event = calendar.walk("VEVENT")[0]
    assert str(event["ATTENDEE"]).lower() == f"mailto:{ROOM}"
    for name in ("UID", "DTSTAMP", "ORGANIZER"):
        assert name in event
    return (
        event.decoded("DTSTART").strftime("%Y%m%dT%H%M%SZ"),
        event.decoded("DTEND").strftime("%Y%m%dT%H%M%SZ"),
    )


def test_next_available_counters_holds_the_offer_and_accepts_the_follow_up(
    agent: Agent,
) -> None:
    agent.set_pref(ROOM, "scheduling_function", "schedule_next_available_in_freebusy")
    agent.set_pref(ROOM, "freebusy_offers", "PT1H")
    request(agent, vevent("taken"))
    wanted = vevent("wants", organiser="bob@example.com")
    offered = counter_of(request(agent, wanted, sender="bob@example.com"))
    assert offered == ("20300108T110000Z", "20300108T120000Z")
    # The held offer is not proposed to, or booked by, a second organiser.
    carol = vevent("carol", "20300108T110000Z", "20300108T120000Z", organiser="carol@example.com")
    assert counter_of(request(agent, carol, sender="carol@example.com"))[0] != offered[0]
    # Bob accepts the proposal: an updated REQUEST for the offered period.
    follow = vevent(
        "wants", *offered, organiser="bob@example.com", sequence=1, dtstamp="20300101T100000Z"
    )
    assert only_reply(request(agent, follow, sender="bob@example.com")) == "ACCEPTED"
    store = agent.site().store
    day = datetime(2030, 1, 8, tzinfo=UTC)
    booked = {p.uid: p for p in store.get_freebusy(f"mailto:{ROOM}", day, day + timedelta(1))}
    assert booked["wants"].start == datetime(2030, 1, 8, 11, tzinfo=UTC)
    assert store.get_offers(f"mailto:{ROOM}", day) == []


@pytest.mark.files
def test_declinecounter_releases_the_offer(agent: Agent) -> None:
    agent.set_pref(ROOM, "scheduling_function", "schedule_next_available_in_freebusy")
    agent.set_pref(ROOM, "freebusy_offers", "PT1H")
    request(agent, vevent("taken"))
    counter_of(
        request(agent, vevent("wants", organiser="bob@example.com"), sender="bob@example.com")
    )
    decline = vevent("wants", organiser="bob@example.com", dtstamp="20300101T100000Z")
    run = agent.resource(
        imip_message(
            calendar_text(decline, method="DECLINECOUNTER"),
            sender="bob@example.com",
            method="DECLINECOUNTER",
        )
    )
    assert run.code == 0 and run.sent == []
    assert not list((agent.root / "store").glob("*/freebusy-offers"))


def test_corrected_counter_snaps_to_permitted_times(agent: Agent) -> None:
    agent.set_pref(ROOM, "scheduling_function", "schedule_corrected_in_freebusy")
    agent.set_pref(ROOM, "permitted_times", "0,30")
    odd = vevent("odd", "20300108T101000Z", "20300108T105000Z")
    assert counter_of(request(agent, odd)) == ("20300108T100000Z", "20300108T110000Z")


def test_opening_hours_decline_outside_them(agent: Agent) -> None:
    agent.set_pref(ROOM, "TZID", "Europe/Berlin")
    agent.set_pref(ROOM, "opening_hours", "MO-FR 08:00-18:00")
    evening = vevent("late", "20300108T180000Z", "20300108T190000Z")
    run = request(agent, evening)
    assert only_reply(run) == "DECLINED"
    assert "MO-FR 08:00-18:00" in str(run.replies()[0].walk("VEVENT")[0]["COMMENT"])
    assert b"REQUEST-STATUS:3.5;" in raw_calendar(run.sent[0])
    assert only_reply(request(agent, vevent("day"))) == "ACCEPTED"


def test_limit_action_counter_offers_a_compliant_period(agent: Agent) -> None:
    agent.set_pref(ROOM, "limit_action", "counter")
    agent.set_pref(ROOM, "max_duration", "PT1H")
    long = vevent("long", "20300108T100000Z", "20300108T130000Z")
    assert counter_of(request(agent, long)) == ("20300108T100000Z", "20300108T110000Z")


def test_limit_action_counter_truncates_an_endless_series(agent: Agent) -> None:
    agent.set_pref(ROOM, "limit_action", "counter")
    agent.set_pref(ROOM, "allow_indefinite", "no")
    agent.set_pref(ROOM, "max_instances", "10")
    weekly = vevent("w", "20300108T100000Z", "20300108T110000Z", extra="RRULE:FREQ=WEEKLY")
    run = request(agent, weekly)
    assert counter_of(run) == ("20300108T100000Z", "20300108T110000Z")
    rule = run.replies()[0].walk("VEVENT")[0]["RRULE"]
    assert rule["FREQ"] == ["WEEKLY"] and rule["COUNT"] == [10]


def test_limit_action_counter_shortens_every_instance_of_a_series(agent: Agent) -> None:
    agent.set_pref(ROOM, "limit_action", "counter")
    agent.set_pref(ROOM, "max_duration", "PT1H")
    weekly = vevent("w", "20300108T100000Z", "20300108T123000Z", extra="RRULE:FREQ=WEEKLY;COUNT=4")
    run = request(agent, weekly)
    assert counter_of(run) == ("20300108T100000Z", "20300108T110000Z")
    event = run.replies()[0].walk("VEVENT")[0]
    assert event["RRULE"].to_ical() == b"FREQ=WEEKLY;COUNT=4"
    assert "it offers the series from" in str(event["COMMENT"])
    # A week that is taken leaves no compliant series to offer: declined.
    agent.set_pref(ROOM, "max_duration", "PT30M")
    request(agent, vevent("x", "20300122T100000Z", "20300122T103000Z"))
    again = vevent("w2", "20300108T100000Z", "20300108T123000Z", extra="RRULE:FREQ=WEEKLY;COUNT=4")
    assert only_reply(request(agent, again)) == "DECLINED"


def test_a_truncated_series_counter_keeps_local_time_across_dst(agent: Agent) -> None:
    agent.set_pref(ROOM, "limit_action", "counter")
    agent.set_pref(ROOM, "max_instances", "15")
    weekly = vevent(
        "dst",
        ";TZID=Europe/Berlin:20300108T100000",
        ";TZID=Europe/Berlin:20300108T110000",
        extra="RRULE:FREQ=WEEKLY;COUNT=30",
    )
    run = request(agent, weekly)
    [counter] = run.replies()
    event = counter.walk("VEVENT")[0]
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert event.decoded("DTSTART").hour == 10
    assert [str(z["TZID"]) for z in counter.walk("VTIMEZONE")] == ["Europe/Berlin"]
    # The proposal, expanded, keeps 10:00 Berlin time after the change to summer time.
    april = recurring_ical_events.of(counter).between((2030, 4, 1), (2030, 4, 30))
    assert {e.decoded("DTSTART").astimezone(UTC).hour for e in april} == {8}


def test_limit_action_counter_moves_a_series_into_opening_hours(agent: Agent) -> None:
    agent.set_pref(ROOM, "limit_action", "counter")
    agent.set_pref(ROOM, "TZID", "Europe/Berlin")
    agent.set_pref(ROOM, "opening_hours", "MO-FR 09:00-17:00")
    early = vevent(
        "early",
        ";TZID=Europe/Berlin:20300108T080000",
        ";TZID=Europe/Berlin:20300108T090000",
        extra="RRULE:FREQ=WEEKLY;COUNT=20",
    )
    run = request(agent, early)
    [counter] = run.replies()
    event = counter.walk("VEVENT")[0]
    assert str(counter["METHOD"]) == "COUNTER"
    assert event.decoded("DTSTART").hour == 9 and event["DTSTART"].params["TZID"]
    assert event["RRULE"].to_ical() == b"FREQ=WEEKLY;COUNT=20"
    assert "it offers the series at" in str(event["COMMENT"])


def test_limit_action_counter_starts_a_series_when_the_notice_allows(agent: Agent) -> None:
    agent.set_pref(ROOM, "limit_action", "counter")
    agent.set_pref(ROOM, "min_notice", "P2D")
    soon = vevent("soon", "20300101T150000Z", "20300101T160000Z", extra="RRULE:FREQ=DAILY;COUNT=5")
    assert counter_of(request(agent, soon)) == ("20300103T150000Z", "20300103T160000Z")


def test_a_truncated_series_offer_holds_every_kept_instance(agent: Agent) -> None:
    agent.set_pref(ROOM, "limit_action", "counter")
    agent.set_pref(ROOM, "max_instances", "3")
    agent.set_pref(ROOM, "freebusy_offers", "PT1H")
    weekly = vevent("w", "20300108T100000Z", "20300108T110000Z", extra="RRULE:FREQ=WEEKLY")
    request(agent, weekly)
    day = datetime(2030, 1, 1, 12, tzinfo=UTC)
    held = agent.site().store.get_offers(f"mailto:{ROOM}", day)
    assert [p.start.day for p in held] == [8, 15, 22]
    # A second organiser is not given the third week while it is held.
    third = vevent("x", "20300122T100000Z", "20300122T110000Z", organiser="bob@example.com")
    assert only_reply(request(agent, third, sender="bob@example.com")) == "DECLINED"


def test_min_duration_and_periods_per_interval(agent: Agent) -> None:
    agent.set_pref(ROOM, "min_duration", "PT30M")
    agent.set_pref(ROOM, "max_periods_per_interval", "1 P1D")
    short = vevent("short", "20300108T100000Z", "20300108T101500Z")
    assert only_reply(request(agent, short)) == "DECLINED"
    twice = vevent(
        "twice",
        "20300108T100000Z",
        "20300108T110000Z",
        extra="RRULE:FREQ=HOURLY;INTERVAL=4;COUNT=2",
    )
    run = request(agent, twice)
    assert only_reply(run) == "DECLINED"
    assert b"REQUEST-STATUS:3.6;" in raw_calendar(run.sent[0])
    daily = vevent(
        "daily", "20300108T100000Z", "20300108T110000Z", extra="RRULE:FREQ=DAILY;COUNT=3"
    )
    assert only_reply(request(agent, daily)) == "ACCEPTED"


def test_permitted_times_limit_declines_off_grid_times(agent: Agent) -> None:
    agent.set_pref(ROOM, "permitted_times", "0,30")
    odd = vevent("odd", "20300108T101000Z", "20300108T105000Z")
    run = request(agent, odd)
    assert only_reply(run) == "DECLINED"
    assert "start and end" in str(run.replies()[0].walk("VEVENT")[0]["COMMENT"])
    assert only_reply(request(agent, vevent("even"))) == "ACCEPTED"


def test_opening_hours_as_vavailability(agent: Agent) -> None:
    availability = (
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//tests//EN\nBEGIN:VAVAILABILITY\n"
        "UID:open\nDTSTAMP:20300101T000000Z\nBEGIN:AVAILABLE\nUID:weekdays\n"
        "DTSTAMP:20300101T000000Z\nDTSTART:20300107T090000Z\nDTEND:20300107T120000Z\n"
        "RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR\nEND:AVAILABLE\nEND:VAVAILABILITY\n"
        "END:VCALENDAR\n"
    )
    agent.set_pref(ROOM, "opening_hours", availability)
    assert only_reply(request(agent, vevent())) == "ACCEPTED"  # Tuesday 10:00-11:00 UTC
    late = vevent("late", "20300108T130000Z", "20300108T140000Z")
    assert only_reply(request(agent, late)) == "DECLINED"


def test_acl_capacity_and_limits_combined(agent: Agent) -> None:
    agent.set_pref(ROOM, "acl", "accept domain example.com\ndefault decline")
    agent.set_pref(ROOM, "scheduling_function", "access_control_list\nschedule_in_freebusy 2")
    agent.set_pref(ROOM, "max_duration", "PT2H")
    stranger = vevent("s", organiser="eve@elsewhere.example")
    assert only_reply(request(agent, stranger, sender="eve@elsewhere.example")) == "DECLINED"
    too_long = vevent("l", "20300108T100000Z", "20300108T130000Z")
    assert only_reply(request(agent, too_long)) == "DECLINED"
    assert only_reply(request(agent, vevent("a"))) == "ACCEPTED"
    assert only_reply(request(agent, vevent("b"))) == "ACCEPTED"
    assert only_reply(request(agent, vevent("c"))) == "DECLINED"


def test_limit_words_are_translated_too(agent: Agent) -> None:
    agent.set_pref(ROOM, "LANG", "de")
    agent.set_pref(ROOM, "max_duration", "PT2H")
    run = request(agent, vevent("long", "20300108T100000Z", "20300108T130000Z"))
    assert only_reply(run) == "DECLINED"
    comment = str(run.replies()[0].walk("VEVENT")[0]["COMMENT"])
    assert "2 Stunden" in comment and "hours" not in comment
