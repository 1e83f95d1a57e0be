"""Free/busy scheduling functions (the original's ``schedule_in_freebusy``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

from imiptools.i18n import N_
from imiptools.periods import busy_only, max_overlap
from imiptools.scheduling import Answer, Decision, Request, register


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
    capacity = int(args[0])
    if capacity < 1 or len(args) > 1:
        raise ValueError("expected one positive number")
    return capacity


@register("schedule_in_freebusy")
def schedule_in_freebusy(request: Request, args: Sequence[str]) -> Decision:
    """Accept if every instance finds fewer than N overlapping bookings.

    ``schedule_in_freebusy N``: N bookings may overlap (capacity, default 1).
    The reason names the first clashing instance.
    """
    capacity = capacity_of(args)
    busy = busy_only(request.busy)
    for instance in request.instances:
        if instance.end <= instance.start:
            continue
        if max_overlap(busy, instance.start, instance.end) >= capacity:
            when = describe(instance.start, instance.end, request.zone)
            return Decision(
                Answer.DECLINED,
                "conflict",
                N_("the resource is already booked at {period}"),
                "schedule_in_freebusy",
                {"period": when},
            )
    return Decision(
        Answer.ACCEPTED,
        "free",
        N_("the resource is free at the requested time"),
        "schedule_in_freebusy",
    )
