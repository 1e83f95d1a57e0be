"""Senders' VTIMEZONEs (RFC 5545 §3.6.5), checked before icalendar uses them.

icalendar turns each VTIMEZONE of a parsed calendar into a ``tzinfo`` (with
dateutil's ``tzical``), whose every UTC offset lookup expands the
observances' RRULEs from their DTSTART up to the time asked about, caching
every transition. A DAYLIGHT observance with ``RRULE:FREQ=SECONDLY`` makes
that billions of transitions: hundreds of MB and minutes for a 476-byte
message, outside any budget of :mod:`imiptools.itip.recurrence`. Time zones
change a few times a year, so this module accepts only observances that do
(see :func:`vtimezone_problem`), and :class:`GuardedZones`, the time-zone
provider installed into icalendar when this module is imported, never builds
a ``tzinfo`` from any other: it uses the zone the TZID names (an IANA or a
Windows name, resolved by icalendar) or else UTC, and logs why.

:func:`check_calendar` then refuses (:class:`CalendarDataError`) a calendar
whose components use such a VTIMEZONE when its TZID names no known zone:
their times cannot be read, which makes the data the sender's problem (65
for a resource, delivered unchanged to a person). Nothing here expands a
rule for more than a bounded sample, and no time-zone rule is hand-written:
dateutil does the expansion, icalendar the name lookup.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from dateutil.rrule import rrule, rrulestr
from icalendar import Calendar, Component, Timezone
from icalendar.prop import vBroken
from icalendar.timezone import tzp
from icalendar.timezone.tzp import TZP
from icalendar.timezone.zoneinfo import ZONEINFO

from imiptools.dates import MAX_ZONE_NAME
from imiptools.errors import CalendarDataError
from imiptools.itip.rules import check_ranges, never_matches, parse_recur

log = logging.getLogger(__name__)

__all__ = [
    "MAX_CHANGES_PER_YEAR",
    "MAX_OBSERVANCES",
    "MAX_TZID_LENGTH",
    "GuardedZones",
    "check_calendar",
    "install",
    "named_zone",
    "vtimezone_problem",
]

#: At most this many transitions a year per observance with an RRULE (real
#: zones have one: ``FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU``).
MAX_CHANGES_PER_YEAR = 2
#: Observances (STANDARD, DAYLIGHT) per VTIMEZONE; full-history zones have a few dozen.
MAX_OBSERVANCES = 100
#: RDATE values per VTIMEZONE, all observances together.
MAX_RDATES = 1000
#: Longest TZID looked up by name (a file name: longer ones cannot exist).
MAX_TZID_LENGTH = MAX_ZONE_NAME
#: The years over which an observance's rule is sampled (a full cycle of
#: leap years and weekdays, ending where dateutil stops: year 9999).
_SAMPLE_FIRST_YEAR = 9972
_SAMPLE_YEARS = 28
_OBSERVANCES = frozenset({"STANDARD", "DAYLIGHT"})
_ONE_DAY = timedelta(days=1)
#: VTIMEZONE verdicts remembered per process (see :func:`vtimezone_problem`).
MAX_VERDICTS = 256
_VERDICTS: dict[bytes, str | None] = {}


# -- checking a VTIMEZONE ----------------------------------------------------------


def vtimezone_problem(vtimezone: Component) -> str | None:
    """Why ``vtimezone`` may not be turned into a ``tzinfo``; None if it may.

    The verdict depends on the VTIMEZONE's text only, and checking a rule
    samples decades of it: verdicts are remembered by text (the last
    :data:`MAX_VERDICTS`), so a store holding the same zone in every record
    pays for the check once per process.

    Accepted (RFC 5545 §3.6.5, as real zones are written): one to
    :data:`MAX_OBSERVANCES` STANDARD/DAYLIGHT observances, each with a
    floating DATE-TIME (or DATE) DTSTART, readable TZOFFSETFROM and
    TZOFFSETTO under 24 hours, at most one RRULE and no EXRULE; the RRULE is
    ``FREQ=YEARLY`` within the RFC 5545 §3.3.10 ranges, with at most one
    BYHOUR, BYMINUTE and BYSECOND value, and yields between one and
    :data:`MAX_CHANGES_PER_YEAR` transitions a year; at most
    :data:`MAX_RDATES` RDATE values in all. Zones with several observances
    need a STANDARD one (dateutil fails on times before a DAYLIGHT-only
    zone's first onset).
    """
    key: bytes = vtimezone.to_ical()
    if key in _VERDICTS:
        return _VERDICTS[key]
    verdict = _zone_problem(vtimezone)
    if len(_VERDICTS) >= MAX_VERDICTS:
        _VERDICTS.pop(next(iter(_VERDICTS)), None)  # the oldest
    _VERDICTS[key] = verdict
    return verdict


def _zone_problem(vtimezone: Component) -> str | None:
    """:func:`vtimezone_problem`, not remembered."""
    observances = vtimezone.subcomponents
    if not observances:
        return "no STANDARD or DAYLIGHT observance"
    if len(observances) > MAX_OBSERVANCES:
        return f"{len(observances)} observances (at most {MAX_OBSERVANCES})"
    if len(observances) > 1 and not any(o.name == "STANDARD" for o in observances):
        return "several DAYLIGHT observances and no STANDARD one"
    rdates = 0
    for observance in observances:
        problem = observance_problem(observance)
        if problem:
            return f"{observance.name}: {problem}"
        rdates += sum(1 for _ in _rdate_values(observance))
    if rdates > MAX_RDATES:
        return f"{rdates} RDATE values (at most {MAX_RDATES})"
    return None


def observance_problem(observance: Component) -> str | None:
    """Why one STANDARD or DAYLIGHT observance is unusable; None if it is usable."""
    if observance.name not in _OBSERVANCES:
        return "not an observance"
    start = _value(observance, "DTSTART")
    if not isinstance(start, date):
        return "no readable DTSTART"
    if isinstance(start, datetime) and start.tzinfo is not None:
        return "DTSTART must be a local time"
    for name in ("TZOFFSETFROM", "TZOFFSETTO"):
        offset = _offset(observance, name)
        if offset is None or abs(offset) >= _ONE_DAY:
            return f"no readable {name}"
    if "EXRULE" in observance:
        return "EXRULE is not allowed (RFC 5545)"
    rules = _all(observance.get("RRULE"))
    if len(rules) > 1:
        return "more than one RRULE"
    return rule_problem(rules[0], _naive(start)) if rules else None


def rule_problem(value: object, start: datetime) -> str | None:
    """Why an observance's RRULE is unusable; None if it changes the zone at
    most :data:`MAX_CHANGES_PER_YEAR` times a year (and at least once in a
    sample of :data:`_SAMPLE_YEARS` years)."""
    try:
        recur = parse_recur(value)
        if recur is None:
            return "empty RRULE"
        check_ranges(recur)
    except CalendarDataError as exc:
        return str(exc)
    freq = str(recur.get("FREQ", [""])[0]).upper()
    if freq != "YEARLY":
        return f"RRULE FREQ={freq} (a time zone changes at most a few times a year)"
    for name in ("BYHOUR", "BYMINUTE", "BYSECOND"):
        if len(recur.get(name, ())) > 1:
            return f"RRULE with several {name} values"
    if never_matches(recur):
        return "RRULE that never matches"
    text: bytes = recur.to_ical()  # type: ignore[no-untyped-call]
    return _density_problem(text.decode("ascii", "replace"), start)


def _density_problem(text: str, start: datetime) -> str | None:
    """Count the rule's transitions over the sample years (yearly, INTERVAL 1)."""
    sample = start.replace(year=_SAMPLE_FIRST_YEAR)
    parts = [p for p in text.split(";") if p.split("=")[0].upper() not in _UNBOUNDED]
    limit = MAX_CHANGES_PER_YEAR * _SAMPLE_YEARS
    try:
        rule = rrulestr(";".join(parts), dtstart=sample)
        if not isinstance(rule, rrule):
            return "unreadable RRULE"
        count = sum(1 for _ in itertools.islice(rule, limit + 1))
    except (ValueError, TypeError, OverflowError) as exc:
        return f"unreadable RRULE: {exc}"
    if count > limit:
        return f"RRULE changes the zone more than {MAX_CHANGES_PER_YEAR} times a year"
    return None if count else "RRULE that (almost) never matches"


#: Rule parts left out of the density sample: it counts every year from its start.
_UNBOUNDED = frozenset({"COUNT", "UNTIL", "INTERVAL"})


def _value(component: Component, name: str) -> object:
    """A DATE or DATE-TIME property's value; None if absent or unreadable."""
    prop = component.get(name)
    prop = prop[0] if isinstance(prop, list) and prop else prop
    if prop is None or isinstance(prop, vBroken):
        return None
    return getattr(prop, "dt", None)


def _offset(component: Component, name: str) -> timedelta | None:
    """A UTC-OFFSET property's value (RFC 5545 §3.3.14); None if unreadable."""
    if isinstance(component.get(name), vBroken):
        return None
    try:
        value = component.decoded(name)
    except (KeyError, ValueError, TypeError, AttributeError):
        return None
    return value if isinstance(value, timedelta) else None


def _all(value: object) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _naive(start: date) -> datetime:
    if isinstance(start, datetime):
        return start
    return datetime(start.year, start.month, start.day)


def _rdate_values(observance: Component) -> Iterator[object]:
    for prop in _all(observance.get("RDATE")):
        yield from ([prop] if isinstance(prop, vBroken) else getattr(prop, "dts", None) or [prop])


# -- names ---------------------------------------------------------------------


def usable_name(name: str) -> bool:
    """Whether ``name`` may be looked up as a zone name at all (length, NUL)."""
    return 0 < len(name) <= MAX_TZID_LENGTH and "\x00" not in name


def named_zone(name: str) -> tzinfo | None:
    """The zone an IANA, Windows or globally unique TZID names, ignoring any
    VTIMEZONE seen so far (icalendar's own lookup, with an empty cache)."""
    if not usable_name(name):
        return None
    zone = _NAMES.timezone(name)
    return zone if isinstance(zone, tzinfo) else None


# -- the provider -----------------------------------------------------------------


class GuardedZones(ZONEINFO):
    """icalendar's zoneinfo provider, refusing unusable VTIMEZONEs and names.

    :meth:`create_timezone` builds a ``tzinfo`` from a VTIMEZONE only if
    :func:`vtimezone_problem` finds nothing and the result answers a few
    offset lookups; otherwise it returns the zone the TZID names, else UTC,
    and logs why. :meth:`timezone` answers None for names no file can have
    (over :data:`MAX_TZID_LENGTH` characters: ``zoneinfo`` raises OSError).
    """

    def timezone(self, name: str) -> tzinfo | None:
        """The zone called ``name``, None if unknown or unusable as a name."""
        if not usable_name(name):
            return None
        try:
            zone = super().timezone(name)
        except OSError:
            return None
        return zone if isinstance(zone, tzinfo) else None

    def knows_timezone_id(self, tzid: str) -> bool:
        """Whether ``tzid`` names a zone of the system's database, so that
        icalendar uses that zone rather than build one from a VTIMEZONE of
        that name (RFC 5545 §3.6.5 lets a TZID name a zone the receiver
        knows).

        Looked up by name, as :meth:`timezone` will for the times using it
        (``zoneinfo`` keeps the zone): icalendar's own check lists the whole
        database instead (``zoneinfo.available_timezones()`` opens each of its
        600 files, 17 to 30 ms of a pipe run's CPU here, issue 15). Besides
        those names, a name under ``posix/`` or ``right/`` is known too (the
        same rules; ``right/`` counts leap seconds, which no calendar does).
        """
        return self.timezone(tzid) is not None

    def create_timezone(self, tz: Timezone) -> tzinfo:  # type: ignore[override]
        """A ``tzinfo`` for the VTIMEZONE ``tz``, or the fallback (see class)."""
        tzid = str(tz.get("TZID", ""))
        problem = vtimezone_problem(tz)
        if problem is None:
            try:
                zone: tzinfo = super().create_timezone(tz)
                _probe(zone, tz)
                return zone
            except Exception as exc:  # dateutil may raise anything on odd data
                problem = f"unusable: {' '.join(str(exc).split())[:120]}"
        fallback = named_zone(tzid)
        log.warning(
            "VTIMEZONE %r ignored (%s); using %s",
            tzid[:80],
            problem,
            "the zone of that name" if fallback else "UTC",
        )
        return fallback or UTC


def _probe(zone: tzinfo, vtimezone: Component) -> None:
    """Ask ``zone`` for offsets before, at and after its observances' onsets;
    raises what dateutil raises for data it cannot serve."""
    moments = [datetime(1, 1, 2), datetime(2030, 1, 1)]
    for observance in vtimezone.subcomponents:
        start = _value(observance, "DTSTART")
        if isinstance(start, date):
            moments.append(_naive(start))
    for moment in moments:
        zone.utcoffset(moment)
        zone.dst(moment)


# -- calendars ------------------------------------------------------------------


def check_calendar(calendar: Calendar, used: set[str]) -> None:
    """Raise :class:`CalendarDataError` if a VTIMEZONE whose TZID is in
    ``used`` is unusable (see :func:`vtimezone_problem`) and that TZID names
    no known zone: the times given in it cannot be read."""
    for vtimezone in calendar.walk("VTIMEZONE"):
        tzid = str(vtimezone.get("TZID", ""))
        if tzid not in used or named_zone(tzid) is not None:
            continue
        problem = vtimezone_problem(vtimezone)
        if problem:
            raise CalendarDataError(f"unusable VTIMEZONE {tzid[:60]!r}: {problem}")


def install() -> None:
    """Make :class:`GuardedZones` icalendar's provider (with an empty cache of
    VTIMEZONEs seen: a fresh process, as far as zones are concerned)."""
    tzp.use(GuardedZones())


_NAMES = TZP(GuardedZones())
install()
