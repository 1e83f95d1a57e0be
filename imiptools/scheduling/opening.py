"""Opening hours: the weekly times a resource is open, in its own zone.

One model for both forms the ``opening_hours`` preference may take: the
line form (``MO-FR 08:00-18:00``, read by
:func:`imiptools.scheduling.hours.parse_opening_hours`) and an RFC 7953
VAVAILABILITY (read by
:func:`imiptools.scheduling.availability.opening_hours_from_vavailability`).
Both give :class:`OpeningHours`: a set of :class:`Rule` objects, each open
on some weekdays from one wall-clock time to another.

Open intervals that touch are merged, so an instance may cross midnight
when both days are open through midnight, and may span ``08:00-12:00`` and
``12:00-18:00``; otherwise an instance must lie inside one interval.

Wall times are turned into instants with :mod:`zoneinfo`: a time that a DST
change repeats is its first occurrence; a time that a change skips is read
with the offset before the gap (02:30 becomes 03:30 summer time).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from imiptools.deferred import dataclass

__all__ = ["DAYS", "MINUTES_PER_DAY", "OpeningHours", "Rule"]

#: RFC 5545 §3.3.10 weekday names, Monday first (``date.weekday()`` order).
DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
#: A rule's times are minutes after midnight, up to this (the next midnight).
MINUTES_PER_DAY = 24 * 60


def _wall_to_utc(day: date, minute: int, zone: tzinfo) -> datetime:
    """The instant of ``minute`` minutes after local midnight of ``day`` (1440 is the
    next midnight), ambiguous times read as their first occurrence."""
    wall = datetime.combine(day, time()) + timedelta(minutes=minute)
    return wall.replace(tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Rule:
    """Open on ``days`` (0 is Monday) from ``start`` to ``end`` minutes after midnight
    (``0 <= start < end <= 1440``), local time."""

    days: frozenset[int]
    start: int
    end: int

    def describe(self) -> str:
        """``MO-FR 08:00-18:00``."""
        return f"{_describe_days(self.days)} {_hhmm(self.start)}-{_hhmm(self.end)}"


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _describe_days(days: frozenset[int]) -> str:
    """Runs of three or more days as ranges (``MO-FR,SU``), others as a list."""
    runs: list[list[int]] = []
    for day in sorted(days):
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts = []
    for run in runs:
        names = [DAYS[day] for day in run]
        parts.append(f"{names[0]}-{names[-1]}" if len(run) > 2 else ",".join(names))
    return ",".join(parts)


def _merge(intervals: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Sorted, with overlapping or touching intervals joined; empty ones dropped."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


@dataclass(frozen=True)
class OpeningHours:
    """Weekly opening hours: the union of the rules, in the resource's local time."""

    rules: tuple[Rule, ...]

    def describe(self) -> str:
        """``MO-FR 08:00-18:00, SA 09:00-13:00``: the rules, in order."""
        return ", ".join(rule.describe() for rule in self.rules)

    def periods_around(
        self, start: datetime, end: datetime, zone: tzinfo
    ) -> list[tuple[datetime, datetime]]:
        """Merged aware UTC open intervals of every local day from the day before
        ``start``'s to the day after ``end``'s, not clipped (those reaching past
        that span are cut at its edge)."""
        day = start.astimezone(zone).date() - timedelta(days=1)
        last = end.astimezone(zone).date() + timedelta(days=1)
        raw = []
        while day <= last:
            for rule in self.rules:
                if day.weekday() in rule.days:
                    raw.append(
                        (_wall_to_utc(day, rule.start, zone), _wall_to_utc(day, rule.end, zone))
                    )
            day += timedelta(days=1)
        return _merge(raw)

    def intervals(
        self, start: datetime, end: datetime, zone: tzinfo
    ) -> list[tuple[datetime, datetime]]:
        """The open time within ``[start, end)``: aware UTC intervals, merged, clipped."""
        return [
            (max(s, start).astimezone(UTC), min(e, end).astimezone(UTC))
            for s, e in self.periods_around(start, end, zone)
            if s < end and start < e
        ]

    def contains(self, start: datetime, end: datetime, zone: tzinfo) -> bool:
        """Whether ``[start, end]`` lies inside one (merged) open interval."""
        return any(s <= start and end <= e for s, e in self.periods_around(start, end, zone))
