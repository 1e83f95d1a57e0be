"""A person answers an invitation from a front end (``imip-manager``).

:func:`answer` does what the person's own mail client and their site do
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
from dataclasses import dataclass
from datetime import tzinfo

from icalendar import Component

from imiptools import agent
from imiptools.dates import parse_recurrence_id
from imiptools.errors import InputError
from imiptools.handlers.common import Envelope, Held, Unit
from imiptools.handlers.outgoing import OutgoingHandler
from imiptools.itip import merge, replies
from imiptools.itip.objects import ItipObject, organizer_of, recurrence_id_of, text_of
from imiptools.mail.compose import build_message
from imiptools.mail.send import Sender
from imiptools.site import Site
from imiptools.stores.names import normalise_user
from imiptools.stores.transaction import OutgoingMessage

#: The answers a person may give (RFC 5545 §3.2.12, for a VEVENT).
ANSWERS = ("ACCEPTED", "DECLINED", "TENTATIVE")


class NotAnswerable(InputError):
    """The event is not stored, not an invitation, or the answer is unknown."""


@dataclass(frozen=True)
class Answered:
    """What :func:`answer` did: the message sent (its bytes), to whom, and
    the agent's outcome of recording it."""

    message: bytes
    organiser: str
    result: agent.Result


def answer(
    site: Site, user: str, uid: str, recurrence_id: str, partstat: str, sender: Sender
) -> Answered:
    """``user`` answers ``partstat`` to event ``uid`` (the instance
    ``recurrence_id``, or the whole event when it is ''): the REPLY is
    recorded and sent with ``sender`` (through the site's outbox).

    Raises :class:`NotAnswerable` when the event is not stored, the user
    organises it, or ``partstat`` is not one of :data:`ANSWERS`.
    """
    user = normalise_user(user)
    if partstat not in ANSWERS:
        raise NotAnswerable(f"not an answer: {partstat[:40]!r}")
    records = site.records(user)
    stored = records.stored(uid)
    if stored is None:
        raise NotAnswerable("no such event")
    source = _source(stored, recurrence_id, records.zone)
    organiser = organizer_of(source)
    address = user.removeprefix("mailto:")
    if not organiser or organiser == address:
        raise NotAnswerable("not an invitation")
    now = site.clock.now()
    preferences = site.preferences_of(user)
    component = replies.reply_component(source, user, partstat, now, cn=preferences.get("CN"))
    message = build_message(
        from_addr=address,
        to_addrs=[organiser],
        subject=f"{_WORDS[partstat]}: {text_of(source, 'SUMMARY')}",
        text=f"{address} has {_WORDS[partstat].lower()} this invitation.",
        calendar=replies.reply([component]).to_ical(),
        method="REPLY",
        auto_submitted="",  # a person answered
        date=now,
        message_id_domain=address.rpartition("@")[2] or "localhost",
    )
    result = send_as(site, user, message, [organiser], sender)
    return Answered(message, organiser, result)


def send_as(
    site: Site, user: str, message: bytes, recipients: Sequence[str], sender: Sender
) -> agent.Result:
    """Record ``message``, which ``user`` sends to ``recipients``, as
    ``imip-person-outgoing`` records what a person sent (an answer, an
    invitation, an update, a cancellation), and spool it to them in the
    same transaction; the agent's flush sends it with ``sender``. With no
    ``recipients`` (an event of the person's own) it is recorded only."""
    address = normalise_user(user).removeprefix("mailto:")
    ctx = agent.Context(
        settings=site.settings,
        store=site.store,
        preferences=site.preferences,
        clock=site.clock,
        sender=sender,
        spool=site.outbox,
        ledger=site.ledger,
    )
    factory = _Sending(message, list(recipients))
    return agent.run(message, [Envelope(address, address)], ctx, factory)


_WORDS = {"ACCEPTED": "Accepted", "DECLINED": "Declined", "TENTATIVE": "Tentatively accepted"}


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

    def __init__(self, unit: Unit, message: bytes, recipients: list[str]) -> None:
        super().__init__(unit)
        self.message, self.recipients = message, recipients

    def handle(self, obj: ItipObject, held: Held) -> None:
        """Record the message as imip-person-outgoing does; spool it."""
        super().handle(obj, held)
        if not self.recipients:
            return
        key = self.unit.key("answer", obj.uid, obj.method)
        sent = OutgoingMessage(self.unit.address, self.recipients, self.message, key)
        self.unit.transaction.send(sent)


class _Sending:
    """The handler factory of :func:`answer`."""

    bounce_unusable = OutgoingHandler.bounce_unusable

    def __init__(self, message: bytes, recipients: list[str]) -> None:
        self.message, self.recipients = message, recipients

    def __call__(self, unit: Unit) -> _AnsweringHandler:
        return _AnsweringHandler(unit, self.message, self.recipients)
