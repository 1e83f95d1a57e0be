"""When a component happens: DTSTART, its end, date-valued lists, instances.

RFC 5545 gives an event's length three ways (§3.6.1, §3.8.2.2, §3.8.2.5):
DTEND (an *exact* duration for date-times, whole days for dates), DURATION
(a *nominal* duration: days in wall-clock time, RFC 5545 §3.3.6), or
neither (one day for a DATE, zero for a DATE-TIME). A :class:`Span` keeps
that length with its kind so that it can be applied to every instance of a
recurring event (RFC 5545 §3.8.5.3: "the same exact duration", or nominal).

Reading: values icalendar could not parse raise :class:`CalendarDataError`;
naive (floating) values and dates are placed in a zone the caller passes.
An :class:`Instance` is one occurrence of an event in UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from icalendar import Event
from icalendar.prop import vBroken

from imiptools.dates import add_duration, to_utc
from imiptools.deferred import dataclass
from imiptools.errors import CalendarDataError

Moment = date | datetime
DateValue = date | datetime | tuple[date | datetime, date | datetime | timedelta]


@dataclass(frozen=True)
class Span:
    """The length of an instance: ``exact`` on the UTC time line or ``nominal``.

    A nominal span adds its whole days in wall-clock time of the start's zone
    (``P1D`` across a DST change keeps the clock time), the rest exactly.
    """

    length: timedelta
    nominal: bool

    def end(self, start: datetime) -> datetime:
        """The aware UTC end of an instance starting at aware ``start``."""
        if self.nominal:
            return add_duration(start, self.length)
        return start.astimezone(UTC) + self.length

    def bound(self) -> timedelta:
        """An upper bound of the real length (a DST change adds at most a day)."""
        if self.nominal and self.length.days:
            return self.length + timedelta(days=1)
        return self.length


@dataclass(frozen=True)
class Instance:
    """One occurrence of an event: aware UTC ``start`` and ``end`` (``end >= start``).

    ``recurrenceid`` is the normalised RECURRENCE-ID
    (:func:`imiptools.dates.format_recurrence_id`), '' for a non-recurring
    event; ``component`` is the master or the override supplying the data.
    """

    start: datetime
    end: datetime
    recurrenceid: str
    component: Event
    all_day: bool


ZERO = Span(timedelta(0), nominal=False)
ONE_DAY = Span(timedelta(days=1), nominal=True)


def recurs(master: Event) -> bool:
    """True if ``master`` has an RRULE or RDATE (RFC 5545 §3.8.5)."""
    return _has(master, "RRULE") or _has(master, "RDATE")


def _has(component: Any, name: str) -> bool:
    """Whether ``component`` has property ``name`` (asked first with ``in``:
    icalendar's ``get`` of a missing property raises and catches a KeyError,
    three times the cost, and most events have no RRULE nor RDATE)."""
    return name in component and component.get(name) is not None


def value_of(component: Any, name: str) -> Moment | None:
    """A DATE or DATE-TIME property's value, None if absent.

    Raises :class:`CalendarDataError` if icalendar could not parse it.
    """
    prop = component.get(name)
    if isinstance(prop, list):
        prop = prop[0]
    if prop is None:
        return None
    value = None if isinstance(prop, vBroken) else getattr(prop, "dt", None)
    if not isinstance(value, date):
        raise CalendarDataError(f"unreadable {name}")
    return value


def start_zone(component: Any, floating: tzinfo) -> tzinfo | None:
    """The zone DTSTART is given in (``floating`` for a floating time), the one
    a series recurs in (RFC 5545 §3.3.10); None for a DATE or an absent or
    unreadable DTSTART."""
    try:
        value = value_of(component, "DTSTART")
    except CalendarDataError:
        return None
    if not isinstance(value, datetime):
        return None
    return value.tzinfo or floating


def start_of(component: Any) -> Moment:
    """DTSTART (required here: RFC 5546 §3.2 requires it in every VEVENT)."""
    value = value_of(component, "DTSTART")
    if value is None:
        raise CalendarDataError("VEVENT without DTSTART")
    return value


def span_of(component: Any, zone: tzinfo, start: Moment | None = None) -> Span:
    """The length of ``component`` (RFC 5545 §3.6.1); never negative.

    DTEND wins over DURATION; a DTEND before DTSTART, or a negative
    DURATION, gives a zero-length event. ``start``: :func:`start_of` the
    component, if the caller has it already.
    """
    if start is None:
        start = start_of(component)
    end = value_of(component, "DTEND")
    if end is not None:
        return _between(start, end, zone)
    duration = _duration(component)
    if duration is not None:
        return Span(max(duration, timedelta(0)), nominal=True)
    return ZERO if isinstance(start, datetime) else ONE_DAY


def _between(start: Moment, end: Moment, zone: tzinfo) -> Span:
    if not isinstance(start, datetime) and not isinstance(end, datetime):
        return Span(max(end - start, timedelta(0)), nominal=True)
    return Span(max(to_utc(end, zone) - to_utc(start, zone), timedelta(0)), nominal=False)


def _duration(component: Any) -> timedelta | None:
    prop = component.get("DURATION")
    if prop is None:
        return None
    value = getattr(prop, "dt", None)
    if not isinstance(value, timedelta):
        raise CalendarDataError("unreadable DURATION")
    return value


def is_all_day(value: Moment) -> bool:
    """True for a DATE value (RFC 5545 §3.3.4)."""
    return not isinstance(value, datetime)


def localise(value: Moment, zone: tzinfo) -> datetime:
    """``value`` as an aware datetime in its own zone, or in ``zone`` if it has none."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    return in_frame(value, zone)


def wall_date(value: Moment, zone: tzinfo) -> date:
    """The calendar day of ``value`` as its writer saw it.

    A date is itself; a datetime with a TZID (or floating) gives its own
    wall-clock date; a UTC datetime gives its date in ``zone``.
    """
    if not isinstance(value, datetime):
        return value
    if value.tzinfo is not None and value.tzname() == "UTC":
        return value.astimezone(zone).date()
    return value.date()


def in_frame(value: Moment, frame: tzinfo) -> datetime:
    """``value`` as an aware datetime in ``frame``.

    Dates become midnight and naive values are read in ``frame``; aware
    values are converted to it.
    """
    if not isinstance(value, datetime):
        return datetime.combine(value, time(0), tzinfo=frame)
    if value.tzinfo is None:
        return value.replace(tzinfo=frame)
    return value.astimezone(frame)


def date_values(component: Any, name: str) -> Iterator[DateValue]:
    """Every value of every ``name`` property (RDATE, EXDATE: RFC 5545 §3.8.5).

    Values are dates, datetimes or, for ``VALUE=PERIOD``, ``(start, end)`` or
    ``(start, duration)`` tuples. An empty property (``EXDATE;VALUE=DATE:``)
    is skipped; other properties icalendar could not parse raise
    :class:`CalendarDataError`.
    """
    props = component.get(name)
    if props is None:
        return
    for prop in props if isinstance(props, list) else [props]:
        if isinstance(prop, vBroken) and not str(prop).strip():
            continue
        items = None if isinstance(prop, vBroken) else getattr(prop, "dts", None)
        if items is None:
            raise CalendarDataError(f"unreadable {name}")
        for item in items:
            value = getattr(item, "dt", None)
            if not isinstance(value, date | tuple):
                raise CalendarDataError(f"unreadable {name}")
            yield value


def period_end(value: DateValue, start: datetime, zone: tzinfo) -> datetime | None:
    """The UTC end of a PERIOD value (RFC 5545 §3.3.9) starting at ``start``."""
    if not isinstance(value, tuple):
        return None
    end = value[1]
    if isinstance(end, timedelta):
        return start.astimezone(UTC) + max(end, timedelta(0))
    return max(to_utc(end, zone), start.astimezone(UTC))


def instance_of(component: Event, zone: tzinfo, rid: str) -> Instance:
    """The instance a component describes by its own DTSTART and length."""
    start = start_of(component)
    local = localise(start, zone)
    end = span_of(component, zone, start).end(local)
    return Instance(local.astimezone(UTC), end, rid, component, is_all_day(start))
