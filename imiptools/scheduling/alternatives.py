"""Compliant alternatives: a COUNTER (RFC 5546 §3.2.7) instead of a limit's decline.

With the preference ``limit_action`` set to ``counter``, a request that
breaks an event limit (:mod:`imiptools.scheduling.limits`,
:mod:`imiptools.scheduling.hours`) is answered with a proposal that keeps
every limit, made by :func:`alternative` from the limit's DECLINED decision:

- a single event (one instance, no RRULE) that is too long or too short gets
  the same start and the longest (``max_duration``) or shortest
  (``min_duration``) allowed length, its end moved back or forward to the
  ``permitted_times`` grid; one too soon (``min_notice``), outside the
  ``opening_hours`` or off the ``permitted_times`` grid gets the first later
  period of the same length that keeps them;
- a series that is too long (``allow_indefinite``, ``max_instances``,
  ``booking_window``) gets its RRULE with COUNT set to the allowed number and
  UNTIL removed (params ``rrule`` and ``count``);
- a series whose instances are too long or too short gets every instance
  resized; one that starts too soon (``min_notice``) starts at its first
  timely instance (COUNT reduced); one outside the ``opening_hours`` or off
  the ``permitted_times`` grid is moved later on the day of its first
  instance. A moved series is expanded again as the organiser's client will
  expand it (in its own zone), and those instances are what is checked.

Every proposal is re-checked with :func:`~imiptools.scheduling.limits.check_limits`
(no limit skipped) and must be free (``request.timeline``): fewer overlapping
busy periods than the resource's capacity (:func:`capacity`, the ``N`` of its
free/busy functions, default 1). A moved single event is searched for on the
grid (``permitted_times``, or every quarter hour), jumping over closed hours
and busy periods, for at most :data:`MAX_CANDIDATES` candidates and no later
than ``now + booking_window`` (without one, :data:`DEFAULT_SEARCH` after the
first candidate). Busy periods are fetched as the search reaches them when
the request has ``busy_between``; a caller giving ``busy`` instead must give
them over :func:`search_span`.

A series is truncated only when it can be counted from its first instance:
one RRULE, no RDATE or EXDATE, and the first instance to book is DTSTART
(a series already under way, whose COUNT would include past instances, gets
no alternative). An indefinite series without ``max_instances`` or
``booking_window`` is cut to :data:`INDEFINITE_COUNT` instances.

A COUNTER decision has code ``counter``, the ``function`` of the limit that
fired, and params ``start`` and ``end`` (aware UTC; the first instance of a
series), ``period`` (in words) and those of the decline (``limit``,
``hours``, ``times``), used by the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, tzinfo

from icalendar import Component, Event, vRecur

from imiptools.config import parse_duration
from imiptools.dates import to_utc
from imiptools.errors import CalendarDataError
from imiptools.i18n import N_, N_plural
from imiptools.itip.recurrence import Instance, Limits, expand
from imiptools.itip.timing import start_zone
from imiptools.scheduling.counter import DEFAULT_GRID, DEFAULT_SEARCH
from imiptools.scheduling.freebusy import capacity_of, describe
from imiptools.scheduling.hours import (
    PermittedTimes,
    parse_opening,
    parse_permitted_times,
    snap,
)
from imiptools.scheduling.limits import check_limits
from imiptools.scheduling.model import Answer, Decision, Request
from imiptools.scheduling.registry import parse_function_lines

__all__ = [
    "INDEFINITE_COUNT",
    "MAX_CANDIDATES",
    "REASONS",
    "SERIES_LIMITS",
    "SINGLE_LIMITS",
    "alternative",
    "capacity",
    "search_span",
    "shortened",
    "truncated",
]

#: How many candidate periods the search for a moved single event looks at, at most.
MAX_CANDIDATES = 500
#: How many instances an indefinite series is offered when no limit gives a number.
INDEFINITE_COUNT = 52
#: How far ahead to look for the next opening after a closed candidate.
_OPENING_LOOKAHEAD = timedelta(days=8)
#: The limits that a later start can fix; any other ends the search.
_MOVABLE = frozenset({"min_notice", "opening_hours", "permitted_times"})
#: "Try no later start": past every latest start.
_NEVER = datetime.max.replace(tzinfo=UTC)

#: The reason of a single-event proposal, by the limit that fired.
REASONS: dict[str, str] = {
    "max_duration": N_(
        "the event is longer than the {limit} the resource can be booked for; it offers {period}"
    ),
    "min_duration": N_(
        "the event is shorter than the {limit} the resource must be booked for; it offers {period}"
    ),
    "min_notice": N_("the resource must be booked at least {limit} in advance; it offers {period}"),
    "opening_hours": N_("the resource can only be booked {hours}; it offers {period}"),
    "permitted_times": N_("the event must start and end at {times}; it offers {period}"),
}
SERIES_REASON = N_plural(
    "the series is too long; the resource offers its first {count} instance",
    "the series is too long; the resource offers its first {count} instances",
)
#: The limits answered with another period for a single event.
SINGLE_LIMITS = frozenset(REASONS)
#: The functions whose argument N is the resource's capacity.
_CAPACITY_FUNCTIONS = frozenset(
    {
        "schedule_in_freebusy",
        "schedule_corrected_in_freebusy",
        "schedule_next_available_in_freebusy",
    }
)
#: The limits answered with a truncated series.
SERIES_LIMITS = frozenset({"allow_indefinite", "max_instances", "booking_window"})
#: The limits answered with a series whose every instance is resized.
_LENGTH_LIMITS = frozenset({"max_duration", "min_duration"})
RESIZED_REASONS: dict[str, str] = {
    "max_duration": N_(
        "the instances are longer than the {limit} the resource can be booked for;"
        " it offers the series from {period}"
    ),
    "min_duration": N_(
        "the instances are shorter than the {limit} the resource must be booked for;"
        " it offers the series from {period}"
    ),
}

EndOf = Callable[[datetime], datetime]


def alternative(request: Request, declined: Decision) -> Decision | None:
    """A COUNTER that keeps every limit, for ``request`` which the limit behind
    ``declined`` refused; None when there is none (the caller then declines).

    See the module docstring for what is proposed for which limit.
    """
    if declined.answer is not Answer.DECLINED or declined.code == "misconfigured":
        return None
    try:
        if _rule(request) is not None:
            if declined.function in SERIES_LIMITS:
                return _truncated(request, declined)
            if declined.function in _LENGTH_LIMITS:
                return _resized(request, declined)
            if declined.function == "min_notice":
                return _series_from_notice(request, declined)
            if declined.function in ("opening_hours", "permitted_times"):
                return _series_moved(request, declined)
            return None
        if len(request.instances) == 1 and declined.function in SINGLE_LIMITS:
            return _moved(request, declined)
    except ValueError:  # a preference that was not validated: no alternative
        return None
    return None


def search_span(request: Request) -> tuple[datetime, datetime]:
    """The span over which a caller giving ``request.busy`` (not ``busy_between``)
    must give busy periods for :func:`alternative`.

    The instances' span, widened for a single event to every period the
    search may propose. Reads preferences and instances, never ``busy``.
    """
    if not request.instances:
        return request.now, request.now
    start = min(instance.start for instance in request.instances)
    end = max(instance.end for instance in request.instances)
    if len(request.instances) != 1:
        return start, end
    try:
        latest = _latest(request, max(start, _earliest(request)))
    except ValueError:  # the limits answer "misconfigured"
        return start, end
    return start, max(end, latest + max(end - start, _longest(request)) + timedelta(days=1))


# -- single events -----------------------------------------------------------


def _moved(request: Request, declined: Decision) -> Decision | None:
    """A single event shortened, lengthened or moved later (see the module docstring)."""
    instance = request.instances[0]
    times = parse_permitted_times(request.preference("permitted_times"))
    end_of = _end_of(request, declined.function, instance, times)
    first = max(instance.start, _earliest(request))
    found = _search(request, first, end_of, times)
    if found is None:
        return None
    return _counter(request, declined, REASONS[declined.function], *found)


def _end_of(
    request: Request, function: str, instance: Instance, times: PermittedTimes | None
) -> EndOf:
    """How a candidate starting at ``start`` ends: the limit's length, else the request's,
    moved to the grid (back for ``max_duration``, else forward)."""
    if function == "max_duration":
        limit = parse_duration(request.preference("max_duration"))
        return lambda start: snap(start + limit, times, False, request.zone)
    if function == "min_duration":
        limit = parse_duration(request.preference("min_duration"))
        return lambda start: snap(start + limit, times, True, request.zone)
    length = instance.end - instance.start
    return lambda start: snap(start + length, times, True, request.zone)


def _earliest(request: Request) -> datetime:
    """``now`` plus ``min_notice``: no proposal starts before it."""
    notice = request.preference("min_notice")
    return request.now + (parse_duration(notice) if notice else timedelta(0))


def _latest(request: Request, first: datetime) -> datetime:
    """The last start the search tries: ``now + booking_window``, else ``first`` plus
    :data:`DEFAULT_SEARCH`."""
    window = request.preference("booking_window")
    return request.now + parse_duration(window) if window else first + DEFAULT_SEARCH


def _longest(request: Request) -> timedelta:
    """The longest proposal length that ``min_duration`` may ask for."""
    value = request.preference("min_duration")
    return parse_duration(value) if value else timedelta(0)


def _search(
    request: Request, first: datetime, end_of: EndOf, times: PermittedTimes | None
) -> tuple[datetime, datetime] | None:
    """The first compliant, free (start, end) from ``first`` on, starts on the grid
    (``first`` itself too when there is no ``permitted_times``); None if there is
    none within :data:`MAX_CANDIDATES` candidates or before the latest start."""
    latest = _latest(request, first)
    start = snap(first, times, True, request.zone)
    for _ in range(MAX_CANDIDATES):
        if start > latest:
            return None
        end = end_of(start)
        later = _later(request, start, end) if end >= start else start
        if later is None:
            return start, end
        step = snap(start + timedelta(seconds=1), times or DEFAULT_GRID, True, request.zone)
        start = max(step, later)
    return None


def _later(request: Request, start: datetime, end: datetime) -> datetime | None:
    """None if ``[start, end)`` keeps every limit and is free; else the earliest start
    worth trying next (a start on the grid may still have to follow it), or
    :data:`_NEVER` when a limit fails that no later start can keep."""
    limited = check_limits(_with_instances(request, [_instance(request, start, end)]))
    if limited is not None:
        if limited.function not in _MOVABLE:
            return _NEVER
        if limited.function == "opening_hours":
            return _next_opening(request, start)
        return start
    if request.timeline.peak(start, end) >= capacity(request):
        return min(period.end for period in request.timeline.overlapping(start, end))
    return None


def _next_opening(request: Request, start: datetime) -> datetime:
    """The first opening after ``start`` (``start`` itself if there is none soon:
    the search then just steps on)."""
    hours = parse_opening(request.preference("opening_hours"), request.zone)
    if hours is None:
        return start
    opens = [s for s, _ in hours.periods_around(start, start + _OPENING_LOOKAHEAD, request.zone)]
    return min((s for s in opens if s > start), default=start)


def _instance(request: Request, start: datetime, end: datetime) -> Instance:
    component = request.component if isinstance(request.component, Event) else Event()
    return Instance(start, end, "", component, False)


def _with_instances(
    request: Request, instances: Sequence[Instance], component: Component | None = None
) -> Request:
    """``request`` for the proposed instances (and component, for a series)."""
    if component is None:
        return replace(request, instances=list(instances))
    return replace(
        request, instances=list(instances), component=component, indefinite=False, truncated=False
    )


def _counter(
    request: Request,
    declined: Decision,
    reason: str,
    start: datetime,
    end: datetime,
    plural: str = "",
    **extra: object,
) -> Decision:
    params: dict[str, object] = dict(declined.params)
    params.update(start=start, end=end, period=describe(start, end, request.zone), **extra)
    return Decision(Answer.COUNTER, "counter", reason, declined.function, params, plural)


# -- series ------------------------------------------------------------------


def _rule(request: Request) -> object:
    """The RRULE value of the requested component (a list if there are several);
    None for a single event."""
    if request.component is None:
        return None
    value: object = request.component.get("RRULE")
    return value


def _truncated(request: Request, declined: Decision) -> Decision | None:
    """The series cut to its allowed number of instances (see :func:`truncated`)."""
    return truncated(request, declined, _allowed_count(request), SERIES_REASON)


def truncated(
    request: Request, declined: Decision, count: int, reason: tuple[str, str]
) -> Decision | None:
    """A COUNTER for ``request``'s series cut to its first ``count`` instances
    (COUNT set, UNTIL removed), if that keeps every event limit and each kept
    instance is free; None otherwise, or when the series cannot be counted
    (see the module docstring). ``reason`` is a (singular, plural) pair
    with ``{count}`` and the params of ``declined``.
    """
    rule, component = _rule(request), request.component
    if not isinstance(rule, vRecur) or component is None or not _countable(request, component):
        return None
    kept = sorted(request.instances, key=lambda instance: instance.start)[:count]
    if not kept:
        return None
    shorter = vRecur(rule)
    shorter.pop("UNTIL", None)
    shorter["COUNT"] = [len(kept)]
    proposed = _with_rule(component, shorter)
    if check_limits(_with_instances(request, kept, proposed)) is not None:
        return None
    if any(_busy(request, instance) for instance in kept):
        return None
    singular, plural = reason
    text: bytes = shorter.to_ical()  # type: ignore[no-untyped-call]
    first = kept[0]
    return _counter(
        request,
        declined,
        singular,
        first.start,
        first.end,
        plural,
        rrule=text.decode("ascii"),
        count=len(kept),
    )


def _resized(request: Request, declined: Decision) -> Decision | None:
    """The series with every instance given the limit's length (its end on the
    ``permitted_times`` grid), if every instance then keeps every limit and is
    free; the same RRULE, so COUNT and UNTIL stay as requested."""
    rule, component = _rule(request), request.component
    if not isinstance(rule, vRecur) or component is None or not request.instances:
        return None
    first = min(request.instances, key=lambda instance: instance.start)
    times = parse_permitted_times(request.preference("permitted_times"))
    length = _end_of(request, declined.function, first, times)(first.start) - first.start
    if length <= timedelta(0):
        return None
    resized = [
        Instance(i.start, i.start + length, i.recurrenceid, i.component, i.all_day)
        for i in request.instances
    ]
    if check_limits(_with_instances(request, resized)) is not None:
        return None
    if any(_busy(request, instance) for instance in resized):
        return None
    text: bytes = rule.to_ical()  # type: ignore[no-untyped-call]
    reason = RESIZED_REASONS[declined.function]
    end = first.start + length
    return _counter(request, declined, reason, first.start, end, rrule=text.decode("ascii"))


SERIES_REASONS: dict[str, str] = {
    "min_notice": N_(
        "the resource must be booked at least {limit} in advance;"
        " it offers the series from {period}"
    ),
    "opening_hours": N_(
        "the resource can only be booked {hours}; it offers the series at {period}"
    ),
    "permitted_times": N_(
        "the event must start and end at {times}; it offers the series at {period}"
    ),
}
#: How many later times of day a moved series tries, at most.
SERIES_CANDIDATES = 96


def _series_from_notice(request: Request, declined: Decision) -> Decision | None:
    """The series from its first instance that meets ``min_notice`` (COUNT
    reduced by the instances left out), if that is exactly the rest of it,
    keeps every limit and is free."""
    rule, component = _rule(request), request.component
    if not isinstance(rule, vRecur) or component is None or not _plain_series(component):
        return None
    ordered = sorted(request.instances, key=lambda instance: instance.start)
    kept = [i for i in ordered if i.start >= _earliest(request)]
    if not kept:
        return None
    later = vRecur(rule)
    if "COUNT" in later:
        later["COUNT"] = [int(later["COUNT"][0]) - (len(ordered) - len(kept))]
    first = kept[0]
    proposed = _with_times(component, first.start, first.end, later, request.zone)
    return _series_offer(request, declined, proposed, later, [i.start for i in kept])


def _series_moved(request: Request, declined: Decision) -> Decision | None:
    """The series moved later on the same day of its first instance (the same
    length, its end moved to the ``permitted_times`` grid), at the first time
    at which every instance keeps every limit and is free."""
    rule, component = _rule(request), request.component
    if not isinstance(rule, vRecur) or component is None or not _plain_series(component):
        return None
    first = min(request.instances, key=lambda instance: instance.start)
    times = parse_permitted_times(request.preference("permitted_times"))
    end_of = _end_of(request, declined.function, first, times)
    local = first.start.astimezone(request.zone)
    last = local.replace(hour=23, minute=59, second=59).astimezone(UTC)
    start = snap(max(first.start, _earliest(request)), times, True, request.zone)
    for _ in range(SERIES_CANDIDATES):
        if start > last:
            return None
        proposed = _with_times(component, start, end_of(start), rule, request.zone)
        offer = _series_offer(request, declined, proposed, rule, None)
        if offer is not None:
            return offer
        start = snap(start + timedelta(seconds=1), times or DEFAULT_GRID, True, request.zone)
    return None


def _plain_series(component: Component) -> bool:
    """One RRULE and no RDATE or EXDATE: a series that a new DTSTART moves whole."""
    return "RDATE" not in component and "EXDATE" not in component


def _with_times(
    component: Component, start: datetime, end: datetime, rule: vRecur, zone: tzinfo
) -> Component:
    """A copy of ``component`` from ``start`` to ``end`` (in its own zone, or
    ``zone`` for floating times, so that it recurs at the same local time),
    with ``rule`` as its only RRULE."""
    local = start_zone(component, zone) or zone
    copy = _with_rule(component, rule)
    for name in ("DTSTART", "DTEND", "DURATION"):
        copy.pop(name, None)
    copy.add("DTSTART", start.astimezone(local))
    copy.add("DTEND", end.astimezone(local))
    return copy


def _series_offer(
    request: Request,
    declined: Decision,
    proposed: Component,
    rule: vRecur,
    starts: Sequence[datetime] | None,
) -> Decision | None:
    """A COUNTER with ``proposed`` if its instances (expanded again: what the
    organiser's client will see) are as many as requested (or start exactly
    at ``starts``), keep every limit and are free."""
    instances = _expanded(request, proposed)
    if instances is None or not instances:
        return None
    if starts is not None and [i.start for i in instances] != list(starts):
        return None
    if starts is None and len(instances) != len(request.instances):
        return None
    if check_limits(_with_instances(request, instances, proposed)) is not None:
        return None
    if any(_busy(request, instance) for instance in instances):
        return None
    text: bytes = rule.to_ical()  # type: ignore[no-untyped-call]
    first = instances[0]
    reason = SERIES_REASONS[declined.function]
    return _counter(request, declined, reason, first.start, first.end, rrule=text.decode("ascii"))


def _expanded(request: Request, proposed: Component) -> list[Instance] | None:
    """The future instances of ``proposed`` over the span the request's cover
    (and a day more); None when it cannot be expanded."""
    if not isinstance(proposed, Event):
        return None
    end = max(i.end for i in request.instances) + timedelta(days=1)
    limits = Limits(request.now, end, max_instances=len(request.instances) + 1)
    try:
        expansion = expand(proposed, [], request.zone, limits)
    except (CalendarDataError, ValueError):
        return None
    return [i for i in expansion.instances if i.end > request.now]


def shortened(request: Request, declined: Decision, reason: str, end: datetime) -> Decision | None:
    """A COUNTER for ``request``'s single instance ending at ``end`` instead,
    if that keeps every event limit and is free (see :func:`capacity`); else None."""
    if _rule(request) is not None or len(request.instances) != 1:
        return None
    start = request.instances[0].start
    if not start < end or _later(request, start, end) is not None:
        return None
    return _counter(request, declined, reason, start, end)


def _countable(request: Request, component: Component) -> bool:
    """Whether COUNT can be set from the instances: no RDATE or EXDATE, and the
    first instance to book is DTSTART (nothing of the series is past)."""
    if "RDATE" in component or "EXDATE" in component or not request.instances:
        return False
    try:
        dtstart = to_utc(component.decoded("DTSTART"), request.zone)
    except (KeyError, ValueError, TypeError):
        return False
    return min(instance.start for instance in request.instances) == dtstart


def _allowed_count(request: Request) -> int:
    """The smallest number that ``max_instances`` and ``booking_window`` allow;
    :data:`INDEFINITE_COUNT` (or fewer instances) when neither is set."""
    counts = []
    maximum = request.preference("max_instances")
    if maximum:
        counts.append(int(maximum))
    window = request.preference("booking_window")
    if window:
        last = request.now + parse_duration(window)
        counts.append(sum(1 for instance in request.instances if instance.start <= last))
    return min(counts) if counts else INDEFINITE_COUNT


def _with_rule(component: Component, rule: vRecur) -> Component:
    """A copy of ``component`` with ``rule`` as its only RRULE."""
    copy = Event.from_ical(component.to_ical())
    copy.pop("RRULE", None)
    copy.add("RRULE", rule)
    return copy


def _busy(request: Request, instance: Instance) -> bool:
    """Whether ``instance`` would exceed the resource's :func:`capacity`."""
    return request.timeline.peak(instance.start, instance.end) >= capacity(request)


def capacity(request: Request) -> int:
    """How many bookings may overlap: the smallest capacity ``N`` of the
    configured free/busy functions (``schedule_in_freebusy N`` and the two
    counter functions), 1 when none is configured or one is unreadable."""
    try:
        lines = parse_function_lines(request.preference("scheduling_function"))
        found = [capacity_of(args) for name, args in lines if name in _CAPACITY_FUNCTIONS]
    except ValueError:
        return 1
    return min(found, default=1)
