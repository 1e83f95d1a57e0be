"""Dates, times and zones: the one place that turns values into aware UTC.

Contract: every datetime that leaves this module is timezone-aware. Naive
("floating", RFC 5545 §3.3.5 form #1) values are read in the calendar user's
zone; all-day values (``DATE``) start at local midnight of that zone. Zone
names are resolved by icalendar's provider, which knows IANA names and the
Windows names that Outlook sends (``W. Europe Standard Time``).
"""

from __future__ import annotations

import re
from dataclasses import field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar.timezone import tzp
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from imiptools.deferred import dataclass
from imiptools.errors import ConfigError

UTC_FORMAT = "%Y%m%dT%H%M%SZ"
DATE_FORMAT = "%Y%m%d"


class Clock(Protocol):
    """Something that tells the current time (injected, never patched)."""

    def now(self) -> datetime:
        """Return the current time, aware, in UTC."""
        ...


@dataclass(frozen=True)
class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True)
class FixedClock:
    """A clock stopped at one instant (``--now`` and tests)."""

    instant: datetime = field(default_factory=lambda: datetime.now(UTC))

    def now(self) -> datetime:
        return self.instant


#: What a zone database key looks like (no path tricks: ``..``, leading ``/``).
_ZONE_NAME = r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*"

_ICAL_DT = re.compile(r"^(\d{8})(?:T(\d{6})(Z)?)?$")


def parse_datetime(text: str, default_zone: tzinfo = UTC) -> datetime:
    """Parse a command-line date-time in ISO 8601 or iCalendar form.

    ``2030-01-08T10:00:00Z``, ``2030-01-08T10:00+01:00``, ``20300108T100000Z``,
    ``2030-01-08`` and ``20300108`` are accepted; values without an offset are
    read in ``default_zone``. Raises :class:`ValueError` on anything else.
    """
    text = text.strip()
    match = _ICAL_DT.match(text)
    if match:
        day, clock, zulu = match.groups()
        value = datetime.strptime(day + (clock or "000000"), "%Y%m%d%H%M%S")
        return value.replace(tzinfo=UTC if zulu else default_zone)
    value = datetime.fromisoformat(text.replace("z", "Z"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=default_zone)
    return value


#: Longest zone name looked up: a zone is a file, and longer names cannot be
#: one (``zoneinfo`` raises OSError for them instead of "not found").
MAX_ZONE_NAME = 255


def resolve_zone(name: str | None) -> tzinfo | None:
    """Return the zone for an IANA or Windows zone name, or None if unknown
    (also for names no zone can have: too long, NUL)."""
    if not name or len(name) > MAX_ZONE_NAME or "\x00" in name:
        return None
    try:
        zone = tzp.timezone(name)
    except OSError:
        return None
    return zone if isinstance(zone, tzinfo) else None


def database_zone(name: str | None) -> ZoneInfo | None:
    """The zone database's zone for an IANA or Windows zone name, else None.

    Unlike :func:`resolve_zone` this never returns a zone built from a
    sender's VTIMEZONE: icalendar's provider keeps such definitions under
    their TZID once a calendar using them is parsed, nameless (TZNAME
    ``1:00:00``) and sometimes wrong. Exported VTIMEZONEs come from here.
    """
    if not name:
        return None
    cleaned = name.strip().strip("/")
    for candidate in (cleaned, WINDOWS_TO_OLSON.get(cleaned, "")):
        if candidate and re.fullmatch(_ZONE_NAME, candidate):
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError, OSError):
                continue
    return None


def zone_or_utc(name: str | None) -> tzinfo:
    """Like :func:`resolve_zone`, falling back to UTC."""
    return resolve_zone(name) or UTC


def system_zone_name() -> str:
    """The machine's zone name (``/etc/timezone`` or ``TZ``), else ``UTC``."""
    try:
        with open("/etc/timezone", encoding="ascii") as handle:
            name = handle.read().strip()
        return name if resolve_zone(name) else "UTC"
    except OSError:
        return "UTC"


def validate_zone(name: str) -> str:
    """Return ``name`` if it resolves, else raise :class:`ConfigError`."""
    if resolve_zone(name) is None:
        raise ConfigError(f"unknown time zone {name!r}")
    return name


def to_utc(value: date | datetime, zone: tzinfo = UTC) -> datetime:
    """Return ``value`` as an aware UTC datetime.

    Dates become midnight in ``zone``; naive (floating) datetimes are read in
    ``zone`` (RFC 5545 §3.3.5: floating time is local to the observer).
    """
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0))
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def format_utc(value: datetime) -> str:
    """``20300108T100000Z`` for an aware datetime (years zero-padded)."""
    v = value.astimezone(UTC)
    return f"{v.year:04d}{v.month:02d}{v.day:02d}T{v.hour:02d}{v.minute:02d}{v.second:02d}Z"


def parse_utc(text: str) -> datetime:
    """Inverse of :func:`format_utc`; ValueError for any other text.

    Only the store's own format (``20300108T100000Z``, ASCII digits) is
    read: quota journals and free/busy hold many thousands of these, so a
    text of exactly that shape goes to ``datetime.fromisoformat``, which
    reads ISO 8601's basic format in C, about twenty times faster than a
    regular expression or ``strptime`` (which also took ``20300108T1000Z``
    and non-ASCII digits).
    """
    if (
        len(text) == 16
        and text[8] == "T"
        and text[15] == "Z"
        and text.isascii()
        and text[:8].isdigit()
        and text[9:15].isdigit()
    ):
        return datetime.fromisoformat(text)
    raise ValueError(f"not a UTC time in the store's format: {text[:40]!r}")


def format_recurrence_id(value: date | datetime, zone: tzinfo = UTC) -> str:
    """Normalise a RECURRENCE-ID value to text (the original's store form).

    Dates stay dates (``20300108``); datetimes with a zone are normalised to
    UTC (``20300108T100000Z``); floating datetimes are read in ``zone``.
    """
    if not isinstance(value, datetime):
        return f"{value.year:04d}{value.month:02d}{value.day:02d}"
    return format_utc(to_utc(value, zone))


def parse_recurrence_id(text: str) -> date | datetime:
    """Inverse of :func:`format_recurrence_id`: a date or an aware UTC datetime."""
    if len(text) == 8:
        return datetime.strptime(text, DATE_FORMAT).date()
    return parse_utc(text)


def add_duration(value: datetime, duration: timedelta) -> datetime:
    """Add an RFC 5545 duration: day parts in wall-clock time, the rest exactly.

    RFC 5545 §3.3.6: ``P1D`` across a DST change keeps the local clock time.
    """
    days = timedelta(days=duration.days)
    rest = duration - days
    # Aware arithmetic in Python is wall-clock arithmetic: right for days,
    # then the exact part is added on the UTC time line.
    return (value + days).astimezone(UTC) + rest


def zone_name(zone: tzinfo) -> str:
    """A printable name for a zone."""
    if isinstance(zone, ZoneInfo):
        return zone.key
    return str(zone)
