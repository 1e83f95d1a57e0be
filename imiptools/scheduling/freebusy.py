"""Free/busy scheduling functions (the original's ``schedule_in_freebusy``)."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from datetime import datetime, tzinfo

from imiptools.i18n import N_, N_plural
from imiptools.itip.recurrence import Instance
from imiptools.periods import Period
from imiptools.scheduling.model import Answer, Decision, Listing, Phrase, Request
from imiptools.scheduling.registry import register


def describe(start: datetime, end: datetime, zone: tzinfo) -> str:
    """``2030-01-08 10:00-11:00 (Europe/Berlin)`` in the resource's zone."""
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    day = local_start.strftime("%Y-%m-%d %H:%M")
    fmt = "%H:%M" if local_end.date() == local_start.date() else "%Y-%m-%d %H:%M"
    return f"{day}-{local_end.strftime(fmt)} ({local_start.tzname()})"


def capacity_of(args: Sequence[str]) -> int:
    """The optional capacity argument N (default 1); ValueError if not N >= 1."""
    if not args:
        return 1
    try:
        capacity = int(args[0])
    except ValueError:  # said below in words, not as Python's int() message
        capacity = 0
    if capacity < 1 or len(args) > 1:
        raise ValueError(f"expected one positive number (the capacity), not {shlex.join(args)}")
    return capacity


def check_capacity(args: Sequence[str]) -> None:
    """The argument check of the functions taking an optional capacity N."""
    capacity_of(args)


def clashes(request: Request, capacity: int) -> list[Instance]:
    """The instances that would exceed ``capacity`` overlapping bookings."""
    timeline = request.timeline
    return [
        i
        for i in request.instances
        if i.end > i.start and timeline.peak(i.start, i.end) >= capacity
    ]


def tolerated(request: Request, clashing: int) -> bool:
    """Whether a series may be accepted with ``clashing`` instances declined.

    ``max_conflict_instances`` and ``max_conflict_percent`` (both default 0:
    any clash declines the series) must both hold, as Exchange's
    MaximumConflictInstances and ConflictPercentageAllowed do.
    """
    total = len(request.instances)
    if total < 2 or clashing >= total:
        return False
    most = int(request.preference("max_conflict_instances") or 0)
    percent = int(request.preference("max_conflict_percent") or 0)
    return clashing <= most and clashing * 100 <= percent * total


#: How many bookings in the way a decline names, at most (then "and N more").
NAMED = 3


def shows_summary(request: Request, period: Period) -> bool:
    """Whether a decline may name the booking ``period`` by its SUMMARY.

    Only a booking of the resource's own (a held offer has no event to
    name), and only to someone who may know it: its own organiser asking
    again, or anyone when ``conflict_details`` is ``yes``. The titles of other
    people's meetings are not told to whoever sends an invitation.
    """
    if not period.summary or not period.uid:
        return False
    mine = bool(period.organiser) and period.organiser == request.organiser
    return mine or request.preference("conflict_details") == "yes"


def booking_words(request: Request, period: Period) -> object:
    """One booking in the way, in words: its time in the resource's zone, its
    SUMMARY when :func:`shows_summary` allows, its organiser under
    ``conflict_details yes``, or that it is held for a proposal."""
    when = describe(period.start, period.end, request.zone)
    if period.status == "BUSY-TENTATIVE" and not period.summary:
        return Phrase(N_("{period} (held for a proposal)"), {"period": when})
    summary = period.summary if shows_summary(request, period) else ""
    holder = period.organiser if request.preference("conflict_details") == "yes" else ""
    if summary and holder:
        template = N_('{period} for "{summary}" by {holder}')
    elif summary:
        template = N_('{period} for "{summary}"')
    elif holder:
        template = N_("{period} by {holder}")
    else:
        return when
    return Phrase(template, {"period": when, "summary": summary, "holder": holder})


def in_the_way(request: Request, start: datetime, end: datetime) -> Listing:
    """The bookings overlapping [start, end), in words (at most :data:`NAMED`)."""
    found = request.timeline.overlapping(start, end)
    named: list[object] = [booking_words(request, period) for period in found[:NAMED]]
    if len(found) > NAMED:
        named.append(Phrase(N_("and {count} more"), {"count": len(found) - NAMED}))
    return Listing(tuple(named))


def booked(
    request: Request, start: datetime, end: datetime, function: str = "schedule_in_freebusy"
) -> Decision:
    """The decline of [start, end) for a clash, naming the bookings in the way
    (not the requested time)."""
    return Decision(
        Answer.DECLINED,
        "conflict",
        N_("the resource is already booked {bookings}"),
        function,
        {"bookings": in_the_way(request, start, end)},
    )


def conflict(request: Request, clashing: Sequence[Instance]) -> Decision:
    """The decline for a clash: the bookings in the way of the first clashing
    instance; for a series, also how many of the instances checked clash
    and when the first of them is."""
    first = clashing[0]
    if len(request.instances) < 2:
        return booked(request, first.start, first.end)
    singular, plural = N_plural(
        "{count} of the {total} instances checked clashes: at {period} the resource is"
        " already booked {bookings}",
        "{count} of the {total} instances checked clash; the first at {period}, when the"
        " resource is already booked {bookings}",
    )
    params = {
        "count": len(clashing),
        "total": len(request.instances),
        "period": describe(first.start, first.end, request.zone),
        "bookings": in_the_way(request, first.start, first.end),
    }
    return Decision(
        Answer.DECLINED, "conflict", singular, "schedule_in_freebusy", params, plural=plural
    )


def is_series(request: Request) -> bool:
    """Whether the request is for a series: more than one instance, or a
    component with a rule or dates of recurrence (RFC 5545 §3.8.5)."""
    component = request.component
    recurs = component is not None and ("RRULE" in component or "RDATE" in component)
    return len(request.instances) > 1 or recurs


def checked_span(request: Request) -> object:
    """The days of the instances checked, in the resource's zone."""
    starts = sorted(i.start for i in request.instances)
    first, last = (f"{d.astimezone(request.zone):%Y-%m-%d}" for d in (starts[0], starts[-1]))
    if first == last:
        return first
    return Phrase(N_("{first} to {last}"), {"first": first, "last": last})


def free(request: Request, function: str = "schedule_in_freebusy") -> Decision:
    """The acceptance of a free request; for a series, saying so, with how
    many instances were checked and over which days (the window may have
    cut a long series short)."""
    if not is_series(request) or not request.instances:
        return Decision(
            Answer.ACCEPTED, "free", N_("the resource is free at the requested time"), function
        )
    singular, plural = N_plural(
        "the resource is free at the {count} instance of the series checked ({span})",
        "the resource is free at all {count} instances of the series checked ({span})",
    )
    params = {"count": len(request.instances), "span": checked_span(request)}
    return Decision(Answer.ACCEPTED, "free", singular, function, params, plural=plural)


def partly_free(request: Request, clashing: Sequence[Instance]) -> Decision:
    """The acceptance of a series with the ``clashing`` instances declined,
    which it names (dates and times in the resource's zone)."""
    singular, plural = N_plural(
        "the resource is free at {free} of the {total} instances checked; {count} is"
        " declined, as the resource is already booked then: {periods}",
        "the resource is free at {free} of the {total} instances checked; {count} are"
        " declined, as the resource is already booked then: {periods}",
    )
    total = len(request.instances)
    params = {
        "count": len(clashing),
        "free": total - len(clashing),
        "total": total,
        "periods": ", ".join(describe(i.start, i.end, request.zone) for i in clashing),
    }
    return Decision(
        Answer.ACCEPTED,
        "partly-free",
        singular,
        "schedule_in_freebusy",
        params,
        plural=plural,
        declined=tuple(i.recurrenceid for i in clashing),
    )


@register("schedule_in_freebusy", check_capacity)
def schedule_in_freebusy(request: Request, args: Sequence[str]) -> Decision:
    """Accept if every instance finds fewer than N overlapping bookings.

    ``schedule_in_freebusy N``: N bookings may overlap (capacity, default 1).
    A series with a few clashing instances (see :func:`tolerated`) is
    accepted with those instances declined (``Decision.declined``), which
    the reason names. A decline names the bookings in the way of the first
    clashing instance (see :func:`conflict`); an acceptance of a series says
    how many instances were checked (see :func:`free`).
    """
    clashing = clashes(request, capacity_of(args))
    if clashing and not tolerated(request, len(clashing)):
        return conflict(request, clashing)
    if clashing:
        return partly_free(request, clashing)
    return free(request)
