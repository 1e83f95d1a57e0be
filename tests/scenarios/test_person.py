"""Scenario tests: RFC 5546 §4 exchanges between people served by imip-agent.

Alice organises; Bob, Carol and Dave are attendees. Each step is a message
piped through the program the MTA would run: ``imip-person-outgoing`` for the
copy of what someone sent, ``imip-person`` for what someone receives. After
each step ``imip-admin export`` shows the state the RFC describes.
"""

from __future__ import annotations

import subprocess

from icalendar import Calendar

from tests.support import BIN, Agent, calendar_text, imip_message, vevent

ALICE, BOB, CAROL, DAVE = (f"{n}@example.com" for n in ("alice", "bob", "carol", "dave"))
UID = "meeting-1@example.com"
EVENT = dict(uid=UID, organiser=ALICE, attendees=(ALICE, BOB, CAROL))


def msg(component: str, method: str, sender: str, message_id: str = "<m@example.com>") -> bytes:
    return imip_message(
        calendar_text(component, method=method), sender=sender, method=method, message_id=message_id
    )


def partstats(calendar: Calendar, uid: str = UID) -> dict[str, str]:
    """Attendee -> PARTSTAT of the master VEVENT of ``uid``."""
    for event in calendar.walk("VEVENT"):
        if str(event["UID"]) == uid and "RECURRENCE-ID" not in event:
            attendees = event.get("ATTENDEE", [])
            attendees = attendees if isinstance(attendees, list) else [attendees]
            return {
                str(a).lower().removeprefix("mailto:"): str(a.params.get("PARTSTAT", ""))
                for a in attendees
            }
    raise AssertionError(f"{uid} not exported")


def uids(calendar: Calendar) -> list[str]:
    return sorted({str(e["UID"]) for e in calendar.walk("VEVENT")})


def freebusy(agent: Agent, user: str) -> str:
    result = agent.admin("freebusy", user, "--start", "20300101", "--end", "20300301")
    assert result.returncode == 0, result.stdout
    return result.stdout


def invite(agent: Agent) -> None:
    """Alice invites Bob and Carol; both receive the invitation."""
    request = msg(vevent(**EVENT), "REQUEST", ALICE)
    assert agent.outgoing(request, ALICE).code == 0
    for person in (BOB, CAROL):
        run = agent.person(request, person)
        assert run.code == 0 and len(run.delivered()) == 1 and run.generated() == []


def answer(agent: Agent, who: str, partstat: str, extra: str = "", sequence: int = 0) -> None:
    """``who`` replies: their outgoing copy, then Alice receives it."""
    reply = msg(
        vevent(
            UID,
            organiser=ALICE,
            attendees=(),
            sequence=sequence,
            dtstamp="20300101T100000Z",
            extra=f"ATTENDEE;PARTSTAT={partstat}{extra}:mailto:{who}",
        ),
        "REPLY",
        who,
    )
    assert agent.outgoing(reply, who).code == 0
    assert agent.person(reply, ALICE).code == 0


def test_invitation_is_recorded_tentative_queued_and_delivered(agent: Agent) -> None:
    invite(agent)
    assert "FBTYPE=BUSY:" in freebusy(agent, ALICE) or "FBTYPE=BUSY;" in freebusy(agent, ALICE)
    assert "BUSY-TENTATIVE" in freebusy(agent, BOB)
    assert agent.requests(BOB) == [(UID, "", "REQUEST")]
    assert partstats(agent.exported(BOB))[BOB] == "NEEDS-ACTION"


def test_reply_round_trip(agent: Agent) -> None:
    invite(agent)
    answer(agent, BOB, "ACCEPTED")
    answer(agent, CAROL, "DECLINED")
    states = partstats(agent.exported(ALICE))
    assert states[BOB] == "ACCEPTED" and states[CAROL] == "DECLINED"
    assert partstats(agent.exported(BOB))[BOB] == "ACCEPTED"
    assert agent.requests(BOB) == []
    assert "FBTYPE=BUSY" in freebusy(agent, BOB) and "TENTATIVE" not in freebusy(agent, BOB)
    assert "FREEBUSY" not in freebusy(agent, CAROL).replace("VFREEBUSY", "")
    others = list((agent.root / "store").glob("mailto:alice*/freebusy-other/*"))
    assert [p.name for p in others] == ["mailto:bob@example.com"]


def test_outlook_reply_without_organizer_from_the_attendee(agent: Agent) -> None:
    invite(agent)
    reply = msg(
        vevent(
            UID,
            organiser="",
            attendees=(),
            dtstamp="20300101T100000Z",
            extra=f"ATTENDEE;PARTSTAT=TENTATIVE:mailto:{BOB}",
        ),
        "REPLY",
        BOB,
    )
    assert agent.person(reply, ALICE).code == 0
    assert partstats(agent.exported(ALICE))[BOB] == "TENTATIVE"


def test_spoofed_reply_changes_nothing(agent: Agent) -> None:
    invite(agent)
    spoof = msg(
        vevent(
            UID,
            organiser=ALICE,
            attendees=(),
            dtstamp="20300101T100000Z",
            extra=f"ATTENDEE;PARTSTAT=DECLINED:mailto:{BOB}",
        ),
        "REPLY",
        "mallory@example.com",
    )
    run = agent.person(spoof, ALICE)
    assert run.code == 0 and len(run.delivered()) == 1
    assert partstats(agent.exported(ALICE))[BOB] == "NEEDS-ACTION"


def test_spoofed_cancel_changes_nothing(agent: Agent) -> None:
    invite(agent)
    cancel = msg(
        vevent(**EVENT, sequence=1, dtstamp="20300101T100000Z"), "CANCEL", "mallory@example.com"
    )
    run = agent.person(cancel, BOB)
    assert run.code == 0 and len(run.delivered()) == 1
    assert uids(agent.exported(BOB)) == [UID]


def test_per_instance_reply_creates_an_override_at_the_organiser(agent: Agent) -> None:
    weekly = dict(EVENT, extra="RRULE:FREQ=WEEKLY;COUNT=4")
    request = msg(vevent(**weekly), "REQUEST", ALICE)
    agent.outgoing(request, ALICE)
    agent.person(request, BOB)
    answer(agent, BOB, "ACCEPTED")
    reply = msg(
        vevent(
            UID,
            "20300115T100000Z",
            "20300115T110000Z",
            organiser=ALICE,
            attendees=(),
            dtstamp="20300101T110000Z",
            extra=f"RECURRENCE-ID:20300115T100000Z\nATTENDEE;PARTSTAT=DECLINED:mailto:{BOB}",
        ),
        "REPLY",
        BOB,
    )
    agent.outgoing(reply, BOB)
    agent.person(reply, ALICE)
    exported = agent.exported(ALICE)
    overrides = [e for e in exported.walk("VEVENT") if "RECURRENCE-ID" in e]
    assert len(overrides) == 1
    bob = next(a for a in overrides[0]["ATTENDEE"] if BOB in str(a))
    assert bob.params["PARTSTAT"] == "DECLINED"
    assert partstats(exported)[BOB] == "ACCEPTED"
    busy = freebusy(agent, BOB)
    assert "20300108T100000Z" in busy and "20300115T100000Z" not in busy


def test_instance_update_keeps_the_series(agent: Agent) -> None:
    weekly = dict(EVENT, extra="RRULE:FREQ=WEEKLY;COUNT=4")
    agent.person(msg(vevent(**weekly), "REQUEST", ALICE), BOB)
    moved = vevent(
        UID,
        "20300115T140000Z",
        "20300115T150000Z",
        organiser=ALICE,
        attendees=(ALICE, BOB),
        sequence=1,
        dtstamp="20300101T100000Z",
        extra="RECURRENCE-ID:20300115T100000Z",
    )
    assert agent.person(msg(moved, "REQUEST", ALICE), BOB).code == 0
    busy = freebusy(agent, BOB)
    for start in ("20300108T100000Z", "20300115T140000Z", "20300122T100000Z"):
        assert start in busy
    assert "20300115T100000Z" not in busy
    assert len(agent.exported(BOB).walk("VEVENT")) == 2


def test_instance_cancel_and_whole_cancel(agent: Agent) -> None:
    weekly = dict(EVENT, extra="RRULE:FREQ=WEEKLY;COUNT=4")
    agent.person(msg(vevent(**weekly), "REQUEST", ALICE), BOB)
    one = vevent(
        UID,
        "20300122T100000Z",
        "20300122T110000Z",
        organiser=ALICE,
        attendees=(BOB,),
        sequence=1,
        dtstamp="20300101T100000Z",
        extra="RECURRENCE-ID:20300122T100000Z\nSTATUS:CANCELLED",
    )
    run = agent.person(msg(one, "CANCEL", ALICE), BOB)
    assert run.code == 0
    assert "20300122T100000Z" not in freebusy(agent, BOB)
    assert "20300129T100000Z" in freebusy(agent, BOB)
    whole = vevent(**weekly, sequence=2, dtstamp="20300101T110000Z")
    agent.person(msg(whole + "", "CANCEL", ALICE), BOB)
    assert uids(agent.exported(BOB)) == []
    assert "CANCEL" in {kind for _, _, kind in agent.requests(BOB)}


def test_removing_one_attendee(agent: Agent) -> None:
    invite(agent)
    removal = vevent(
        UID, organiser=ALICE, attendees=(CAROL,), sequence=1, dtstamp="20300101T100000Z"
    )
    cancel = msg(removal, "CANCEL", ALICE)
    assert agent.outgoing(cancel, ALICE).code == 0
    assert set(partstats(agent.exported(ALICE))) == {ALICE, BOB}
    run = agent.person(cancel, CAROL, args=())
    assert run.code == 0
    assert uids(agent.exported(CAROL)) == []
    assert uids(agent.exported(BOB)) == [UID]


def test_counter_and_declinecounter(agent: Agent) -> None:
    invite(agent)
    agent.set_pref(BOB, "freebusy_offers", "PT1H")
    counter = msg(
        vevent(
            UID,
            "20300109T100000Z",
            "20300109T110000Z",
            organiser=ALICE,
            attendees=(),
            dtstamp="20300101T100000Z",
            extra=f"ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{BOB}",
        ),
        "COUNTER",
        BOB,
    )
    assert agent.outgoing(counter, BOB).code == 0
    offers = list((agent.root / "store").glob("mailto:bob*/freebusy-offers"))
    assert offers and "20300109T100000Z" in offers[0].read_text()
    run = agent.person(counter, ALICE)
    assert run.code == 0
    assert (UID, "", "COUNTER") in agent.requests(ALICE)
    assert list((agent.root / "store").glob("mailto:alice*/counters/objects/*/*"))
    decline = msg(
        vevent(UID, organiser=ALICE, attendees=(BOB,), dtstamp="20300101T110000Z"),
        "DECLINECOUNTER",
        ALICE,
    )
    agent.outgoing(decline, ALICE)
    assert not list((agent.root / "store").glob("mailto:alice*/counters/objects/*/*"))
    agent.person(decline, BOB)
    assert not list((agent.root / "store").glob("mailto:bob*/freebusy-offers"))


def test_delegation(agent: Agent) -> None:
    invite(agent)
    # Carol delegates to Dave (§4.2.5): her REPLY names both.
    reply = msg(
        vevent(
            UID,
            organiser=ALICE,
            attendees=(),
            dtstamp="20300101T100000Z",
            extra=f'ATTENDEE;PARTSTAT=DELEGATED;DELEGATED-TO="mailto:{DAVE}"'
            f":mailto:{CAROL}\nATTENDEE;PARTSTAT=NEEDS-ACTION;"
            f'DELEGATED-FROM="mailto:{CAROL}":mailto:{DAVE}',
        ),
        "REPLY",
        CAROL,
    )
    agent.outgoing(reply, CAROL)
    agent.person(reply, ALICE)
    states = partstats(agent.exported(ALICE))
    assert states[CAROL] == "DELEGATED" and states[DAVE] == "NEEDS-ACTION"
    # Carol forwards the request to Dave (§4.2.5), who records it.
    forwarded = vevent(
        UID,
        organiser=ALICE,
        attendees=(ALICE, BOB, CAROL),
        extra=f'ATTENDEE;PARTSTAT=NEEDS-ACTION;DELEGATED-FROM="mailto:{CAROL}":mailto:{DAVE}',
    )
    assert agent.person(msg(forwarded, "REQUEST", CAROL), DAVE).code == 0
    assert uids(agent.exported(DAVE)) == [UID]
    answer(agent, DAVE, "ACCEPTED", extra=f';DELEGATED-FROM="mailto:{CAROL}"')
    assert partstats(agent.exported(ALICE))[DAVE] == "ACCEPTED"


def test_refresh_is_answered_when_configured(agent: Agent) -> None:
    invite(agent)
    refresh = msg(
        vevent(UID, organiser=ALICE, attendees=(BOB,), dtstamp="20300102T000000Z"), "REFRESH", BOB
    )
    run = agent.person(refresh, ALICE)
    assert run.code == 0 and run.generated() == []
    assert (UID, "", "REFRESH") in agent.requests(ALICE)
    agent.set_pref(ALICE, "event_refreshing", "always")
    run = agent.person(refresh, ALICE)
    assert len(run.generated()) == 1 and run.generated()[0]["To"] == BOB
    assert str(run.replies()[0]["METHOD"]) == "REQUEST"


def test_add_per_preference(agent: Agent) -> None:
    weekly = dict(EVENT, extra="RRULE:FREQ=WEEKLY;COUNT=2")
    agent.person(msg(vevent(**weekly), "REQUEST", ALICE), BOB)
    add = msg(
        vevent(
            UID,
            "20300301T100000Z",
            "20300301T110000Z",
            organiser=ALICE,
            attendees=(BOB,),
            sequence=1,
            dtstamp="20300101T100000Z",
        ),
        "ADD",
        ALICE,
    )
    run = agent.person(add, BOB)
    assert [str(c["METHOD"]) for c in run.replies()] == ["REFRESH"]
    agent.set_pref(BOB, "add_method_response", "add")
    run = agent.person(add, BOB)
    assert run.generated() == []
    result = agent.admin("freebusy", BOB, "--start", "20300301", "--end", "20300302")
    assert "20300301T100000Z" in result.stdout


def test_publish_is_recorded_without_reply(agent: Agent) -> None:
    event = vevent("pub-1", organiser=DAVE, attendees=())
    run = agent.person(msg(event, "PUBLISH", DAVE), BOB)
    assert run.code == 0 and run.generated() == [] and len(run.delivered()) == 1
    assert uids(agent.exported(BOB)) == ["pub-1"]


def test_freebusy_request_answered_only_when_shared(agent: Agent) -> None:
    invite(agent)
    request = imip_message(
        calendar_text(f"""BEGIN:VFREEBUSY
UID:fb-1
DTSTAMP:20300101T000000Z
DTSTART:20300107T000000Z
DTEND:20300114T000000Z
ORGANIZER:mailto:{DAVE}
ATTENDEE:mailto:{BOB}
END:VFREEBUSY"""),
        sender=DAVE,
    )
    run = agent.person(request, BOB)
    assert run.code == 0 and run.generated() == [] and len(run.delivered()) == 1
    agent.set_pref(BOB, "freebusy_sharing", "share")
    run = agent.person(request, BOB)
    assert len(run.generated()) == 1
    text = run.replies()[0].to_ical().decode().replace("\r\n ", "")
    assert "20300108T100000Z/20300108T110000Z" in text
    # Dave receives Bob's answer: kept as Bob's free/busy, never as Dave's own.
    answer = run.files[run.sent.index(run.generated()[0])]
    assert agent.person(answer, DAVE).code == 0
    kept = list((agent.root / "store").glob("mailto:dave*/freebusy-other/mailto:bob*"))
    assert len(kept) == 1 and "20300108T100000Z" in kept[0].read_text()
    assert "20300108T100000Z" not in freebusy(agent, DAVE)


def test_participating_no_passes_the_message_through(agent: Agent) -> None:
    agent.set_pref(BOB, "participating", "no")
    request = msg(vevent(**EVENT), "REQUEST", ALICE)
    run = agent.person(request, BOB)
    assert run.code == 0 and [m["Message-ID"] for m in run.delivered()] == ["<m@example.com>"]
    assert uids(agent.exported(BOB)) == []


def test_incoming_summaries(agent: Agent) -> None:
    request = msg(vevent(**EVENT), "REQUEST", ALICE)
    agent.set_pref(BOB, "incoming", "summary-then-message")
    run = agent.person(request, BOB)
    subjects = [m["Subject"] for m in run.delivered()]
    assert subjects[0].startswith("Calendar summary") and subjects[1] == "Invitation"
    assert "alice@example.com invites you" in run.delivered()[0].get_body(("plain",)).get_content()
    agent.set_pref(CAROL, "incoming", "summary-wraps-message")
    agent.set_pref(CAROL, "LANG", "de")
    run = agent.person(request, CAROL)
    [wrapped] = run.delivered()
    assert wrapped["Subject"].startswith("Kalender")
    attached = [p for p in wrapped.walk() if p.get_content_type() == "message/rfc822"]
    assert len(attached) == 1


def test_broken_calendar_is_still_delivered(agent: Agent) -> None:
    broken = imip_message("BEGIN:VCALENDAR\r\nnot a calendar\r\n", sender=ALICE)
    run = agent.person(broken, BOB)
    assert run.code == 0 and len(run.delivered()) == 1


def test_delivery_failure_is_75_and_the_retry_records_nothing_twice(agent: Agent) -> None:
    deliveries = agent.root / "delivered"
    sendmail = agent.root / "sendmail"
    sendmail.write_text(f"#!/bin/sh\n[ -e {agent.root}/down ] && exit 75\ncat >> {deliveries}\n")
    sendmail.chmod(0o755)
    (agent.root / "down").touch()
    request = msg(vevent(**EVENT), "REQUEST", ALICE)
    argv = [
        str(BIN / "imip-person"),
        *agent.store_options,
        "--now",
        agent.now,
        "-o",
        BOB,
        "-s",
        ALICE,
        "--sendmail",
        str(sendmail),
    ]
    failed = subprocess.run(argv, input=request, capture_output=True, check=False)
    assert failed.returncode == 75 and failed.stdout.startswith(b"4.")
    (agent.root / "down").unlink()
    retried = subprocess.run(argv, input=request, capture_output=True, check=False)
    assert retried.returncode == 0
    assert deliveries.read_bytes().count(b"Message-ID: <m@example.com>") == 1
    assert agent.requests(BOB) == [(UID, "", "REQUEST")]


def test_freebusy_publishing_writes_an_ifb_file(agent: Agent) -> None:
    agent.set_pref(BOB, "freebusy_publishing", "publish")
    agent.person(msg(vevent(**EVENT), "REQUEST", ALICE), BOB)
    published = agent.root / "published" / "mailto%3Abob%40example.com.ifb"
    assert published.exists()
    calendar = Calendar.from_ical(published.read_text())
    assert "20300108T100000Z" in calendar.to_ical().decode()


def test_freebusy_bundling_attaches_our_freebusy(agent: Agent) -> None:
    invite(agent)
    agent.set_pref(BOB, "freebusy_sharing", "share")
    agent.set_pref(BOB, "freebusy_bundling", "always")
    request = imip_message(
        calendar_text(f"""BEGIN:VFREEBUSY
UID:fb-2
DTSTAMP:20300101T000000Z
DTSTART:20300107T000000Z
DTEND:20300114T000000Z
ORGANIZER:mailto:{DAVE}
ATTENDEE:mailto:{BOB}
END:VFREEBUSY"""),
        sender=DAVE,
    )
    [sent] = agent.person(request, BOB).generated()
    calendars = [p for p in sent.walk() if p.get_content_type() == "text/calendar"]
    assert [p.get_param("method") for p in calendars] == ["REPLY", "PUBLISH"]
    bundled = Calendar.from_ical(calendars[1].get_payload(decode=True))
    assert str(bundled.walk("VFREEBUSY")[0]["ORGANIZER"]) == f"mailto:{BOB}"


def test_organiser_replacement(agent: Agent) -> None:
    agent.person(msg(vevent(**EVENT), "REQUEST", ALICE), BOB)
    takeover = vevent(
        UID,
        organiser=CAROL,
        attendees=(ALICE, BOB, CAROL),
        sequence=1,
        dtstamp="20300101T100000Z",
        summary="Carol's now",
    )
    agent.set_pref(BOB, "organiser_replacement", "never")
    agent.person(msg(takeover, "REQUEST", CAROL), BOB)
    assert str(agent.exported(BOB).walk("VEVENT")[0]["ORGANIZER"]) == f"mailto:{ALICE}"
    agent.set_pref(BOB, "organiser_replacement", "attendee")
    stranger = takeover.replace(f"ORGANIZER:mailto:{CAROL}", "ORGANIZER:mailto:eve@example.com")
    agent.person(msg(stranger, "REQUEST", "eve@example.com"), BOB)
    assert str(agent.exported(BOB).walk("VEVENT")[0]["ORGANIZER"]) == f"mailto:{ALICE}"
    agent.person(msg(takeover, "REQUEST", CAROL), BOB)
    assert str(agent.exported(BOB).walk("VEVENT")[0]["ORGANIZER"]) == f"mailto:{CAROL}"


def test_this_and_future_request_moves_the_rest_of_the_series(agent: Agent) -> None:
    weekly = dict(EVENT, extra="RRULE:FREQ=WEEKLY;COUNT=4")
    agent.person(msg(vevent(**weekly), "REQUEST", ALICE), BOB)
    later = vevent(
        UID,
        "20300122T140000Z",
        "20300122T150000Z",
        organiser=ALICE,
        attendees=(ALICE, BOB),
        sequence=1,
        dtstamp="20300101T100000Z",
        extra="RECURRENCE-ID;RANGE=THISANDFUTURE:20300122T100000Z",
    )
    assert agent.person(msg(later, "REQUEST", ALICE), BOB).code == 0
    busy = freebusy(agent, BOB)
    for start in ("20300108T100000Z", "20300115T100000Z", "20300122T140000Z", "20300129T140000Z"):
        assert start in busy
    assert "20300129T100000Z" not in busy


def test_freebusy_messages_notify_in_the_summary(agent: Agent) -> None:
    agent.set_pref(BOB, "freebusy_messages", "notify")
    agent.set_pref(BOB, "incoming", "summary-only")
    published = imip_message(
        calendar_text(
            f"""BEGIN:VFREEBUSY
UID:fb-3
DTSTAMP:20300101T000000Z
DTSTART:20300107T000000Z
DTEND:20300114T000000Z
ORGANIZER:mailto:{DAVE}
FREEBUSY:20300108T100000Z/20300108T110000Z
END:VFREEBUSY""",
            method="PUBLISH",
        ),
        sender=DAVE,
        method="PUBLISH",
    )
    [summary] = agent.person(published, BOB).delivered()
    assert f"Free/busy information of {DAVE}" in summary.get_body(("plain",)).get_content()
    others = list((agent.root / "store").glob("mailto:bob*/freebusy-other/*"))
    assert len(others) == 1


def test_event_limits_bound_what_a_person_records(agent: Agent) -> None:
    agent.set_pref(BOB, "max_instances", "50")
    bomb = vevent(
        UID,
        "20300108T100000Z",
        "20300108T100100Z",
        organiser=ALICE,
        attendees=(BOB,),
        extra="RRULE:FREQ=MINUTELY",
    )
    run = agent.person(msg(bomb, "REQUEST", ALICE), BOB)
    assert run.code == 0 and len(run.delivered()) == 1
    from datetime import UTC, datetime

    store = agent.site().store
    start, end = datetime(2029, 1, 1, tzinfo=UTC), datetime(2032, 1, 1, tzinfo=UTC)
    assert 0 < len(store.get_freebusy(f"mailto:{BOB}", start, end)) <= 50
