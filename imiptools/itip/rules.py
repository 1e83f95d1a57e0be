"""Recurrence rules: an RRULE (RFC 5545 §3.3.10, §3.8.5.3) as a dateutil rule.

This module turns one icalendar ``vRecur`` into a :class:`dateutil.rrule.rrule`
that starts at a given DTSTART, and knows the facts about a rule that the
bounded expansion in :mod:`imiptools.itip.recurrence` needs:

- :func:`build_rule` validates the rule parts against the RFC 5545 §3.3.10
  grammar ranges, normalises UNTIL to the kind of DTSTART (dateutil refuses a
  mix of aware and naive values) and raises :class:`CalendarDataError` for a
  rule that cannot be expanded. It returns ``None`` for a rule that can
  never match (``BYMONTH=2;BYMONTHDAY=30``), which dateutil would otherwise
  search for until the year 9999.
- :func:`fast_forward` moves a rule's start to just before a given instant
  without changing the set it generates, where that is provably safe.
- :func:`is_indefinite` says whether a rule has neither COUNT nor UNTIL.
- :func:`merged_starts` yields the starts of several rules and dates in
  order, once each (what ``dateutil.rrule.rruleset`` does, except that a
  rule dateutil finds empty only while iterating ends quietly).

No expansion is hand-written here: dateutil does all of it.
"""

from __future__ import annotations

import heapq
import warnings
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from dateutil.rrule import rrule, rrulestr
from icalendar.prop import vRecur

from imiptools.errors import CalendarDataError

#: RFC 5545 §3.3.10 value ranges of the numeric rule parts (absolute values).
_RANGES: dict[str, tuple[int, int]] = {
    "BYSECOND": (0, 60),
    "BYMINUTE": (0, 59),
    "BYHOUR": (0, 23),
    "BYMONTHDAY": (1, 31),
    "BYYEARDAY": (1, 366),
    "BYWEEKNO": (1, 53),
    "BYMONTH": (1, 12),
    "BYSETPOS": (1, 366),
    "INTERVAL": (1, 10**9),
    "COUNT": (1, 10**12),
}
_SIGNED = frozenset({"BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYSETPOS"})

#: One period of each frequency whose periods are a fixed wall-clock length.
_STEPS: dict[str, timedelta] = {
    "SECONDLY": timedelta(seconds=1),
    "MINUTELY": timedelta(minutes=1),
    "HOURLY": timedelta(hours=1),
    "DAILY": timedelta(days=1),
    "WEEKLY": timedelta(weeks=1),
}

#: The longest each month can be (February in a leap year).
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

#: Rule parts dateutil does not know, with the values that change nothing
#: (RFC 7529: the Gregorian scale is the default, SKIP=OMIT the default).
_NEUTRAL = {"RSCALE": "GREGORIAN", "SKIP": "OMIT"}

_LAST_SECOND = time(23, 59, 59)


def parse_recur(value: object) -> vRecur | None:
    """Return an RRULE value as ``vRecur``, repairing what is easily repaired.

    icalendar keeps an unparseable RRULE as a broken value with its text;
    spaces after commas (``BYDAY=MO, TU``) and empty parts (``WKST=``), both
    seen in real mail, are removed and the text is parsed again. An empty
    RRULE gives None. A COUNT below 1 is dropped (Atlassian Confluence
    writes ``COUNT=-1`` beside UNTIL). Raises :class:`CalendarDataError` if
    the text cannot be read.
    """
    recur = value if isinstance(value, vRecur) else _reparse(value)
    if not recur:
        return None
    counts = recur.get("COUNT", [])
    if counts and _integer("COUNT", counts[0]) < 1:
        recur = vRecur({key: values for key, values in recur.items() if key != "COUNT"})
    return recur


def _reparse(value: object) -> vRecur | None:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    parts = [part for part in "".join(text.split()).split(";") if not part.endswith("=")]
    if not "".join(parts):
        return None
    try:
        recur: vRecur = vRecur.from_ical(";".join(parts))
    except (ValueError, TypeError) as exc:
        raise CalendarDataError(f"unreadable RRULE {text[:80]!r}") from exc
    return recur


def is_indefinite(recur: vRecur) -> bool:
    """True if the rule has neither COUNT nor UNTIL (RFC 5545 §3.3.10)."""
    return "COUNT" not in recur and "UNTIL" not in recur


def build_rule(recur: vRecur, start: datetime, zone: tzinfo) -> rrule | None:
    """Return the dateutil rule for ``recur`` starting at ``start``.

    ``start`` is the expansion start: DTSTART as an aware datetime in its own
    zone, or naive for floating and all-day events (read in ``zone``). UNTIL
    is made the same kind (see :func:`normalise_until`). Returns ``None`` if
    the rule can never match; raises :class:`CalendarDataError` if it breaks
    the RFC 5545 §3.3.10 grammar or dateutil rejects it.
    """
    check_ranges(recur)
    if never_matches(recur):
        return None
    text = _rule_text(recur)
    try:
        rule = rrulestr(text, dtstart=start)
        if not isinstance(rule, rrule):
            raise CalendarDataError(f"invalid RRULE {text[:80]}")
        if "UNTIL" in recur:
            rule = _with_until(rule, normalise_until(recur["UNTIL"][0], start, zone))
    except (ValueError, TypeError) as exc:
        if "empty set" in str(exc):  # dateutil: the BYxxx parts can never match
            return None
        raise CalendarDataError(f"invalid RRULE {text[:80]}: {exc}") from exc
    return rule


def _with_until(rule: rrule, until: datetime) -> rrule:
    """``rule`` bounded by ``until`` too; a COUNT stays (RFC 5545 forbids
    both, yet both bounds are what the writer meant: the earlier one wins)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # dateutil: count and until
        return rule.replace(until=until)


def _rule_text(recur: vRecur) -> str:
    """The rule as text for dateutil, without UNTIL and neutral extensions."""
    parts: dict[str, Any] = {}
    for name, values in recur.items():
        key = name.upper()
        if key == "UNTIL" or key.startswith("X-"):
            continue
        if key in _NEUTRAL:
            if [str(v).upper() for v in values] != [_NEUTRAL[key]]:
                raise CalendarDataError(f"unsupported RRULE part {key}={values}")
            continue
        parts[key] = values
    text: bytes = vRecur(parts).to_ical()  # type: ignore[no-untyped-call]
    return text.decode("ascii", "replace")


def check_ranges(recur: vRecur) -> None:
    """Raise :class:`CalendarDataError` for numbers outside RFC 5545 §3.3.10."""
    if not recur.get("FREQ"):
        raise CalendarDataError("RRULE without FREQ")
    for name, (low, high) in _RANGES.items():
        for value in recur.get(name, ()):
            number = _integer(name, value)
            magnitude = abs(number) if name in _SIGNED else number
            if not low <= magnitude <= high:
                raise CalendarDataError(f"RRULE {name}={number} out of range")


def _integer(name: str, value: object) -> int:
    try:
        return int(str(value))
    except ValueError as exc:
        raise CalendarDataError(f"RRULE {name}={value} is not a number") from exc


def never_matches(recur: vRecur) -> bool:
    """True if BYMONTHDAY names days that none of the BYMONTH months has.

    ``FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30`` yields nothing, but dateutil
    looks for a match day by day until the year 9999 (seconds of CPU).
    """
    days = [_integer("BYMONTHDAY", d) for d in recur.get("BYMONTHDAY", ())]
    if not days:
        return False
    months = [_integer("BYMONTH", m) for m in recur.get("BYMONTH", ())] or range(1, 13)
    longest = max(_MONTH_DAYS[m - 1] for m in months)
    return all(abs(day) > longest for day in days)


def normalise_until(until: date | datetime, start: datetime, zone: tzinfo) -> datetime:
    """UNTIL as the same kind of value as ``start`` (RFC 5545 §3.3.10).

    UNTIL is inclusive. A DATE means the whole of that day (in the zone of
    DTSTART). For an aware ``start`` the result is aware: a floating UNTIL
    (a common mistake) is read in DTSTART's zone. For a naive ``start``
    (floating or all-day) the result is naive: an aware UNTIL is converted
    to ``zone``, the zone such events are read in. (icalendar's
    ``tzp.fix_rrule_until`` does not do this: it only caps rules without an
    end at 2038, for VTIMEZONE definitions.)
    """
    if not isinstance(until, datetime):
        return datetime.combine(until, _LAST_SECOND, tzinfo=start.tzinfo)
    if start.tzinfo is not None:
        return until if until.tzinfo is not None else until.replace(tzinfo=start.tzinfo)
    if until.tzinfo is None:
        return until
    return until.astimezone(zone).replace(tzinfo=None)


def fast_forward(
    rule: rrule, recur: vRecur, start: datetime, target: datetime, zone: tzinfo
) -> rrule:
    """Return ``rule`` restarted at the last period start at or before ``target``.

    Safe only where the generated set does not depend on where counting
    starts: no COUNT (it counts from DTSTART), no BYSETPOS (it selects within
    a period), and FREQ from SECONDLY to WEEKLY, whose periods have a fixed
    wall-clock length. The new start is ``start`` plus a whole number of
    ``INTERVAL`` periods, so the phase of INTERVAL and the defaults dateutil
    takes from DTSTART (time of day, weekday) are unchanged. ``target`` is
    aware; instances at or after it are all kept. A naive ``start`` is a
    wall-clock time in ``zone``. The rule's original start is not part of
    the returned rule: callers add DTSTART themselves.
    """
    step = _step(recur)
    if step is None:
        return rule
    floor = _wall_floor(target, start.tzinfo or zone)
    periods = (floor - start.replace(tzinfo=None)) // step
    if periods <= 0:
        return rule
    return rule.replace(dtstart=start + periods * step)


def _step(recur: vRecur) -> timedelta | None:
    """INTERVAL periods of FREQ, or None if fast-forwarding is not safe."""
    if "COUNT" in recur or "BYSETPOS" in recur:
        return None
    step = _STEPS.get(str(recur["FREQ"][0]).upper())
    if step is None:
        return None
    return step * _integer("INTERVAL", recur.get("INTERVAL", [1])[0])


def _wall_floor(target: datetime, frame: tzinfo) -> datetime:
    """A naive wall-clock time in ``frame`` no later than ``target``'s.

    The smallest UTC offset of ``frame`` within a day of ``target`` is used,
    so that a DST change near ``target`` cannot move an instance past it.
    """
    offsets = [
        (target + timedelta(days=days)).astimezone(frame).utcoffset() or timedelta(0)
        for days in (-1, 0, 1)
    ]
    return target.astimezone(UTC).replace(tzinfo=None) + min(offsets)


def merged_starts(rules: Iterable[rrule], dates: Iterable[datetime]) -> Iterator[datetime]:
    """The starts of ``rules`` and ``dates`` in order, each once.

    All values must be of one kind (all aware, or all naive). A rule that
    dateutil discovers to be empty only while iterating (``FREQ=HOURLY;
    INTERVAL=2;BYHOUR=3`` from an even hour) just ends; other dateutil
    errors raise :class:`CalendarDataError`.
    """
    streams = [_quietly(rule) for rule in rules]
    previous: datetime | None = None
    for value in heapq.merge(*streams, sorted(dates)):
        if value != previous:
            yield value
        previous = value


def _quietly(rule: rrule) -> Iterator[datetime]:
    iterator = iter(rule)
    while True:
        try:
            value = next(iterator)
        except StopIteration:
            return
        except ValueError as exc:
            if "empty" in str(exc):  # dateutil: "... resulting in empty rule."
                return
            raise CalendarDataError(f"cannot expand RRULE: {exc}") from exc
        yield value
