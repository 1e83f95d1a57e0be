"""Opening hours from an RFC 7953 VAVAILABILITY object.

``opening_hours`` may hold a VCALENDAR with one VAVAILABILITY whose
AVAILABLE subcomponents repeat weekly (RFC 7953 §3.1, §3.1.1); each becomes
:class:`~imiptools.scheduling.opening.Rule` objects, as the line form does. What a
weekly rule cannot say is refused with ValueError: COUNT, UNTIL, INTERVAL
other than 1, RDATE, EXDATE, an AVAILABLE longer than a day, a VAVAILABILITY
with DTEND or DURATION.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from icalendar import Calendar, Component

from imiptools.scheduling.opening import DAYS, MINUTES_PER_DAY, OpeningHours, Rule


def opening_hours_from_vavailability(text: str, zone: tzinfo | None = None) -> OpeningHours:
    """Opening hours from a VCALENDAR holding one VAVAILABILITY (RFC 7953 §3.1).

    Each AVAILABLE (RFC 7953 §3.1.1) must repeat weekly without end: one
    ``RRULE:FREQ=WEEKLY`` with optional ``BYDAY`` (plain weekdays; the
    weekday of DTSTART when absent) and ``WKST``, no INTERVAL other than 1,
    no COUNT, UNTIL, RDATE or EXDATE. Its DTSTART (a DATE-TIME, or a DATE
    for whole days) and DTEND or DURATION give the local times, at most a
    day apart; a period across midnight becomes two rules. Values with a
    zone are converted to ``zone`` when it is given, otherwise their wall
    times are taken as they are (write them in the resource's TZID).

    Opening hours have no end, so a VAVAILABILITY with DTEND or DURATION
    is refused; its DTSTART, BUSYTYPE and PRIORITY are ignored (the weekly
    pattern applies at all times; outside it the resource is closed, as
    RFC 7953 §3.1 has it for BUSY-UNAVAILABLE). Raises ValueError.
    """
    try:
        calendar = Calendar.from_ical(text)
    except ValueError as exc:
        raise ValueError(f"not an iCalendar object: {exc}") from exc
    blocks = calendar.walk("VAVAILABILITY")
    if len(blocks) != 1:
        raise ValueError(f"expected one VAVAILABILITY, found {len(blocks)}")
    block = blocks[0]
    if "DTEND" in block or "DURATION" in block:
        raise ValueError("a VAVAILABILITY with an end cannot be opening hours")
    rules = [rule for item in block.walk("AVAILABLE") for rule in _available_rules(item, zone)]
    if not rules:
        raise ValueError("the VAVAILABILITY has no AVAILABLE")
    return OpeningHours(tuple(rules))


def _decoded(component: Component, name: str) -> Any:
    """The value of a DATE, DATE-TIME or DURATION property, None if absent."""
    prop: Any = component.get(name)
    if isinstance(prop, list):
        raise ValueError(f"more than one {name}")
    return None if prop is None else getattr(prop, "dt", None)


def _moment(value: Any, zone: tzinfo | None) -> datetime:
    """A DATE or DATE-TIME value as a naive local wall time."""
    if isinstance(value, datetime):
        local: datetime = value
        if zone is not None and local.tzinfo is not None:
            local = local.astimezone(zone)
        return local.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime.combine(value, time())
    raise ValueError(f"expected a date or date-time, not {value!r}")


def _weekly_days(component: Component, start: datetime) -> frozenset[int]:
    """The weekdays of the one weekly RRULE of an AVAILABLE; ValueError otherwise."""
    value = component.get("RRULE")
    rules = value if isinstance(value, list) else [] if value is None else [value]
    if len(rules) != 1 or "RDATE" in component or "EXDATE" in component:
        raise ValueError("each AVAILABLE needs one weekly RRULE and no RDATE or EXDATE")
    rule = rules[0]
    unsupported = set(rule) - {"FREQ", "BYDAY", "WKST", "INTERVAL"}
    if [str(f).upper() for f in rule.get("FREQ", [])] != ["WEEKLY"] or unsupported:
        raise ValueError(f"only FREQ=WEEKLY with BYDAY is supported, not {rule.to_ical()!r}")
    if [int(i) for i in rule.get("INTERVAL", [1])] != [1]:
        raise ValueError("only INTERVAL=1 is supported")
    names = [str(day).upper() for day in rule.get("BYDAY", [])]
    if any(name not in DAYS for name in names):
        raise ValueError(f"BYDAY must list plain weekdays, not {names}")
    return frozenset(DAYS.index(name) for name in names) or frozenset({start.weekday()})


def _available_rules(component: Component, zone: tzinfo | None) -> list[Rule]:
    if component.errors:
        raise ValueError(f"unreadable AVAILABLE: {component.errors}")
    start = _moment(_decoded(component, "DTSTART"), zone)
    duration = _decoded(component, "DURATION")
    if "DTEND" in component:
        end = _moment(_decoded(component, "DTEND"), zone)
    elif isinstance(duration, timedelta):
        end = start + duration
    else:
        raise ValueError("an AVAILABLE needs DTEND or DURATION")
    days = _weekly_days(component, start)
    first = start.hour * 60 + start.minute
    last = first + (end.date() - start.date()).days * MINUTES_PER_DAY
    last += end.hour * 60 + end.minute - first
    if start.second or end.second or not first < last <= first + MINUTES_PER_DAY:
        raise ValueError("an AVAILABLE must last from one minute to one day")
    return _split_at_midnight(days, first, last)


def _split_at_midnight(days: frozenset[int], start: int, end: int) -> list[Rule]:
    if end <= MINUTES_PER_DAY:
        return [Rule(days, start, end)]
    following = frozenset((day + 1) % 7 for day in days)
    return [Rule(days, start, MINUTES_PER_DAY), Rule(following, 0, end - MINUTES_PER_DAY)]
