"""Forged answers: a REPLY changes only what its sender may answer for.

Issue 11 item 5: SENT-BY was taken from the REPLY itself, so anyone could
answer for any attendee; an attendee could set another attendee's answer by
claiming a delegation; a stranger could add attendees with DELEGATED-FROM.
RFC 5546 §3.2.3 (a REPLY carries the sender's own answer), §3.2.2.3 and
§4.2.5 (delegation), §2.1.1 (uninvited attendees are the organiser's call),
RFC 6047 §3 (the sender must be the attendee or a SENT-BY the organiser's
event allows). The messages are files under ``tests/fixtures/forgery/``.
"""

from __future__ import annotations

from pathlib import Path

from icalendar import Calendar

from tests.support import Agent, imip_message

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "forgery"
ALICE = "alice@example.com"
UID = "budget-review-2030@example.com"


def organised(tmp_path: Path) -> Agent:
    """Alice's store holding her invitation, as imip-person-outgoing records it."""
    agent = Agent(tmp_path)
    invitation = imip_message((FIXTURES / "invitation.ics").read_text(), sender=ALICE, to=ALICE)
    assert agent.outgoing(invitation, ALICE).code == 0
    return agent


def receive(agent: Agent, name: str) -> str:
    """Alice receives the fixture ``name`` (envelope sender = its From); the log."""
    log = agent.root / f"{name}.log"
    run = agent.person((FIXTURES / name).read_bytes(), ALICE, args=("--log", str(log)))
    assert run.code == 0 and len(run.delivered()) == 1
    return log.read_text()


def partstats(calendar: Calendar) -> dict[str, str]:
    (event,) = [e for e in calendar.walk("VEVENT") if str(e["UID"]) == UID]
    return {
        str(a).lower().removeprefix("mailto:"): str(a.params.get("PARTSTAT", "NEEDS-ACTION"))
        for a in event["ATTENDEE"]
    }


def test_sent_by_is_taken_from_the_stored_event(tmp_path: Path) -> None:
    agent = organised(tmp_path)
    log = receive(agent, "sent-by-claimed-in-reply.eml")
    assert partstats(agent.exported(ALICE))["bob@example.com"] == "NEEDS-ACTION"
    assert "outcome=refused code=not-attendee" in log
    assert not list((agent.root / "store").glob("mailto:alice*/freebusy-other/*"))


def test_the_stored_sent_by_may_answer_for_its_attendee(tmp_path: Path) -> None:
    agent = organised(tmp_path)
    receive(agent, "assistant-answers-for-dave.eml")
    assert partstats(agent.exported(ALICE))["dave@example.com"] == "ACCEPTED"


def test_a_delegation_claim_cannot_answer_for_an_existing_attendee(tmp_path: Path) -> None:
    agent = organised(tmp_path)
    log = receive(agent, "delegation-claimed-over-an-attendee.eml")
    states = partstats(agent.exported(ALICE))
    assert states["bob@example.com"] == "NEEDS-ACTION"
    assert states["carol@example.com"] == "DELEGATED"
    assert "may not answer for ['bob@example.com']" in log


def test_delegated_from_does_not_let_a_stranger_in(tmp_path: Path) -> None:
    agent = organised(tmp_path)
    log = receive(agent, "delegated-from-claimed-by-a-stranger.eml")
    states = partstats(agent.exported(ALICE))
    assert "mallory@evil.example" not in states
    assert states["bob@example.com"] == "NEEDS-ACTION"
    assert "code=not-delegated" in log and "outcome=ignored code=uninvited" in log


def test_a_delegator_adds_its_delegate_but_cannot_answer_for_it(tmp_path: Path) -> None:
    agent = organised(tmp_path)
    receive(agent, "delegator-names-a-new-delegate.eml")
    states = partstats(agent.exported(ALICE))
    assert states["carol@example.com"] == "DELEGATED"
    assert states["eve@example.com"] == "NEEDS-ACTION"
