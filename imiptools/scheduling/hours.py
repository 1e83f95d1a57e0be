"""Opening hours and permitted times: when a resource may be booked, and on what grid.

Both preferences are read in the resource's zone (its ``TZID``, the
request's ``zone``), so ``08:00`` is eight o'clock on the wall clock in
winter and in summer.

``permitted_times`` (the original imip-agent's preference) is the grid that
events must start and end on. One spec, no spaces:

- ``0,15,30,45``: these minutes past every hour;
- ``10,12,14,16:0,30``: any listed hour (0-23), a colon, any listed minute
  (0-59): 10:00, 10:30, 12:00 ... 16:30.

Seconds must be zero. Several specs separated by whitespace (which the
original allowed) are refused, to keep one grid.

``opening_hours`` says when the resource can be booked at all, one rule a
line, ``#`` starting a comment::

    MO-FR 08:00-18:00
    SA 09:00-13:00
    MO,WE 07:30-12:00,13:00-15:00

Days are MO TU WE TH FR SA SU, as lists (``MO,WE``), ranges (``MO-FR``,
``FR-MO`` wraps) or both (``MO-WE,FR``); a time range ends after it starts
and may end at ``24:00``; a range across midnight is written as two rules
(``FR 22:00-24:00`` and ``SA 00:00-02:00``). Rules may overlap. Open
intervals that touch are merged, so an instance may cross midnight when
both days are open through midnight, and may span ``08:00-12:00`` and
``12:00-18:00``; otherwise an instance must lie inside one interval.

Wall times are turned into instants with :mod:`zoneinfo`: a time that a DST
change repeats is its first occurrence; a time that a change skips is read
with the offset before the gap (02:30 becomes 03:30 summer time).

Instead of the line form, the preference may hold an RFC 7953 VCALENDAR
with one VAVAILABILITY (see :mod:`imiptools.scheduling.availability`);
:func:`parse_opening` reads either into the same
:class:`~imiptools.scheduling.opening.OpeningHours`.

:func:`opening_hours_limit` and :func:`permitted_times_limit` are event
limits in the shape of :mod:`imiptools.scheduling.limits`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta, tzinfo

from imiptools.deferred import dataclass
from imiptools.i18n import N_
from imiptools.itip.recurrence import Instance
from imiptools.scheduling.freebusy import describe
from imiptools.scheduling.model import Answer, Decision, Request, add_request_status
from imiptools.scheduling.opening import DAYS, MINUTES_PER_DAY, OpeningHours, Rule

__all__ = [
    "DAYS",
    "REQUEST_STATUS",
    "OpeningHours",
    "PermittedTimes",
    "Rule",
    "opening_hours_decision",
    "opening_hours_limit",
    "parse_opening",
    "parse_opening_hours",
    "parse_permitted_times",
    "permitted_times_decision",
    "permitted_times_limit",
    "snap",
]

#: RFC 5546 §3.6 status by code, as in :data:`imiptools.scheduling.limits.REQUEST_STATUS`:
#: 3.5 "Invalid date or time": DTSTART or DTEND falls outside the opening
#: hours or off the grid of permitted times.
REQUEST_STATUS: dict[str, str] = {"opening-hours": "3.5", "permitted-times": "3.5"}
add_request_status(REQUEST_STATUS)

_TIME = r"(\d{1,2}):(\d{2})"
_NUMBERS = r"\d{1,2}(,\d{1,2})*"


def _require_aware(moment: datetime) -> tzinfo:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}")
    return moment.tzinfo


def _exists(wall: datetime, zone: tzinfo, fold: int) -> datetime | None:
    """The UTC instant of naive ``wall`` with ``fold``, None if the zone skips it."""
    instant = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
    return instant if instant.astimezone(zone).replace(tzinfo=None) == wall else None


# -- permitted times ---------------------------------------------------------


@dataclass(frozen=True)
class PermittedTimes:
    """The wall-clock times events may start and end at; ``hours`` None is every hour."""

    hours: tuple[int, ...] | None
    minutes: tuple[int, ...]

    @property
    def slots(self) -> tuple[int, ...]:
        """The permitted times as sorted minutes after midnight."""
        hours = range(24) if self.hours is None else self.hours
        return tuple(sorted(hour * 60 + minute for hour in hours for minute in self.minutes))

    def allows(self, moment: datetime) -> bool:
        """Whether aware ``moment`` (in the resource's zone) is on the grid."""
        _require_aware(moment)
        on_minute = moment.second == 0 and moment.microsecond == 0
        return on_minute and moment.hour * 60 + moment.minute in self.slots

    def next_at_or_after(self, moment: datetime) -> datetime:
        """The first permitted time at or after aware ``moment``, in ``moment``'s zone."""
        zone = _require_aware(moment)
        target = moment.astimezone(UTC)
        return min(c for c in self._around(moment) if c >= target).astimezone(zone)

    def previous_at_or_before(self, moment: datetime) -> datetime:
        """The last permitted time at or before aware ``moment``, in ``moment``'s zone."""
        zone = _require_aware(moment)
        target = moment.astimezone(UTC)
        return max(c for c in self._around(moment) if c <= target).astimezone(zone)

    def _around(self, moment: datetime) -> list[datetime]:
        """The UTC instants of the existing permitted times of the local days from
        two before to two after ``moment``'s (enough even if a DST gap eats a day's
        only slot)."""
        zone = _require_aware(moment)
        found = set()
        for offset in range(-2, 3):
            midnight = datetime.combine(moment.date() + timedelta(days=offset), time())
            for slot in self.slots:
                wall = midnight + timedelta(minutes=slot)
                for fold in (0, 1):
                    instant = _exists(wall, zone, fold)
                    if instant is not None:
                        found.add(instant)
        return sorted(found)

    def describe(self) -> str:
        """``xx:00, xx:30`` for minutes past every hour, else ``10:00, 10:30, 12:00``."""
        if self.hours is None:
            return ", ".join(f"xx:{minute:02d}" for minute in self.minutes)
        return ", ".join(f"{slot // 60:02d}:{slot % 60:02d}" for slot in self.slots)


def snap(moment: datetime, times: PermittedTimes | None, forward: bool, zone: tzinfo) -> datetime:
    """``moment`` moved to the ``times`` grid (forward or back) in ``zone``;
    unchanged without a grid. Returns UTC."""
    if times is None:
        return moment
    local = moment.astimezone(zone)
    moved = times.next_at_or_after(local) if forward else times.previous_at_or_before(local)
    return moved.astimezone(UTC)


def _numbers(text: str, limit: int, what: str) -> tuple[int, ...]:
    if not re.fullmatch(_NUMBERS, text):
        raise ValueError(f"expected comma-separated {what}, not {text!r}")
    values = sorted({int(part) for part in text.split(",")})
    if values[-1] > limit:
        raise ValueError(f"{what} must be from 0 to {limit}")
    return tuple(values)


def parse_permitted_times(text: str) -> PermittedTimes | None:
    """Read ``0,15,30,45`` or ``10,12,14,16:0,30`` (see the module docstring).

    Blank text gives None (any time is permitted); anything else that is not
    one spec raises ValueError.
    """
    text = text.strip()
    if not text:
        return None
    if len(text.split()) > 1:
        raise ValueError("give one spec, e.g. 0,15,30,45 or 10,12,14:0,30")
    hours, colon, minutes = text.rpartition(":")
    if colon and not hours:
        raise ValueError("expected hours before ':'")
    return PermittedTimes(
        _numbers(hours, 23, "hours") if colon else None, _numbers(minutes, 59, "minutes")
    )


# -- opening hours: the line form --------------------------------------------


def _parse_days(text: str) -> frozenset[int]:
    days: set[int] = set()
    for part in text.split(","):
        first, dash, last = part.partition("-")
        if first not in DAYS or (dash and last not in DAYS):
            raise ValueError(f"unknown days {part!r} (use MO TU WE TH FR SA SU)")
        a, b = DAYS.index(first), DAYS.index(last if dash else first)
        days.update(day % 7 for day in range(a, b + 1 if b >= a else b + 8))
    return frozenset(days)


def _parse_minute(text: str, end: bool) -> int:
    match = re.fullmatch(_TIME, text)
    if match is None:
        raise ValueError(f"expected HH:MM, not {text!r}")
    hour, minute = int(match[1]), int(match[2])
    if end and (hour, minute) == (24, 0):
        return MINUTES_PER_DAY
    if hour > 23 or minute > 59:
        raise ValueError(f"no such time {text!r}")
    return hour * 60 + minute


def _parse_rule_line(line: str) -> list[Rule]:
    words = line.upper().split()
    if len(words) != 2:
        raise ValueError("expected DAYS HH:MM-HH:MM, e.g. MO-FR 08:00-18:00")
    days = _parse_days(words[0])
    rules = []
    for part in words[1].split(","):
        first, dash, last = part.partition("-")
        if not dash:
            raise ValueError(f"expected HH:MM-HH:MM, not {part!r}")
        start, end = _parse_minute(first, False), _parse_minute(last, True)
        if end <= start:
            raise ValueError(f"{part} ends before it starts (split it at 24:00)")
        rules.append(Rule(days, start, end))
    return rules


def parse_opening_hours(text: str) -> OpeningHours:
    """Read the line form (see the module docstring).

    Raises ValueError naming the first bad line (``line 2: ...``), or if no
    line holds a rule.
    """
    rules: list[Rule] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.partition("#")[0].strip()
        if not line:
            continue
        try:
            rules.extend(_parse_rule_line(line))
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from exc
    if not rules:
        raise ValueError("no opening hours given")
    return OpeningHours(tuple(rules))


# -- either form -------------------------------------------------------------


def parse_opening(text: str, zone: tzinfo | None = None) -> OpeningHours | None:
    """The ``opening_hours`` preference: None if blank, VAVAILABILITY text if it
    starts with ``BEGIN:VCALENDAR``, else the line form. Raises ValueError."""
    text = text.strip()
    if not text:
        return None
    if text.upper().startswith("BEGIN:VCALENDAR"):
        from imiptools.scheduling.availability import (  # lazy: start-up (only VAVAILABILITY)
            opening_hours_from_vavailability,
        )

        return opening_hours_from_vavailability(text, zone)
    return parse_opening_hours(text)


# -- the limits --------------------------------------------------------------


def _zone_name(zone: tzinfo) -> str:
    return str(getattr(zone, "key", None) or zone)


def opening_hours_decision(
    hours: OpeningHours, zone: tzinfo, start: datetime, end: datetime, function: str
) -> Decision:
    """The decline for ``[start, end)`` outside ``hours``.

    Params: ``hours`` (``MO-FR 08:00-18:00 (Europe/Berlin)``) and ``period``.
    """
    return Decision(
        Answer.DECLINED,
        "opening-hours",
        N_("the resource can only be booked {hours}"),
        function,
        {
            "hours": f"{hours.describe()} ({_zone_name(zone)})",
            "period": describe(start, end, zone),
        },
    )


def permitted_times_decision(
    times: PermittedTimes, zone: tzinfo, start: datetime, end: datetime, function: str
) -> Decision:
    """The decline for ``[start, end)`` off the grid; params ``times``, ``period``."""
    return Decision(
        Answer.DECLINED,
        "permitted-times",
        N_("the event must start and end at {times}"),
        function,
        {"times": times.describe(), "period": describe(start, end, zone)},
    )


def _by_start(request: Request) -> list[Instance]:
    return sorted(request.instances, key=lambda instance: instance.start)


def opening_hours_limit(request: Request) -> Decision | None:
    """Decline if an instance is not inside the ``opening_hours`` (all-day
    instances too: they need a day open from midnight to midnight)."""
    hours = parse_opening(request.preference("opening_hours"), request.zone)
    if hours is None:
        return None
    for instance in _by_start(request):
        if not hours.contains(instance.start, instance.end, request.zone):
            return opening_hours_decision(
                hours, request.zone, instance.start, instance.end, "opening_hours"
            )
    return None


def permitted_times_limit(request: Request) -> Decision | None:
    """Decline if an instance starts or ends off the ``permitted_times`` grid."""
    times = parse_permitted_times(request.preference("permitted_times"))
    if times is None:
        return None
    zone = request.zone
    for instance in _by_start(request):
        start, end = instance.start.astimezone(zone), instance.end.astimezone(zone)
        if not (times.allows(start) and times.allows(end)):
            return permitted_times_decision(
                times, zone, instance.start, instance.end, "permitted_times"
            )
    return None
