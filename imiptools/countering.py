"""The organiser answers a counter-proposal from a front end (``imip-manager``).

An attendee's COUNTER (RFC 5546 §3.2.7) is kept by ``imip-person`` for the
organiser, with a COUNTER item on their queue. :func:`proposals` reads
them; :func:`decline` sends the DECLINECOUNTER (§3.2.8); :func:`accept`
sends the update the proposal asks for: the REQUEST with the proposed
times and a higher SEQUENCE to every attendee (§3.2.7: "the Organizer
... sends a REQUEST with the changed times"). Both are recorded as
``imip-person-outgoing`` records what the organiser sent, in one
transaction with the message (:func:`imiptools.answering.send_as`): a
DECLINECOUNTER drops that attendee's proposal, an update drops them all
(they concern the superseded version), and the queue item goes with the
last one.
"""

from __future__ import annotations

from datetime import datetime

from icalendar import Calendar, Component

from imiptools.answering import Answered, NotAnswerable, send_as
from imiptools.dates import to_utc
from imiptools.deferred import dataclass
from imiptools.errors import InputError
from imiptools.itip import organising
from imiptools.itip.objects import (
    ItipObject,
    organizer_of,
    parse_calendars,
    scheduling_objects,
    serialise,
    text_of,
)
from imiptools.mail.compose import build_message
from imiptools.mail.send import Sender
from imiptools.records import UserRecords
from imiptools.site import Site
from imiptools.stores.names import normalise_user


@dataclass(frozen=True)
class Proposal:
    """An attendee's counter-proposal for an event the user organises."""

    uid: str
    attendee: str
    """The proposer's address (no ``mailto:``)."""
    start: datetime
    end: datetime
    comment: str
    recurrence_id: str
    """'' for the whole event, else the instance's RECURRENCE-ID (UTC)."""
    rule: str
    """The RRULE proposed for a series ('' when none)."""


def proposals(records: UserRecords, uid: str) -> list[Proposal]:
    """The readable counter-proposals kept for ``uid``, by attendee."""
    found = []
    for attendee, text in sorted(records.counters(uid).items()):
        counter = _counter(text)
        if counter is not None:
            found.append(_proposal(uid, attendee, counter.first, records))
    return found


def decline(
    site: Site, user: str, uid: str, attendee: str, sender: Sender, comment: str = ""
) -> Answered:
    """Decline ``attendee``'s proposal for ``uid`` (RFC 5546 §3.2.8): the
    DECLINECOUNTER goes to them; their proposal is dropped."""
    user, counter = _held(site, user, uid, attendee)
    now = site.clock.now()
    calendar = organising.decline_counter(counter, now, comment)
    summary = text_of(counter.first, "SUMMARY")
    text = f"Your proposal for {summary} is declined." + (f"\n\n{comment}" if comment else "")
    to = [_bare(attendee)]
    message = _message(user, to, f"Proposal declined: {summary}", text, calendar, now)
    return Answered(message, to[0], send_as(site, user, message, to, sender))


def accept(site: Site, user: str, uid: str, attendee: str, sender: Sender) -> Answered:
    """Accept ``attendee``'s proposal for the whole event ``uid``: the
    update with the proposed times (and rule, for a series) goes to every
    attendee, who answer again (RFC 5546 §2.1.4). A proposal for one
    instance is answered by changing that instance instead (NotAnswerable
    here)."""
    user, counter = _held(site, user, uid, attendee)
    records = site.records(user)
    stored = records.stored(uid)
    if stored is None:
        raise NotAnswerable("no such event")
    proposal = _proposal(uid, attendee, counter.first, records)
    if proposal.recurrence_id:
        raise NotAnswerable("a proposal for one instance: change that instance instead")
    revision = organising.Revision(
        start=proposal.start.astimezone(records.zone),
        end=proposal.end.astimezone(records.zone),
        rrule=proposal.rule or None,
    )
    now = site.clock.now()
    try:
        calendar = organising.revised(stored, revision, now)
    except ValueError as exc:
        raise NotAnswerable(f"the proposal cannot be made: {exc}") from exc
    event = calendar.walk("VEVENT")[0]
    recipients = organising.recipients_of(event, user)
    summary = text_of(event, "SUMMARY")
    text = f"{summary} moves to the time {_bare(attendee)} proposed."
    message = _message(user, recipients, f"Updated: {summary}", text, calendar, now)
    return Answered(message, _bare(attendee), send_as(site, user, message, recipients, sender))


def _held(site: Site, user: str, uid: str, attendee: str) -> tuple[str, ItipObject]:
    """The user (normalised) and ``attendee``'s kept COUNTER for ``uid``;
    NotAnswerable when there is none or the user does not organise it."""
    user = normalise_user(user)
    records = site.records(user)
    stored = records.stored(uid)
    if stored is None or organizer_of(stored.first) != _bare(user):
        raise NotAnswerable("not an event you organise")
    text = records.counters(uid).get(f"mailto:{_bare(attendee)}")
    counter = _counter(text) if text else None
    if counter is None:
        raise NotAnswerable("no such proposal")
    return user, counter


def _counter(text: str) -> ItipObject | None:
    """The COUNTER kept as ``text``, or None when it is unreadable."""
    try:
        objects = [o for c in parse_calendars(text) for o in scheduling_objects(c, "COUNTER")]
    except InputError:
        return None
    return objects[0] if objects and "DTSTART" in objects[0].first else None


def _proposal(uid: str, attendee: str, event: Component, records: UserRecords) -> Proposal:
    start = event.decoded("DTSTART")
    end = event.decoded("DTEND") if "DTEND" in event else start
    rule = event.get("RRULE")
    rid = event.get("RECURRENCE-ID")
    return Proposal(
        uid=uid,
        attendee=_bare(attendee),
        start=to_utc(start, records.zone),
        end=to_utc(end, records.zone),
        comment=text_of(event, "COMMENT"),
        recurrence_id=to_utc(rid.dt, records.zone).strftime("%Y%m%dT%H%M%SZ") if rid else "",
        rule=rule.to_ical().decode() if rule is not None else "",
    )


def _message(
    user: str, to: list[str], subject: str, text: str, calendar: Calendar, now: datetime
) -> bytes:
    """The iMIP message the organiser ``user`` sends ``to`` (RFC 6047)."""
    address = _bare(user)
    return build_message(
        from_addr=address,
        to_addrs=to,
        subject=subject,
        text=text,
        calendar=serialise(calendar),
        method=str(calendar.get("METHOD", "")),
        auto_submitted="",  # the organiser answered
        date=now,
        message_id_domain=address.rpartition("@")[2] or "localhost",
    )


def _bare(who: str) -> str:
    return who.removeprefix("mailto:")
