"""Building the iTIP objects we send (RFC 5546 §3.2.3, §3.2.7, §3.3.2).

Every function returns a complete :class:`icalendar.Calendar` with METHOD.
Date-times are written in UTC so that no VTIMEZONE is needed; values from
the incoming request are copied through icalendar's model, never pasted as
text, so hostile content cannot break a content line (RFC 5545 §3.3.11
escaping is icalendar's).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, tzinfo

from icalendar import (
    Calendar,
    Component,
    Event,
    FreeBusy,
    Timezone,
    vCalAddress,
    vPeriod,
    vRecur,
    vText,
)

from imiptools.dates import to_utc
from imiptools.itip.objects import (
    find_attendee,
    make_calendar,
    sequence_of,
    serialise,
    text_of,
)
from imiptools.periods import Period


class RequestStatus(vText):
    """A REQUEST-STATUS value (RFC 5545 §3.8.8.3): ``statcode;statdesc[;extdata]``.

    The semicolons between the parts are separators and must stay bare;
    icalendar's text type would escape them, so each part is escaped on its
    own (RFC 5545 §3.3.11) and the parts are joined.
    """

    def to_ical(self) -> bytes:
        parts = str(self).split(";", 2)
        return ";".join(_escape_text(part) for part in parts).encode("utf-8")


def _escape_text(text: str) -> str:
    text = text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return text.replace("\r\n", "\\n").replace("\n", "\\n")


def _uri(who: str) -> str:
    return who if who.lower().startswith("mailto:") else f"mailto:{who}"


def delegation(source: Component, delegator: str, delegate: str) -> Component:
    """A copy of ``source`` delegated (RFC 5546 §3.2.2.3): the delegator's
    ATTENDEE gets PARTSTAT=DELEGATED and DELEGATED-TO, and the delegate is
    added with DELEGATED-FROM, NEEDS-ACTION and RSVP, keeping the
    delegator's ROLE and CUTYPE. Returns the new component; ``source`` is
    left alone.
    """
    copy = type(source).from_ical(serialise(source))
    attendees = copy.get("ATTENDEE", [])
    found = find_attendee(copy, delegator)
    new = _attendee(delegate, "NEEDS-ACTION")
    new.params["DELEGATED-FROM"] = _uri(delegator)
    new.params["RSVP"] = "TRUE"
    if found is not None:
        found.params["PARTSTAT"] = "DELEGATED"
        found.params["DELEGATED-TO"] = _uri(delegate)
        for name in ("ROLE", "CUTYPE"):
            if name in found.params:
                new.params[name] = found.params[name]
    copy.pop("ATTENDEE", None)
    for attendee in [*(attendees if isinstance(attendees, list) else [attendees]), new]:
        copy.add("ATTENDEE", attendee)
    return copy


def _attendee(who: str, partstat: str | None, sent_by: str = "", cn: str = "") -> vCalAddress:
    prop = vCalAddress(_uri(who))
    if partstat:
        prop.params["PARTSTAT"] = partstat
    if sent_by:
        prop.params["SENT-BY"] = f"mailto:{sent_by}"
    if cn:
        prop.params["CN"] = cn
    return prop


def _answering(
    source: Component, attendee: str, partstat: str, sent_by: str, cn: str = ""
) -> vCalAddress:
    """Our ATTENDEE for an answer to ``source``: named ``cn`` (our own name,
    the CN preference) when given, else by the CN the request gave us."""
    if not cn:
        original = find_attendee(source, attendee)
        cn = str(original.params.get("CN", "")) if original is not None else ""
    return _attendee(attendee, partstat, sent_by, cn)


def _copy_time(target: Component, source: Component, name: str) -> None:
    """Copy DTSTART/DTEND/RECURRENCE-ID: dates as they are, date-times in UTC."""
    if name not in source:
        return
    try:
        value = source.decoded(name)
    except (ValueError, TypeError, AttributeError):
        return
    if isinstance(value, datetime):
        value = to_utc(value)
    elif not isinstance(value, date):
        return
    target.add(name, value)


def _base(source: Component, stamp: datetime) -> Event:
    """UID, SEQUENCE (when > 0), DTSTAMP, ORGANIZER, RECURRENCE-ID of ``source``."""
    event = Event()
    event.add("UID", text_of(source, "UID"))
    if sequence_of(source):
        event.add("SEQUENCE", sequence_of(source))
    event.add("DTSTAMP", to_utc(stamp))
    if "ORGANIZER" in source:
        event["ORGANIZER"] = source["ORGANIZER"]
    _copy_time(event, source, "RECURRENCE-ID")
    return event


def reply_component(
    source: Component,
    attendee: str,
    partstat: str,
    stamp: datetime,
    *,
    comment: str = "",
    sent_by: str = "",
    request_status: str = "",
    delegated_to: str = "",
    cn: str = "",
) -> Event:
    """One VEVENT of a REPLY (RFC 5546 §3.2.3) answering ``source``.

    Carries exactly one ATTENDEE (the replying one, with CN ``cn``, or the
    CN the request gave it when ``cn`` is ''; with DELEGATED-TO when
    ``delegated_to`` is given, RFC 5546 §3.2.2.3), the
    UID/SEQUENCE/RECURRENCE-ID of the request, DTSTAMP, ORGANIZER, and for
    the reader DTSTART/DTEND/SUMMARY, plus COMMENT with the reason.
    """
    event = _base(source, stamp)
    answering = _answering(source, attendee, partstat, sent_by, cn)
    if delegated_to:
        answering.params["DELEGATED-TO"] = _uri(delegated_to)
    event.add("ATTENDEE", answering)
    for name in ("DTSTART", "DTEND"):
        _copy_time(event, source, name)
    if "SUMMARY" in source:
        event.add("SUMMARY", text_of(source, "SUMMARY"))
    if comment:
        event.add("COMMENT", comment)
    if request_status:
        event["REQUEST-STATUS"] = RequestStatus(request_status)
    return event


def counter(
    source: Component,
    attendee: str,
    start: datetime,
    end: datetime,
    stamp: datetime,
    *,
    comment: str = "",
    sent_by: str = "",
    rrule: str = "",
    zone: tzinfo | None = None,
    timezones: Sequence[Timezone] = (),
    cn: str = "",
) -> Calendar:
    """A METHOD:COUNTER proposing ``start``-``end`` instead (RFC 5546 §3.2.7).

    The request's event with the proposed times, a new DTSTAMP, the same
    UID, SEQUENCE and ORGANIZER, no recurrence unless ``rrule`` is given (a
    series), and ``attendee`` with PARTSTAT=NEEDS-ACTION (and CN ``cn``, or
    the request's CN for it when ``cn`` is ''). Times are UTC,
    except for a series with a ``zone``: its DTSTART and DTEND are then in
    that zone (with its VTIMEZONE, from ``timezones`` or generated), so that
    the rule recurs at the same local time across daylight-saving changes,
    as the request did (RFC 5545 §3.3.10).
    """
    event = Event()
    for name in ("UID", "SEQUENCE", "ORGANIZER", "SUMMARY", "LOCATION", "RECURRENCE-ID"):
        if name in source:
            event[name] = source[name]
    event.add("DTSTAMP", to_utc(stamp))
    local = zone is not None and bool(rrule)
    event.add("DTSTART", start.astimezone(zone) if local else to_utc(start))
    event.add("DTEND", end.astimezone(zone) if local else to_utc(end))
    if rrule:
        event.add("RRULE", vRecur.from_ical(rrule))
    event.add("ATTENDEE", _answering(source, attendee, "NEEDS-ACTION", sent_by, cn))
    if comment:
        event.add("COMMENT", comment)
    calendar = make_calendar([event], "COUNTER", timezones)
    if local:
        calendar.add_missing_timezones()
    return calendar


def reply(components: Iterable[Event]) -> Calendar:
    """A METHOD:REPLY calendar holding ``components``."""
    return make_calendar(list(components), "REPLY")


def refresh(source: Component, attendee: str, stamp: datetime, sent_by: str = "") -> Calendar:
    """A METHOD:REFRESH asking the organiser for the current event (RFC 5546 §3.2.7)."""
    event = _base(source, stamp)
    event.pop("SEQUENCE", None)
    event.add("ATTENDEE", _attendee(attendee, None, sent_by))
    event.add("COMMENT", "Please send the current version of this event.")
    return make_calendar([event], "REFRESH")


def _merge(periods: Iterable[Period]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for period in sorted(periods):
        if merged and period.start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], period.end))
        else:
            merged.append((period.start, period.end))
    return merged


def freebusy_component(
    periods: Iterable[Period], start: datetime, end: datetime, stamp: datetime
) -> FreeBusy:
    """A VFREEBUSY with merged FREEBUSY periods per FBTYPE, clipped to the range."""
    component = FreeBusy()
    component.add("DTSTAMP", to_utc(stamp))
    component.add("DTSTART", to_utc(start))
    component.add("DTEND", to_utc(end))
    by_type: dict[str, list[Period]] = {}
    for period in periods:
        if period.transp != "TRANSPARENT" and period.overlaps(start, end):
            by_type.setdefault(period.status or "BUSY", []).append(period)
    for fbtype, items in sorted(by_type.items()):
        for begin, finish in _merge(items):
            value = vPeriod((max(begin, to_utc(start)), min(finish, to_utc(end))))
            value.params["FBTYPE"] = fbtype
            component.add("FREEBUSY", value)
    return component


def freebusy_reply(
    request: Component,
    attendee: str,
    periods: Iterable[Period],
    stamp: datetime,
    start: datetime,
    end: datetime,
) -> Calendar:
    """A METHOD:REPLY VFREEBUSY answering ``request`` (RFC 5546 §3.3.2)."""
    component = freebusy_component(periods, start, end, stamp)
    component.add("UID", text_of(request, "UID") or f"freebusy-{to_utc(stamp).timestamp():.0f}")
    if "ORGANIZER" in request:
        component["ORGANIZER"] = request["ORGANIZER"]
    component.add("ATTENDEE", _attendee(attendee, None))
    return make_calendar([component], "REPLY")
