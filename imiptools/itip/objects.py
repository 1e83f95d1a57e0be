"""Scheduling objects: a thin layer over icalendar for iTIP (RFC 5546).

A message's calendar carries one METHOD and components grouped by UID. An
:class:`ItipObject` is what iTIP calls a scheduling object resource: all
components of one UID in one calendar (the master, overridden instances)
plus the VTIMEZONEs they use. Everything here reads; nothing writes stores.

Contracts:
- :func:`parse_calendars` raises :class:`CalendarDataError` (never anything
  else) on unusable text.
- Versions order by SEQUENCE, then DTSTAMP (RFC 5546 §2.1.5).
- Addresses compare in the form :func:`imiptools.addresses.normalise` gives.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import field
from datetime import UTC, date, datetime, time, tzinfo

from icalendar import Calendar, Component, Timezone, vCalAddress
from icalendar.parser import Contentline

from imiptools import addresses
from imiptools.dates import database_zone, format_recurrence_id, to_utc
from imiptools.deferred import dataclass
from imiptools.errors import CalendarDataError
from imiptools.itip import zones

PRODID = "-//imip-agent//imip-agent 0.1//EN"
SCHEDULED_KINDS = ("VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_calendars(text: str) -> list[Calendar]:
    """Parse iCalendar text holding one or more VCALENDARs (RFC 5545 §3.4).

    The senders' VTIMEZONEs are checked as icalendar reads them (see
    :mod:`imiptools.itip.zones`); a calendar whose times are given in an
    unusable one raises CalendarDataError like unreadable text does.
    """
    try:
        calendars = Calendar.from_ical(text, multiple=True)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise CalendarDataError(f"unreadable iCalendar data: {_short(exc)}") from exc
    result = [c for c in calendars if isinstance(c, Calendar) and c.name == "VCALENDAR"]
    if not result:
        raise CalendarDataError("no VCALENDAR object found")
    for calendar in result:
        _check_zones(calendar)
    return result


def _check_zones(calendar: Calendar) -> None:
    """The calendar's unusable VTIMEZONEs, if its components use them, raise."""
    if any(isinstance(c, Timezone) for c in calendar.subcomponents):
        others = [c for c in calendar.subcomponents if not isinstance(c, Timezone)]
        zones.check_calendar(calendar, used_tzids(others))


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:120]


def address(value: object) -> str:
    """Normalised address of a calendar user: ``mailto:X@Y`` -> ``x@y``.

    The one parser, :func:`imiptools.addresses.normalise` (RFC 6068
    percent-decoding, no ``?`` header fields, no trailing dot in the domain).
    """
    return addresses.normalise(value)


def uri(value: object) -> str:
    """Normalised ``mailto:`` URI of a calendar user."""
    return addresses.uri(value)


def text_of(component: Component, name: str) -> str:
    """A property as plain text ('' if absent or unreadable)."""
    value = component.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return "" if value is None else str(value)


def sequence_of(component: Component) -> int:
    """SEQUENCE, 0 when absent or unreadable (RFC 5545 §3.8.7.4)."""
    try:
        return max(0, int(str(component.get("SEQUENCE", 0))))
    except ValueError:
        return 0


def dtstamp_of(component: Component) -> datetime:
    """DTSTAMP in UTC, the epoch when absent or unreadable."""
    try:
        value = component.decoded("DTSTAMP")
    except (KeyError, ValueError, TypeError, AttributeError):
        return EPOCH
    try:
        return to_utc(value)
    except (TypeError, ValueError, OverflowError):
        return EPOCH


def version_key(component: Component) -> tuple[int, datetime]:
    """The ordering key of a version: (SEQUENCE, DTSTAMP) per RFC 5546 §2.1.5."""
    return (sequence_of(component), dtstamp_of(component))


def is_newer(incoming: Component, stored: Component | None) -> bool:
    """True if ``incoming`` supersedes ``stored`` (a strictly later version)."""
    return stored is None or version_key(incoming) > version_key(stored)


def recurrence_id_of(component: Component, zone: tzinfo = UTC) -> str:
    """The normalised RECURRENCE-ID ('' for a master or non-recurring object)."""
    if "RECURRENCE-ID" not in component:
        return ""
    try:
        value = component.decoded("RECURRENCE-ID")
    except (ValueError, TypeError, AttributeError) as exc:
        raise CalendarDataError("unreadable RECURRENCE-ID") from exc
    return format_recurrence_id(value, zone)


def is_this_and_future(component: Component) -> bool:
    """True for ``RECURRENCE-ID;RANGE=THISANDFUTURE`` (RFC 5545 §3.8.4.4)."""
    prop = component.get("RECURRENCE-ID")
    params = getattr(prop, "params", {})
    return str(params.get("RANGE", "")).upper() == "THISANDFUTURE"


def attendees_of(component: Component) -> list[vCalAddress]:
    """The ATTENDEE properties, as a list even when there is one; values
    icalendar could not read as addresses are left out."""
    value = component.get("ATTENDEE")
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [a for a in items if isinstance(a, vCalAddress)]


def find_attendee(component: Component, who: str) -> vCalAddress | None:
    """The ATTENDEE property naming ``who`` (an address or URI), if any."""
    wanted = address(who)
    for attendee in attendees_of(component):
        if mail_address_of(attendee) == wanted:
            return attendee
    return None


def mail_address_of(prop: object) -> str:
    """The e-mail address of a calendar user property (ORGANIZER, ATTENDEE).

    ``mailto:`` values give their address; other URIs (CalDAV principals)
    fall back to the RFC 7986 §6.2 EMAIL parameter; '' when there is none.
    """
    if isinstance(prop, list):
        prop = prop[0] if prop else None
    value = str(prop or "").strip()
    if value.lower().startswith("mailto:") or ("@" in value and ":" not in value):
        return address(value)
    email = getattr(prop, "params", {}).get("EMAIL", "")
    return address(email) if "@" in str(email) else address(value)


def organizer_of(component: Component) -> str:
    """The organiser's normalised address ('' if absent), see mail_address_of."""
    return mail_address_of(component.get("ORGANIZER", ""))


def sent_by_of(prop: object) -> str:
    """The SENT-BY parameter's normalised address ('' if absent)."""
    params = getattr(prop, "params", {})
    return address(params.get("SENT-BY", ""))


@dataclass
class ItipObject:
    """All components of one UID in one VCALENDAR, with the METHOD.

    ``components`` keeps the order of the calendar; ``timezones`` holds the
    calendar's VTIMEZONEs (needed to store the object faithfully).
    """

    method: str
    kind: str
    uid: str
    components: list[Component]
    timezones: list[Timezone] = field(default_factory=list)

    @property
    def master(self) -> Component | None:
        """The component without RECURRENCE-ID, if present."""
        for component in self.components:
            if "RECURRENCE-ID" not in component:
                return component
        return None

    @property
    def overrides(self) -> list[Component]:
        """Components with a RECURRENCE-ID (overridden instances)."""
        return [c for c in self.components if "RECURRENCE-ID" in c]

    @property
    def first(self) -> Component:
        """The master if present, else the first instance."""
        return self.master or self.components[0]

    def latest_key(self) -> tuple[int, datetime]:
        """The highest version key among the components."""
        return max(version_key(c) for c in self.components)


def _method(calendar: Calendar, hint: str | None) -> str:
    method = text_of(calendar, "METHOD").upper().strip()
    return method or (hint or "").upper().strip() or "PUBLISH"


def scheduling_objects(calendar: Calendar, method_hint: str | None = None) -> list[ItipObject]:
    """Group a calendar's scheduling components by (kind, UID).

    The METHOD comes from the calendar, else from the MIME ``method=``
    parameter, else PUBLISH (RFC 5546 §1.4). Components without UID get a
    kind-specific empty UID; the caller decides whether that is usable.
    (The number of components a message may hold is bounded by
    :mod:`imiptools.itip.intake`.)
    """
    components = [c for c in calendar.subcomponents if c.name in SCHEDULED_KINDS]
    method = _method(calendar, method_hint)
    zones = [c for c in calendar.subcomponents if isinstance(c, Timezone)]
    groups: dict[tuple[str, str], ItipObject] = {}
    for component in components:
        key = (str(component.name), text_of(component, "UID"))
        if key not in groups:
            groups[key] = ItipObject(method, key[0], key[1], [], zones)
        groups[key].components.append(component)
    return list(groups.values())


def used_tzids(components: Iterable[Component]) -> set[str]:
    """TZIDs referenced by the properties of ``components``."""
    found: set[str] = set()
    for component in components:
        for _, value in component.property_items(recursive=True, sorted=False):
            for item in value if isinstance(value, list) else [value]:
                tzid = getattr(item, "params", {}).get("TZID")
                if tzid:
                    found.add(str(tzid))
    return found


def make_calendar(
    components: Sequence[Component],
    method: str | None = None,
    timezones: Sequence[Timezone] = (),
) -> Calendar:
    """A VCALENDAR holding ``components`` and the VTIMEZONEs they use."""
    calendar = Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    if method:
        calendar.add("METHOD", method)
    wanted = used_tzids(components)
    for zone in timezones:
        if text_of(zone, "TZID") in wanted:
            calendar.add_component(zone)
    for component in components:
        calendar.add_component(component)
    return calendar


def to_text(calendar: Calendar) -> str:
    """Serialise a calendar (CRLF line endings, folded, RFC 5545 §3.1)."""
    return serialise(calendar).decode("utf-8")


def serialise(component: Component) -> bytes:
    """``component.to_ical()``, byte for byte, made faster (issue 15).

    icalendar folds every content line a character at a time, but a line
    of fewer than :data:`FOLD_OCTETS` octets is never folded (RFC 5545
    §3.1): such a line is only encoded here, every other one folded by
    icalendar as ever. A test holds the two equal over the interop corpus.
    """
    lines = component.content_lines()
    return b"\r\n".join(_line_octets(line) for line in lines if line) + b"\r\n"


#: Lines of this many octets or more are folded (RFC 5545 §3.1: "SHOULD NOT
#: be longer than 75 octets", and icalendar folds before the 75th).
FOLD_OCTETS = 75


def _line_octets(line: Contentline) -> bytes:
    octets = line.encode("utf-8")
    if len(octets) < FOLD_OCTETS:
        return octets
    folded: bytes = line.to_ical()  # type: ignore[no-untyped-call]
    return folded


def iter_components(text: str, kind: str = "VEVENT") -> Iterator[Component]:
    """The components of ``kind`` in stored iCalendar text."""
    for calendar in parse_calendars(text):
        yield from calendar.walk(kind)


def portable_timezones(calendar: Calendar) -> Calendar:
    """Give every TZID a well-formed VTIMEZONE (RFC 5545 §3.6.5), for export.

    Senders' VTIMEZONEs for zones the zone database knows by name (IANA or
    Windows) are often broken (no DTSTART, DTSTART with TZID, absurd
    offsets, no TZNAME): they are replaced by ones generated from the zone
    database (:func:`~imiptools.dates.database_zone`), with its
    abbreviations (``CET``/``CEST``, not ``1:00:00``). Custom zones keep
    their own definition. icalendar writes fixed-offset zones with a DATE
    DTSTART, which RFC 5545 forbids: those become midnight DATE-TIMEs.
    """
    wanted = used_tzids(c for c in calendar.subcomponents if not isinstance(c, Timezone))
    given = {text_of(z, "TZID"): z for z in calendar.subcomponents if isinstance(z, Timezone)}
    position = 0
    for tzid in sorted(wanted | given.keys()):
        zone = database_zone(tzid)
        if zone is None:
            continue
        if tzid in given:
            calendar.subcomponents.remove(given[tzid])
        if tzid in wanted:
            calendar.subcomponents.insert(position, _from_database(zone, tzid))
            position += 1
    try:
        calendar.add_missing_timezones()
    except (ValueError, KeyError, TypeError) as exc:
        raise CalendarDataError(f"cannot describe a time zone: {_short(exc)}") from exc
    for vtimezone in calendar.walk("VTIMEZONE"):
        for rule in vtimezone.subcomponents:
            start = rule.get("DTSTART")
            value = getattr(start, "dt", None)
            if isinstance(value, date) and not isinstance(value, datetime):
                rule.pop("DTSTART")
                rule.add("DTSTART", datetime.combine(value, time(0)))
    return calendar


def _from_database(zone: tzinfo, tzid: str) -> Timezone:
    try:
        return Timezone.from_tzinfo(zone, tzid)
    except (ValueError, KeyError, TypeError) as exc:
        raise CalendarDataError(f"cannot describe a time zone: {_short(exc)}") from exc
