"""What a run returns: for each recipient and object, what was decided and
why, what changed in the store and the quota ledger, and what was sent.

A library caller (a future LMTP service or JSON interface) runs
:func:`imiptools.agent.run` in process over a real file site and reads the
outcomes, without parsing logs or mail.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from imiptools import agent
from imiptools.config import Settings
from imiptools.dates import FixedClock
from imiptools.errors import ExitCode
from imiptools.handlers.common import Envelope
from imiptools.handlers.outgoing import OutgoingHandler
from imiptools.handlers.person import PersonHandler
from imiptools.handlers.resource import ResourceHandler
from imiptools.mail.parse import parse_message
from imiptools.outcomes import ObjectOutcome
from imiptools.quota.limits import QuotaBooking
from imiptools.site import Site, open_site
from tests.support import ROOM, Agent, calendar_text, imip_message, vevent

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
ROOM_URI = f"mailto:{ROOM}"
ALICE = "alice@example.com"
BOB = "bob@example.com"


@dataclass
class Sent:
    """A sender that keeps what it is given."""

    messages: list[tuple[list[str], bytes]] = field(default_factory=list)

    def send(self, envelope_from: str, recipients: Sequence[str], message: bytes) -> None:
        self.messages.append((list(recipients), message))

    def message_ids(self) -> list[str]:
        return [parse_message(data, headers_only=True).message_id for _, data in self.messages]


@pytest.fixture
def site(tmp_path: Path) -> Site:
    settings = Settings(
        store=str(tmp_path / "store"),
        preferences=str(tmp_path / "prefs"),
        journal=str(tmp_path / "journal"),
    )
    return open_site(settings, FixedClock(NOW))


def run(
    site: Site,
    message: bytes,
    recipient: str = ROOM,
    sender: str = ALICE,
    factory: agent.HandlerFactory = ResourceHandler,
    sent: Sent | None = None,
    mailbox: Sent | None = None,
) -> agent.Result:
    """One run as a library caller makes it (a person's mail goes to ``mailbox``)."""
    ctx = agent.Context(
        settings=site.settings,
        store=site.store,
        preferences=site.preferences,
        clock=site.clock,
        sender=sent if sent is not None else Sent(),
        spool=site.outbox,
        ledger=site.ledger,
        deliverer=mailbox,
    )
    return agent.run(message, [Envelope(recipient, sender)], ctx, factory)


def only_object(result: agent.Result) -> ObjectOutcome:
    [recipient] = result.recipients
    [outcome] = recipient.objects
    return outcome


def test_a_request_for_a_room_says_accepted_why_what_was_written_and_sent(site: Site) -> None:
    sent = Sent()
    result = run(site, imip_message(calendar_text(vevent("a"))), sent=sent)
    assert (result.code, result.recipients[0].user) == (ExitCode.OK, ROOM_URI)
    outcome = only_object(result)
    assert (outcome.method, outcome.component, outcome.uid) == ("REQUEST", "VEVENT", "a")
    assert outcome.recurrence_ids == ("",) and outcome.error == ""
    decided = outcome.decision
    assert decided is not None
    assert (decided.outcome, decided.code, decided.recurrence_id) == ("ACCEPTED", "free", "")
    assert decided.reason == "the resource is free at the requested time"
    assert [w.uid for w in outcome.written("set_object")] == ["a"]
    [freebusy] = outcome.written("set_freebusy_for_uid")
    assert (freebusy.uid, freebusy.periods) == ("a", 1)
    assert len(outcome.written("log_decision")) == 1
    [reply] = outcome.sent
    assert (reply.method, reply.recipients) == ("REPLY", (ALICE,))
    assert reply.subject == "Accepted: Meeting"
    assert sent.message_ids() == [reply.message_id] and reply.message_id
    json.dumps(result.as_dict())  # ready for a JSON interface


def test_a_clash_is_declined_with_the_reason_and_blocks_nothing(site: Site) -> None:
    run(site, imip_message(calendar_text(vevent("a"))))
    clash = vevent("b", organiser=BOB)
    outcome = only_object(run(site, imip_message(calendar_text(clash), sender=BOB), sender=BOB))
    decided = outcome.decision
    assert decided is not None and (decided.outcome, decided.code) == ("DECLINED", "conflict")
    assert "already booked" in decided.reason
    [freebusy] = outcome.written("set_freebusy_for_uid")
    assert (freebusy.uid, freebusy.periods) == ("b", 0)
    [reply] = outcome.sent
    assert (reply.method, reply.recipients, reply.subject) == ("REPLY", (BOB,), "Declined: Meeting")


def test_a_counter_proposal_says_counter_and_what_it_holds(site: Site) -> None:
    site.preferences.set(ROOM_URI, "scheduling_function", "schedule_next_available_in_freebusy")
    site.preferences.set(ROOM_URI, "freebusy_offers", "PT1H")
    run(site, imip_message(calendar_text(vevent("taken"))))
    wanted = vevent("wants", organiser=BOB)
    outcome = only_object(run(site, imip_message(calendar_text(wanted), sender=BOB), sender=BOB))
    decided = outcome.decision
    assert decided is not None and (decided.outcome, decided.code) == ("COUNTER", "counter")
    [offers] = outcome.written("set_offers")
    assert (offers.uid, offers.periods) == ("wants", 1)
    [counter] = outcome.sent
    assert (counter.method, counter.recipients) == ("COUNTER", (BOB,))


def test_a_reply_to_a_person_is_merged_into_their_event(site: Site) -> None:
    invitation = vevent("p", organiser=ALICE, attendees=(BOB,))
    own = run(
        site,
        imip_message(calendar_text(invitation), to=BOB),
        recipient=ALICE,
        factory=OutgoingHandler,
    )
    assert only_object(own).decision.outcome == "recorded"  # type: ignore[union-attr]
    answer = invitation.replace("PARTSTAT=NEEDS-ACTION", "PARTSTAT=ACCEPTED")
    message = imip_message(
        calendar_text(answer, method="REPLY"), sender=BOB, to=ALICE, method="REPLY"
    )
    mailbox = Sent()
    result = run(site, message, ALICE, BOB, PersonHandler, mailbox=mailbox)
    outcome = only_object(result)
    assert (outcome.method, outcome.uid) == ("REPLY", "p")
    decided = outcome.decision
    assert decided is not None
    assert (decided.outcome, decided.code, decided.reason) == (
        "merged",
        "reply",
        f"{BOB} ACCEPTED",
    )
    assert [w.uid for w in outcome.written("set_object")] == ["p"]
    [theirs] = outcome.written("set_freebusy_other")
    assert (theirs.other, theirs.periods) == (f"mailto:{BOB}", 1)
    assert outcome.sent == ()
    assert result.recipients[0].delivered == len(mailbox.messages) == 1


def test_a_cancel_of_one_instance_names_it(site: Site) -> None:
    series = vevent("w", extra="RRULE:FREQ=WEEKLY;COUNT=4")
    run(site, imip_message(calendar_text(series)))
    instance = vevent(
        "w", sequence=1, dtstamp="20300101T100000Z", extra="RECURRENCE-ID:20300115T100000Z"
    )
    message = imip_message(calendar_text(instance, method="CANCEL"), method="CANCEL")
    outcome = only_object(run(site, message))
    assert (outcome.method, outcome.recurrence_ids) == ("CANCEL", ("20300115T100000Z",))
    decided = outcome.decision
    assert decided is not None
    assert (decided.outcome, decided.recurrence_id) == ("cancelled", "20300115T100000Z")
    [cancelled] = outcome.written("cancel_recurrence")
    assert (cancelled.uid, cancelled.recurrence_id) == ("w", "20300115T100000Z")
    [freebusy] = outcome.written("set_freebusy_for_uid")
    assert freebusy.periods == 3
    assert outcome.sent == ()


def test_a_request_not_naming_the_room_is_a_warning_and_an_outcome(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    other = vevent("x", attendees=("hall@example.com", BOB))
    with caplog.at_level(logging.WARNING):
        result = run(site, imip_message(calendar_text(other)))
    outcome = only_object(result)
    decided = outcome.decision
    assert decided is not None and (decided.outcome, decided.code) == ("ignored", "not-invited")
    assert decided.reason == (
        f"{ROOM} is not among the ATTENDEEs (hall@example.com, {BOB}); nothing answered"
    )
    assert outcome.sent == () and outcome.writes == ()
    [record] = [r for r in caplog.records if "not-invited" in r.getMessage()]
    assert record.levelno == logging.WARNING and decided.reason in record.getMessage()
    assert result.code == ExitCode.OK


def test_quota_records_are_an_outcome(site: Site) -> None:
    site.preferences.set(ROOM_URI, "scheduling_function", "check_quota rooms\nschedule_in_freebusy")
    site.ledger.write_admin_file("rooms", "limits", ["* count outstanding 5"])
    outcome = only_object(run(site, imip_message(calendar_text(vevent("q")))))
    assert outcome.decision is not None and outcome.decision.outcome == "ACCEPTED"
    [change] = outcome.quota
    assert (change.quota, change.user, change.resource, change.uid) == (
        "rooms",
        f"mailto:{ALICE}",
        ROOM_URI,
        "q",
    )
    assert (change.recorded, change.removed) == (1, 0)
    start, end = datetime(2030, 1, 8, 10, tzinfo=UTC), datetime(2030, 1, 8, 11, tzinfo=UTC)
    assert site.ledger.bookings("rooms") == [
        QuotaBooking(f"mailto:{ALICE}", ROOM_URI, "q", "", start, end)
    ]
    cancel = vevent("q", sequence=1, dtstamp="20300101T100000Z")
    message = imip_message(calendar_text(cancel, method="CANCEL"), method="CANCEL")
    [released] = only_object(run(site, message)).quota
    assert (released.recorded, released.removed) == (0, 1)


def test_unusable_objects_and_duplicates_are_outcomes_too(site: Site) -> None:
    message = imip_message(calendar_text(vevent("d")))
    run(site, message)
    again = only_object(run(site, message))
    decided = again.decision
    assert decided is not None and (decided.outcome, decided.code) == ("ignored", "duplicate")
    assert again.sent == ()
    both = calendar_text(
        vevent("e", "20300109T100000Z", "20300109T110000Z"), vevent("f", organiser="")
    )
    result = run(site, imip_message(both))
    ok, bad = result.recipients[0].objects
    assert ok.decision is not None and ok.decision.outcome == "ACCEPTED"
    assert bad.error == "REQUEST without ORGANIZER" and bad.writes == bad.sent == ()


def test_the_program_logs_each_object_and_a_stranger_request_at_the_default_level(
    tmp_path: Path,
) -> None:
    programs = Agent(tmp_path)
    log = tmp_path / "agent.log"
    stranger = imip_message(calendar_text(vevent("x", attendees=("hall@example.com",))))
    run_ = programs.resource(stranger, args=("--log", str(log)))
    assert (run_.code, run_.stdout, run_.sent) == (0, "", [])
    text = log.read_text()
    assert (
        f"WARNING imiptools.decisions: user={ROOM_URI} uid='x' rid=- outcome=ignored "
        f"code=not-invited reason='{ROOM} is not among the ATTENDEEs (hall@example.com); "
        "nothing answered'"
    ) in text
    assert (
        f"INFO imip_agent.objects: user={ROOM_URI} method=REQUEST component=VEVENT uid='x' "
        "rid=- decided=ignored/not-invited writes=0 quota=- sent=-"
    ) in text
    booked = programs.resource(imip_message(calendar_text(vevent("y"))), args=("--log", str(log)))
    assert booked.code == 0 and len(booked.sent) == 1
    lines = log.read_text().splitlines()
    [objects] = [line for line in lines if "imip_agent.objects" in line and "uid='y'" in line]
    message_id = booked.sent[0]["Message-ID"]
    assert "rid=- decided=ACCEPTED/free writes=" in objects
    assert objects.endswith(f" quota=- sent=REPLY{message_id}->{ALICE}")
    # the lines logged before keep their content
    assert any(
        f"INFO imiptools.decisions: user={ROOM_URI} uid='y' rid=- outcome=ACCEPTED code=free "
        "reason='the resource is free at the requested time'" in line
        for line in lines
    )
    assert any(
        f"INFO imip_agent: to=<{ROOM}>, from=<{ALICE}>, exit=0, "
        "status=done (2.0.0 processed 1 scheduling object(s))" in line
        for line in lines
    )
