"""A user's calendar for a mail client: inspect, apply, respond, list.

:func:`open_calendar` opens a site (its :class:`~imiptools.config.Settings`,
or a directory holding a local user's store) for one user with one or more
addresses (identities). :class:`UserCalendar` then does what the MTA
agents do, through the same handlers: :meth:`~UserCalendar.apply` records
a message as ``imip-person`` would (:class:`~imiptools.handlers.person.PersonHandler`),
:meth:`~UserCalendar.respond` records the user's answer as
``imip-person-outgoing`` would (:class:`~imiptools.handlers.outgoing.OutgoingHandler`)
and returns the REPLY. The library never sends: every message is returned
(:class:`~imiptools.client.model.Outgoing`) for the caller to sign,
encrypt and send. With ``dry_run`` the store is read through an overlay
and nothing is written.
"""

from __future__ import annotations

import email.message
import email.policy
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from email.parser import BytesParser
from pathlib import Path

from icalendar import Calendar, Component

from imiptools import addresses, agent
from imiptools.client.inspection import own_identity, sender_speaks_for, view
from imiptools.client.model import (
    Applied,
    Change,
    Entry,
    Exported,
    FreeTime,
    Inspection,
    ObjectView,
    Outgoing,
    SecurityView,
    Waiting,
)
from imiptools.client.vdir import write_vdir
from imiptools.config import Settings
from imiptools.dates import Clock, format_recurrence_id, format_utc, parse_datetime
from imiptools.deferred import dataclass
from imiptools.errors import (
    CalendarDataError,
    ClientParseError,
    InputError,
    MissingMethod,
    NoCalendar,
    NotACounter,
    NotARequest,
    NotAttendee,
    NotOrganiser,
    OutOfSequence,
    SenderNotParticipant,
    SiteMissing,
    UnknownEvent,
    UnknownRecurrence,
)
from imiptools.handlers.common import Envelope
from imiptools.handlers.outgoing import OutgoingHandler
from imiptools.handlers.person import PersonHandler
from imiptools.initialise import Owner, prepare_directories
from imiptools.itip import merge, organising, replies
from imiptools.itip.objects import (
    ItipObject,
    make_calendar,
    organizer_of,
    recurrence_id_of,
    serialise,
    text_of,
    version_key,
)
from imiptools.itip.organising import Draft, Revision
from imiptools.mail.compose import build_message
from imiptools.mail.parse import ParsedMessage, Security
from imiptools.quota.overlay import OverlayLedger
from imiptools.records import UserRecords
from imiptools.site import Site, open_site
from imiptools.spool import Spool
from imiptools.stores.names import normalise_user
from imiptools.stores.overlay import OverlayStore
from imiptools.transfer import export_event
from imiptools.views.freetime import Search, free_slots
from imiptools.views.whatif import Collector, Sent

#: The answers :meth:`UserCalendar.respond` gives (RFC 5546 §3.2.3).
PARTSTATS = ("ACCEPTED", "TENTATIVE", "DECLINED", "DELEGATED")
#: The words of the subject and text of a REPLY.
ANSWER_WORDS = {
    "ACCEPTED": "Accepted",
    "TENTATIVE": "Tentative",
    "DECLINED": "Declined",
    "DELEGATED": "Delegated",
}


def default_location() -> Path:
    """Where a local user's calendar lives: ``$XDG_DATA_HOME/imip-agent``,
    by default ``~/.local/share/imip-agent``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "imip-agent"


def local_settings(location: Path) -> Settings:
    """The settings of a local user's site in ``location`` (the file
    backend: ``store``, ``preferences``, ``journal``, ``publishing``)."""
    return Settings(
        store=str(location / "store"),
        preferences=str(location / "preferences"),
        journal=str(location / "journal"),
        publishing=str(location / "publishing"),
    )


def open_calendar(
    location: Settings | Path | str | None,
    identities: Sequence[str],
    clock: Clock | None = None,
    create: bool = False,
) -> UserCalendar:
    """The calendar of the user with ``identities`` (addresses or
    ``mailto:`` URIs, the first the main one) in ``location``: a site's
    settings, a local store directory, or None for :func:`default_location`.

    A local directory is created when missing only with ``create`` (or for
    the default location): the MTA agents never create a store, a client
    creates its own user's. Raises UnusableAddress (65) for an identity
    that is not an address, SiteMissing (75) for a missing site.
    """
    if not identities:
        raise NotAttendee("no identity given (the user's address)")
    users = [normalise_user(addresses.uri(who)) for who in identities]
    if isinstance(location, Settings):
        return UserCalendar(open_site(location, clock), users)
    path = default_location() if location is None else Path(location)
    settings = local_settings(path)
    if create or location is None:
        directories = {name: Path(getattr(settings, name)) for name in ("store", "preferences")}
        prepare_directories(directories, Owner())
    site = open_site(settings, clock)
    missing = site.backend.missing_locations()
    if missing:
        where = ", ".join(f"{name} {path}" for name, path in sorted(missing.items()))
        raise SiteMissing(f"no calendar here ({where} missing): create it first")
    return UserCalendar(site, users)


def as_message(data: bytes) -> bytes:
    """``data`` as an RFC 5322 message: a bare calendar (``BEGIN:VCALENDAR``)
    is wrapped in one, with its METHOD as the MIME parameter; a message is
    kept as it is. Raises ClientParseError for empty input."""
    body = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not body:
        raise ClientParseError("empty input")
    if not body[:15].upper().startswith(b"BEGIN:VCALENDAR"):
        return data
    method = _calendar_method(body)
    parameter = f"; method={method}" if method else ""
    head = f"MIME-Version: 1.0\r\nContent-Type: text/calendar; charset=utf-8{parameter}\r\n"
    return head.encode("ascii") + b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body


def _calendar_method(body: bytes) -> str:
    for line in body.splitlines():
        name, _, value = line.partition(b":")
        if name.strip().upper() == b"METHOD":
            token = value.strip().decode("ascii", "replace").upper()
            return token if token.isalpha() else ""
    return ""


@dataclass(frozen=True)
class Message:
    """An input message, parsed once: its bytes and scheduling objects."""

    raw: bytes
    parsed: ParsedMessage
    objects: list[ItipObject]
    errors: list[str]


def read_message(data: bytes, settings: Settings, security: Security | None = None) -> Message:
    """Parse ``data`` (a message or a bare calendar, see :func:`as_message`)
    within the site's limits. Raises ClientParseError when no calendar can
    be read, NoCalendar when there is none, MissingMethod when a calendar
    has no METHOD and its part no ``method`` parameter.

    ``security``: what the mail client found when it decrypted and verified
    the message (the user's keys are the client's): it then stands for the
    message's own (``require_signature`` reads it)."""
    raw = as_message(data)
    parsed, extracted = agent.read(raw, settings)
    if security is not None:
        parsed = replace(parsed, security=security)
    if not parsed.parts:
        raise NoCalendar("no calendar part in the message")
    if not extracted.objects:
        reason = extracted.errors[0] if extracted.errors else "no scheduling object"
        raise ClientParseError(reason)
    if any(not part.method and not _calendar_method(part.text.encode()) for part in parsed.parts):
        raise MissingMethod("the calendar has no METHOD and its part no method parameter")
    return Message(raw, parsed, extracted.objects, extracted.errors)


class UserCalendar:
    """One user's calendar in a site: the facade a mail client uses."""

    def __init__(self, site: Site, identities: Sequence[str]) -> None:
        self.site = site
        #: The user's ``mailto:`` URIs; the first is the main one.
        self.identities = list(identities)

    @property
    def user(self) -> str:
        """The main identity (a ``mailto:`` URI)."""
        return self.identities[0]

    def read(self, data: bytes, security: Security | None = None) -> Message:
        """Parse a message or bare calendar (see :func:`read_message`),
        decrypted and verified by the client as ``security`` says."""
        return read_message(data, self.site.settings, security)

    # -- reading --------------------------------------------------------------

    def inspect(self, data: bytes | Message) -> Inspection:
        """What the message is for this user (see :class:`Inspection`);
        changes nothing."""
        message = data if isinstance(data, Message) else self.read(data)
        views: list[ObjectView] = []
        for obj in message.objects:
            user = own_identity(obj, self.identities)
            records = self.site.records(user or self.user)
            views.append(view(obj, records, user))
        sender = message.parsed.from_address
        organisers = [v.organiser.address for v in views if v.organiser is not None]
        return Inspection(
            sender=sender,
            message_id=message.parsed.message_id,
            subject=message.parsed.subject,
            sender_is_organiser=(sender in organisers) if sender and organisers else None,
            objects=tuple(views),
            errors=tuple(message.errors),
            security=_security_view(message.parsed.security, organisers),
        )

    def pending(self) -> list[Waiting]:
        """What waits for the user (invitations, updates, cancellations
        recorded by :meth:`apply` and not answered), for every identity."""
        found = []
        for user in self.identities:
            records = self.site.records(user)
            for uid, rid, kind in records.queued():
                stored = records.stored(uid)
                summary = text_of(stored.first, "SUMMARY") if stored is not None else ""
                found.append(Waiting(_bare(user), uid, rid, kind, summary))
        return found

    def agenda(self, start: datetime, end: datetime) -> list[Entry]:
        """The user's instances in ``[start, end)`` that take time (declined
        and transparent ones are left out), in order, for every identity."""
        return sorted(
            (e for e in self._periods(start, end) if e.status != "TRANSPARENT"),
            key=lambda e: (e.start, e.uid),
        )

    def freebusy(self, start: datetime, end: datetime) -> list[Entry]:
        """The user's busy periods in ``[start, end)`` (FBTYPE as status)."""
        return self.agenda(start, end)

    def free_time(self, search: Search, others: Sequence[str] = (), count: int = 3) -> FreeTime:
        """The first ``count`` slots of ``search`` in which the user (every
        identity) and each of ``others`` is free, from the user's own
        free/busy and what the calendar holds of the others' (their
        VFREEBUSY replies and published free/busy, RFC 5546 §3.3). Others of
        whom nothing is held are named in ``unknown``. Raises ValueError for
        a search :meth:`~imiptools.views.freetime.Search.check` refuses."""
        search.check()
        busy = [
            p
            for user in self.identities
            for p in self.site.records(user).busy_between(search.start, search.end)
        ]
        records = self.site.records(self.user)
        unknown = []
        for other in others:
            known = records.freebusy_of(addresses.uri(other), search.start, search.end)
            if not known and not records.freebusy_of(addresses.uri(other), _EPOCH, _END):
                unknown.append(_bare(addresses.uri(other)))
            busy += known
        slots = free_slots(busy, search, count)
        return FreeTime(tuple((format_utc(a), format_utc(b)) for a, b in slots), tuple(unknown))

    def _periods(self, start: datetime, end: datetime) -> Iterator[Entry]:
        if end <= start:
            raise ValueError("the end must be after the start")
        for user in self.identities:
            for period in self.site.records(user).busy_between(start, end):
                status = "TRANSPARENT" if period.transp == "TRANSPARENT" else period.status
                yield Entry(
                    _bare(user),
                    format_utc(period.start),
                    format_utc(period.end),
                    period.uid,
                    period.recurrenceid,
                    period.summary,
                    period.organiser,
                    status,
                )

    def export_vdir(self, directory: Path) -> Exported:
        """Write the user's events, one ``.ics`` file each, to the vdir
        ``directory`` for khal or vdirsyncer (see
        :func:`~imiptools.client.vdir.write_vdir`): every identity's
        events, cancelled instances as EXDATEs, as ``imip-admin export``
        writes them."""
        items: dict[str, bytes] = {}
        for user in self.identities:
            records = self.site.records(user)
            for uid in sorted(records.uids()):
                calendar = export_event(records, uid)
                if calendar is not None:
                    items.setdefault(uid, serialise(calendar))
        return write_vdir(directory, items)

    # -- writing --------------------------------------------------------------

    def apply(
        self,
        data: bytes | Message,
        *,
        dry_run: bool = False,
        any_sender: bool = False,
        sent: bool = False,
    ) -> Applied:
        """Record the message as ``imip-person`` records it for the user
        (REQUEST, ADD, CANCEL, DECLINECOUNTER as an attendee; REPLY,
        COUNTER, REFRESH as the organiser): the same handler, so the same
        policy (RFC 5546 §3.2). Messages the handler would send (answers
        to REFRESH, free/busy) are returned, not sent.

        Raises SenderNotParticipant when the message's From is not the
        participant who sends such a message (unless ``any_sender``: a
        forwarded invitation), NotAttendee when none of the identities
        takes part.

        With ``sent``, the message is one the user sent (an invitation as
        organiser, a REPLY or COUNTER as attendee): it is recorded as
        ``imip-person-outgoing`` records it, and the sender is not checked.
        """
        message = data if isinstance(data, Message) else self.read(data)
        if sent:
            user = self._participant(message.objects)
            with self._target(dry_run) as target:
                envelope = Envelope(user, _bare(user))
                result, mail = _run(
                    target, message.raw, envelope, OutgoingHandler, message.parsed.security
                )
            return _applied(user, [result], mail, dry_run)
        sender = message.parsed.from_address
        if sender and not any_sender:
            for obj in message.objects:
                if not sender_speaks_for(obj, sender):
                    raise SenderNotParticipant(
                        f"{sender} does not send {obj.method} for {obj.uid[:100]!r}"
                    )
        user = self._participant(message.objects)
        with self._target(dry_run) as target:
            result, mail = _run(
                target,
                message.raw,
                Envelope(user, sender or None),
                PersonHandler,
                message.parsed.security,
            )
        return _applied(user, [result], mail, dry_run)

    def respond(
        self,
        data: bytes | Message,
        partstat: str,
        *,
        recurrence_id: str | None = None,
        comment: str = "",
        delegate_to: str = "",
        dry_run: bool = False,
    ) -> Applied:
        """Answer the invitation (RFC 5546 §3.2.3): the whole event as sent
        (``recurrence_id`` None) or one instance (its RECURRENCE-ID, as
        ``20300108T100000Z``). The invitation is recorded first when the
        store lacks it (as :meth:`apply`), then the answer is recorded as
        ``imip-person-outgoing`` records a REPLY the user sent; the REPLY
        is returned, for the caller to send.

        ``DELEGATED`` needs ``delegate_to`` (RFC 5546 §3.2.2.3): the REPLY
        then carries DELEGATED-TO, and a second message, the invitation
        with the delegate added (DELEGATED-FROM, RSVP), goes to the delegate.

        Raises NotARequest, NotAttendee, OutOfSequence (the stored copy is
        newer: answer that one), UnknownRecurrence, or ValueError for a
        PARTSTAT that is not in :data:`PARTSTATS` or a delegation without
        a delegate.
        """
        partstat = partstat.upper()
        if partstat not in PARTSTATS:
            raise ValueError(f"PARTSTAT must be one of {', '.join(PARTSTATS)}")
        if (partstat == "DELEGATED") != bool(delegate_to):
            raise ValueError("DELEGATED, and only DELEGATED, needs a delegate")
        message = data if isinstance(data, Message) else self.read(data)
        obj, user, components = self._invitation(message, recurrence_id)
        with self._target(dry_run) as target:
            results = self._record_invitation(target, message, obj, user)
            now = target.clock.now()
            answers = [
                replies.reply_component(
                    c,
                    user,
                    partstat,
                    now,
                    comment=comment,
                    cn=self._cn(user),
                    delegated_to=delegate_to,
                )
                for c in components
            ]
            reply = self._compose(
                user,
                [organizer_of(obj.first)],
                replies.reply(answers),
                f"{ANSWER_WORDS[partstat]}: {_summary(obj)}",
                _answer_text(user, partstat, _summary(obj), comment),
                message,
            )
            results.append(self._record_sent(target, user, reply))
        sent = [reply]
        if delegate_to:
            sent.append(self._delegation(message, obj, components, user, delegate_to))
        return _applied(user, results, [], dry_run, sent)

    def counter(
        self,
        data: bytes | Message,
        start: datetime,
        end: datetime,
        *,
        recurrence_id: str | None = None,
        comment: str = "",
        dry_run: bool = False,
    ) -> Applied:
        """Propose ``start``-``end`` instead (RFC 5546 §3.2.7), for the
        whole event or one instance. The invitation is recorded first when
        the store lacks it; the COUNTER is recorded as
        ``imip-person-outgoing`` records one (the proposed time held as an
        offer under ``freebusy_offers``) and returned for the caller to
        send. Raises as :meth:`respond`, and ValueError unless ``end`` is
        after ``start`` (both aware)."""
        if start.tzinfo is None or end.tzinfo is None or end <= start:
            raise ValueError("a proposal needs an aware start and a later end")
        message = data if isinstance(data, Message) else self.read(data)
        obj, user, components = self._invitation(message, recurrence_id)
        with self._target(dry_run) as target:
            results = self._record_invitation(target, message, obj, user)
            proposal = replies.counter(
                components[0],
                user,
                start,
                end,
                target.clock.now(),
                comment=comment,
                cn=self._cn(user),
            )
            text = f"{_bare(user)} proposes another time for {_summary(obj)}:\n"
            text += f"{format_utc(start)} to {format_utc(end)}\n"
            if comment:
                text += f"\n{comment}\n"
            outgoing = self._compose(
                user,
                [organizer_of(obj.first)],
                proposal,
                f"Counter-proposal: {_summary(obj)}",
                text,
                message,
            )
            results.append(self._record_sent(target, user, outgoing))
        return _applied(user, results, [], dry_run, (outgoing,))

    def _invitation(
        self, message: Message, recurrence_id: str | None
    ) -> tuple[ItipObject, str, list[Component]]:
        """The REQUEST in ``message``, the identity it invites, and the
        components an answer concerns."""
        obj = _request(message.objects)
        user = own_identity(obj, self.identities)
        if not user or organizer_of(obj.first) == _bare(user):
            raise NotAttendee(f"none of {', '.join(map(_bare, self.identities))} is invited")
        components = _answered(obj, recurrence_id)
        if recurrence_id is not None and components[0] not in obj.overrides:
            _check_occurrence(self.site.records(user), obj, components[0])
        return obj, user, components

    def _record_invitation(
        self, target: Site, message: Message, obj: ItipObject, user: str
    ) -> list[agent.Result]:
        """Record ``obj`` as ``imip-person`` would when it is newer than the
        stored copy; OutOfSequence when the stored copy is newer."""
        stored = target.records(user).stored(obj.uid)
        if stored is not None and _outdated(obj, stored):
            raise OutOfSequence("the stored copy of the event is newer than this message")
        if stored is not None and version_key(obj.first) <= version_key(stored.first):
            return []
        sender = message.parsed.from_address or None
        envelope = Envelope(user, sender)
        return [_run(target, message.raw, envelope, PersonHandler, message.parsed.security)[0]]

    def _delegation(
        self,
        message: Message,
        obj: ItipObject,
        components: Sequence[Component],
        user: str,
        delegate: str,
    ) -> Outgoing:
        """The invitation forwarded to ``delegate`` (RFC 5546 §3.2.2.3)."""
        forwarded = [replies.delegation(c, user, delegate) for c in components]
        calendar = make_calendar(forwarded, "REQUEST", obj.timezones)
        text = f"{_bare(user)} has delegated {_summary(obj)} to you.\n"
        return self._compose(
            user, [delegate], calendar, f"Delegated: {_summary(obj)}", text, message
        )

    # -- as the organiser -------------------------------------------------------

    def create(self, draft: Draft, *, dry_run: bool = False) -> Applied:
        """Invite ``draft``'s invitees (RFC 5546 §3.2.2), as the main identity.

        The REQUEST is recorded as ``imip-person-outgoing`` records a
        user's own invitation and returned for the caller to send (none
        when there is nobody to invite: an event of the user's own).
        Raises ValueError for a draft :func:`~imiptools.itip.organising.check_draft`
        refuses.
        """
        user = self.user
        with self._target(dry_run) as target:
            calendar = organising.new_event(
                draft, user, target.clock.now(), cn=self._cn(user), domain=_domain(user)
            )
            return self._send_organised(target, user, calendar, "Invitation", dry_run)

    def update(self, uid: str, revision: Revision, *, dry_run: bool = False) -> Applied:
        """Change an event the user organises and invite again (RFC 5546
        §2.1.4): the REQUEST of :func:`~imiptools.itip.organising.revised`
        goes to every attendee, is recorded as the user's own, and is
        returned for the caller to send. Raises UnknownEvent, NotOrganiser,
        ValueError for a revision that makes no valid event."""
        user, stored = self._organised(uid)
        with self._target(dry_run) as target:
            calendar = organising.revised(stored, revision, target.clock.now())
            return self._send_organised(target, user, calendar, "Updated", dry_run)

    def cancel(
        self,
        uid: str,
        *,
        recurrence_id: str | None = None,
        comment: str = "",
        dry_run: bool = False,
    ) -> Applied:
        """Cancel an event the user organises (RFC 5546 §3.2.5): the whole
        event, or one instance. The CANCEL goes to every attendee of what
        is cancelled, is recorded as ``imip-person-outgoing`` records one,
        and is returned for the caller to send. Raises UnknownEvent,
        NotOrganiser, UnknownRecurrence."""
        user, stored = self._organised(uid)
        instance = None
        if recurrence_id is not None:
            instance = _answered(stored, recurrence_id)[0]
            if instance not in stored.overrides:
                _check_occurrence(self.site.records(user), stored, instance)
        with self._target(dry_run) as target:
            calendar = organising.cancellation(stored, target.clock.now(), instance, comment)
            text = f"{_summary(stored)} is cancelled.\n" + (f"\n{comment}\n" if comment else "")
            return self._send_organised(target, user, calendar, "Cancelled", dry_run, text)

    def _send_organised(
        self,
        target: Site,
        user: str,
        calendar: Calendar,
        word: str,
        dry_run: bool,
        text: str = "",
    ) -> Applied:
        """Compose what the organiser sends (subject ``word: summary``, the
        event described unless ``text``), record it as
        ``imip-person-outgoing`` would, and return it for the caller to send
        (nothing when nobody else takes part)."""
        event = calendar.walk("VEVENT")[0]
        invited = organising.recipients_of(event, user)
        subject = f"{word}: {text_of(event, 'SUMMARY') or '(no title)'}"
        outgoing = self._compose(
            user, invited or [_bare(user)], calendar, subject, text or _event_text(event)
        )
        result = self._record_sent(target, user, outgoing)
        return _applied(user, [result], [], dry_run, (outgoing,) if invited else ())

    def decline_counter(
        self, data: bytes | Message, *, comment: str = "", dry_run: bool = False
    ) -> Applied:
        """Decline an attendee's COUNTER (RFC 5546 §3.2.8): the
        DECLINECOUNTER goes to the attendee who proposed, the proposal is
        dropped from the store, and the message is returned for the caller
        to send. Raises NotACounter, NotOrganiser."""
        message = data if isinstance(data, Message) else self.read(data)
        counters = [o for o in message.objects if o.method == "COUNTER"]
        if not counters:
            method = message.objects[0].method if message.objects else ""
            raise NotACounter(f"only a COUNTER can be declined (this is a {method})")
        obj = counters[0]
        user = self._organiser_of(obj)
        with self._target(dry_run) as target:
            calendar = organising.decline_counter(obj, target.clock.now(), comment)
            proposers = organising.recipients_of(obj.first, user)
            text = f"The proposal for {_summary(obj)} is declined.\n"
            text += f"\n{comment}\n" if comment else ""
            outgoing = self._compose(
                user, proposers, calendar, f"Declined: {_summary(obj)}", text, message
            )
            results = [self._record_sent(target, user, outgoing)]
        return _applied(user, results, [], dry_run, (outgoing,))

    def _organised(self, uid: str) -> tuple[str, ItipObject]:
        """The identity that organises stored event ``uid``, and the event."""
        for user in self.identities:
            stored = self.site.records(user).stored(uid)
            if stored is not None:
                return self._organiser_of(stored), stored
        raise UnknownEvent(f"no event {uid[:100]!r} in the calendar")

    def _organiser_of(self, obj: ItipObject) -> str:
        organiser = organizer_of(obj.first)
        for user in self.identities:
            if _bare(user) == organiser:
                return user
        raise NotOrganiser(f"{organiser or 'someone else'} organises {obj.uid[:100]!r}")

    # -- composing and recording --------------------------------------------------

    def _compose(
        self,
        user: str,
        to: Sequence[str],
        calendar: Calendar,
        subject: str,
        text: str,
        answering: Message | None = None,
    ) -> Outgoing:
        """The iMIP message (RFC 6047) from ``user`` to ``to``; threaded
        under ``answering`` when given."""
        parsed = answering.parsed if answering is not None else None
        in_reply_to = parsed.message_id if parsed is not None else ""
        references = [*parsed.references, in_reply_to] if parsed and in_reply_to else []
        data = build_message(
            from_addr=_bare(user),
            to_addrs=list(to),
            subject=subject,
            text=text,
            calendar=serialise(calendar),
            method=str(calendar.get("METHOD", "")),
            in_reply_to=in_reply_to,
            references=references,
            auto_submitted="",
            date=self.site.clock.now(),
            message_id_domain=_domain(user),
        )
        return outgoing_of(Sent(_bare(user), list(to), data))

    def _record_sent(self, target: Site, user: str, outgoing: Outgoing) -> agent.Result:
        """Record a message the user sends as ``imip-person-outgoing`` does."""
        envelope = Envelope(user, _bare(user))
        return _run(target, outgoing.message, envelope, OutgoingHandler)[0]

    def _cn(self, user: str) -> str:
        return self.site.preferences_of(user).get("CN") or ""

    def _participant(self, objects: Sequence[ItipObject]) -> str:
        for obj in objects:
            user = own_identity(obj, self.identities)
            if user:
                return user
        raise NotAttendee(f"none of {', '.join(map(_bare, self.identities))} takes part")

    @contextmanager
    def _target(self, dry_run: bool) -> Iterator[Site]:
        """The site to write: this one, or overlays of its store and ledger."""
        if not dry_run:
            yield self.site
            return
        yield replace(
            self.site, store=OverlayStore(self.site.store), ledger=OverlayLedger(self.site.ledger)
        )


#: The widest span asked for when checking whether anything is known of
#: someone's free/busy.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_END = datetime(9999, 1, 1, tzinfo=UTC)


def _bare(user: str) -> str:
    return user.removeprefix("mailto:")


def _domain(user: str) -> str:
    return _bare(user).rpartition("@")[2] or "localhost"


def _summary(obj: ItipObject) -> str:
    return text_of(obj.first, "SUMMARY") or "(no title)"


def _answer_text(user: str, partstat: str, summary: str, comment: str) -> str:
    text = f"{_bare(user)} has answered {ANSWER_WORDS[partstat].lower()}: {summary}\n"
    return text + (f"\n{comment}\n" if comment else "")


def _event_text(event: Component) -> str:
    """The text part of an invitation: what, when, where."""
    lines = [text_of(event, "SUMMARY")]
    start, end = event.decoded("DTSTART"), event.decoded("DTEND")
    lines.append(f"When: {start.isoformat()} to {end.isoformat()}")
    if "RRULE" in event:
        rule = event["RRULE"].to_ical()
        lines.append(f"Repeats: {rule.decode() if isinstance(rule, bytes) else rule}")
    if "LOCATION" in event:
        lines.append(f"Where: {text_of(event, 'LOCATION')}")
    if "DESCRIPTION" in event:
        lines += ["", text_of(event, "DESCRIPTION")]
    return "\n".join(lines) + "\n"


def _request(objects: Sequence[ItipObject]) -> ItipObject:
    for obj in objects:
        if obj.kind == "VEVENT" and obj.method == "REQUEST":
            return obj
    method = objects[0].method if objects else ""
    raise NotARequest(f"only a REQUEST can be answered (this is a {method})")


def _answered(obj: ItipObject, rid: str | None) -> list[Component]:
    """The components a REPLY answers: all of ``obj``, or instance ``rid``
    (an override of the message, else an occurrence of its master)."""
    if rid is None:
        return list(obj.components)
    try:
        moment = parse_recurrence_id(rid)
    except ValueError as exc:
        raise UnknownRecurrence(f"not a recurrence id: {rid[:100]!r}") from exc
    wanted = format_recurrence_id(moment)
    for component in obj.overrides:
        if recurrence_id_of(component) == wanted:
            return [component]
    master = obj.master
    if master is None or not ("RRULE" in master or "RDATE" in master):
        raise UnknownRecurrence(f"no instance {rid[:100]!r} in this message")
    return [merge.instance_of(master, moment)]


def _check_occurrence(records: UserRecords, obj: ItipObject, instance: Component) -> None:
    """UnknownRecurrence unless ``instance`` is an occurrence of the series
    (when the user's window holds the whole expansion: else it may lie
    beyond what is expanded, and the organiser judges the answer)."""
    series = ItipObject(obj.method, obj.kind, obj.uid, [obj.first], obj.timezones)
    try:
        expansion = records.expand(series, cancelled=())
    except CalendarDataError:
        return
    wanted = recurrence_id_of(instance, records.zone)
    found = any(i.recurrenceid == wanted for i in expansion.instances)
    if not found and not expansion.truncated:
        raise UnknownRecurrence(f"{wanted} is no occurrence of this event")


def parse_recurrence_id(text: str) -> date | datetime:
    """A RECURRENCE-ID as given on a command line: ``20300108`` (a date) or
    a date-time (``20300108T100000Z``, ISO 8601; UTC when it has no zone)."""
    if len(text) == 8 and text.isdigit():
        return datetime.strptime(text, "%Y%m%d").date()
    return parse_datetime(text)


def _outdated(obj: ItipObject, stored: ItipObject) -> bool:
    return version_key(obj.first) < version_key(stored.first)


def _run(
    site: Site,
    raw: bytes,
    envelope: Envelope,
    factory: agent.HandlerFactory,
    security: Security | None = None,
) -> tuple[agent.Result, list[Sent]]:
    """Run the agent with ``factory`` over ``site``: replies are spooled in
    a scratch outbox and collected, deliveries dropped; nothing is sent.
    ``security``: what the client vouches for (see :func:`read_message`)."""
    collector = Collector()
    with tempfile.TemporaryDirectory(prefix="imip-client-") as scratch:
        ctx = agent.Context(
            settings=site.settings,
            store=site.store,
            preferences=site.preferences,
            clock=site.clock,
            sender=collector,
            spool=Spool(Path(scratch) / "spool"),
            deliverer=Collector(),
            ledger=site.ledger,
            vouched=security,
        )
        try:
            result = agent.run(raw, [envelope], ctx, factory)
        except InputError as exc:
            raise ClientParseError(str(exc)) from exc
    return result, collector.sent


def _security_view(security: Security, organisers: Sequence[str]) -> SecurityView:
    """What the inspection says of encryption and signature."""
    return SecurityView(
        encrypted=security.encrypted,
        signed=security.signed,
        signer=security.signer,
        signer_addresses=security.signer_addresses,
        signed_by_organiser=any(security.signed_by(o) for o in organisers),
        problem=security.problem or security.signature_problem,
    )


def _applied(
    user: str,
    results: Sequence[agent.Result],
    sent: Sequence[Sent],
    dry_run: bool,
    extra: Sequence[Outgoing] = (),
) -> Applied:
    decisions, changes = [], []
    for result in results:
        for recipient in result.recipients:
            for outcome in recipient.objects:
                decisions += [f"{d.outcome}/{d.code}: {d.reason}" for d in outcome.decisions]
                changes += [
                    Change(_bare(recipient.user), w.operation, w.uid, w.recurrence_id)
                    for w in outcome.writes
                ]
                if outcome.error:
                    decisions.append(f"error: {outcome.error}")
    outgoing = (*extra, *(outgoing_of(s) for s in sent))
    return Applied(_bare(user), tuple(decisions), tuple(changes), outgoing, dry_run)


def outgoing_of(sent: Sent) -> Outgoing:
    """The :class:`Outgoing` form of a composed message: its headers, its
    calendar and text parts."""
    message = BytesParser(policy=email.policy.default).parsebytes(sent.message)
    calendar = text = method = ""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "text/calendar" and not calendar:
            calendar = str(part.get_content())
            method = str(part.get_param("method") or "").upper()
        elif kind == "text/plain" and not text:
            text = str(part.get_content())
    return Outgoing(
        envelope_from=sent.envelope_from,
        recipients=tuple(sent.recipients),
        from_header=_header(message, "From"),
        to=_header(message, "To"),
        subject=_header(message, "Subject"),
        message_id=_header(message, "Message-ID"),
        in_reply_to=_header(message, "In-Reply-To"),
        references=_header(message, "References"),
        method=method,
        calendar=calendar,
        text=text,
        message=sent.message,
    )


def _header(message: email.message.Message, name: str) -> str:
    """A header's value on one line, without the fold's spaces."""
    return " ".join(str(message.get(name, "")).split())
