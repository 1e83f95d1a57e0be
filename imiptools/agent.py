"""The agent: one message, each recipient's unit of work, then sending.

Per message (STYLE.md): parse once -> for each recipient: lock (with a
deadline) -> handle each scheduling object (decide, spool replies, write the
store) -> unlock -> send what was spooled. Errors of one scheduling object
do not stop the others; the outcome is a :class:`Result` that the program
turns into an exit code (see :mod:`imiptools.errors`), with what was done
for each recipient and object (:mod:`imiptools.outcomes`): what a program
logs and any other front end can read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any, Protocol

from icalendar import Component

from imiptools import addresses
from imiptools.config import Settings
from imiptools.dates import Clock, zone_or_utc
from imiptools.deferred import dataclass
from imiptools.errors import (
    CalendarDataError,
    ConfigError,
    DeliveryRefused,
    ExitCode,
    InputError,
    TransientError,
    UnusableAddress,
)
from imiptools.handlers.common import Envelope, Held, Outgoing, Unit
from imiptools.i18n import translator
from imiptools.itip.intake import CpuBudget, MessageLimits, Tally, object_problem
from imiptools.itip.objects import (
    ItipObject,
    parse_calendars,
    recurrence_id_of,
    scheduling_objects,
    serialise,
    text_of,
)
from imiptools.mail.compose import build_message, new_message_id
from imiptools.mail.keyring import Keyring, KeyringError
from imiptools.mail.openpgp import learn_autocrypt, open_message, protect
from imiptools.mail.parse import ParsedMessage, Security, parse_message
from imiptools.mail.send import Sender
from imiptools.outcomes import ObjectOutcome, Queued, RecipientOutcome
from imiptools.preferences import Preferences, PreferenceSource, UnitPreferences
from imiptools.quota.base import QuotaLedger
from imiptools.records import UserRecords, Window
from imiptools.spool import Outbox, SpooledMessage
from imiptools.stores.base import Store
from imiptools.stores.names import normalise_user
from imiptools.stores.recording import RecordingStore
from imiptools.stores.transaction import OutgoingMessage, Transaction, store_write

log = logging.getLogger(__name__)


class Handler(Protocol):
    """A handler for one kind of calendar user (resource, person, ...)."""

    def scope(self, obj: ItipObject) -> AbstractContextManager[Held]:
        """Held around handling ``obj`` and committing it (further locks);
        gives what it holds, for :meth:`handle`."""
        ...

    def handle(self, obj: ItipObject, held: Held) -> None:
        """Process one scheduling object; raise InputError if it is unusable."""
        ...

    def finish(self) -> None:
        """Called once after every object, still under the user's lock."""
        ...

    def deliveries(self, raw: bytes) -> list[bytes]:
        """What the user's mailbox receives (nothing for a resource)."""
        ...

    def unreadable(self) -> None:
        """The message could not be decrypted (``unit.message.security``);
        called once, before :meth:`finish`."""
        ...


class HandlerFactory(Protocol):
    """A handler class: built per unit; says whether unusable data bounces."""

    bounce_unusable: bool

    def __call__(self, unit: Unit) -> Handler:
        """A handler for ``unit``."""
        ...


@dataclass(frozen=True)
class Context:
    """Everything a run needs, built once by the program (from a
    :class:`~imiptools.site.Site`)."""

    settings: Settings
    store: Store
    preferences: PreferenceSource
    clock: Clock
    sender: Sender
    spool: Outbox
    #: Where people's mail is delivered (LMTP, local SMTP, sendmail, --output).
    deliverer: Sender | None = None
    #: The site's quota ledger (None: quota functions answer "misconfigured").
    ledger: QuotaLedger | None = None
    #: The site's OpenPGP keys (None: encrypted mail cannot be read).
    keyring: Keyring | None = None
    #: What a front end that decrypted and verified the message itself says
    #: of it (imip-client: the user's mail client holds the keys); None:
    #: the agent finds out (:func:`imiptools.mail.openpgp.open_message`).
    vouched: Security | None = None


@dataclass(frozen=True)
class Result:
    """The outcome of a run: exit code and a one-line status, what was done
    for each envelope recipient (in envelope order), and the calendar parts
    or objects that could not be used."""

    code: ExitCode
    status: str
    recipients: tuple[RecipientOutcome, ...] = ()
    errors: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (the exit code as its number)."""
        return {
            "code": int(self.code),
            "status": self.status,
            "recipients": [r.as_dict() for r in self.recipients],
            "errors": list(self.errors),
        }


@dataclass
class Extracted:
    """The scheduling objects of a message and the errors met on the way."""

    objects: list[ItipObject]
    errors: list[str]
    parts: int


def extract(
    message: ParsedMessage, limits: MessageLimits | None = None, budget: CpuBudget | None = None
) -> Extracted:
    """Parse every calendar part within the message's limits (see
    :mod:`imiptools.itip.intake`); unusable parts and objects are recorded,
    not raised. Over a limit, the message's calendar data is unusable as a
    whole: no object is kept, and the reason is the one error. With ``budget``,
    the parts and objects left when its CPU time is spent are not read or
    checked: each is reported, none is kept."""
    limits = limits or MessageLimits()
    budget = budget or CpuBudget([], float("inf"))
    try:
        limits.check_size(part.text for part in message.parts)
        objects, errors = _parse_parts(message, Tally(limits), budget)
    except CalendarDataError as exc:
        log.warning("calendar data ignored: %s", exc)
        return Extracted([], [str(exc)], len(message.parts))
    usable: list[ItipObject] = []
    for index, obj in enumerate(objects):
        if index and budget.spent():
            errors.append(_unread(len(objects) - index, "scheduling object(s) not checked", budget))
            break
        problem = object_problem(obj)
        if problem:
            log.warning("uid=%r unusable: %s", obj.uid[:200], problem)
            errors.append(problem)
        else:
            usable.append(obj)
    return Extracted(usable, errors, len(message.parts))


def _unread(count: int, what: str, budget: CpuBudget) -> str:
    reason = f"{count} {what}: the message used its {budget.seconds:g} s of CPU"
    log.warning("%s", reason)
    return reason


def _parse_parts(
    message: ParsedMessage, tally: Tally, budget: CpuBudget
) -> tuple[list[ItipObject], list[str]]:
    """The objects of every readable part; raises CalendarDataError past a
    limit of ``tally``, records a part that cannot be read."""
    objects: list[ItipObject] = []
    errors: list[str] = []
    for index, part in enumerate(message.parts):
        if index and budget.spent():
            left = len(message.parts) - index
            errors.append(_unread(left, "calendar part(s) not read", budget))
            break
        try:
            calendars = parse_calendars(part.text)
        except CalendarDataError as exc:
            errors.append(str(exc))
            continue
        for calendar in calendars:
            tally.add_calendar(calendar)
            found = scheduling_objects(calendar, part.method)
            tally.add_objects(found)
            objects += found
    return objects, errors


def read(
    raw: bytes, settings: Settings, started: float | None = None, keyring: Keyring | None = None
) -> tuple[ParsedMessage, Extracted]:
    """Parse ``raw`` and extract its scheduling objects within the limits.

    A message over ``max_message_size`` (only a person's agent reads one:
    the mailbox gets it unchanged) keeps its headers, and its calendar data
    is ignored unread. An OpenPGP message (RFC 3156) is decrypted and its
    signature verified with ``keyring`` (:func:`imiptools.mail.openpgp.open_message`).
    """
    if len(raw) > settings.max_message_size:
        reason = (
            f"message of {len(raw)} bytes exceeds the limit of "
            f"{settings.max_message_size} bytes; calendar data not read"
        )
        log.warning("%s", reason)
        return parse_message(raw, headers_only=True), Extracted([], [reason], 1)
    message = open_message(raw, keyring, settings.max_message_size)
    budget = CpuBudget(
        [], settings.max_seconds, time.process_time() if started is None else started
    )
    return message, extract(message, MessageLimits.from_settings(settings), budget)


def run(raw: bytes, envelope: Sequence[Envelope], ctx: Context, factory: HandlerFactory) -> Result:
    """Process one message for each envelope recipient, then send."""
    if not envelope:
        raise ConfigError("no recipient given (use -o ADDRESS)")
    users = _front(envelope, ctx.settings)
    if users is None:
        return Result(ExitCode.OK, "2.0.0 unusable recipient address from the null sender ignored")
    started = time.process_time()
    message, extracted = read(raw, ctx.settings, started, ctx.keyring)
    if ctx.vouched is not None:
        message = replace(message, security=ctx.vouched)
    learn_autocrypt(message, ctx.keyring, ctx.clock.now())
    objects = CpuBudget(extracted.objects, ctx.settings.max_seconds, started)
    handlers: list[tuple[str, Handler]] = []
    outcomes: list[RecipientOutcome] = []
    for user, each in zip(users, envelope, strict=True):
        handler, outcome = _process_user(user, each, message, objects, ctx, factory)
        handlers.append((user, handler))
        outcomes.append(outcome)
    handled = sum(not o.error for r in outcomes for o in r.objects)
    failures = [*extracted.errors, *(o.error for r in outcomes for o in r.objects if o.error)]
    failures += objects.reasons()
    flush(ctx)
    delivered = deliver(raw, handlers, envelope[0].sender, ctx)
    result = _result(extracted, handled, failures, envelope[0].sender, factory.bounce_unusable)
    recipients = tuple(replace(o, delivered=n) for o, n in zip(outcomes, delivered, strict=True))
    return replace(result, recipients=recipients, errors=tuple(failures))


def _front(envelope: Sequence[Envelope], settings: Settings) -> list[str] | None:
    """The calendar user of each recipient, checked before anything is done.

    Raises UnusableAddress (65) for a recipient no sender can use (its
    replies and deliveries could never leave), ConfigError (75) for an
    unusable ``calendar_address``; None when the message is a bounce (the
    null sender), which is dropped rather than bounced again.
    """
    if settings.calendar_address.strip():
        try:
            addresses.check(addresses.normalise(settings.calendar_address))
        except UnusableAddress as exc:
            raise ConfigError(f"calendar_address: {exc}") from exc
    try:
        return [recipient_user(each.recipient) for each in envelope]
    except UnusableAddress as exc:
        if envelope[0].sender != "":
            raise
        log.warning("dropped: %s", exc)
        return None


def recipient_user(recipient: str) -> str:
    """The normalised ``mailto:`` URI of an envelope recipient (RFC 6068:
    ``mailto:``, case, a trailing dot and percent-encoding are normalised).

    Raises UnsafeName or UnusableAddress (65) when it cannot be used.
    """
    user = normalise_user(recipient)
    why = addresses.problem(user.removeprefix("mailto:"))
    if why:
        raise UnusableAddress(f"unusable recipient {recipient[:100]!r}: {why}")
    return user


def deliver(
    raw: bytes, handlers: list[tuple[str, Handler]], sender: str | None, ctx: Context
) -> list[int]:
    """Deliver to each user's mailbox what its handler says, after the replies;
    how many messages each user was given.

    A failure raises DeliveryFailed (75): the MTA retries the whole message,
    whose calendar data is then a duplicate that changes nothing.
    """
    envelope_from = _usable_sender(sender)
    counts = []
    for user, handler in handlers:
        messages = handler.deliveries(raw)
        for message in messages:
            if ctx.deliverer is None:
                raise ConfigError("no delivery method configured (-l, -L or --sendmail)")
            ctx.deliverer.send(envelope_from, [user.removeprefix("mailto:")], message)
        counts.append(len(messages))
    return counts


def _usable_sender(sender: str | None) -> str:
    """The envelope sender to deliver with: as given, else normalised
    (a trailing dot, ``mailto:``), else '' (the null sender)."""
    if not sender:
        return ""
    for candidate in (sender, addresses.normalise(sender)):
        if addresses.is_usable(candidate):
            return candidate
    log.warning("delivering with the null sender instead of %r", sender[:100])
    return ""


def _result(
    extracted: Extracted, handled: int, failures: list[str], sender: str | None, bounce: bool
) -> Result:
    if not extracted.parts:
        return Result(ExitCode.OK, "2.0.0 no calendar data")
    if handled or not failures:
        return Result(ExitCode.OK, f"2.0.0 processed {handled} scheduling object(s)")
    if not bounce:
        log.warning("unusable calendar data delivered as it is: %s", failures[0])
        return Result(ExitCode.OK, "2.0.0 delivered; unusable calendar data ignored")
    if sender == "":
        log.warning("unusable calendar data from the null sender: %s", failures[0])
        return Result(ExitCode.OK, "2.0.0 unusable calendar data from the null sender ignored")
    raise CalendarDataError(failures[0])


def _process_user(
    user: str,
    envelope: Envelope,
    message: ParsedMessage,
    objects: Iterable[ItipObject],
    ctx: Context,
    factory: HandlerFactory,
) -> tuple[Handler, RecipientOutcome]:
    """The unit of work of ``user``: each scheduling object is one transaction,
    committed (store writes, quota records and replies together) before the
    next is handled; :meth:`Handler.finish` is one more. Returns the handler
    (for deliveries) and each object's outcome; an unusable object's has
    its ``error``."""
    outcomes: list[ObjectOutcome] = []
    with ctx.store.lock(user, ctx.settings.lock_timeout):
        unit = make_unit(user, envelope, message, ctx)
        handler = factory(unit)
        for obj in objects:
            with handler.scope(obj) as held:
                error = ""
                try:
                    handler.handle(obj, held)
                except InputError as exc:
                    log.warning("user=%s uid=%r unusable: %s", user, obj.uid[:200], exc)
                    error = str(exc) or type(exc).__name__
                outcomes.append(_outcome(unit, obj, error))
                unit.store.commit()
        if message.security.problem:
            handler.unreadable()
            unit.store.commit()
        handler.finish()
        unit.store.commit()
    return handler, RecipientOutcome(user, tuple(outcomes))


def _outcome(unit: Unit, obj: ItipObject, error: str) -> ObjectOutcome:
    """What ``obj`` led to: the unit's decisions, quota changes and queued
    mail, and the writes of its transaction (before the commit)."""
    writes = tuple(store_write(call) for call in unit.transaction.calls)
    rids = tuple(_recurrence_id(c, unit) for c in obj.components)
    return unit.outcomes.take(obj.method, obj.kind, obj.uid, rids, writes, error)


def _recurrence_id(component: Component, unit: Unit) -> str:
    """The normalised RECURRENCE-ID of ``component`` ('' for a master), or
    its text when it cannot be read."""
    try:
        return recurrence_id_of(component, unit.zone)
    except CalendarDataError:
        return text_of(component, "RECURRENCE-ID")


def make_unit(user: str, envelope: Envelope, message: ParsedMessage, ctx: Context) -> Unit:
    """The unit of work of ``user`` (preferences, zone, records at "now")."""
    settings = ctx.settings
    source = UnitPreferences(ctx.preferences, user)
    preferences = Preferences(user, source, settings.preference_defaults)
    zone = zone_or_utc(preferences.get("TZID"))
    now = ctx.clock.now()
    window = Window.for_user(settings, preferences)
    store = RecordingStore(ctx.store, Transaction(user, ctx.spool))
    records = UserRecords(store, user, zone, window, now)
    language = translator(preferences.get("LANG"))
    return Unit(
        user,
        settings,
        store,
        records,
        preferences,
        message,
        envelope,
        now,
        zone,
        _spool,
        language,
        ledger=ctx.ledger,
        keyring=ctx.keyring,
    )


def _spool(unit: Unit, outgoing: Outgoing) -> None:
    """Keep ``outgoing`` in the unit's transaction: spooled when it commits."""
    addresses.check_envelope(unit.calendar_address, outgoing.recipients)
    message_id = new_message_id(_id_domain(unit))
    data = compose(unit, outgoing, message_id)
    message = OutgoingMessage(unit.calendar_address, outgoing.recipients, data, outgoing.key)
    unit.transaction.send(message)
    queued = Queued(
        outgoing.method, tuple(outgoing.recipients), outgoing.subject, message_id, outgoing.key
    )
    unit.outcomes.sent.append(queued)


def compose(unit: Unit, outgoing: Outgoing, message_id: str = "") -> bytes:
    """The RFC 6047 message for ``outgoing``, answering the unit's message,
    signed and encrypted as :func:`protected` says (which keeps the
    Message-ID outside); ``message_id`` as :func:`build_message` takes it."""
    message = unit.message
    references = [*message.references, message.message_id] if message.message_id else []
    calendar = outgoing.calendar
    data = build_message(
        from_addr=unit.calendar_address,
        to_addrs=outgoing.recipients,
        subject=outgoing.subject,
        text=outgoing.text,
        calendar=None if calendar is None else serialise(calendar),
        method=None if calendar is None else outgoing.method,
        in_reply_to=message.message_id,
        references=references,
        date=unit.now,
        message_id_domain=_id_domain(unit),
        attachments=[(serialise(c), m, name) for c, m, name in outgoing.attachments],
        message_id=message_id,
    )
    return protected(unit, outgoing.recipients, data)


def _id_domain(unit: Unit) -> str:
    """The domain of the Message-IDs of the unit's replies: its address's."""
    return unit.calendar_address.rpartition("@")[2] or "localhost"


def protected(unit: Unit, recipients: Sequence[str], data: bytes) -> bytes:
    """``data`` as the site's keys allow (RFC 3156, Autocrypt Level 1):

    - encrypted to every recipient's key, and signed, when the message
      answered came encrypted and every recipient's key is known;
    - else signed when the user's ``sign_outgoing`` is ``yes``;
    - with an ``Autocrypt:`` header whenever the sender has a secret key.

    Without a secret key for the sender nothing is signed (logged once per
    message); a key operation that fails leaves the message as it was
    (logged): a reply in clear is better than no reply.
    """
    keyring = unit.keyring
    if keyring is None or not keyring.exists():
        return data
    sender = unit.calendar_address
    try:
        signer = sender if keyring.secret_key(sender) is not None else None
        encrypt_to = _encrypt_to(unit, keyring, recipients)
        sign = unit.preferences.get("sign_outgoing") == "yes" or bool(encrypt_to)
        if sign and signer is None:
            log.warning("user=%s no secret key for %s: not signed", unit.user, sender)
        if signer is None and not encrypt_to:
            return data
        return protect(
            data,
            keyring,
            signer=signer if sign else None,
            encrypt_to=encrypt_to,
            advertise=signer,
        )
    except (KeyringError, OSError, ValueError) as exc:
        log.error("user=%s OpenPGP failed, sent as it is: %s", unit.user, exc)
        return data


def _encrypt_to(unit: Unit, keyring: Keyring, recipients: Sequence[str]) -> list[str]:
    """The recipients to encrypt to: all of them when the message answered
    was encrypted and each has a key, else none."""
    security = unit.message.security
    if not security.encrypted or security.problem:
        return []
    missing = [r for r in recipients if keyring.public_key(r) is None]
    if missing:
        log.warning("user=%s no key for %s: the reply is not encrypted", unit.user, missing)
        return []
    return list(recipients)


def flush(ctx: Context) -> int:
    """Send everything spooled (ours and any left by an interrupted run)
    that no other run is sending.

    Holds the spool's lock as one of its senders, and sends, or sets aside,
    each message only while it has claimed it (see :class:`~imiptools.spool.Outbox`),
    so that two runs never send one message twice, yet send side by side. Each
    message goes through :func:`send_spooled`: a transient failure raises
    DeliveryFailed (75) and leaves it and the rest spooled; one that can
    never be sent is set aside and the others still go. Unreadable spool
    files are set aside too.
    """
    sent = 0
    with ctx.spool.locked(ctx.settings.lock_timeout, shared=True):
        items, unreadable = ctx.spool.scan()
        for identifier, reason in unreadable:
            with ctx.spool.claimed(identifier) as ours:
                if ours:
                    log.error("outbox: set aside %s: %s", identifier, reason)
                    ctx.spool.hold(identifier, reason)
        for item in items:
            with ctx.spool.claimed(item.id) as ours:
                if ours:
                    sent += send_spooled(ctx, item)
    return sent


def send_spooled(ctx: Context, item: SpooledMessage) -> bool:
    """Send one spooled message; True once the mail system took it.

    - sent: removed from the spool;
    - DeliveryRefused (SMTP 5xx, sendmail EX_DATAERR/EX_NOUSER/EX_NOHOST),
      UnusableAddress, or any other error that is not transient: set aside
      in ``held/`` with the reason (``imip-admin outbox``, reported by
      ``imip-admin check``), False; a message that can never be sent must
      never stop the others (Mailman's shunt queue);
    - any other TransientError (sendmail exit 75, SMTP 4xx, a socket down):
      raised, so the run exits 75 and this message stays first in line.
    """
    try:
        ctx.sender.send(item.envelope_from, item.recipients, item.message)
    except (DeliveryRefused, InputError) as exc:  # InputError: UnusableAddress, a 5xx
        return _set_aside(ctx, item, str(exc))
    except TransientError:
        raise
    except Exception as exc:  # the shunt: nothing may block the outbox
        log.exception("outbox: cannot send %s", item.id)
        return _set_aside(ctx, item, f"{type(exc).__name__}: {exc}")
    ctx.spool.done(item.id)
    return True


def _set_aside(ctx: Context, item: SpooledMessage, reason: str) -> bool:
    to = ",".join(item.recipients)
    log.error("outbox: set aside %s (to=<%s>): %s", item.id, to[:200], reason)
    ctx.spool.hold(item.id, reason)
    return False
