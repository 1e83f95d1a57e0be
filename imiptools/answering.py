"""A person answers an invitation from a front end (``imip-manager``).

:func:`answer` (accept, decline, accept tentatively, or delegate) and
:func:`propose` (a counter-proposal) do what the person's own mail client and their site do
when they answer: it builds the REPLY (RFC 5546 §3.2.3) with the agents'
own code (:func:`imiptools.itip.replies.reply_component`), composes the
iMIP message (:func:`imiptools.mail.compose.build_message`, RFC 6047) from
the person's address to the organiser, and runs it through the agent as
``imip-person-outgoing`` runs the copy of a message a person sent
(:class:`~imiptools.handlers.outgoing.OutgoingHandler`, under the person's
lock, one transaction): the stored answer, the free/busy and the queue are
updated exactly as that program records them. The message itself is
spooled in the same transaction and sent by the agent's flush (the
site's outbox), so that it leaves exactly when the answer is recorded.

A copy that later reaches ``imip-person-outgoing`` through the MTA
(Postfix ``sender_bcc_maps``) changes nothing more: recording a REPLY is
idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

from icalendar import Calendar, Component

from imiptools import agent
from imiptools.dates import format_utc, parse_recurrence_id
from imiptools.deferred import dataclass
from imiptools.errors import InputError
from imiptools.handlers.common import Envelope, Held, Unit
from imiptools.handlers.outgoing import OutgoingHandler
from imiptools.itip import merge, replies
from imiptools.itip.objects import (
    ItipObject,
    make_calendar,
    organizer_of,
    recurrence_id_of,
    serialise,
    text_of,
)
from imiptools.mail.compose import build_message
from imiptools.mail.send import Sender
from imiptools.records import UserRecords
from imiptools.site import Site
from imiptools.stores.names import normalise_user
from imiptools.stores.transaction import OutgoingMessage

#: The answers a person may give (RFC 5545 §3.2.12, for a VEVENT);
#: DELEGATED needs a delegate (RFC 5546 §3.2.2.3).
ANSWERS = ("ACCEPTED", "DECLINED", "TENTATIVE", "DELEGATED")


class NotAnswerable(InputError):
    """The event is not stored, not an invitation, or the answer is unknown."""


@dataclass(frozen=True)
class Answered:
    """What :func:`answer` did: the message sent (its bytes), to whom, and
    the agent's outcome of recording it."""

    message: bytes
    organiser: str
    result: agent.Result


@dataclass(frozen=True)
class Extra:
    """Another message spooled with the one recorded (a delegation's forward)."""

    recipients: list[str]
    message: bytes


def answer(
    site: Site,
    user: str,
    uid: str,
    recurrence_id: str,
    partstat: str,
    sender: Sender,
    *,
    comment: str = "",
    delegate_to: str = "",
) -> Answered:
    """``user`` answers ``partstat`` to event ``uid`` (the instance
    ``recurrence_id``, or the whole event when it is ''): the REPLY, with
    ``comment`` when given, is recorded and sent with ``sender`` (through
    the site's outbox).

    ``DELEGATED`` names the delegate in ``delegate_to`` (RFC 5546 §3.2.2.3):
    the REPLY carries DELEGATED-TO, and the invitation, with the delegate
    added (DELEGATED-FROM, RSVP), goes to the delegate in the same
    transaction.

    Raises :class:`NotAnswerable` when the event is not stored, the user
    organises it, ``partstat`` is not one of :data:`ANSWERS`, or a
    delegation lacks a delegate (or another answer names one).
    """
    user = normalise_user(user)
    if partstat not in ANSWERS:
        raise NotAnswerable(f"not an answer: {partstat[:40]!r}")
    delegate = _delegate(partstat, delegate_to, user)
    records = site.records(user)
    stored, source, organiser = _invitation(records, uid, recurrence_id)
    address = user.removeprefix("mailto:")
    now = site.clock.now()
    component = replies.reply_component(
        source,
        user,
        partstat,
        now,
        comment=comment,
        cn=site.preferences_of(user).get("CN"),
        delegated_to=delegate,
    )
    text = f"{address} has {_WORDS[partstat].lower()} this invitation."
    if delegate:
        text = f"{address} has delegated this invitation to {delegate}."
    message = _message(
        address,
        organiser,
        f"{_WORDS[partstat]}: {text_of(source, 'SUMMARY')}",
        text + (f"\n\n{comment}" if comment else ""),
        replies.reply([component]),
        now,
    )
    extra = [_forwarded(address, delegate, stored, source, now)] if delegate else []
    result = send_as(site, user, message, [organiser], sender, extra)
    return Answered(message, organiser, result)


def propose(
    site: Site,
    user: str,
    uid: str,
    recurrence_id: str,
    start: datetime,
    end: datetime,
    sender: Sender,
    *,
    comment: str = "",
) -> Answered:
    """``user`` proposes ``start``-``end`` instead (a COUNTER, RFC 5546
    §3.2.7) for event ``uid``: one instance (``recurrence_id``), or the
    whole event ('' ; for a series, the rule moves with the proposed start,
    kept at the same local time in the user's zone). Recorded as
    ``imip-person-outgoing`` records a COUNTER (the proposed time held as
    an offer under ``freebusy_offers``) and sent to the organiser.

    Raises :class:`NotAnswerable` as :func:`answer`, and when ``end`` is not
    after ``start`` or either is naive."""
    user = normalise_user(user)
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise NotAnswerable("a proposal needs a start and a later end")
    records = site.records(user)
    stored, source, organiser = _invitation(records, uid, recurrence_id)
    rule = source.get("RRULE") if not recurrence_id else None
    now = site.clock.now()
    proposal = replies.counter(
        source,
        user,
        start,
        end,
        now,
        comment=comment,
        rrule=rule.to_ical().decode() if rule is not None else "",
        zone=records.zone,
        timezones=list(stored.timezones),
        cn=site.preferences_of(user).get("CN"),
    )
    address = user.removeprefix("mailto:")
    summary = text_of(source, "SUMMARY")
    text = f"{address} proposes another time for {summary}:\n"
    text += f"{format_utc(start)} to {format_utc(end)}"
    message = _message(
        address,
        organiser,
        f"Counter-proposal: {summary}",
        text + (f"\n\n{comment}" if comment else ""),
        proposal,
        now,
        method="COUNTER",
    )
    return Answered(message, organiser, send_as(site, user, message, [organiser], sender))


def _delegate(partstat: str, delegate_to: str, user: str) -> str:
    """The delegate's address ('' for another answer); NotAnswerable when
    DELEGATED lacks one, another answer names one, or it is no address or
    the user's own."""
    if (partstat == "DELEGATED") != bool(delegate_to.strip()):
        raise NotAnswerable("DELEGATED, and only DELEGATED, names a delegate")
    if not delegate_to.strip():
        return ""
    try:
        delegate = normalise_user(delegate_to.strip())
    except (InputError, ValueError) as exc:
        raise NotAnswerable("the delegate is no address") from exc
    if delegate == user:
        raise NotAnswerable("a delegate is someone else")
    return delegate.removeprefix("mailto:")


def _invitation(
    records: UserRecords, uid: str, recurrence_id: str
) -> tuple[ItipObject, Component, str]:
    """The stored event, the component answered and its organiser;
    NotAnswerable when the event is not stored or the user organises it."""
    stored = records.stored(uid)
    if stored is None:
        raise NotAnswerable("no such event")
    source = _source(stored, recurrence_id, records.zone)
    organiser = organizer_of(source)
    if not organiser or organiser == records.user.removeprefix("mailto:"):
        raise NotAnswerable("not an invitation")
    return stored, source, organiser


def _forwarded(
    address: str, delegate: str, stored: ItipObject, source: Component, now: datetime
) -> Extra:
    """The invitation ``address`` forwards to ``delegate`` (RFC 5546 §3.2.2.3)."""
    forwarded = replies.delegation(source, address, delegate)
    summary = text_of(source, "SUMMARY")
    message = _message(
        address,
        delegate,
        f"Delegated: {summary}",
        f"{address} has delegated {summary} to you.",
        make_calendar([forwarded], "REQUEST", list(stored.timezones)),
        now,
        method="REQUEST",
    )
    return Extra([delegate], message)


def _message(
    address: str,
    to: str,
    subject: str,
    text: str,
    calendar: Calendar,
    now: datetime,
    method: str = "REPLY",
) -> bytes:
    """The iMIP message ``address`` sends ``to`` (RFC 6047), written by a person."""
    return build_message(
        from_addr=address,
        to_addrs=[to],
        subject=subject,
        text=text,
        calendar=serialise(calendar),
        method=method,
        auto_submitted="",  # a person answered
        date=now,
        message_id_domain=address.rpartition("@")[2] or "localhost",
    )


def send_as(
    site: Site,
    user: str,
    message: bytes,
    recipients: Sequence[str],
    sender: Sender,
    extra: Sequence[Extra] = (),
) -> agent.Result:
    """Record ``message``, which ``user`` sends to ``recipients``, as
    ``imip-person-outgoing`` records what a person sent (an answer, an
    invitation, an update, a cancellation), and spool it to them in the
    same transaction, with the ``extra`` messages (not recorded); the
    agent's flush sends them with ``sender``. With no ``recipients`` (an
    event of the person's own) it is recorded only."""
    address = normalise_user(user).removeprefix("mailto:")
    ctx = site.agent_context(sender)
    factory = _Sending(message, list(recipients), list(extra))
    return agent.run(message, [Envelope(address, address)], ctx, factory)


_WORDS = {
    "ACCEPTED": "Accepted",
    "DECLINED": "Declined",
    "TENTATIVE": "Tentatively accepted",
    "DELEGATED": "Delegated",
}


def _source(stored: ItipObject, recurrence_id: str, zone: tzinfo) -> Component:
    """The component answered: the master (the whole event), the stored
    override of ``recurrence_id``, or that occurrence made from the master."""
    if not recurrence_id:
        return stored.master if stored.master is not None else stored.first
    for override in stored.overrides:
        if recurrence_id_of(override, zone) == recurrence_id:
            return override
    if stored.master is None:
        raise NotAnswerable("no such instance")
    try:
        when = parse_recurrence_id(recurrence_id)
    except ValueError as exc:
        raise NotAnswerable("not a recurrence identifier") from exc
    return merge.instance_of(stored.master, when)


class _AnsweringHandler(OutgoingHandler):
    """``imip-person-outgoing``'s handler, which also spools the person's
    message to the organiser in the transaction that records it."""

    def __init__(
        self, unit: Unit, message: bytes, recipients: list[str], extra: list[Extra]
    ) -> None:
        super().__init__(unit)
        self.message, self.recipients, self.extra = message, recipients, extra

    def handle(self, obj: ItipObject, held: Held) -> None:
        """Record the message as imip-person-outgoing does; spool it and the extras."""
        super().handle(obj, held)
        if self.recipients:
            key = self.unit.key("answer", obj.uid, obj.method)
            sent = OutgoingMessage(self.unit.address, self.recipients, self.message, key)
            self.unit.transaction.send(sent)
        for n, more in enumerate(self.extra):
            key = self.unit.key("extra", obj.uid, obj.method, n)
            self.unit.transaction.send(
                OutgoingMessage(self.unit.address, more.recipients, more.message, key)
            )


class _Sending:
    """The handler factory of :func:`answer`."""

    bounce_unusable = OutgoingHandler.bounce_unusable

    def __init__(self, message: bytes, recipients: list[str], extra: list[Extra]) -> None:
        self.message, self.recipients, self.extra = message, recipients, extra

    def __call__(self, unit: Unit) -> _AnsweringHandler:
        return _AnsweringHandler(unit, self.message, self.recipients, self.extra)
