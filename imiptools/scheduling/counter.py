"""Scheduling functions that answer with a better time: a COUNTER (RFC 5546 §3.2.7).

Both take the capacity argument of ``schedule_in_freebusy`` (``N``, default
1) and look at a single event only: for a request with more than one
instance (a series) they decide exactly as ``schedule_in_freebusy`` does.

``schedule_corrected_in_freebusy [N]`` moves the start back and the end
forward to the ``permitted_times`` grid (unchanged without it). If that
period is free and inside the ``opening_hours``, the answer is ACCEPTED when
nothing moved and COUNTER with the corrected period otherwise.

``schedule_next_available_in_freebusy [N]`` accepts a free request inside
the opening hours and on the grid; otherwise it proposes the first period
that starts on the grid (``permitted_times``, or every quarter hour when
unset) at or after the requested start, lasts as long as the request
(the end moved forward to the grid when ``permitted_times`` is set), is
free and lies inside the opening hours. Proposals start no earlier than
``now`` plus ``min_notice`` and no later than ``now`` plus
``booking_window``, or, without a booking window, 30 days after the
requested start. The search jumps over busy periods and closed hours and
stops after :data:`MAX_STEPS` candidates.

A COUNTER decision has ``code`` ``"counter"`` and params ``start`` and
``end`` (aware UTC), ``period`` (the proposal in words) and ``times`` (the
grid in words, '' without ``permitted_times``). A refusal is the decision of
what went wrong for the requested period: ``conflict`` (busy),
``opening-hours``, ``permitted-times``, ``min-notice`` or ``past``.

Busy periods beyond the request: the search looks at busy periods well
past the instances. A :class:`~imiptools.scheduling.Request` built with
``busy_between`` fetches them as the search reaches them (the handler's
way). A caller that gives ``busy`` instead must give them over
:func:`search_span`; with fewer, proposals may clash with bookings the
function did not see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, tzinfo

from imiptools.config import parse_duration
from imiptools.deferred import dataclass
from imiptools.i18n import N_
from imiptools.periods import Period, PeriodIndex
from imiptools.scheduling.freebusy import (
    booked,
    capacity_of,
    check_capacity,
    describe,
    free,
    schedule_in_freebusy,
)
from imiptools.scheduling.hours import (
    OpeningHours,
    PermittedTimes,
    opening_hours_decision,
    parse_opening,
    parse_permitted_times,
    permitted_times_decision,
    snap,
)
from imiptools.scheduling.model import Answer, Decision, Request
from imiptools.scheduling.registry import parse_function_lines, register

__all__ = [
    "COUNTER_FUNCTIONS",
    "DEFAULT_GRID",
    "DEFAULT_SEARCH",
    "DELEGATED_LIMITS",
    "MAX_STEPS",
    "Proposal",
    "delegated_limits",
    "schedule_corrected_in_freebusy",
    "schedule_next_available_in_freebusy",
    "search_span",
]

CORRECTED = "schedule_corrected_in_freebusy"
NEXT_AVAILABLE = "schedule_next_available_in_freebusy"
#: The functions of this module; :func:`search_span` widens only for them.
COUNTER_FUNCTIONS = (CORRECTED, NEXT_AVAILABLE)
#: The limits these functions apply themselves (see :func:`delegated_limits`).
DELEGATED_LIMITS = frozenset({"min_notice", "opening_hours", "permitted_times"})
#: How many candidate periods the search looks at, at most.
MAX_STEPS = 2000
#: How far the search looks without a ``booking_window``: from the requested start.
DEFAULT_SEARCH = timedelta(days=30)
#: The grid of proposals without ``permitted_times``: every quarter hour.
DEFAULT_GRID = PermittedTimes(None, (0, 15, 30, 45))


@dataclass(frozen=True)
class Proposal:
    """A period to book: aware UTC ``start`` <= ``end``."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class _Policy:
    """What the preferences and arguments say, read once per request (and the
    request, whose bookings a decline names)."""

    request: Request
    zone: tzinfo
    capacity: int
    busy: PeriodIndex
    times: PermittedTimes | None
    hours: OpeningHours | None
    notice: timedelta | None
    earliest: datetime
    latest: datetime


def _policy(request: Request, args: Sequence[str], start: datetime) -> _Policy:
    """The policy for a request whose (single) instance starts at ``start``."""
    notice_text = request.preference("min_notice")
    notice = parse_duration(notice_text) if notice_text else None
    window = request.preference("booking_window")
    return _Policy(
        request=request,
        zone=request.zone,
        capacity=capacity_of(args),
        busy=request.timeline,
        times=parse_permitted_times(request.preference("permitted_times")),
        hours=parse_opening(request.preference("opening_hours"), request.zone),
        notice=notice,
        earliest=request.now + (notice or timedelta(0)),
        latest=request.now + parse_duration(window) if window else start + DEFAULT_SEARCH,
    )


def _busy(policy: _Policy, proposal: Proposal) -> Period | None:
    """A busy period that makes ``proposal`` exceed the capacity: the one that ends
    first among those overlapping it (no later start is free before its end)."""
    start, end = proposal.start, proposal.end
    if end <= start or policy.busy.peak(start, end) < policy.capacity:
        return None
    return min(policy.busy.overlapping(start, end), key=lambda period: period.end)


def _refusal(policy: _Policy, proposal: Proposal, function: str) -> Decision | None:
    """Why ``proposal`` cannot be booked (too soon, closed, busy), None if it can."""
    start, end, zone = proposal.start, proposal.end, policy.zone
    if start < policy.earliest:
        return _too_soon(policy, function)
    if policy.hours is not None and not policy.hours.contains(start, end, zone):
        return opening_hours_decision(policy.hours, zone, start, end, function)
    if _busy(policy, proposal) is not None:
        return _conflict(policy, proposal, function)
    return None


def _on_grid(policy: _Policy, proposal: Proposal) -> bool:
    times, zone = policy.times, policy.zone
    if times is None:
        return True
    return times.allows(proposal.start.astimezone(zone)) and times.allows(
        proposal.end.astimezone(zone)
    )


def _too_soon(policy: _Policy, function: str) -> Decision:
    if policy.notice is None:
        return Decision(Answer.DECLINED, "past", N_("the event is in the past"), function)
    return Decision(
        Answer.DECLINED,
        "min-notice",
        N_("the resource must be booked at least {limit} in advance"),
        function,
        {"limit": policy.notice},
    )


def _conflict(policy: _Policy, proposal: Proposal, function: str) -> Decision:
    """The decline naming the bookings in the way of ``proposal``."""
    return booked(policy.request, proposal.start, proposal.end, function)


def _accepted(request: Request, function: str) -> Decision:
    return free(request, function)


def _counter(policy: _Policy, proposal: Proposal, reason: str, function: str) -> Decision:
    return Decision(
        Answer.COUNTER,
        "counter",
        reason,
        function,
        {
            "start": proposal.start,
            "end": proposal.end,
            "period": describe(proposal.start, proposal.end, policy.zone),
            "times": policy.times.describe() if policy.times else "",
        },
    )


def _as_series(request: Request, args: Sequence[str], function: str) -> Decision:
    """A series (or nothing to book): decided as ``schedule_in_freebusy`` does."""
    return replace(schedule_in_freebusy(request, args), function=function)


def _requested(request: Request) -> Proposal:
    instance = request.instances[0]
    return Proposal(instance.start, instance.end)


# -- schedule_corrected_in_freebusy ------------------------------------------


def _corrected(policy: _Policy, requested: Proposal) -> Proposal:
    """``requested`` widened to the grid: start back, end forward."""
    return Proposal(
        snap(requested.start, policy.times, False, policy.zone),
        snap(requested.end, policy.times, True, policy.zone),
    )


@register(CORRECTED, check_capacity)
def schedule_corrected_in_freebusy(request: Request, args: Sequence[str]) -> Decision:
    """Accept, or counter with the period widened to ``permitted_times``, if free.

    ``schedule_corrected_in_freebusy N``: capacity as for
    ``schedule_in_freebusy``; see the module docstring. A corrected start
    before ``now`` (+ ``min_notice``) is refused, not moved forward.
    """
    if len(request.instances) != 1:
        return _as_series(request, args, CORRECTED)
    requested = _requested(request)
    policy = _policy(request, args, requested.start)
    proposal = _corrected(policy, requested)
    refusal = _refusal(policy, proposal, CORRECTED)
    if refusal is not None:
        return refusal
    if proposal == requested:
        return _accepted(request, CORRECTED)
    reason = N_("bookings start and end at {times}; {period} would fit")
    return _counter(policy, proposal, reason, CORRECTED)


# -- schedule_next_available_in_freebusy -------------------------------------


def _closed_until(opening: list[tuple[datetime, datetime]], p: Proposal) -> datetime | None:
    """None if ``p`` lies inside an open interval, else the next opening after its
    start (``datetime.max`` when there is none)."""
    for opens, closes in opening:
        if opens <= p.start and p.end <= closes:
            return None
        if opens > p.start:
            return opens
    return datetime.max.replace(tzinfo=UTC)


def _candidate(policy: _Policy, start: datetime, length: timedelta) -> Proposal:
    """The proposal starting at ``start`` (on the grid), its end moved to the grid."""
    return Proposal(start, snap(start + length, policy.times, True, policy.zone))


def _next_available(policy: _Policy, requested: Proposal) -> Proposal | None:
    """The first bookable period from the requested start on (see the module
    docstring), None if there is none within the limits or :data:`MAX_STEPS`."""
    latest = policy.latest
    length = requested.end - requested.start
    grid = policy.times or DEFAULT_GRID
    opening = None
    if policy.hours is not None:
        horizon = latest + length + timedelta(days=1)
        opening = policy.hours.periods_around(requested.start, horizon, policy.zone)
    moment = max(requested.start, policy.earliest)
    for _ in range(MAX_STEPS):
        start = snap(moment, grid, True, policy.zone)
        if start > latest:
            return None
        proposal = _candidate(policy, start, length)
        later = None if opening is None else _closed_until(opening, proposal)
        if later is None:
            busy = _busy(policy, proposal)
            if busy is None:
                return proposal
            later = busy.end
        if later > latest:
            return None
        moment = later  # always after start: the search advances
    return None


@register(NEXT_AVAILABLE, check_capacity)
def schedule_next_available_in_freebusy(request: Request, args: Sequence[str]) -> Decision:
    """Accept if free, else counter with the next free period of the same length.

    ``schedule_next_available_in_freebusy N``: capacity as for
    ``schedule_in_freebusy``; see the module docstring.
    """
    if len(request.instances) != 1:
        return _as_series(request, args, NEXT_AVAILABLE)
    requested = _requested(request)
    policy = _policy(request, args, requested.start)
    refusal = _refusal(policy, requested, NEXT_AVAILABLE)
    if refusal is None and _on_grid(policy, requested):
        return _accepted(request, NEXT_AVAILABLE)
    proposal = _next_available(policy, requested)
    if proposal is not None:
        reason = N_("the resource is busy then; it is free at {period}")
        return _counter(policy, proposal, reason, NEXT_AVAILABLE)
    if refusal is not None:
        return refusal
    if policy.times is not None:  # free and open, but off the grid
        return permitted_times_decision(
            policy.times, policy.zone, requested.start, requested.end, NEXT_AVAILABLE
        )
    return _conflict(policy, requested, NEXT_AVAILABLE)


# -- what the caller must load -----------------------------------------------


def _names(request: Request) -> set[str]:
    try:
        lines = parse_function_lines(request.preference("scheduling_function"))
    except ValueError:
        return set()
    return {name for name, _ in lines}


def delegated_limits(request: Request) -> frozenset[str]:
    """The event limits (by preference name) that the caller should not run first
    because a function of this module, configured for this single-instance
    request, applies them itself and may counter instead of declining.

    Empty for a series (the functions then act as ``schedule_in_freebusy``,
    so the limits must run) and when no function of this module is configured.
    """
    if len(request.instances) != 1 or not _names(request) & set(COUNTER_FUNCTIONS):
        return frozenset()
    return DELEGATED_LIMITS


def search_span(request: Request) -> tuple[datetime, datetime]:
    """The span over which a caller giving ``request.busy`` must give busy periods
    (one with ``busy_between`` need not: they are fetched as the functions ask).

    Reads the request's instances, ``now``, ``zone`` and preferences
    (``scheduling_function``, ``permitted_times``, ``booking_window``),
    never ``busy``: build a Request with ``busy=()``, call this, load the
    busy periods over the span and ``dataclasses.replace`` them in. The span
    covers the instances; when a function of this module is configured and
    there is one instance, it also covers the corrected period and every
    period the search may propose (just the instances if a preference is bad).
    """
    if not request.instances:
        return request.now, request.now
    start = min(instance.start for instance in request.instances)
    end = max(instance.end for instance in request.instances)
    if len(request.instances) != 1 or not _names(request) & set(COUNTER_FUNCTIONS):
        return start, end
    try:
        policy = _policy(request, (), start)
    except ValueError:  # the functions will answer "misconfigured"
        return start, end
    widened = _corrected(policy, Proposal(start, end))
    horizon = max(end, policy.latest) + (end - start) + timedelta(days=1)
    return min(start, widened.start), horizon
