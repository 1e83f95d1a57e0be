"""imip-client as organiser and the remaining attendee answers (issue 19
item 2): create, cancel, decline-counter, counter, delegation, and export
to a vdir. Every document is checked against the schema and every message
it returns is read by icalendar and vobject (``checked``); the room's side
is the real ``imip-resource``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import vobject
from icalendar import Calendar

from imip_agent.client import run
from tests.client.test_cli import checked
from tests.support import ROOM, Agent, calendar_text, imip_message, partstat_of, vevent

ALICE = "alice@example.com"
BOB = "bob@example.com"
CAROL = "carol@example.com"
NOW = "2030-01-01T12:00:00Z"


def as_user(
    tmp_path: Path, who: str, *argv: str, message: bytes | None = None
) -> tuple[int, dict[str, Any]]:
    """Run imip-client in ``who``'s own local calendar under ``tmp_path``."""
    args = ["--calendar", str(tmp_path / who), "--identity", who, "--now", NOW, *argv]
    if message is not None:
        path = tmp_path / f"{who}-{len(list(tmp_path.glob('*.eml')))}.eml"
        path.write_bytes(message)
        args.append(str(path))
    status, text = run(args)
    return status, checked(text)


def outgoing(document: dict[str, Any]) -> list[dict[str, Any]]:
    return list(document["result"]["outgoing"])


def message_of(item: dict[str, Any]) -> bytes:
    return str(item["message"]).encode("utf-8")


def event_of(item: dict[str, Any]) -> Any:
    return Calendar.from_ical(item["calendar"]).walk("VEVENT")[0]


WEEKLY = (
    "create",
    "--summary",
    "Planning",
    "--start",
    "2030-01-08T10:00",
    "--end",
    "2030-01-08T11:00",
    "--tzid",
    "Europe/Berlin",
    "--rrule",
    "FREQ=WEEKLY;BYDAY=TU;COUNT=4",
    "--attendee",
    BOB,
    "--room",
    ROOM,
    "--location",
    "Room 1",
    "--uid",
    "planning@example.com",
)


def test_create_invites_people_and_a_room_that_answers(tmp_path: Path) -> None:
    status, document = as_user(tmp_path, ALICE, *WEEKLY)
    assert status == 0
    (request,) = outgoing(document)
    assert request["method"] == "REQUEST" and request["recipients"] == [BOB, ROOM]
    event = event_of(request)
    assert str(event["RRULE"].to_ical().decode()) == "FREQ=WEEKLY;COUNT=4;BYDAY=TU"
    assert event.decoded("DTSTART").tzinfo is not None and "TZID=Europe/Berlin" in request[
        "calendar"
    ].replace("\r\n ", "")
    assert "BEGIN:VTIMEZONE" in request["calendar"]
    room = next(a for a in event["ATTENDEE"] if str(a).lower() == f"mailto:{ROOM}")
    assert room.params["CUTYPE"] == "ROOM" and room.params["RSVP"] == "TRUE"
    agenda = as_user(tmp_path, ALICE, "agenda", "--from", "2030-01-01", "--to", "2030-02-01")[1]
    assert [e["start"] for e in agenda["agenda"]] == [
        "20300108T090000Z",
        "20300115T090000Z",
        "20300122T090000Z",
        "20300129T090000Z",
    ]
    site = Agent(tmp_path / "room-site")
    answered = site.resource(message_of(request))
    (reply,) = answered.replies()
    assert answered.code == 0 and partstat_of(reply) == "ACCEPTED"
    generated = answered.generated()[0].as_bytes()
    status, applied = as_user(tmp_path, ALICE, "apply", message=generated)
    assert status == 0 and applied["result"]["changes"]
    as_user(tmp_path, ALICE, "export", "--vdir", str(tmp_path / "vdir"))
    stored = Calendar.from_ical((tmp_path / "vdir" / "planning@example.com.ics").read_bytes())
    answers = {str(a).lower(): a.params["PARTSTAT"] for a in stored.walk("VEVENT")[0]["ATTENDEE"]}
    assert answers[f"mailto:{ROOM}"] == "ACCEPTED" and answers[f"mailto:{BOB}"] == "NEEDS-ACTION"


def test_an_invitee_counters_and_the_organiser_declines(tmp_path: Path) -> None:
    request = outgoing(as_user(tmp_path, ALICE, *WEEKLY)[1])[0]
    status, document = as_user(
        tmp_path,
        BOB,
        "counter",
        "--recurrence-id",
        "20300115T090000Z",
        "--start",
        "2030-01-15T13:00Z",
        "--end",
        "2030-01-15T14:00Z",
        "--comment",
        "Afternoon?",
        message=message_of(request),
    )
    assert status == 0
    (proposal,) = outgoing(document)
    assert proposal["method"] == "COUNTER" and proposal["recipients"] == [ALICE]
    event = event_of(proposal)
    assert event.decoded("DTSTART").hour == 13 and "RECURRENCE-ID" in event
    assert proposal["in_reply_to"] == request["message_id"]
    status, declined = as_user(
        tmp_path,
        ALICE,
        "decline-counter",
        "--comment",
        "Mornings only",
        message=message_of(proposal),
    )
    assert status == 0
    (answer,) = outgoing(declined)
    assert answer["method"] == "DECLINECOUNTER" and answer["recipients"] == [BOB]
    assert "COMMENT:Mornings only" in answer["calendar"]
    # Only the organiser may decline; a REQUEST is no counter-proposal.
    refused = as_user(tmp_path, BOB, "decline-counter", message=message_of(proposal))
    assert refused[1]["error"]["code"] == "not_organiser"
    assert (
        as_user(tmp_path, ALICE, "decline-counter", message=message_of(request))[1]["error"]["code"]
        == "not_counter"
    )


def test_cancel_one_instance_then_the_series(tmp_path: Path) -> None:
    request = outgoing(as_user(tmp_path, ALICE, *WEEKLY)[1])[0]
    as_user(tmp_path, BOB, "respond", "--partstat", "accepted", message=message_of(request))
    span = ("--from", "2030-01-01", "--to", "2030-02-01")
    status, document = as_user(
        tmp_path,
        ALICE,
        "cancel",
        "--uid",
        "planning@example.com",
        "--recurrence-id",
        "20300122T090000Z",
    )
    assert status == 0
    (one,) = outgoing(document)
    event = event_of(one)
    assert one["method"] == "CANCEL" and sorted(one["recipients"]) == [BOB, ROOM]
    assert str(event["STATUS"]) == "CANCELLED" and int(event["SEQUENCE"]) == 1
    assert "RECURRENCE-ID" in event
    for who in (ALICE, BOB):
        if who == BOB:
            assert as_user(tmp_path, BOB, "apply", message=message_of(one))[0] == 0
        starts = [e["start"] for e in as_user(tmp_path, who, "agenda", *span)[1]["agenda"]]
        assert "20300122T090000Z" not in starts and len(starts) == 3, who
    status, document = as_user(tmp_path, ALICE, "cancel", "--uid", "planning@example.com")
    (whole,) = outgoing(document)
    assert "RECURRENCE-ID" not in event_of(whole)
    assert as_user(tmp_path, BOB, "apply", message=message_of(whole))[0] == 0
    for who in (ALICE, BOB):
        assert as_user(tmp_path, who, "agenda", *span)[1]["agenda"] == [], who


def test_cancel_needs_a_known_event_the_user_organises(tmp_path: Path) -> None:
    request = outgoing(as_user(tmp_path, ALICE, *WEEKLY)[1])[0]
    as_user(tmp_path, BOB, "apply", message=message_of(request))
    unknown = as_user(tmp_path, ALICE, "cancel", "--uid", "nothing@example.com")[1]
    assert unknown["error"]["code"] == "unknown_event"
    theirs = as_user(tmp_path, BOB, "cancel", "--uid", "planning@example.com")[1]
    assert theirs["error"]["code"] == "not_organiser"
    bad = as_user(
        tmp_path, ALICE, "cancel", "--uid", "planning@example.com", "--recurrence-id", "20300109"
    )[1]
    assert bad["error"]["code"] == "unknown_recurrence"


def test_delegation_answers_the_organiser_and_invites_the_delegate(tmp_path: Path) -> None:
    request = outgoing(as_user(tmp_path, ALICE, *WEEKLY)[1])[0]
    status, document = as_user(
        tmp_path,
        BOB,
        "respond",
        "--partstat",
        "delegated",
        "--delegate-to",
        CAROL,
        message=message_of(request),
    )
    assert status == 0
    reply, forwarded = outgoing(document)
    assert reply["method"] == "REPLY" and reply["recipients"] == [ALICE]
    assert "DELEGATED-TO" in reply["calendar"].replace("\r\n ", "")
    assert forwarded["method"] == "REQUEST" and forwarded["recipients"] == [CAROL]
    delegate = next(
        a for a in event_of(forwarded)["ATTENDEE"] if str(a).lower() == f"mailto:{CAROL}"
    )
    assert delegate.params["DELEGATED-FROM"] == f"mailto:{BOB}"
    assert as_user(tmp_path, ALICE, "apply", message=message_of(reply))[0] == 0
    carol = as_user(tmp_path, CAROL, "apply", "--any-sender", message=message_of(forwarded))
    assert carol[0] == 0 and as_user(tmp_path, CAROL, "pending")[1]["pending"]
    no_delegate = as_user(
        tmp_path, BOB, "respond", "--partstat", "delegated", message=message_of(request)
    )
    assert no_delegate[1]["error"]["code"] == "usage"


def test_export_writes_a_vdir_and_keeps_it_in_step(tmp_path: Path) -> None:
    for uid in ("planning@example.com", "../../etc/passwd"):
        as_user(tmp_path, ALICE, *WEEKLY[:-1], uid)
    vdir = tmp_path / "vdir"
    status, document = as_user(tmp_path, ALICE, "export", "--vdir", str(vdir))
    assert status == 0 and document["export"]["written"] == 2
    files = sorted(p.name for p in vdir.iterdir())
    assert "planning@example.com.ics" in files and all(
        "/" not in f and not f.startswith(".") for f in files
    )
    for path in vdir.iterdir():
        text = path.read_text(encoding="utf-8")
        assert len(Calendar.from_ical(text).walk("VEVENT")) == 1
        assert vobject.readOne(text).vevent.summary.value == "Planning"
    again = as_user(tmp_path, ALICE, "export", "--vdir", str(vdir))[1]["export"]
    assert (again["written"], again["unchanged"], again["removed"]) == (0, 2, 0)
    (vdir / "notes.txt").write_text("kept")
    as_user(tmp_path, ALICE, "cancel", "--uid", "../../etc/passwd")
    after = as_user(tmp_path, ALICE, "export", "--vdir", str(vdir))[1]["export"]
    assert (after["written"], after["unchanged"], after["removed"]) == (0, 1, 1)
    assert sorted(p.name for p in vdir.iterdir()) == ["notes.txt", "planning@example.com.ics"]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (("--end", "2030-01-08T09:00"), "end must be after"),
        (("--rrule", "FREQ=SOMETIMES"), "not a recurrence rule"),
        (("--tzid", "Mars/Olympus"), "unknown time zone"),
        (("--start", "2030-13-45"), "not a date"),
    ],
)
def test_create_refuses_a_bad_event(tmp_path: Path, change: tuple[str, str], why: str) -> None:
    argv = list(WEEKLY)
    option, value = change
    argv[argv.index(option) + 1] = value
    status, document = as_user(tmp_path, ALICE, *argv)
    assert status == 64 and document["error"]["code"] == "usage"
    assert why in document["error"]["message"]
    assert (
        not (tmp_path / ALICE).exists()
        or as_user(tmp_path, ALICE, "agenda", "--from", "2030-01-01", "--to", "2030-02-01")[1][
            "agenda"
        ]
        == []
    )


def test_an_all_day_event_of_ones_own(tmp_path: Path) -> None:
    status, document = as_user(
        tmp_path, ALICE, "create", "--summary", "Holiday", "--start", "2030-01-09"
    )
    assert status == 0 and outgoing(document) == []
    agenda = as_user(tmp_path, ALICE, "agenda", "--from", "2030-01-09", "--to", "2030-01-10")[1]
    assert [e["summary"] for e in agenda["agenda"]] == ["Holiday"]


def test_a_counter_needs_an_invitation_to_the_user(tmp_path: Path) -> None:
    other = imip_message(calendar_text(vevent(attendees=(CAROL,))), to=CAROL)
    document = as_user(
        tmp_path,
        BOB,
        "counter",
        "--start",
        "2030-01-08T13:00Z",
        "--end",
        "2030-01-08T14:00Z",
        message=other,
    )[1]
    assert document["error"]["code"] == "not_attendee"


def test_update_moves_the_event_and_asks_again(tmp_path: Path) -> None:
    request = outgoing(as_user(tmp_path, ALICE, *WEEKLY)[1])[0]
    as_user(tmp_path, BOB, "respond", "--partstat", "accepted", message=message_of(request))
    status, document = as_user(
        tmp_path,
        ALICE,
        "update",
        "--uid",
        "planning@example.com",
        "--start",
        "2030-01-08T11:00",
        "--end",
        "2030-01-08T12:00",
        "--location",
        "Room 2",
        "--attendee",
        CAROL,
    )
    assert status == 0
    (update,) = outgoing(document)
    event = event_of(update)
    assert update["method"] == "REQUEST" and sorted(update["recipients"]) == [BOB, CAROL, ROOM]
    assert int(event["SEQUENCE"]) == 1 and str(event["LOCATION"]) == "Room 2"
    assert event.decoded("DTSTART").hour == 11 and "RRULE" in event
    partstats = {str(a).lower(): a.params["PARTSTAT"] for a in event["ATTENDEE"]}
    assert partstats[f"mailto:{BOB}"] == "NEEDS-ACTION"  # the time changed: asked again
    assert partstats[f"mailto:{ALICE}"] == "ACCEPTED"
    seen = as_user(tmp_path, BOB, "inspect", message=message_of(update))[1]
    assert seen["inspection"]["objects"][0]["state"] == "update"
    span = ("--from", "2030-01-08", "--to", "2030-01-09")
    agenda = as_user(tmp_path, ALICE, "agenda", *span)[1]["agenda"]
    assert [e["start"] for e in agenda] == ["20300108T100000Z"]


def test_free_time_skips_everyone_s_busy_time(tmp_path: Path) -> None:
    as_user(
        tmp_path,
        ALICE,
        "create",
        "--summary",
        "Busy",
        "--start",
        "2030-01-08T10:00Z",
        "--end",
        "2030-01-08T11:00Z",
    )
    busy = "\n".join(
        [
            "BEGIN:VFREEBUSY",
            "UID:fb-1@example.com",
            "DTSTAMP:20300101T090000Z",
            "DTSTART:20300107T000000Z",
            "DTEND:20300114T000000Z",
            f"ORGANIZER:mailto:{ALICE}",
            f"ATTENDEE:mailto:{BOB}",
            "FREEBUSY;FBTYPE=BUSY:20300108T110000Z/20300108T120000Z",
            "END:VFREEBUSY",
        ]
    )
    reply = imip_message(calendar_text(busy, method="REPLY"), sender=BOB, to=ALICE, method="REPLY")
    assert as_user(tmp_path, ALICE, "apply", message=reply)[0] == 0
    status, document = as_user(
        tmp_path,
        ALICE,
        "free-time",
        "--duration",
        "60",
        "--from",
        "2030-01-08T09:00Z",
        "--to",
        "2030-01-08T17:00Z",
        "--with",
        BOB,
        "--with",
        CAROL,
        "--count",
        "2",
    )
    assert status == 0
    slots = [(s["start"], s["end"]) for s in document["free_time"]["slots"]]
    assert slots == [
        ("20300108T090000Z", "20300108T100000Z"),
        ("20300108T120000Z", "20300108T130000Z"),
    ]
    assert document["free_time"]["unknown"] == [CAROL]
    text = run(
        [
            "--calendar",
            str(tmp_path / ALICE),
            "--identity",
            ALICE,
            "--now",
            NOW,
            "--text",
            "free-time",
            "--duration",
            "30",
            "--from",
            "2030-01-12",
            "--to",
            "2030-01-13",
        ]
    )[1]
    assert text == ""  # a Saturday: no working hours
