"""Counter-proposals and delegation from the requests page, end to end
over a real site: alice (invited by bob) proposes another time or
delegates; bob (organising) accepts or declines the proposal; each
message is read by icalendar and vobject and piped through the agents on
the other side (RFC 5546 §3.2.2.3, §3.2.7, §3.2.8)."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import vobject
from flask.testing import FlaskClient

from imiptools.dates import parse_datetime
from tests.manager.support import (
    ALICE,
    BOB,
    NOW,
    UID,
    calendar_of,
    invitation,
    invited,
    manager,
    sent_messages,
    token_in,
)
from tests.support import Agent, calendar_text, imip_message, vevent

AS_ALICE = {"REMOTE_USER": ALICE}
AS_BOB = {"REMOTE_USER": BOB}
CAROL = "carol@example.com"


def organised(root: Path) -> Agent:
    """alice invited by bob, whose own store holds the event too (as his
    copy through imip-person-outgoing recorded it)."""
    agent = invited(root)
    assert agent.outgoing(invitation(), BOB).code == 0
    return agent


def post(client: FlaskClient, path: str, who: dict[str, str], **form: str) -> str:
    """POST ``form`` with the page's token as ``who``; the page it leads to."""
    page = client.get(f"/calendar/{who['REMOTE_USER']}/requests", environ_base=who)
    form["csrf_token"] = token_in(page.get_data(as_text=True))
    done = client.post(path, data=form, environ_base=who)
    assert done.status_code == 302, done.status_code
    shown = client.get(done.headers["Location"], environ_base=who)
    return shown.get_data(as_text=True)


def proposed(agent: Agent, root: Path, rid: str, start: str, end: str) -> EmailMessage:
    """alice proposes ``start``-``end`` for the series or instance ``rid``
    from the manager; her COUNTER reaches bob through imip-person."""
    alice = manager(agent, root / "sent").test_client()
    form = {"uid": UID, "recurrence_id": rid, "start": start, "end": end}
    post(alice, f"/calendar/{ALICE}/requests/propose", AS_ALICE, **form)
    (counter,) = sent_messages(root / "sent")
    assert agent.person(counter.as_bytes(), BOB).code == 0
    return counter


def readable(message: EmailMessage, method: str) -> vobject.base.Component:
    """The calendar of ``message``, checked by both parsers."""
    data, calendar = calendar_of(message)
    assert str(calendar["METHOD"]) == method
    return vobject.readOne(data.decode())


def test_alice_proposes_and_bob_accepts(tmp_path: Path) -> None:
    agent = organised(tmp_path)
    agent.set_pref(ALICE, "freebusy_offers", "P1D")
    sent = tmp_path / "sent"
    alice = manager(agent, sent).test_client()
    page = post(
        alice,
        f"/calendar/{ALICE}/requests/propose",
        AS_ALICE,
        uid=UID,
        recurrence_id="",
        start="2030-01-09T14:00",
        end="2030-01-09T15:00",
        comment="Wednesdays suit me",
    )
    assert f"Your proposal was sent to {BOB}." in page
    (counter,) = sent_messages(sent)
    parsed = readable(counter, "COUNTER")
    assert parsed.vevent.dtstart.value.isoformat().startswith("2030-01-09T14:00")
    assert "FREQ=WEEKLY" in parsed.vevent.rrule.value
    records = agent.site().records(f"mailto:{ALICE}", parse_datetime(NOW))
    assert records.offers(), "the proposed time is held (freebusy_offers)"

    assert agent.person(counter.as_bytes(), BOB).code == 0
    assert (UID, "", "COUNTER") in agent.requests(BOB)
    bob = manager(agent, tmp_path / "sent-bob").test_client()
    shown = bob.get(f"/calendar/{BOB}/requests", environ_base=AS_BOB).get_data(as_text=True)
    assert f"{ALICE} proposes Wednesday 09 January 2030 14:00 to 15:00." in shown
    assert "Wednesdays suit me" in shown
    assert "Free then, as far as is known: the organiser and every attendee." in shown

    page = post(
        bob, f"/calendar/{BOB}/requests/proposal", AS_BOB, uid=UID, attendee=ALICE, action="accept"
    )
    assert "The event moves to the time" in page
    (update,) = sent_messages(tmp_path / "sent-bob")
    moved = readable(update, "REQUEST")
    assert moved.vevent.dtstart.value.isoformat().startswith("2030-01-09T14:00")
    assert int(moved.vevent.sequence.value) == 1
    assert agent.requests(BOB) == [], "the proposal is answered"
    assert agent.site().store.get_counters(f"mailto:{BOB}", UID) == {}
    assert agent.person(update.as_bytes(), ALICE).code == 0


def test_bob_declines_a_proposal(tmp_path: Path) -> None:
    agent = organised(tmp_path)
    counter = proposed(agent, tmp_path, "20300115T100000Z", "2030-01-15T16:00", "2030-01-15T17:00")
    assert "RECURRENCE-ID" in str(readable(counter, "COUNTER").vevent.contents).upper()
    review = vevent(
        "review@example.com", "20300115T160000Z", "20300115T163000Z", organiser=BOB, attendees=()
    )
    assert agent.outgoing(imip_message(calendar_text(review), sender=BOB, to=BOB), BOB).code == 0
    bob = manager(agent, tmp_path / "sent-bob").test_client()
    shown = bob.get(f"/calendar/{BOB}/requests", environ_base=AS_BOB).get_data(as_text=True)
    assert "(one instance)" in shown and 'value="accept"' not in shown
    assert f"Busy then: {BOB}." in shown
    page = post(
        bob,
        f"/calendar/{BOB}/requests/proposal",
        AS_BOB,
        uid=UID,
        attendee=ALICE,
        action="decline",
        comment="Not that day",
    )
    assert f"The proposal of {ALICE} is declined." in page
    (declined,) = sent_messages(tmp_path / "sent-bob")
    assert declined["To"] == ALICE
    readable(declined, "DECLINECOUNTER")
    assert agent.requests(BOB) == []
    assert agent.person(declined.as_bytes(), ALICE).code == 0


def test_alice_delegates_to_carol(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    alice = manager(agent, tmp_path / "sent").test_client()
    page = post(
        alice,
        f"/calendar/{ALICE}/requests",
        AS_ALICE,
        uid=UID,
        recurrence_id="",
        partstat="DELEGATED",
        delegate_to=CAROL,
        comment="Carol knows more",
    )
    assert f"Your answer was sent to {BOB}." in page
    reply, forwarded = sent_messages(tmp_path / "sent")
    if reply["To"] != BOB:
        reply, forwarded = forwarded, reply
    answer = readable(reply, "REPLY").vevent
    assert answer.attendee.params["PARTSTAT"] == ["DELEGATED"]
    assert answer.attendee.params["DELEGATED-TO"] == [f"mailto:{CAROL}"]
    assert forwarded["To"] == CAROL
    invitation = readable(forwarded, "REQUEST").vevent
    delegates = [a for a in invitation.attendee_list if a.value.lower() == f"mailto:{CAROL}"]
    assert delegates and delegates[0].params["DELEGATED-FROM"] == [f"mailto:{ALICE}"]
    assert agent.requests(ALICE) == []
    assert agent.person(forwarded.as_bytes(), CAROL).code == 0
    assert (UID, "", "REQUEST") in agent.requests(CAROL)


def test_a_bad_proposal_or_delegation_is_said_not_sent(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    alice = manager(agent, tmp_path / "sent").test_client()
    page = post(alice, f"/calendar/{ALICE}/requests/propose", AS_ALICE, uid=UID, start="", end="")
    assert "Not proposed: give a start and an end." in page
    page = post(
        alice,
        f"/calendar/{ALICE}/requests/propose",
        AS_ALICE,
        uid=UID,
        start="2030-01-09T15:00",
        end="2030-01-09T14:00",
    )
    assert "Not done: a proposal needs a start and a later end" in page
    page = post(alice, f"/calendar/{ALICE}/requests", AS_ALICE, uid=UID, partstat="DELEGATED")
    assert "names a delegate" in page
    assert sent_messages(tmp_path / "sent") == []


def test_proposals_need_the_token_and_ones_own_calendar(tmp_path: Path) -> None:
    agent = organised(tmp_path)
    client = manager(agent, tmp_path / "sent").test_client()
    for path in ("propose", "proposal"):
        bare = client.post(f"/calendar/{ALICE}/requests/{path}", data={}, environ_base=AS_ALICE)
        assert bare.status_code == 403
    page = client.get(f"/calendar/{ALICE}/requests", environ_base=AS_ALICE)
    token = token_in(page.get_data(as_text=True))
    other = client.post(
        f"/calendar/{BOB}/requests/proposal",
        data={"csrf_token": token, "uid": UID, "attendee": ALICE, "action": "accept"},
        environ_base=AS_ALICE,
    )
    assert other.status_code == 403
    assert sent_messages(tmp_path / "sent") == []


def test_find_a_time_offers_the_proposals_received(tmp_path: Path) -> None:
    agent = organised(tmp_path)
    proposed(agent, tmp_path, "", "2030-01-09T14:00", "2030-01-09T15:00")
    bob = manager(agent, tmp_path / "sent-bob").test_client()
    query = {"people": ALICE, "duration": "60", "from": "2030-01-09", "days": "2"}
    page = bob.get(f"/calendar/{BOB}/find-time", query_string=query, environ_base=AS_BOB)
    text = page.get_data(as_text=True)
    assert "Proposals received" in text
    assert f"{ALICE} proposes Wed 09 Jan 14:00 to 15:00 for" in text
    assert "everyone free then." in text
