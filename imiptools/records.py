"""One calendar user's records: stored objects, their instances, free/busy.

The bridge between the iTIP model and a :class:`~imiptools.stores.base.Store`:
loads and saves scheduling objects (main object plus overridden instances,
the original's ``objects/`` and ``recurrences/``), expands them within the
configured window and keeps the user's free/busy equal to what the stored
objects say. :meth:`UserRecords.refresh_freebusy` is idempotent, so a unit
of work interrupted by a crash converges when the message is reprocessed;
it also keeps the event's derivation record (:meth:`UserRecords.record_derivation`:
what the periods were derived from, for ``imip-admin check``).

:class:`UserRecords` is the one repository the handlers use for every
record of their user: objects and cancellations, free/busy (their own and
what others sent), offers, counter-proposals, the queue of items awaiting
the user and the decision log. Handlers never call the store themselves,
so the user is named once, here, and every write goes through one object.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta, tzinfo
from typing import Protocol, cast

from icalendar import Calendar, Component, Event, Timezone

from imiptools.config import Settings
from imiptools.dates import format_utc, parse_utc
from imiptools.deferred import dataclass
from imiptools.digests import sha256_hex
from imiptools.errors import StoreUnavailable
from imiptools.itip.objects import (
    ItipObject,
    find_attendee,
    iter_components,
    make_calendar,
    organizer_of,
    parse_calendars,
    recurrence_id_of,
    sequence_of,
    text_of,
    to_text,
)
from imiptools.itip.recurrence import Expansion, Instance, Limits, expand
from imiptools.periods import Period
from imiptools.stores.base import Store

#: Free/busy is recorded from this long before "now" (recent history).
HISTORY = timedelta(days=7)

# -- what an event's free/busy was derived from, and for which "now" it holds ------

#: Bumped whenever what a derivation's hashes mean changes (make-freebusy's
#: memos and the per-event derivation records of older versions are then ignored).
DERIVATION_VERSION = 2
#: How far beyond the window a derivation looks, to know when the next
#: instance of a series enters the window (and so how long its result holds).
LOOKAHEAD = timedelta(days=7)
#: The first field of a derivation record (:func:`derivation_record`).
_RECORD_TAG = "imip-derived-1"


@dataclass(frozen=True)
class Held:
    """An event's free/busy as last derived: from inputs whose hash is
    ``fingerprint`` (:func:`fingerprint_of`), the same for every "now"
    in ``[since, until)`` (``until`` None: for ever); ``periods`` is the
    :func:`periods_digest` of the periods derived ('' when not known), which
    ``imip-admin check`` compares with the stored ones instead of deriving
    them again."""

    fingerprint: str
    since: datetime
    until: datetime | None
    periods: str = ""

    def holds(self, fingerprint: str, now: datetime) -> bool:
        """Whether deriving at ``now`` from inputs of ``fingerprint`` would
        give the periods derived then (so the stored ones, unchanged)."""
        later = self.until is None or now < self.until
        return fingerprint == self.fingerprint and self.since <= now and later


def fingerprint_of(
    uid: str,
    text: str | None,
    recurrences: Iterable[tuple[str, str | None]],
    cancelled: Iterable[str],
) -> str:
    """A hash of everything ``uid``'s free/busy is derived from but the time
    and the user's settings: the main object's ``text``, the overridden
    instances by recurrence id, the recurrence ids of the cancelled
    instances (both in the store's order)."""
    parts = [f"{uid}\x00{text or chr(0)}\x00"]
    parts += [f"r\x00{rid}\x00{override or ''}\x00" for rid, override in recurrences]
    parts += [f"c\x00{rid}\x00" for rid in cancelled]
    return sha256_hex("".join(parts).encode("utf-8", "surrogatepass"))[:32]


def periods_digest(periods: Iterable[Period]) -> str:
    """A hash of ``periods`` as free/busy lines, in any order (duplicates count)."""
    lines = sorted(period.to_line() for period in periods)
    return sha256_hex("\n".join(lines).encode("utf-8", "surrogatepass"))[:32]


def derivation_record(context: str, uid: str, held: Held) -> str:
    """``held`` as one line of text, for :meth:`Store.set_derivation`: its
    fields, then a SHA-256 over them, the ``context`` they hold in
    (:meth:`UserRecords.derivation_context`) and ``uid``, so that a record
    that is torn, of another event, user or setting, or not one at all is
    never read as one (:func:`read_derivation`)."""
    until = format_utc(held.until) if held.until is not None else ""
    fields = [_RECORD_TAG, held.fingerprint, format_utc(held.since), until, held.periods]
    body = "\t".join(fields)
    return f"{body}\t{_record_check(context, uid, body)}\n"


def read_derivation(context: str, uid: str, text: str | None) -> Held | None:
    """The :class:`Held` of a :func:`derivation_record` of ``uid`` in
    ``context``; None for anything else (missing, torn, another context)."""
    if not text or not text.endswith("\n"):
        return None
    body, _, check = text[:-1].rpartition("\t")
    fields = body.split("\t")
    if len(fields) != 5 or fields[0] != _RECORD_TAG or check != _record_check(context, uid, body):
        return None
    try:
        since, until = parse_utc(fields[2]), parse_utc(fields[3]) if fields[3] else None
    except ValueError:
        return None
    return Held(fields[1], since, until, fields[4])


def _record_check(context: str, uid: str, body: str) -> str:
    data = f"{context}\x00{uid}\x00{body}".encode("utf-8", "surrogatepass")
    return sha256_hex(data)[:32]


@dataclass(frozen=True)
class Derivation:
    """What deriving one event's free/busy gave: the ``periods`` within
    the window, and the span ``(since, until)`` of "now" over which deriving
    again gives the same periods (None: it cannot be told)."""

    periods: list[Period]
    span: tuple[datetime, datetime | None] | None


class PreferenceValues(Protocol):
    """A user's effective preferences as records read them: the policy layer's
    :class:`imiptools.preferences.Preferences` (which sits above this module:
    it validates values with the scheduling functions' parsers)."""

    def get(self, name: str) -> str:
        """The effective value of ``name`` ('' when unset)."""
        ...


@dataclass(frozen=True)
class Window:
    """What to expand: the span and the bounds on work (see recurrence.Limits)."""

    ahead: timedelta
    max_instances: int
    budget_seconds: float

    @classmethod
    def for_user(cls, settings: Settings, preferences: PreferenceValues) -> Window:
        """The site's window, with the user's ``max_instances`` limit if lower.

        Event limits apply to every event recorded for a user: however often
        an event recurs, what the store records for it stays this small.
        """
        limit = preferences.get("max_instances")
        cap = min(settings.max_instances, int(limit)) if limit else settings.max_instances
        return cls(settings.window, cap, settings.expansion_seconds)


def freebusy_status(component: Component, user: str, organiser: str | None = None) -> str | None:
    """The FBTYPE ``component`` gives ``user`` (RFC 5545 §3.2.9), None for none.

    Organiser: BUSY. Attendee: ACCEPTED -> BUSY; NEEDS-ACTION, TENTATIVE ->
    BUSY-TENTATIVE; DECLINED, DELEGATED -> none. Cancelled events: none.
    A user not named at all (a PUBLISHed event) is BUSY. ``organiser``:
    :func:`~imiptools.itip.objects.organizer_of` the component, if the
    caller has it already.
    """
    if text_of(component, "STATUS").upper() == "CANCELLED":
        return None
    if organiser is None:
        organiser = organizer_of(component)
    if organiser == user.removeprefix("mailto:"):
        return "BUSY"
    attendee = find_attendee(component, user)
    if attendee is None:
        return "BUSY"
    partstat = str(attendee.params.get("PARTSTAT", "NEEDS-ACTION")).upper()
    if partstat == "ACCEPTED":
        return "BUSY"
    if partstat in ("NEEDS-ACTION", "TENTATIVE"):
        return "BUSY-TENTATIVE"
    return None


#: What a free/busy period takes from its component (see
#: :meth:`UserRecords.instance_periods`): uid, TRANSP, SUMMARY, organiser, FBTYPE.
_Described = tuple[str, str, str, str, str]


class UserRecords:
    """The records of ``user`` in ``store``, seen from ``now`` in ``zone``."""

    def __init__(
        self,
        store: Store,
        user: str,
        zone: tzinfo,
        window: Window,
        now: datetime,
        parse: Callable[[str], list[Calendar]] = parse_calendars,
    ) -> None:
        self.store, self.user, self.zone = store, user, zone
        self.window, self.now = window, now
        #: How stored texts are parsed (:func:`parse_calendars`; a caller
        #: that has parsed them already, as ``check`` has, passes a memo).
        self.parse = parse

    def as_user(self, user: str) -> UserRecords:
        """The same store and window seen by another calendar user."""
        return UserRecords(self.store, user, self.zone, self.window, self.now, self.parse)

    def parsing_with(self, parse: Callable[[str], list[Calendar]]) -> UserRecords:
        """The same records, their stored texts parsed by ``parse``."""
        return UserRecords(self.store, self.user, self.zone, self.window, self.now, parse)

    # -- loading and saving ---------------------------------------------

    def stored(self, uid: str) -> ItipObject | None:
        """The stored object of ``uid`` (main object and overrides), if any."""
        text = self.store.get_object(self.user, uid)
        overrides = [
            self.store.get_recurrence(self.user, uid, rid)
            for rid in self.store.recurrence_ids(self.user, uid)
        ]
        return self.object_of(uid, text, overrides)

    def object_of(
        self, uid: str, text: str | None, overrides: Iterable[str | None]
    ) -> ItipObject | None:
        """The object of ``uid`` from texts already read: its main object's
        ``text`` and its stored instances' (None: not there); None when
        neither holds an event. Each text is parsed by :attr:`parse`."""
        components: list[Component] = []
        zones: list[Timezone] = []
        if text is not None:
            calendars = self.parse(text)
            zones += [z for c in calendars for z in c.walk("VTIMEZONE") if isinstance(z, Timezone)]
            components += [c for c in calendars[0].subcomponents if c.name == "VEVENT"]
        for override in overrides:
            if override is not None:
                calendars = self.parse(override)  # once: each instance is a file
                zones += [
                    z for c in calendars for z in c.walk("VTIMEZONE") if isinstance(z, Timezone)
                ]
                components += [e for c in calendars for e in c.walk("VEVENT")]
        if not components:
            return None
        return ItipObject("PUBLISH", "VEVENT", uid, components, zones)

    def stored_series(self, uid: str) -> ItipObject | None:
        """The stored main object of ``uid`` (its master, no overrides), if any:
        one file read, for callers that do not need the instances."""
        text = self.store.get_object(self.user, uid)
        if text is None:
            return None
        calendars = self.parse(text)
        zones = [z for c in calendars for z in c.walk("VTIMEZONE") if isinstance(z, Timezone)]
        events = [c for c in calendars[0].subcomponents if c.name == "VEVENT"]
        return ItipObject("PUBLISH", "VEVENT", uid, events, zones) if events else None

    def stored_version(self, uid: str, rid: str) -> Component | None:
        """The stored component an incoming one with ``rid`` competes with:
        the stored instance filed under ``rid`` (the normalised RECURRENCE-ID),
        else the main object's master; None when neither is stored.

        Reads those two files only, not the whole object: an instance-only
        message with N instances parsed the N stored instances N times.
        """
        override = self.store.get_recurrence(self.user, uid, rid) if rid else None
        for component in iter_components(override) if override is not None else ():
            if recurrence_id_of(component, self.zone) == rid:
                return component
        text = self.store.get_object(self.user, uid)
        if text is None:
            return None
        events = [c for c in parse_calendars(text)[0].subcomponents if c.name == "VEVENT"]
        return next((c for c in events if "RECURRENCE-ID" not in c), None)

    def save(self, obj: ItipObject, authoritative: bool = True) -> None:
        """Store ``obj`` as the whole event.

        ``authoritative`` (a new version from the organiser): it replaces the
        stored overrides and forgets instance cancellations. Otherwise (our
        own edit of the stored event, e.g. a merged REPLY) only the given
        components are written.
        """
        uid = obj.uid
        if obj.master is not None:
            text = to_text(make_calendar([obj.master], None, obj.timezones))
            self.store.uncancel_object(self.user, uid)
            self.store.set_object(self.user, uid, text)
            if authoritative:
                self._forget_other_instances(obj)
        for component in obj.overrides:
            self.save_instance(uid, component, obj.timezones)

    def _forget_other_instances(self, obj: ItipObject) -> None:
        keep = {recurrence_id_of(c, self.zone) for c in obj.overrides}
        for rid in self.store.recurrence_ids(self.user, obj.uid):
            if rid not in keep:
                self.store.remove_recurrence(self.user, obj.uid, rid)
        for rid in self.cancelled_instances(obj.uid):
            self.store.uncancel_recurrence(self.user, obj.uid, rid)

    def save_instance(self, uid: str, component: Component, zones: list[Timezone]) -> None:
        """Store one overridden instance."""
        rid = recurrence_id_of(component, self.zone)
        self.store.uncancel_recurrence(self.user, uid, rid)
        text = to_text(make_calendar([component], None, zones))
        self.store.set_recurrence(self.user, uid, rid, text)

    # -- instances and free/busy -----------------------------------------

    def limits(self, start: datetime | None = None, end: datetime | None = None) -> Limits:
        """The expansion bounds: by default the free/busy window around now."""
        return Limits(
            window_start=start or self.now - HISTORY,
            window_end=end or self.now + self.window.ahead,
            max_instances=self.window.max_instances,
            budget_seconds=self.window.budget_seconds,
        )

    def expand(
        self,
        obj: ItipObject,
        limits: Limits | None = None,
        cancelled: Collection[str] | None = None,
    ) -> Expansion:
        """Instances of ``obj`` less cancelled instances (by default the stored
        cancellations of its UID; pass ``()`` for a new, authoritative version)."""
        if cancelled is None:
            cancelled = self.cancelled_instances(obj.uid)
        master = cast(Event | None, obj.master)
        overrides = cast(list[Event], obj.overrides)
        return expand(master, overrides, self.zone, limits or self.limits(), cancelled)

    def periods(self, obj: ItipObject, cancelled: Collection[str] | None = None) -> list[Period]:
        """The user's free/busy periods for ``obj`` within the window, less
        ``cancelled`` instances (by default the stored cancellations)."""
        return self.instance_periods(self.expand(obj, cancelled=cancelled).instances)

    def instance_periods(self, instances: Iterable[Instance]) -> list[Period]:
        """The user's free/busy periods for ``instances`` (those that give none
        left out: see :func:`freebusy_status`). What a period takes from its
        component is read once per component, however many instances it
        describes (a series' master describes them all)."""
        described: dict[int, _Described | None] = {}
        periods = []
        for instance in instances:
            component = instance.component
            key = id(component)  # the instances hold the components meanwhile
            if key not in described:
                described[key] = self._described(component)
            fields = described[key]
            if fields is not None and instance.start < instance.end:
                uid, transp, summary, organiser, status = fields
                periods.append(
                    Period(
                        instance.start,
                        instance.end,
                        uid,
                        instance.recurrenceid,
                        transp,
                        summary,
                        organiser,
                        status,
                    )
                )
        return periods

    def _described(self, component: Component) -> _Described | None:
        """What a period of ``component`` takes from it: uid, transparency,
        summary, organiser and status; None when it gives the user none."""
        organiser = organizer_of(component)
        status = freebusy_status(component, self.user, organiser)
        if status is None:
            return None
        transp = text_of(component, "TRANSP").upper() or "OPAQUE"
        return text_of(component, "UID"), transp, text_of(component, "SUMMARY"), organiser, status

    def refresh_freebusy(self, uid: str, saved: ItipObject | None = None) -> list[Period]:
        """Make the free/busy of ``uid`` match the stored object (idempotent);
        returns the periods written.

        ``saved``: the object the caller has just stored whole with
        :meth:`save` (authoritative) and not changed since, which is then
        what is stored: its periods are derived from it, without reading and
        parsing back the text just written (issue 15: the calendar is
        parsed once a message).

        The event's derivation record is kept too (:meth:`record_derivation`;
        the expansion looks :data:`LOOKAHEAD` beyond the window for its span,
        see :meth:`derive`)."""
        stored = saved if saved is not None else self.stored(uid)
        derivation = self.derive(stored)
        self.store.set_freebusy_for_uid(self.user, uid, derivation.periods)
        self.record_derivation(uid, derivation)
        return derivation.periods

    def derive(self, stored: ItipObject | None) -> Derivation:
        """The free/busy periods of ``stored`` within the window at
        :attr:`now` (as :meth:`periods`), and for which "now" they hold.

        The expansion looks :data:`LOOKAHEAD` beyond the window, so it knows
        the first instance that will enter the window; the first period to
        leave it is the earliest to end. Between the two, deriving again
        gives the same periods. An expansion cut short by a bound (instance
        cap, iterations, time) cannot tell: the periods are then derived
        over the window alone, with no span. Nothing stored: no periods,
        for ever. Raises InputError.
        """
        if stored is None:
            return Derivation([], (self.now, None))
        limits = self.limits()
        wider = self.expand(stored, replace(limits, window_end=limits.window_end + LOOKAHEAD))
        if wider.reason not in ("", "window"):
            return Derivation(self.periods(stored), None)
        inside = [i for i in wider.instances if i.start < limits.window_end]
        until = _until(self.now, limits, wider, inside)
        return Derivation(self.instance_periods(inside), (self.now, until))

    def record_derivation(self, uid: str, derivation: Derivation) -> None:
        """Keep what ``uid``'s free/busy was just derived from, as the
        store's derivation record (:meth:`~imiptools.stores.base.Store.set_derivation`:
        derived data, written without fsync); ``imip-admin check`` takes it
        as make-freebusy's memo. A derivation without a span drops the record.

        Nothing is worked out for a store that keeps no records, and nothing
        is written when the record kept already says the same of these very
        texts and periods and holds now (a message that changes nothing
        writes nothing)."""
        if not self.store.keeps_derivations():
            return
        if derivation.span is None:
            self.store.set_derivation(self.user, uid, None)
            return
        held = Held(self.fingerprint(uid), *derivation.span, periods_digest(derivation.periods))
        kept = self.derivation(uid)
        if kept and kept.periods == held.periods and kept.holds(held.fingerprint, self.now):
            return
        record = derivation_record(self.derivation_context(), uid, held)
        self.store.set_derivation(self.user, uid, record)

    def derivation(self, uid: str) -> Held | None:
        """The store's derivation record of ``uid`` if it is intact and of
        this user's settings (:meth:`derivation_context`), else None (a
        record that cannot be read too: it only saves work)."""
        try:
            text = self.store.get_derivation(self.user, uid)
        except StoreUnavailable:
            return None
        return read_derivation(self.derivation_context(), uid, text)

    def fingerprint(self, uid: str) -> str:
        """:func:`fingerprint_of` the texts stored for ``uid`` now."""
        store, user = self.store, self.user
        recurrences = [
            (rid, store.get_recurrence(user, uid, rid)) for rid in store.recurrence_ids(user, uid)
        ]
        cancelled = store.cancelled_recurrence_ids(user, uid)
        return fingerprint_of(uid, store.get_object(user, uid), recurrences, cancelled)

    def derivation_context(self) -> str:
        """What every derivation of the user also depends on: the format,
        the user, the zone and the window's bounds (a change ignores
        make-freebusy's memo and the derivation records)."""
        limits = self.limits()
        window = self.window
        return json.dumps(
            [
                DERIVATION_VERSION,
                self.user,
                str(self.zone),
                (self.now - limits.window_start).total_seconds(),
                window.ahead.total_seconds(),
                window.max_instances,
                window.budget_seconds,
                LOOKAHEAD.total_seconds(),
            ]
        )

    def busy_between(self, start: datetime, end: datetime, exclude_uid: str = "") -> list[Period]:
        """The user's periods overlapping [start, end), except ``exclude_uid``'s."""
        periods = self.store.get_freebusy(self.user, start, end)
        return [p for p in periods if p.uid != exclude_uid]

    def uids(self) -> Iterator[str]:
        """UIDs of the stored (current) objects."""
        return self.store.object_uids(self.user)

    # -- cancellations (RFC 5546 §3.2.5) -------------------------------------

    def cancellation(self, uid: str) -> str | None:
        """The CANCEL text of ``uid`` if it was cancelled whole, else None."""
        return self.store.get_cancelled_object(self.user, uid)

    def cancelled_instances(self, uid: str) -> list[str]:
        """The RECURRENCE-IDs of the cancelled instances of ``uid``, sorted."""
        return self.store.cancelled_recurrence_ids(self.user, uid)

    def cancelled_sequence(self, uid: str) -> int:
        """The highest SEQUENCE of the stored CANCELs of single instances of
        ``uid`` (-1 for none): sent, but not among the stored components, so
        the next message must exceed it too (RFC 5545 §3.8.7.4)."""
        found = -1
        for rid in self.cancelled_instances(uid):
            text = self.store.get_cancelled_recurrence(self.user, uid, rid)
            for component in iter_components(text) if text else ():
                found = max(found, sequence_of(component))
        return found

    def cancel(self, uid: str, text: str) -> None:
        """Cancel the whole of ``uid``, keeping the CANCEL's ``text``."""
        self.store.cancel_object(self.user, uid, text)

    def cancel_instance(self, uid: str, rid: str, text: str) -> None:
        """Cancel instance ``rid`` of ``uid``, keeping the CANCEL's ``text``."""
        self.store.cancel_recurrence(self.user, uid, rid, text)

    # -- others' free/busy, offers, counter-proposals ---------------------------

    def freebusy_of(self, other: str, start: datetime, end: datetime) -> list[Period]:
        """What ``other`` (a ``mailto:`` URI) is known to be busy with in [start, end)."""
        return self.store.get_freebusy_other(self.user, other, start, end)

    def set_freebusy_of(self, other: str, periods: list[Period]) -> None:
        """Replace what is known of ``other``'s free/busy."""
        self.store.set_freebusy_other(self.user, other, periods)

    def offers(self) -> list[Period]:
        """The periods held for proposals (COUNTER offers) not expired at now."""
        return self.store.get_offers(self.user, self.now)

    def set_offers(self, uid: str, periods: list[Period], expires: datetime) -> None:
        """Hold ``periods`` for ``uid`` until ``expires`` (replacing its offers)."""
        self.store.set_offers(self.user, uid, periods, expires)

    def remove_offers(self, uid: str) -> None:
        """Release the periods held for ``uid``."""
        self.store.remove_offers(self.user, uid)

    def busy_or_offered(
        self, start: datetime, end: datetime, exclude_uid: str = ""
    ) -> list[Period]:
        """Bookings and held offers overlapping [start, end), except those of
        ``exclude_uid`` (when given): what a new booking must not overlap."""
        busy = self.store.get_freebusy(self.user, start, end)
        held = [p for p in self.offers() if p.overlaps(start, end)]
        return [p for p in busy + held if not exclude_uid or p.uid != exclude_uid]

    def set_counter(self, uid: str, attendee: str, text: str) -> None:
        """Keep ``attendee``'s COUNTER for ``uid`` (replacing theirs)."""
        self.store.set_counter(self.user, uid, attendee, text)

    def counters(self, uid: str) -> dict[str, str]:
        """The COUNTERs kept for ``uid``: attendee (``mailto:``) -> its text."""
        return self.store.get_counters(self.user, uid)

    def remove_counters(self, uid: str, attendee: str) -> None:
        """Forget ``attendee``'s COUNTER for ``uid``."""
        self.store.remove_counters(self.user, uid, attendee)

    # -- the queue and the decision log --------------------------------------

    def queue(self, uid: str, rid: str, kind: str) -> None:
        """Queue ``kind`` (REQUEST, CANCEL, ...) about ``uid`` for the user (idempotent)."""
        self.store.queue_request(self.user, uid, rid, kind)

    def dequeue(self, uid: str, rid: str) -> None:
        """Take the item about ``uid`` (instance ``rid``) off the user's queue."""
        self.store.dequeue_request(self.user, uid, rid)

    def queued(self) -> list[tuple[str, str, str]]:
        """The user's queue: (uid, rid or '', kind) in arrival order."""
        return self.store.get_requests(self.user)

    def decisions(self) -> Iterator[str]:
        """The lines of the user's decision log, oldest first."""
        return self.store.decisions(self.user)

    def log_decision(self, line: str) -> None:
        """Append one line (JSON, no newline) to the user's decision log."""
        self.store.log_decision(self.user, line)


def _until(
    now: datetime, limits: Limits, wider: Expansion, inside: list[Instance]
) -> datetime | None:
    """The first "now" from which the window holds other instances of the
    event than ``inside`` (None: never), given the wider expansion at ``now``."""
    bounds = []
    ends = [i.end for i in inside if i.end > i.start]
    if ends:  # the earliest to end leaves when the window's start passes its end
        bounds.append(min(ends) + (now - limits.window_start))
    ahead = limits.window_end - now
    beyond = [i.start for i in wider.instances if i.start >= limits.window_end]
    if beyond:  # the next to start enters when the window's end passes its start
        bounds.append(min(beyond) - ahead)
    elif wider.truncated:  # instances exist beyond the wider window only
        bounds.append(now + LOOKAHEAD)
    return min(bounds) if bounds else None
