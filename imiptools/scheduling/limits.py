"""Event limits: what a resource accepts of an event's shape, before any free/busy.

Each limit is a small pure function ``(request) -> Decision | None`` reading
one preference through ``request.preference(name)`` (validated by
:mod:`imiptools.preferences`; '' when unset). It returns None when its
preference is unset or the event keeps within it, and a DECLINED
:class:`~imiptools.scheduling.Decision` otherwise, whose ``function`` is
the preference name and whose ``code`` has a row in :data:`REQUEST_STATUS`.

:func:`check_limits` runs them in the order of :data:`LIMITS` and returns
the first decline. The order puts what is known from the series itself
first, so that an unbounded or too frequent series is declined without
looking at its instances, then when the event is, then how long each
instance is, then how densely the instances fall:

1. ``allow_indefinite``  2. ``permitted_frequencies``  3. ``max_instances``
4. ``min_notice``  5. ``booking_window``  6. ``max_duration``
7. ``min_duration``  8. ``max_periods_per_interval``

Being exactly at a limit is allowed. Durations are exact (``P1D`` is
24 hours, as :func:`imiptools.config.parse_duration` reads it). A zero
duration preference is used as it is (a zero ``max_duration`` admits only
zero-length instances); validation refuses negative durations and ones
beyond a century (``P999999999D`` would take "now" past the year 9999).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any

from imiptools.config import parse_duration
from imiptools.i18n import N_, N_plural
from imiptools.itip.recurrence import Instance
from imiptools.scheduling.freebusy import describe
from imiptools.scheduling.hours import opening_hours_limit, permitted_times_limit
from imiptools.scheduling.model import (
    Answer,
    Decision,
    Request,
    Words,
    add_request_status,
    describe_duration,
    misconfigured,
)

__all__ = [
    "LIMITS",
    "REQUEST_STATUS",
    "allow_indefinite",
    "booking_window",
    "check_limits",
    "describe_duration",
    "describe_moment",
    "max_duration",
    "max_instances",
    "max_periods_per_interval",
    "min_duration",
    "min_notice",
    "permitted_frequencies",
    "series_size",
]

Limit = Callable[[Request], Decision | None]

#: The RFC 5546 §3.6 REQUEST-STATUS to send with each decline, by code.
#: No 4.x fits: 4.0 ("Event conflict. Date/time is busy.") is for a busy
#: calendar, which :mod:`~imiptools.scheduling.freebusy` reports. An event
#: limit says that a value of the request is outside what the resource
#: takes, so every code is a 3.x ("the request was not successful because
#: of an error in the request").
REQUEST_STATUS: dict[str, str] = {
    # 3.1 "Invalid property value": DTEND or DURATION gives a length the
    # resource does not take (the value is well formed, just not allowed).
    "max-duration": "3.1",
    "min-duration": "3.1",
    # 3.5 "Invalid date or time": DTSTART (or an instance's start) lies
    # too far ahead or too soon.
    "booking-window": "3.5",
    "min-notice": "3.5",
    # 3.6 "Invalid rule": the recurrence rule has too large a COUNT, no
    # end at all, a FREQ not permitted, or puts instances too close together.
    "max-instances": "3.6",
    "indefinite": "3.6",
    "frequency": "3.6",
    "periods-per-interval": "3.6",
}
add_request_status(REQUEST_STATUS)

#: English names of the RFC 5545 §3.3.10 FREQ values, for the reason text.
FREQUENCY_WORDS: dict[str, str] = {
    "SECONDLY": N_("every second"),
    "MINUTELY": N_("every minute"),
    "HOURLY": N_("every hour"),
    "DAILY": N_("every day"),
    "WEEKLY": N_("every week"),
    "MONTHLY": N_("every month"),
    "YEARLY": N_("every year"),
}

MAX_INSTANCES = N_plural(
    "the resource can be booked for at most {count} instance of a series",
    "the resource can be booked for at most {count} instances of a series",
)
PERIODS_PER_INTERVAL = N_plural(
    "the event starts more than {count} time within {interval} from {start}",
    "the event starts more than {count} times within {interval} from {start}",
)


# -- helpers -----------------------------------------------------------------


def _duration_params(text: str, limit: timedelta) -> dict[str, object]:
    """The params every duration limit gives: words, RFC 5545 text, seconds."""
    return {
        "limit": limit,  # rendered in the reader's language by Decision.text
        "limit_iso": text.strip().upper(),
        "limit_seconds": int(limit.total_seconds()),
    }


def _decline(
    code: str, reason: str, preference: str, params: dict[str, object], plural: str = ""
) -> Decision:
    return Decision(Answer.DECLINED, code, reason, preference, params, plural)


def _rules(request: Request) -> list[Any]:
    """The RRULE values (icalendar ``vRecur`` mappings) of the requested component."""
    if request.component is None:
        return []
    value = request.component.get("RRULE")
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _frequencies(request: Request) -> list[str]:
    """The FREQ of each RRULE, upper-case, in order (RFC 5545 §3.3.10)."""
    found = []
    for rule in _rules(request):
        for freq in rule.get("FREQ", []):
            found.append(str(freq).upper())
    return found


def series_size(request: Request) -> int | None:
    """How many instances the series has, None for an unbounded series.

    An indefinite series (an RRULE without COUNT or UNTIL) is unbounded.
    Otherwise the size is the larger of the sum of the RRULE COUNTs (which
    include the past instances; EXDATEs are not subtracted, RDATEs not
    added) and the number of instances in the request. A series bounded by
    UNTIL alone is counted within the request's window only: its instances
    past the window (or before now) are not seen.
    """
    if request.indefinite:
        return None
    counted = sum(int(count) for rule in _rules(request) for count in rule.get("COUNT", []))
    return max(counted, len(request.instances))


def describe_moment(moment: datetime, zone: tzinfo) -> str:
    """``2030-01-08 10:00 (CET)``: ``moment`` in the resource's zone."""
    local = moment.astimezone(zone)
    return f"{local.strftime('%Y-%m-%d %H:%M')} ({local.tzname()})"


def _starts(instances: Sequence[Instance]) -> list[datetime]:
    return sorted(instance.start for instance in instances)


# -- the limits --------------------------------------------------------------


def allow_indefinite(request: Request) -> Decision | None:
    """Decline a series without an end (RFC 5545 §3.3.10: no COUNT, no UNTIL)
    when ``allow_indefinite`` is ``no``."""
    if request.preference("allow_indefinite") != "no" or not request.indefinite:
        return None
    return _decline(
        "indefinite",
        N_("the resource cannot be booked for a series that repeats without end"),
        "allow_indefinite",
        {},
    )


def permitted_frequencies(request: Request) -> Decision | None:
    """Decline a series with an RRULE whose FREQ is not listed in
    ``permitted_frequencies`` (space-separated FREQ names)."""
    value = request.preference("permitted_frequencies")
    if not value:
        return None
    permitted = set(value.upper().split())
    for freq in _frequencies(request):
        if freq not in permitted:
            return _decline(
                "frequency",
                N_("the resource cannot be booked for an event that repeats {frequency}"),
                "permitted_frequencies",
                {"frequency": Words(FREQUENCY_WORDS.get(freq, freq.lower())), "freq": freq},
            )
    return None


def max_instances(request: Request) -> Decision | None:
    """Decline a series of more than ``max_instances`` instances, counted
    over the whole series by :func:`series_size` (an indefinite series
    always has too many)."""
    value = request.preference("max_instances")
    if not value:
        return None
    limit = int(value)
    size = series_size(request)
    if size is not None and size <= limit:
        return None
    singular, plural = MAX_INSTANCES
    params: dict[str, object] = {"count": limit, "instances": "" if size is None else size}
    return _decline("max-instances", singular, "max_instances", params, plural)


def min_notice(request: Request) -> Decision | None:
    """Decline if the first instance starts before ``now + min_notice``."""
    value = request.preference("min_notice")
    if not value or not request.instances:
        return None
    notice = parse_duration(value)
    if min(_starts(request.instances)) >= request.now + notice:
        return None
    return _decline(
        "min-notice",
        N_("the resource must be booked at least {limit} in advance"),
        "min_notice",
        _duration_params(value, notice),
    )


def booking_window(request: Request) -> Decision | None:
    """Decline if any instance starts after ``now + booking_window``."""
    value = request.preference("booking_window")
    if not value or not request.instances:
        return None
    window = parse_duration(value)
    last = max(_starts(request.instances))
    if last <= request.now + window:
        return None
    params = _duration_params(value, window)
    params["start"] = describe_moment(last, request.zone)
    return _decline(
        "booking-window",
        N_("the resource can be booked at most {limit} in advance"),
        "booking_window",
        params,
    )


def _first(instances: Sequence[Instance], wrong: Callable[[timedelta], bool]) -> Instance | None:
    """The earliest instance whose length is ``wrong``, or None."""
    for instance in sorted(instances, key=lambda i: i.start):
        if wrong(instance.end - instance.start):
            return instance
    return None


def _duration_limit(
    request: Request,
    preference: str,
    code: str,
    reason: str,
    breaks: Callable[[timedelta, timedelta], bool],
) -> Decision | None:
    """Decline for the first instance whose length ``breaks`` the limit."""
    value = request.preference(preference)
    if not value:
        return None
    limit = parse_duration(value)
    instance = _first(request.instances, lambda length: breaks(length, limit))
    if instance is None:
        return None
    params = _duration_params(value, limit)
    params["period"] = describe(instance.start, instance.end, request.zone)
    return _decline(code, reason, preference, params)


def max_duration(request: Request) -> Decision | None:
    """Decline if an instance is longer than ``max_duration``."""
    return _duration_limit(
        request,
        "max_duration",
        "max-duration",
        N_("the event is longer than the {limit} the resource can be booked for"),
        lambda length, limit: length > limit,
    )


def min_duration(request: Request) -> Decision | None:
    """Decline if an instance is shorter than ``min_duration`` (a
    zero-length instance is compared as it is)."""
    return _duration_limit(
        request,
        "min_duration",
        "min-duration",
        N_("the event is shorter than the {limit} the resource must be booked for"),
        lambda length, limit: length < limit,
    )


def crowded_start(starts: Sequence[datetime], count: int, interval: timedelta) -> int | None:
    """The index of the first start whose window ``[start, start + interval)``
    holds more than ``count`` of the sorted ``starts``, or None (linear time)."""
    end = 0
    for index, start in enumerate(starts):
        end = max(end, index)
        while end < len(starts) and starts[end] < start + interval:
            end += 1
        if end - index > count:
            return index
    return None


def max_periods_per_interval(request: Request) -> Decision | None:
    """Decline if any window of the interval, anchored at an instance start,
    holds more than N of the request's own instance starts.

    The preference is ``N DURATION`` (``2 P1D``); the window is half-open,
    so a daily event keeps within ``1 P1D``. Other bookings of the resource
    are not counted: this limits the event itself.
    """
    value = request.preference("max_periods_per_interval")
    if not value:
        return None
    number, _, text = value.strip().partition(" ")
    count, interval = int(number), parse_duration(text)
    starts = _starts(request.instances)
    index = crowded_start(starts, count, interval)
    if index is None:
        return None
    singular, plural = PERIODS_PER_INTERVAL
    params = _duration_params(text, interval)
    params.update(
        count=count,
        interval=params["limit"],
        start=describe_moment(starts[index], request.zone),
    )
    return _decline("periods-per-interval", singular, "max_periods_per_interval", params, plural)


#: The limits in the order :func:`check_limits` runs them (see the module docstring).
LIMITS: tuple[tuple[str, Limit], ...] = (
    ("allow_indefinite", allow_indefinite),
    ("permitted_frequencies", permitted_frequencies),
    ("max_instances", max_instances),
    ("min_notice", min_notice),
    ("booking_window", booking_window),
    ("max_duration", max_duration),
    ("min_duration", min_duration),
    ("max_periods_per_interval", max_periods_per_interval),
)


def all_limits() -> tuple[tuple[str, Limit], ...]:
    """:data:`LIMITS`, then the time-of-day limits of :mod:`.hours`, in order."""
    return (
        *LIMITS,
        ("permitted_times", permitted_times_limit),
        ("opening_hours", opening_hours_limit),
    )


def check_limits(request: Request, skip: frozenset[str] = frozenset()) -> Decision | None:
    """The first limit, in the order of :func:`all_limits`, that declines; None if all keep.

    Limits named in ``skip`` are left to a scheduling function that applies
    them itself (one that counter-proposes, see ``counter.delegated_limits``).
    A preference value a limit cannot read (possible only when the
    preferences were not validated) gives the ``misconfigured`` decision.
    """
    for name, limit in all_limits():
        if name in skip:
            continue
        try:
            decision = limit(request)
        except (ValueError, TypeError, OverflowError) as exc:
            return misconfigured(name, f"bad value {request.preference(name)!r}: {exc}")
        if decision is not None:
            return decision
    return None
