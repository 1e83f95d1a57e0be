"""The agent: one message, each recipient's unit of work, then sending.

Per message (STYLE.md): parse once -> for each recipient: lock (with a
deadline) -> handle each scheduling object (decide, spool replies, write the
store) -> unlock -> send what was spooled. Errors of one scheduling object
do not stop the others; the outcome is a :class:`Result` that the program
turns into an exit code (see :mod:`imiptools.errors`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from imiptools.config import Settings
from imiptools.dates import Clock, zone_or_utc
from imiptools.errors import CalendarDataError, ConfigError, ExitCode, InputError
from imiptools.handlers.common import Envelope, Outgoing, Unit
from imiptools.i18n import translator
from imiptools.itip.intake import CpuBudget, MessageLimits, Tally, object_problem
from imiptools.itip.objects import ItipObject, parse_calendars, scheduling_objects
from imiptools.lock import file_lock
from imiptools.mail.compose import build_message, check_address
from imiptools.mail.parse import ParsedMessage, parse_message
from imiptools.mail.send import Sender
from imiptools.preferences import Preferences, PreferenceSource
from imiptools.records import UserRecords, Window
from imiptools.spool import Spool
from imiptools.stores.base import Store
from imiptools.stores.names import normalise_user

log = logging.getLogger(__name__)


class Handler(Protocol):
    """A handler for one kind of calendar user (resource, person, ...)."""

    def handle(self, obj: ItipObject) -> None:
        """Process one scheduling object; raise InputError if it is unusable."""
        ...

    def finish(self) -> None:
        """Called once after every object, still under the user's lock."""
        ...

    def deliveries(self, raw: bytes) -> list[bytes]:
        """What the user's mailbox receives (nothing for a resource)."""
        ...


class HandlerFactory(Protocol):
    """A handler class: built per unit; says whether unusable data bounces."""

    bounce_unusable: bool

    def __call__(self, unit: Unit) -> Handler:
        """A handler for ``unit``."""
        ...


@dataclass(frozen=True)
class Context:
    """Everything a run needs, built once by the program."""

    settings: Settings
    store: Store
    preferences: PreferenceSource
    clock: Clock
    sender: Sender
    spool: Spool
    #: Where people's mail is delivered (LMTP, local SMTP, sendmail, --output).
    deliverer: Sender | None = None


@dataclass(frozen=True)
class Result:
    """The outcome of a run: exit code and a one-line status."""

    code: ExitCode
    status: str


@dataclass
class Extracted:
    """The scheduling objects of a message and the errors met on the way."""

    objects: list[ItipObject]
    errors: list[str]
    parts: int


def extract(message: ParsedMessage, limits: MessageLimits | None = None) -> Extracted:
    """Parse every calendar part within the message's limits (see
    :mod:`imiptools.itip.intake`); unusable parts and objects are recorded,
    not raised. Over a limit, the message's calendar data is unusable as a
    whole: no object is kept, and the reason is the one error."""
    limits = limits or MessageLimits()
    try:
        limits.check_size(part.text for part in message.parts)
        objects, errors = _parse_parts(message, Tally(limits))
    except CalendarDataError as exc:
        log.warning("calendar data ignored: %s", exc)
        return Extracted([], [str(exc)], len(message.parts))
    usable = []
    for obj in objects:
        problem = object_problem(obj)
        if problem:
            log.warning("uid=%r unusable: %s", obj.uid[:200], problem)
            errors.append(problem)
        else:
            usable.append(obj)
    return Extracted(usable, errors, len(message.parts))


def _parse_parts(message: ParsedMessage, tally: Tally) -> tuple[list[ItipObject], list[str]]:
    """The objects of every readable part; raises CalendarDataError past a
    limit of ``tally``, records a part that cannot be read."""
    objects: list[ItipObject] = []
    errors: list[str] = []
    for part in message.parts:
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


def read(raw: bytes, settings: Settings) -> tuple[ParsedMessage, Extracted]:
    """Parse ``raw`` and extract its scheduling objects within the limits.

    A message over ``max_message_size`` (only a person's agent reads one:
    the mailbox gets it unchanged) keeps its headers, and its calendar data
    is ignored unread.
    """
    if len(raw) > settings.max_message_size:
        reason = (
            f"message of {len(raw)} bytes exceeds the limit of "
            f"{settings.max_message_size} bytes; calendar data not read"
        )
        log.warning("%s", reason)
        return parse_message(raw, headers_only=True), Extracted([], [reason], 1)
    message = parse_message(raw)
    return message, extract(message, MessageLimits.from_settings(settings))


def run(raw: bytes, envelope: Sequence[Envelope], ctx: Context, factory: HandlerFactory) -> Result:
    """Process one message for each envelope recipient, then send."""
    if not envelope:
        raise ConfigError("no recipient given (use -o ADDRESS)")
    started = time.process_time()
    message, extracted = read(raw, ctx.settings)
    objects = CpuBudget(extracted.objects, ctx.settings.max_seconds, started)
    failures: list[str] = list(extracted.errors)
    handled = 0
    handlers: list[tuple[str, Handler]] = []
    for each in envelope:
        user = normalise_user(each.recipient)
        handler, ok, failed = _process_user(user, each, message, objects, ctx, factory)
        handlers.append((user, handler))
        handled += ok
        failures += failed
    failures += objects.reasons()
    flush(ctx)
    deliver(raw, handlers, envelope[0].sender, ctx)
    return _result(extracted, handled, failures, envelope[0].sender, factory.bounce_unusable)


def deliver(
    raw: bytes, handlers: list[tuple[str, Handler]], sender: str | None, ctx: Context
) -> None:
    """Deliver to each user's mailbox what its handler says, after the replies.

    A failure raises DeliveryFailed (75): the MTA retries the whole message,
    whose calendar data is then a duplicate that changes nothing.
    """
    envelope_from = _usable_sender(sender)
    for user, handler in handlers:
        for message in handler.deliveries(raw):
            if ctx.deliverer is None:
                raise ConfigError("no delivery method configured (-l, -L or --sendmail)")
            ctx.deliverer.send(envelope_from, [user.removeprefix("mailto:")], message)


def _usable_sender(sender: str | None) -> str:
    """The envelope sender to deliver with; '' (null) when it is not an address."""
    try:
        return check_address(sender) if sender else ""
    except ValueError:
        log.warning("delivering with the null sender instead of %r", sender[:100] if sender else "")
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
) -> tuple[Handler, int, list[str]]:
    handled, failures = 0, []
    with ctx.store.lock(user, ctx.settings.lock_timeout):
        handler = factory(make_unit(user, envelope, message, ctx))
        for obj in objects:
            try:
                handler.handle(obj)
                handled += 1
            except InputError as exc:
                log.warning("user=%s uid=%r unusable: %s", user, obj.uid[:200], exc)
                failures.append(str(exc))
        handler.finish()
    return handler, handled, failures


def make_unit(user: str, envelope: Envelope, message: ParsedMessage, ctx: Context) -> Unit:
    """The unit of work of ``user`` (preferences, zone, records at "now")."""
    settings = ctx.settings
    preferences = Preferences(user, ctx.preferences, settings.preference_defaults)
    zone = zone_or_utc(preferences.get("TZID"))
    now = ctx.clock.now()
    window = Window.for_user(settings, preferences)
    records = UserRecords(ctx.store, user, zone, window, now)
    spool = _spooler(ctx)
    language = translator(preferences.get("LANG"))
    return Unit(user, settings, records, preferences, message, envelope, now, zone, spool, language)


def _spooler(ctx: Context) -> Callable[[Unit, Outgoing], None]:
    def spool(unit: Unit, outgoing: Outgoing) -> None:
        data = compose(unit, outgoing)
        ctx.spool.put(data, unit.calendar_address, outgoing.recipients, key=outgoing.key)

    return spool


def compose(unit: Unit, outgoing: Outgoing) -> bytes:
    """The RFC 6047 message for ``outgoing``, answering the unit's message."""
    message = unit.message
    references = [*message.references, message.message_id] if message.message_id else []
    return build_message(
        from_addr=unit.calendar_address,
        to_addrs=outgoing.recipients,
        subject=outgoing.subject,
        text=outgoing.text,
        calendar=outgoing.calendar.to_ical(),
        method=outgoing.method,
        in_reply_to=message.message_id,
        references=references,
        date=unit.now,
        message_id_domain=unit.calendar_address.rpartition("@")[2] or "localhost",
        attachments=[(c.to_ical(), m, name) for c, m, name in outgoing.attachments],
    )


def flush(ctx: Context) -> int:
    """Send everything spooled (ours and any left by an interrupted run).

    Holds the spool's lock so that two runs never send one message twice;
    a failed send raises DeliveryFailed (75) and leaves the rest spooled.
    """
    sent = 0
    lock = Path(ctx.spool.directory) / ".lock"
    with file_lock(lock, ctx.settings.lock_timeout):
        for item in ctx.spool.pending():
            ctx.sender.send(item.envelope_from, item.recipients, item.message)
            ctx.spool.done(item.id)
            sent += 1
    return sent
