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


# -- items 4 and 5: what a REPLY may touch ------------------------------------------

ALICE = "alice@example.com"
SERIES = "series-with-override@example.com"


def organiser(tmp_path: Path) -> Agent:
    """Alice's store holding her series with one moved occurrence."""
    agent = Agent(tmp_path, now=NOW)
    request = fixture_message("series-with-override.ics", ALICE, sender=ALICE)
    assert agent.outgoing(request, ALICE).code == 0
    return agent


def reply(agent: Agent, name: str, sender: str = BOB) -> str:
    """Alice receives the REPLY ``name`` from ``sender``; the agent's log."""
    log = agent.root / f"{name}.{agent.runs}.log"
    message = fixture_message(name, ALICE, sender=sender, method="REPLY")
    assert agent.person(message, ALICE, args=("--log", str(log))).code == 0
    return log.read_text()


def answers(calendar: Calendar, who: str) -> dict[str, str]:
    """RECURRENCE-ID ('' for the series) -> ``who``'s PARTSTAT, as stored."""
    found = {}
    for event in calendar.walk("VEVENT"):
        rid = event.get("RECURRENCE-ID")
        key = rid.dt.strftime("%Y%m%dT%H%M%SZ") if rid is not None else ""
        for attendee in event.get("ATTENDEE", []):
            if who in str(attendee).lower():
                found[key] = str(attendee.params.get("PARTSTAT", "NEEDS-ACTION"))
    return found


def test_a_reply_cannot_invent_an_occurrence(tmp_path: Path) -> None:
    agent = organiser(tmp_path)
    log = reply(agent, "reply-from-a-shorter-series.ics")
    exported = agent.exported(ALICE)
    assert "20300111T100000Z" not in answers(exported, BOB)
    assert starts(exported, SERIES) == ["20300108T100000Z", "20300109T100000Z", "20300110T140000Z"]
    assert "rid=20300111T100000Z outcome=ignored code=no-instance" in log
    other = agent.admin("freebusy", ALICE).stdout  # Bob's busy time is not Alice's
    assert "20300111" not in other


def test_a_series_answer_reaches_only_overrides_within_the_attendees_series(
    tmp_path: Path,
) -> None:
    """CalendarServer's rule (test_processReply 1.4, 1.5): Bob's copy holds
    two days, so his answer does not cover the moved third one."""
    agent = organiser(tmp_path)
    reply(agent, "reply-from-a-shorter-series.ics")
    assert answers(agent.exported(ALICE), BOB) == {
        "": "ACCEPTED",
        "20300110T100000Z": "NEEDS-ACTION",
    }
    agent = organiser(tmp_path / "full")
    reply(agent, "reply-accepting-the-series.ics")
    assert answers(agent.exported(ALICE), BOB) == {"": "ACCEPTED", "20300110T100000Z": "ACCEPTED"}


def test_a_reply_that_changes_nothing_records_nothing(tmp_path: Path) -> None:
    agent = organiser(tmp_path)
    reply(agent, "reply-accepting-the-series.ics")
    user = next((agent.root / "store").glob("mailto:alice*"))
    written = {p: p.stat().st_mtime_ns for p in user.rglob("*") if p.is_file()}
    log = reply(agent, "reply-accepting-the-series.ics")
    assert "outcome=unchanged code=reply" in log and "outcome=merged" not in log
    # what its transaction writes besides: the decision's line and the commit
    # record (.txn, written in place and emptied again)
    bookkeeping = ("decisions.log", ".txn")
    changed = [p for p in user.rglob("*") if p.is_file() and p.name not in bookkeeping]
    assert {p: p.stat().st_mtime_ns for p in changed} == {
        p: t for p, t in written.items() if p.name not in bookkeeping
    }
    assert not (user / ".txn").read_bytes()


def test_a_party_crasher_is_ignored_unless_uninvited_replies_add(tmp_path: Path) -> None:
    agent = organiser(tmp_path)
    crasher = "crasher@example.org"
    log = reply(agent, "reply-from-a-party-crasher.ics", sender=crasher)
    assert answers(agent.exported(ALICE), crasher) == {}
    assert "outcome=ignored code=uninvited" in log
    agent.set_pref(ALICE, "uninvited_replies", "add")
    log = reply(agent, "reply-from-a-party-crasher.ics", sender=crasher)
    assert answers(agent.exported(ALICE), crasher)[""] == "ACCEPTED"
    assert "outcome=added code=uninvited" in log


# -- item 6: an update that changes only details keeps the attendee's answer -----

WEEKLY = "weekly-1on1@example.com"


def accepted(tmp_path: Path) -> Agent:
    """Bob's store: Alice's weekly invitation, which Bob accepted."""
    agent = Agent(tmp_path, now=NOW)
    invitation = fixture_message("weekly-invitation.ics", BOB, sender=ALICE)
    assert agent.person(invitation, BOB).code == 0
    acceptance = fixture_message("weekly-accepted.ics", ALICE, sender=BOB, method="REPLY")
    assert agent.outgoing(acceptance, BOB).code == 0
    assert answers(agent.exported(BOB), BOB) == {"": "ACCEPTED"}
    return agent


def update(agent: Agent, name: str) -> None:
    assert agent.person(fixture_message(name, BOB, sender=ALICE), BOB).code == 0
    assert (WEEKLY, "", "REQUEST") in agent.requests(BOB)  # queued in every case


def test_an_update_of_details_only_keeps_the_attendees_answer(tmp_path: Path) -> None:
    agent = accepted(tmp_path)
    update(agent, "weekly-new-title.ics")
    assert answers(agent.exported(BOB), BOB) == {"": "ACCEPTED"}
    busy = agent.admin("freebusy", BOB, "--start", "20300101", "--end", "20300201").stdout
    assert "BUSY-TENTATIVE" not in busy


def test_answer_after_update_reset_asks_again_for_every_update(tmp_path: Path) -> None:
    agent = accepted(tmp_path)
    agent.set_pref(BOB, "answer_after_update", "reset")
    update(agent, "weekly-new-title.ics")
    assert answers(agent.exported(BOB), BOB) == {"": "NEEDS-ACTION"}


def test_a_rescheduling_update_asks_again(tmp_path: Path) -> None:
    for name in ("weekly-moved.ics", "weekly-sequence-raised.ics"):
        agent = accepted(tmp_path / name)
        update(agent, name)
        assert answers(agent.exported(BOB), BOB) == {"": "NEEDS-ACTION"}, name
