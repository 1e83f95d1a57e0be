"""The recurrence set of a master VEVENT, ready to be walked (RFC 5545 §3.8.5).

:func:`master_set` prepares, once per expansion, what generating instances
needs: the dateutil rules of the RRULEs (each fast-forwarded to just before
the window where that is safe, see :func:`imiptools.itip.rules.fast_forward`)
and the dates (DTSTART and the RDATEs); the instances that EXDATE,
cancellations and overrides take out; the ends of PERIOD RDATEs; the
THISANDFUTURE overrides; and the stretch of original starts that can reach
the window. :meth:`MasterSet.instance` turns one generated
start into an :class:`Instance`.

Expansion happens in DTSTART's own zone (RFC 5545 §3.3.10: wall-clock
semantics); floating and all-day events in the calendar user's zone.
Floating RDATE and EXDATE values of an event whose DTSTART has a zone are
read in DTSTART's zone; a DATE EXDATE of a DATE-TIME event removes every
instance starting on that day there.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from dateutil.rrule import rrule
from icalendar import Event

from imiptools.dates import DATE_FORMAT, format_recurrence_id, parse_utc
from imiptools.deferred import dataclass
from imiptools.itip.overrides import Future, Override, futures_of
from imiptools.itip.rules import (
    build_rule,
    fast_forward,
    is_indefinite,
    merged_starts,
    parse_recur,
)
from imiptools.itip.timing import (
    Instance,
    Moment,
    Span,
    date_values,
    in_frame,
    is_all_day,
    localise,
    period_end,
    span_of,
    start_of,
    wall_date,
)


@dataclass(frozen=True)
class Names:
    """Instances named in the master's terms: RECURRENCE-IDs and whole days."""

    rids: frozenset[str] = frozenset()
    days: frozenset[date] = frozenset()

    def __contains__(self, name: object) -> bool:
        return name in self.rids or name in self.days

    def __or__(self, other: Names) -> Names:
        return Names(self.rids | other.rids, self.days | other.days)


@dataclass(frozen=True)
class Namer:
    """Names a RECURRENCE-ID, EXDATE or cancellation as the master's instances are named.

    Clients mix kinds: Exchange sends ``RECURRENCE-ID;TZID=...:20200416T000000``
    for instances of an all-day series. For an all-day master every value
    names the day it falls on as its writer saw it; for a DATE-TIME master a
    DATE names every instance of that day, a floating value is read in the
    master's zone (``frame``).
    """

    all_day: bool
    frame: tzinfo
    zone: tzinfo

    def name(self, value: Moment) -> str | date:
        """The normalised RECURRENCE-ID, or the day, that ``value`` names."""
        if self.all_day:
            return format_recurrence_id(wall_date(value, self.zone))
        if is_all_day(value):
            return value
        return format_recurrence_id(in_frame(value, self.frame))

    def names(self, values: Iterable[Moment], rids: Iterable[str] = ()) -> Names:
        """Names for ``values``, plus ``rids`` as they are (already normalised)."""
        named = [self.name(value) for value in values]
        texts = {n for n in named if isinstance(n, str)} | set(rids)
        return Names(frozenset(texts), frozenset(n for n in named if isinstance(n, date)))


@dataclass(frozen=True)
class MasterSet:
    """What generating the master's instances needs, prepared once.

    ``removed``: EXDATEs and cancellations; ``skipped``: those and the
    overridden instances. Generated starts before ``skip_before`` cannot
    reach the window; from ``stop_at`` on, none can (both aware UTC).
    """

    master: Event
    namer: Namer
    span: Span
    rules: tuple[rrule, ...]
    dates: tuple[datetime, ...]
    indefinite: bool
    removed: Names
    skipped: Names
    period_ends: dict[str, datetime]
    futures: tuple[Future, ...]
    skip_before: datetime
    stop_at: datetime

    def starts(self) -> Iterator[datetime]:
        """The original starts of the set in order (naive for floating and all-day)."""
        return merged_starts(self.rules, self.dates)

    def local(self, original: datetime) -> datetime:
        """A generated start as an aware datetime (floating ones in the zone)."""
        return original if original.tzinfo else original.replace(tzinfo=self.namer.zone)

    def drops(self, override: Override) -> bool:
        """True if an EXDATE or a cancellation removes ``override``'s instance."""
        return override.rid in self.removed or self.namer.name(override.rid_value) in self.removed

    def instance(self, original: datetime, local: datetime) -> Instance | None:
        """The instance generated at ``original``, None if removed or overridden."""
        all_day = self.namer.all_day
        rid = format_recurrence_id(original.date() if all_day else local)
        if rid in self.skipped or local.date() in self.skipped.days:
            return None
        future = self._future_at(local.astimezone(UTC))
        if future is not None:
            return future.instance(local, rid)
        end = self.period_ends.get(rid) or self.span.end(local)
        return Instance(local.astimezone(UTC), end, rid, self.master, all_day)

    def _future_at(self, moment: datetime) -> Future | None:
        """The latest THISANDFUTURE override at or before ``moment``."""
        if not self.futures:
            return None
        index = bisect_right([future.moment for future in self.futures], moment) - 1
        return self.futures[index] if index >= 0 else None


def master_set(
    master: Event,
    overrides: dict[str, Override],
    zone: tzinfo,
    window: tuple[datetime, datetime],
    cancelled: frozenset[str],
) -> MasterSet:
    """Prepare the expansion of ``master`` for the aware ``window``.

    Raises :class:`CalendarDataError` for unreadable dates and invalid rules.
    """
    start = start_of(master)
    base = _base(start)
    namer = Namer(is_all_day(start), base.tzinfo or zone, zone)
    span = span_of(master, zone)
    rdates = list(_rdates(master, base, namer))
    futures = futures_of(overrides, namer.frame, zone)
    late, early = _margins(span, rdates, futures, zone)
    skip_before = window[0].astimezone(UTC) - late
    rules, indefinite = _rules(master, base, zone, skip_before)
    dates = (base, *(value for value, _ in rdates))
    ends = {_rid(value, namer): end for value, end in rdates if end is not None}
    removed = _removed(master, namer, cancelled)
    overridden = namer.names([o.rid_value for o in overrides.values()], overrides)
    stop_at = window[1].astimezone(UTC) + early
    return MasterSet(
        master=master, namer=namer, span=span, rules=rules, dates=dates,
        indefinite=indefinite, removed=removed, skipped=removed | overridden,
        period_ends=ends, futures=tuple(futures), skip_before=skip_before, stop_at=stop_at,
    )  # fmt: skip


def _removed(master: Event, namer: Namer, cancelled: frozenset[str]) -> Names:
    """What EXDATE (RFC 5545 §3.8.5.1) and the cancellations remove."""
    exdates = [v[0] if isinstance(v, tuple) else v for v in date_values(master, "EXDATE")]
    parsed = [value for value in map(_parse_rid, cancelled) if value is not None]
    return namer.names([*exdates, *parsed], cancelled)


def _parse_rid(text: str) -> Moment | None:
    """A normalised RECURRENCE-ID back as a value (None if malformed)."""
    try:
        if len(text) == len("20300108"):
            return datetime.strptime(text, DATE_FORMAT).date()
        return parse_utc(text)
    except ValueError:
        return None


def _base(start: Moment) -> datetime:
    """DTSTART as dateutil expands it: a date as naive midnight."""
    if isinstance(start, datetime):
        return start
    return datetime.combine(start, time(0))


def _rid(original: datetime, namer: Namer) -> str:
    """The normalised RECURRENCE-ID of a generated start."""
    return format_recurrence_id(original.date() if namer.all_day else original, namer.zone)


def _rules(
    master: Event, base: datetime, zone: tzinfo, skip_before: datetime
) -> tuple[tuple[rrule, ...], bool]:
    """The RRULEs, each fast-forwarded to ``skip_before``, and whether some
    RRULE is indefinite (neither COUNT nor UNTIL)."""
    rules: list[rrule] = []
    indefinite = False
    for value in _listed(master.get("RRULE")):
        recur = parse_recur(value)
        if recur is None:
            continue
        indefinite = indefinite or is_indefinite(recur)
        rule = build_rule(recur, base, zone)
        if rule is not None:
            rules.append(fast_forward(rule, recur, base, skip_before, zone))
    return tuple(rules), indefinite


def _listed(value: object) -> list[object]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _rdates(
    master: Event, base: datetime, namer: Namer
) -> Iterator[tuple[datetime, datetime | None]]:
    """RDATE starts as values like ``base``, with the UTC end of PERIOD values.

    For an all-day master every RDATE is taken as the day it names.
    """
    for value in date_values(master, "RDATE"):
        first = value[0] if isinstance(value, tuple) else value
        start = in_frame(first, namer.frame)
        end = period_end(value, start, namer.zone)
        if namer.all_day:
            start = in_frame(wall_date(first, namer.zone), namer.frame)
        yield (start if base.tzinfo else start.replace(tzinfo=None)), end


def _margins(
    span: Span,
    rdates: list[tuple[datetime, datetime | None]],
    futures: list[Future],
    zone: tzinfo,
) -> tuple[timedelta, timedelta]:
    """How far before the window an original start can still reach it, and how
    far after its end one can be moved into it by a THISANDFUTURE override.

    A day is added for THISANDFUTURE shifts, which are in wall-clock time.
    """
    late = [span.bound(), timedelta(0)]
    late += [end - localise(start, zone).astimezone(UTC) for start, end in rdates if end]
    early = [timedelta(0)]
    for future in futures:
        late.append(future.shift + future.span.bound() + timedelta(days=1))
        early.append(timedelta(days=1) - future.shift)
    return max(late), max(early)
