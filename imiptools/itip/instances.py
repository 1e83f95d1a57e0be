"""The instances an organiser's update carries: SEQUENCE, overrides, moves.

An organiser's copy of a series holds overridden instances (RFC 5545
§3.8.4.4): those the organiser changed, and those an attendee answered
alone (``imip-person`` makes an override to hold that answer). A REQUEST
with the master replaces everything the attendee holds (RFC 5546 §3.2.2:
"the Organizer MUST send the complete event"), so an update must carry
every override still valid, changed as the series changed
(:func:`carried`). When the series moves, its overrides, EXDATEs and
RDATEs move with it (:func:`shift`), as Thunderbird and CalendarServer
move them: an instance named by its old RECURRENCE-ID would otherwise
match no occurrence of the new series.

SEQUENCE (RFC 5545 §3.8.7.4, RFC 5546 §2.1.4) is one more than every
SEQUENCE already sent for the UID (:func:`next_sequence`), including
those the store keeps apart (the CANCELs of single instances).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo

from icalendar import Component, Event, vCalAddress

from imiptools.dates import format_recurrence_id, parse_recurrence_id, to_utc
from imiptools.errors import CalendarDataError
from imiptools.itip.merge import copy_component
from imiptools.itip.objects import (
    ItipObject,
    attendees_of,
    mail_address_of,
    organizer_of,
    sequence_of,
)
from imiptools.itip.recurrence import Limits, expand
from imiptools.itip.timing import date_values

#: The properties an override takes from the series when it had the
#: series' value before (its own value otherwise stays).
FOLLOWED = (
    "SUMMARY",
    "LOCATION",
    "DESCRIPTION",
    "URL",
    "CLASS",
    "PRIORITY",
    "STATUS",
    "TRANSP",
    "CATEGORIES",
)
#: Half the window expanded to find whether one occurrence exists.
INSTANT = timedelta(seconds=1)

Moment = date | datetime


def next_sequence(stored: ItipObject, floor: int = -1) -> int:
    """The SEQUENCE of the next message about ``stored``: one more than the
    highest of its stored components and ``floor`` (what was sent and is not
    among them, as a CANCEL of one instance; RFC 5545 §3.8.7.4)."""
    return max([floor, *(sequence_of(c) for c in stored.components)]) + 1


def offset(old: Moment, new: Moment) -> timedelta | None:
    """How far a series moves from DTSTART ``old`` to ``new``, in wall-clock
    time in ``new``'s zone; None when one is a date and the other not (the
    instances cannot follow)."""
    if isinstance(old, datetime) and isinstance(new, datetime):
        zone = new.tzinfo or UTC
        before = old.astimezone(zone) if old.tzinfo else old.replace(tzinfo=zone)
        return new.replace(tzinfo=None) - before.replace(tzinfo=None)
    if isinstance(old, datetime) or isinstance(new, datetime):
        return None
    return new - old


def shift(moment: Moment, by: timedelta, zone: tzinfo | None) -> Moment:
    """``moment`` moved ``by`` in wall-clock time in ``zone`` (a date moved
    by whole days)."""
    if not isinstance(moment, datetime):
        return moment + timedelta(days=by.days)
    local = moment.astimezone(zone) if zone is not None and moment.tzinfo else moment
    return (local.replace(tzinfo=None) + by).replace(tzinfo=local.tzinfo)


def shift_dates(event: Component, name: str, by: timedelta, zone: tzinfo | None) -> None:
    """Move every value of ``event``'s ``name`` (EXDATE, RDATE) ``by``; a
    PERIOD value moves its start and keeps its length."""
    rewrite_dates(event, name, by=by, zone=zone)


def rewrite_dates(
    event: Component,
    name: str,
    *,
    keep: Callable[[object], bool] | None = None,
    by: timedelta | None = None,
    zone: tzinfo | None = None,
) -> None:
    """Keep the values of ``event``'s ``name`` (EXDATE, RDATE) that ``keep``
    (a predicate; None: all) keeps, each moved ``by`` when given (a PERIOD
    value moves its start and keeps its length); unreadable values leave
    the property as it is."""
    try:
        values = list(date_values(event, name))
    except CalendarDataError:
        return
    if not values:
        return
    event.pop(name, None)
    for value in values:
        if keep is not None and not keep(value):
            continue
        if by is not None:
            if isinstance(value, tuple):
                value = (shift(value[0], by, zone), value[1])
            else:
                value = shift(value, by, zone)
        event.add(name, [value])


def occurs(master: Component, rid: str, zone: tzinfo = UTC) -> bool:
    """Whether ``rid`` (a normalised RECURRENCE-ID) is an occurrence of
    ``master``'s series (RRULE, RDATE, less EXDATE: RFC 5545 §3.8.5)."""
    try:
        moment = to_utc(parse_recurrence_id(rid), zone)
        limits = Limits(moment - INSTANT, moment + INSTANT, max_instances=10)
        found = expand(master if isinstance(master, Event) else None, [], zone, limits)
    except (ValueError, CalendarDataError):
        return False
    return any(i.recurrenceid == rid for i in found.instances)


def carried(
    overrides: Sequence[Component],
    old: Component,
    new: Component,
    *,
    sequence: int,
    stamp: datetime,
    significant: bool,
    zone: tzinfo = UTC,
    by: timedelta | None = None,
) -> list[Event]:
    """The overrides of the series ``old`` as the series ``new`` holds them.

    Each moves with the series (:func:`offset`), takes every property of
    :data:`FOLLOWED` that it shared with ``old`` from ``new``, has the
    attendees of ``new`` (those added are added with ``new``'s parameters,
    those gone are dropped, the others keep their answer for the instance),
    and ``sequence`` and ``stamp``; with ``significant`` every attendee but
    the organiser is asked again (RFC 5546 §2.1.4). ``by`` is how far the
    instances move (by default as far as DTSTART does); each takes
    ``new``'s UID. An override whose
    instance is no longer an occurrence of ``new`` (an EXDATE, a shorter
    rule) is left out: its instance is gone.
    """
    if by is None:
        by = offset(old.decoded("DTSTART"), new.decoded("DTSTART"))
    if by is None:
        return []
    found = []
    for override in overrides:
        event = _moved(override, old, new, by, zone)
        if event is None:
            continue
        _follow(event, old, new)
        _attendees_of_series(event, new, significant)
        for name, value in (
            ("UID", new["UID"]),
            ("SEQUENCE", sequence),
            ("DTSTAMP", to_utc(stamp)),
        ):
            event.pop(name, None)
            event.add(name, value)
        found.append(event)
    return found


def _moved(
    override: Component, old: Component, new: Component, by: timedelta, zone: tzinfo
) -> Event | None:
    """A copy of ``override`` named by its RECURRENCE-ID moved ``by``; an
    instance at its own time keeps it, one at the series' time takes the
    new time and length. None when no occurrence of ``new`` has that name."""
    event = copy_component(override)
    original = override.decoded("RECURRENCE-ID")
    start = new.decoded("DTSTART")
    frame = start.tzinfo if isinstance(start, datetime) else None
    moved = shift(original, by, frame)
    if isinstance(moved, datetime) and frame is not None:
        moved = moved.astimezone(frame)
    if not occurs(new, format_recurrence_id(moved, zone), zone):
        return None
    at_series_time = to_utc(override.decoded("DTSTART"), zone) == to_utc(original, zone)
    event.pop("RECURRENCE-ID", None)
    event.add("RECURRENCE-ID", moved)
    if at_series_time:
        length = _length(new)
        for name in ("DTSTART", "DTEND"):
            event.pop(name, None)
        event.add("DTSTART", moved)
        if length is not None and "DURATION" not in event:
            event.add("DTEND", moved + length)
    return event


def _length(event: Component) -> timedelta | None:
    if "DTEND" not in event:
        return None
    length = event.decoded("DTEND") - event.decoded("DTSTART")
    return length if isinstance(length, timedelta) else None


def _follow(event: Component, old: Component, new: Component) -> None:
    """Give ``event`` ``new``'s value of each property of :data:`FOLLOWED`
    whose value it shares with ``old``."""
    for name in FOLLOWED:
        if _ical(event.get(name)) != _ical(old.get(name)):
            continue
        event.pop(name, None)
        if name in new:
            event[name] = new[name]


def _ical(value: object) -> bytes | None:
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    return b"\n".join(getattr(i, "to_ical", lambda i=i: str(i).encode())() for i in items)


def _attendees_of_series(event: Component, series: Component, significant: bool) -> None:
    """``event``'s attendees made those of ``series``: their own
    parameters kept for those it names, ``series``' for the others."""
    own = {mail_address_of(a): a for a in attendees_of(event)}
    organiser = organizer_of(series)
    event.pop("ATTENDEE", None)
    for attendee in attendees_of(series):
        address = mail_address_of(attendee)
        kept = own.get(address, attendee)
        chosen = vCalAddress(str(kept))
        chosen.params.update(kept.params)
        chosen.params["ROLE"] = attendee.params.get("ROLE", "REQ-PARTICIPANT")
        if significant and address != organiser:
            chosen.params["PARTSTAT"] = "NEEDS-ACTION"
            asked = str(attendee.params.get("RSVP", "")).upper() != "FALSE"
            chosen.params["RSVP"] = "TRUE" if asked else "FALSE"
        event.add("ATTENDEE", chosen)


def cancelled_exdates(master: Component, rids: Iterable[str], zone: tzinfo) -> list[Moment]:
    """The EXDATE values (of DTSTART's kind and zone, RFC 5545 §3.8.5.1)
    naming the instances ``rids`` that ``master`` does not exclude yet."""
    start = master.decoded("DTSTART")
    try:
        values = [v for v in date_values(master, "EXDATE") if not isinstance(v, tuple)]
    except CalendarDataError:
        values = []
    have = {format_recurrence_id(v, zone) for v in values}
    found: list[Moment] = []
    for rid in rids:
        if rid in have:
            continue
        try:
            moment = parse_recurrence_id(rid)
        except ValueError:
            continue
        if isinstance(start, datetime) and isinstance(moment, datetime):
            found.append(moment.astimezone(start.tzinfo) if start.tzinfo else moment)
        elif not isinstance(start, datetime) and not isinstance(moment, datetime):
            found.append(moment)
    return found
