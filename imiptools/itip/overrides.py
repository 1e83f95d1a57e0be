"""Overridden instances of a recurring event (RFC 5545 §3.8.4.4).

An override is a VEVENT with the master's UID and a RECURRENCE-ID naming the
instance it replaces. With ``RANGE=THISANDFUTURE`` it also changes every
later instance: RFC 5545 §3.8.4.4 says they are "rescheduled by the same
time difference" and take its duration. That difference is taken in
wall-clock time of the master's zone, so a move from 10:00 to 11:00 stays
an hour on the clock on both sides of a DST change.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo

from icalendar import Event

from imiptools.dates import format_recurrence_id
from imiptools.deferred import dataclass
from imiptools.errors import CalendarDataError
from imiptools.itip.timing import (
    Instance,
    Moment,
    Span,
    in_frame,
    instance_of,
    is_all_day,
    localise,
    span_of,
    start_of,
    value_of,
)


@dataclass(frozen=True)
class Override:
    """An overridden instance: its RECURRENCE-ID and the instance it is."""

    rid: str
    rid_value: Moment
    future: bool
    instance: Instance


@dataclass(frozen=True)
class Future:
    """A ``RANGE=THISANDFUTURE`` override as it applies to later instances.

    ``moment`` is its RECURRENCE-ID in UTC; ``shift`` the wall-clock offset
    from RECURRENCE-ID to its DTSTART.
    """

    moment: datetime
    shift: timedelta
    span: Span
    component: Event
    all_day: bool

    def instance(self, original: datetime, rid: str) -> Instance:
        """The later instance originally at aware ``original``, moved."""
        start = original + self.shift
        end = self.span.end(start)
        return Instance(start.astimezone(UTC), end, rid, self.component, self.all_day)


def latest_overrides(overrides: Sequence[Event], zone: tzinfo) -> dict[str, Override]:
    """One override per normalised RECURRENCE-ID; the highest SEQUENCE wins.

    RECURRENCE-IDs are normalised with :func:`format_recurrence_id` in
    ``zone``. Raises :class:`CalendarDataError` for a component without a
    readable RECURRENCE-ID, DTSTART or end.
    """
    chosen: dict[str, tuple[int, Override]] = {}
    for component in overrides:
        override, sequence = _override(component, zone), _sequence(component)
        if override.rid not in chosen or chosen[override.rid][0] <= sequence:
            chosen[override.rid] = (sequence, override)
    return {rid: override for rid, (_, override) in chosen.items()}


def _override(component: Event, zone: tzinfo) -> Override:
    rid_value = value_of(component, "RECURRENCE-ID")
    if rid_value is None:
        raise CalendarDataError("overridden instance without RECURRENCE-ID")
    rid = format_recurrence_id(rid_value, zone)
    params = getattr(component.get("RECURRENCE-ID"), "params", {})
    future = str(params.get("RANGE", "")).upper() == "THISANDFUTURE"
    return Override(rid, rid_value, future, instance_of(component, zone, rid))


def _sequence(component: Event) -> int:
    try:
        return int(str(component.get("SEQUENCE", 0)))
    except ValueError:
        return 0


def futures_of(overrides: dict[str, Override], frame: tzinfo, zone: tzinfo) -> list[Future]:
    """The THISANDFUTURE overrides, in RECURRENCE-ID order.

    ``frame`` is the zone the master is expanded in; ``zone`` the calendar
    user's, for floating values.
    """
    futures = [_future(o, frame, zone) for o in overrides.values() if o.future]
    return sorted(futures, key=lambda future: future.moment)


def _future(override: Override, frame: tzinfo, zone: tzinfo) -> Future:
    component = override.instance.component
    start = start_of(component)
    shift = _wall(start, frame) - _wall(override.rid_value, frame)
    moment = localise(override.rid_value, zone).astimezone(UTC)
    return Future(moment, shift, span_of(component, zone), component, is_all_day(start))


def _wall(value: Moment, frame: tzinfo) -> datetime:
    return in_frame(value, frame).replace(tzinfo=None)
