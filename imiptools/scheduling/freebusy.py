"""Free/busy scheduling functions (the original's ``schedule_in_freebusy``)."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from datetime import datetime, tzinfo

from imiptools.i18n import N_
from imiptools.itip.recurrence import Instance
from imiptools.scheduling.model import Answer, Decision, Request
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


def holder(request: Request, instance: Instance) -> str:
    """Who holds the clashing booking (``conflict_details=yes``), else ''."""
    if request.preference("conflict_details") != "yes":
        return ""
    for period in request.timeline.overlapping(instance.start, instance.end):
        return period.organiser or period.summary
    return ""


def conflict(request: Request, instance: Instance) -> Decision:
    """The decline for a clash, naming the time (and the holder if allowed)."""
    params = {"period": describe(instance.start, instance.end, request.zone)}
    who = holder(request, instance)
    if who:
        params["holder"] = who
        reason = N_("the resource is already booked at {period} by {holder}")
    else:
        reason = N_("the resource is already booked at {period}")
    return Decision(Answer.DECLINED, "conflict", reason, "schedule_in_freebusy", params)


@register("schedule_in_freebusy", check_capacity)
def schedule_in_freebusy(request: Request, args: Sequence[str]) -> Decision:
    """Accept if every instance finds fewer than N overlapping bookings.

    ``schedule_in_freebusy N``: N bookings may overlap (capacity, default 1).
    A series with a few clashing instances (see :func:`tolerated`) is
    accepted with those instances declined (``Decision.declined``).
    The reason names the first clashing instance.
    """
    clashing = clashes(request, capacity_of(args))
    if clashing and not tolerated(request, len(clashing)):
        return conflict(request, clashing[0])
    if clashing:
        days = ", ".join(describe(i.start, i.end, request.zone) for i in clashing)
        return Decision(
            Answer.ACCEPTED,
            "partly-free",
            N_("the resource is free except at {periods}, which are declined"),
            "schedule_in_freebusy",
            {"periods": days},
            declined=tuple(i.recurrenceid for i in clashing),
        )
    return Decision(
        Answer.ACCEPTED,
        "free",
        N_("the resource is free at the requested time"),
        "schedule_in_freebusy",
    )
