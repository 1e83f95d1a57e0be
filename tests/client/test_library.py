"""imiptools.client, the mail-client facade (issue 19 item 1): a local
user's calendar made on first use, inspect, apply, respond, pending,
agenda and free/busy, with the agents' handlers doing the recording."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy
from pathlib import Path

import pytest

from imiptools import errors
from imiptools.client import open_calendar
from imiptools.dates import FixedClock
from tests.support import calendar_text, check_reply, imip_message, parse_calendar_part, vevent

BOB = "bob@example.com"
ALICE = "alice@example.com"
NOW = FixedClock(datetime(2030, 1, 1, 12, tzinfo=UTC))


def invitation(sequence: int = 0, start: str = "20300108T100000Z", **kw: object) -> bytes:
    event = vevent(
        "ev1@example.com",
        start,
        "20300108T110000Z",
        attendees=(BOB,),
        sequence=sequence,
        dtstamp=f"2030010{1 + sequence}T090000Z",
        **kw,  # type: ignore[arg-type]
    )
    return imip_message(calendar_text(event), to=BOB)


def test_a_local_calendar_is_made_on_first_use_only_when_asked(tmp_path: Path) -> None:
    with pytest.raises(errors.SiteMissing):
        open_calendar(tmp_path / "cal", [BOB], NOW).pending()
    calendar = open_calendar(tmp_path / "cal", [BOB], NOW, create=True)
    assert calendar.pending() == []
    assert (tmp_path / "cal" / "store").is_dir()


def test_inspect_says_what_an_invitation_is(tmp_path: Path) -> None:
    calendar = open_calendar(tmp_path, [f"MAILTO:{BOB.upper()}"], NOW, create=True)
    seen = calendar.inspect(invitation())
    assert seen.method == "REQUEST" and seen.sender == ALICE and seen.sender_is_organiser
    (obj,) = seen.objects
    assert (obj.uid, obj.sequence, obj.state, obj.user) == ("ev1@example.com", 0, "new", BOB)
    assert obj.organiser is not None and obj.organiser.address == ALICE
    assert [(a.address, a.partstat, a.rsvp) for a in obj.attendees] == [(BOB, "NEEDS-ACTION", True)]
    assert obj.actions == ("accept", "tentative", "decline", "apply")
    assert obj.reply_required and obj.user_partstat == "NEEDS-ACTION"
    assert calendar.pending() == []  # inspecting changes nothing


def test_apply_records_the_invitation_as_imip_person_does(tmp_path: Path) -> None:
    calendar = open_calendar(tmp_path, [BOB], NOW, create=True)
    done = calendar.apply(invitation())
    assert "recorded/request: queued for the user" in done.decisions
    assert any(c.operation == "set_object" for c in done.changes)
    assert [w.uid for w in calendar.pending()] == ["ev1@example.com"]
    start, end = datetime(2030, 1, 8, tzinfo=UTC), datetime(2030, 1, 9, tzinfo=UTC)
    (entry,) = calendar.agenda(start, end)
    assert (entry.start, entry.status) == ("20300108T100000Z", "BUSY-TENTATIVE")
    assert calendar.inspect(invitation()).objects[0].state == "new"
    assert calendar.inspect(invitation(1, "20300108T103000Z")).objects[0].changes == ("DTSTART",)


def test_respond_returns_the_reply_and_records_it(tmp_path: Path) -> None:
    calendar = open_calendar(tmp_path, [BOB], NOW, create=True)
    done = calendar.respond(invitation(), "accepted", comment="See you")
    (reply,) = done.outgoing
    assert reply.method == "REPLY" and reply.recipients == (ALICE,)
    assert reply.subject == "Accepted: Meeting" and reply.in_reply_to == "<m1@example.com>"
    message = email.message_from_bytes(reply.message, policy=policy.default)
    parsed = parse_calendar_part(message)  # type: ignore[arg-type]
    check_reply(parsed, BOB)
    assert str(parsed.walk("VEVENT")[0]["ATTENDEE"].params["PARTSTAT"]) == "ACCEPTED"
    assert calendar.pending() == []
    assert calendar.inspect(invitation()).objects[0].state == "answered"
    span = (datetime(2030, 1, 8, tzinfo=UTC), datetime(2030, 1, 9, tzinfo=UTC))
    assert [e.status for e in calendar.freebusy(*span)] == ["BUSY"]


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    calendar = open_calendar(tmp_path, [BOB], NOW, create=True)
    done = calendar.respond(invitation(), "DECLINED", dry_run=True)
    assert done.dry_run and done.outgoing and done.changes
    assert calendar.pending() == []
    assert calendar.inspect(invitation()).objects[0].state == "new"


def test_an_outdated_invitation_is_not_answered(tmp_path: Path) -> None:
    calendar = open_calendar(tmp_path, [BOB], NOW, create=True)
    calendar.apply(invitation(2))
    assert calendar.inspect(invitation()).objects[0].state == "outdated"
    assert calendar.inspect(invitation()).objects[0].actions == ()
    with pytest.raises(errors.OutOfSequence):
        calendar.respond(invitation(), "ACCEPTED")


def test_clashes_with_the_users_busy_time(tmp_path: Path) -> None:
    calendar = open_calendar(tmp_path, [BOB], NOW, create=True)
    calendar.respond(invitation(), "ACCEPTED")
    other = vevent("ev2@example.com", "20300108T103000Z", "20300108T113000Z", attendees=(BOB,))
    (obj,) = calendar.inspect(imip_message(calendar_text(other), to=BOB)).objects
    assert [(c.uid, c.status) for c in obj.clashes] == [("ev1@example.com", "BUSY")]


def test_errors_a_client_can_act_on(tmp_path: Path) -> None:
    calendar = open_calendar(tmp_path, ["carol@example.com"], NOW, create=True)
    with pytest.raises(errors.NotAttendee):
        calendar.respond(invitation(), "ACCEPTED")
    forged = imip_message(calendar_text(vevent(attendees=(BOB,))), sender="eve@example.com")
    with pytest.raises(errors.SenderNotParticipant):
        open_calendar(tmp_path, [BOB], NOW).apply(forged)
    bare = calendar_text(vevent(attendees=(BOB,)), method="").encode()
    with pytest.raises(errors.MissingMethod):
        calendar.inspect(bare)
    with pytest.raises(errors.ClientParseError):
        calendar.inspect(b"BEGIN:VCALENDAR\r\nthis is not iCalendar\r\n")
    with pytest.raises(errors.NoCalendar):
        calendar.inspect(b"From: a@example.com\r\n\r\nhello\r\n")
    cancel = imip_message(calendar_text(vevent(attendees=(BOB,)), method="CANCEL"))
    with pytest.raises(errors.NotARequest):
        open_calendar(tmp_path, [BOB], NOW).respond(cancel, "ACCEPTED")


def test_a_bare_calendar_with_several_events_and_one_instance_answered(tmp_path: Path) -> None:
    series = vevent(
        "series@example.com", attendees=(BOB,), extra="RRULE:FREQ=DAILY;COUNT=3"
    ).replace("mailto:bob", "MAILTO:bob")
    single = vevent("single@example.com", attendees=(BOB,))
    bare = calendar_text(series, single).encode()
    calendar = open_calendar(tmp_path, [BOB], NOW, create=True)
    seen = calendar.inspect(bare)
    assert [o.uid for o in seen.objects] == ["series@example.com", "single@example.com"]
    assert seen.sender_is_organiser is None
    done = calendar.respond(bare, "TENTATIVE", recurrence_id="20300109T100000Z")
    parsed = parse_calendar_part(
        email.message_from_bytes(done.outgoing[0].message, policy=policy.default)  # type: ignore[arg-type]
    )
    (event,) = parsed.walk("VEVENT")
    assert event.decoded("RECURRENCE-ID") == datetime(2030, 1, 9, 10, tzinfo=UTC)
    with pytest.raises(errors.UnknownRecurrence):
        calendar.respond(bare, "TENTATIVE", recurrence_id="nonsense")
    with pytest.raises(errors.UnknownRecurrence):  # a day the series does not meet
        calendar.respond(bare, "TENTATIVE", recurrence_id="20300120T100000Z")
    with pytest.raises(errors.UnknownRecurrence):  # the right day, the wrong time
        calendar.respond(bare, "TENTATIVE", recurrence_id="20300109T110000Z")
