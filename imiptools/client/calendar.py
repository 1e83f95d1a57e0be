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
from dataclasses import dataclass, replace
from datetime import date, datetime
from email.parser import BytesParser
from pathlib import Path

from icalendar import Component

from imiptools import addresses, agent
from imiptools.client.inspection import own_identity, sender_speaks_for, view
from imiptools.client.model import (
    Applied,
    Change,
    Entry,
    Inspection,
    ObjectView,
    Outgoing,
    SecurityView,
    Waiting,
)
from imiptools.config import Settings
from imiptools.dates import Clock, format_recurrence_id, format_utc, parse_datetime
from imiptools.errors import (
    CalendarDataError,
    ClientParseError,
    InputError,
    MissingMethod,
    NoCalendar,
    NotARequest,
    NotAttendee,
    OutOfSequence,
    SenderNotParticipant,
    SiteMissing,
    UnknownRecurrence,
)
from imiptools.handlers.common import Envelope
from imiptools.handlers.outgoing import OutgoingHandler
from imiptools.handlers.person import PersonHandler
from imiptools.initialise import Owner, prepare_directories
from imiptools.itip import merge, replies
from imiptools.itip.objects import (
    ItipObject,
    organizer_of,
    recurrence_id_of,
    text_of,
    version_key,
)
from imiptools.mail.compose import build_message
from imiptools.mail.parse import ParsedMessage, Security
from imiptools.quota.overlay import OverlayLedger
from imiptools.records import UserRecords
from imiptools.site import Site, open_site
from imiptools.spool import Spool
from imiptools.stores.names import normalise_user
from imiptools.stores.overlay import OverlayStore
from imiptools.views.whatif import Collector, Sent

#: The answers :meth:`UserCalendar.respond` gives (RFC 5546 §3.2.3).
PARTSTATS = ("ACCEPTED", "TENTATIVE", "DECLINED")
#: The words of the subject and text of a REPLY.
ANSWER_WORDS = {"ACCEPTED": "Accepted", "TENTATIVE": "Tentative", "DECLINED": "Declined"}


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
        dry_run: bool = False,
    ) -> Applied:
        """Answer the invitation (RFC 5546 §3.2.3): the whole event as sent
        (``recurrence_id`` None) or one instance (its RECURRENCE-ID, as
        ``20300108T100000Z``). The invitation is recorded first when the
        store lacks it (as :meth:`apply`), then the answer is recorded as
        ``imip-person-outgoing`` records a REPLY the user sent; the REPLY
        is the one message returned, for the caller to send.

        Raises NotARequest, NotAttendee, OutOfSequence (the stored copy is
        newer: answer that one), UnknownRecurrence, or ValueError for a
        PARTSTAT that is not in :data:`PARTSTATS`.
        """
        partstat = partstat.upper()
        if partstat not in PARTSTATS:
            raise ValueError(f"PARTSTAT must be one of {', '.join(PARTSTATS)}")
        message = data if isinstance(data, Message) else self.read(data)
        obj = _request(message.objects)
        user = own_identity(obj, self.identities)
        if not user or organizer_of(obj.first) == _bare(user):
            raise NotAttendee(f"none of {', '.join(map(_bare, self.identities))} is invited")
        components = _answered(obj, recurrence_id)
        if recurrence_id is not None and components[0] not in obj.overrides:
            _check_occurrence(self.site.records(user), obj, components[0])
        results = []
        with self._target(dry_run) as target:
            records = target.records(user)
            stored = records.stored(obj.uid)
            if stored is not None and _outdated(obj, stored):
                raise OutOfSequence("the stored copy of the event is newer than this message")
            if stored is None or version_key(obj.first) > version_key(stored.first):
                sender = message.parsed.from_address or None
                results.append(
                    _run(
                        target,
                        message.raw,
                        Envelope(user, sender),
                        PersonHandler,
                        message.parsed.security,
                    )[0]
                )
            now = target.clock.now()
            reply = self._reply(message, obj, components, user, partstat, comment, now)
            envelope = Envelope(user, _bare(user))
            results.append(_run(target, reply.message, envelope, OutgoingHandler)[0])
        return _applied(user, results, [], dry_run, (reply,))

    def _reply(
        self,
        message: Message,
        obj: ItipObject,
        components: list[Component],
        user: str,
        partstat: str,
        comment: str,
        now: datetime,
    ) -> Outgoing:
        cn = self.site.preferences_of(user).get("CN")
        answers = [
            replies.reply_component(c, user, partstat, now, comment=comment, cn=cn)
            for c in components
        ]
        calendar = replies.reply(answers).to_ical()
        summary = text_of(obj.first, "SUMMARY") or "(no title)"
        organiser = organizer_of(obj.first)
        word = ANSWER_WORDS[partstat]
        text = f"{_bare(user)} has answered {word.lower()}: {summary}\n"
        if comment:
            text += f"\n{comment}\n"
        parsed = message.parsed
        references = [*parsed.references, parsed.message_id] if parsed.message_id else []
        data = build_message(
            from_addr=_bare(user),
            to_addrs=[organiser],
            subject=f"{word}: {summary}",
            text=text,
            calendar=calendar,
            method="REPLY",
            in_reply_to=parsed.message_id,
            references=references,
            auto_submitted="",
            date=now,
            message_id_domain=_bare(user).rpartition("@")[2] or "localhost",
        )
        return outgoing_of(Sent(_bare(user), [organiser], data))

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


def _bare(user: str) -> str:
    return user.removeprefix("mailto:")


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
