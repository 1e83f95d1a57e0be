"""Editing stored scheduling objects: participation, attendees, instances.

Small functions over icalendar components used when an organiser merges a
REPLY (RFC 5546 §3.2.3), when an attendee records its own answer, and when
attendees are removed (§4.2.10) or delegated (§4.2.5). They change the
component given and return what they did; they never touch a store.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta, tzinfo

from icalendar import Component, Event, vCalAddress

from imiptools.dates import format_recurrence_id, parse_recurrence_id
from imiptools.errors import CalendarDataError
from imiptools.itip.objects import attendees_of, find_attendee, mail_address_of, serialise
from imiptools.itip.timing import date_values, start_zone, value_of

#: ATTENDEE parameters an attendee controls in its REPLY (RFC 5545 §3.2).
REPLY_PARAMETERS = ("PARTSTAT", "DELEGATED-TO", "DELEGATED-FROM", "SENT-BY", "CN")


def set_participation(component: Component, answer: vCalAddress) -> bool | None:
    """Copy the replying attendee's parameters onto its ATTENDEE in ``component``.

    Returns None when ``component`` does not name that attendee, else
    whether anything changed (a REPLY that repeats the stored answer is a
    no-op: nothing to record).
    """
    target = find_attendee(component, mail_address_of(answer))
    if target is None:
        return None
    before = dict(target.params)
    for name in REPLY_PARAMETERS:
        if name in answer.params:
            target.params[name] = answer.params[name]
    if "PARTSTAT" in answer.params:
        target.params.pop("RSVP", None)  # answered: no reply is expected any more
    return dict(target.params) != before


def add_attendee(component: Component, attendee: vCalAddress) -> None:
    """Add ``attendee`` (e.g. a delegate) unless already present."""
    if find_attendee(component, mail_address_of(attendee)) is None:
        component.add("ATTENDEE", attendee)


def remove_attendees(component: Component, addresses: Iterable[str]) -> int:
    """Remove the ATTENDEEs with these addresses; return how many went."""
    unwanted = {a.lower() for a in addresses}
    kept = [a for a in attendees_of(component) if mail_address_of(a) not in unwanted]
    removed = len(attendees_of(component)) - len(kept)
    if removed:
        component.pop("ATTENDEE", None)
        for attendee in kept:
            component.add("ATTENDEE", attendee)
    return removed


def copy_component(component: Component) -> Event:
    """An independent copy (through the serialised form)."""
    copied = Event.from_ical(serialise(component))
    assert isinstance(copied, Event)
    return copied


def instance_of(master: Component, recurrence_id: date | datetime) -> Event:
    """An overridden instance made from ``master`` for one occurrence.

    RFC 5545 §3.8.4.4: the instance keeps the master's properties, loses the
    recurrence rules, and starts at its RECURRENCE-ID with the same length.
    """
    instance = copy_component(master)
    for name in ("RRULE", "RDATE", "EXDATE", "RECURRENCE-ID", "DTSTART", "DTEND"):
        instance.pop(name, None)
    instance.add("RECURRENCE-ID", recurrence_id)
    instance.add("DTSTART", recurrence_id)
    length = _length(master)
    if length is not None and "DURATION" not in instance:
        instance.add("DTEND", recurrence_id + length)
    return instance


def _length(master: Component) -> timedelta | None:
    try:
        start, end = master.decoded("DTSTART"), master.decoded("DTEND")
    except (KeyError, ValueError, TypeError, AttributeError):
        return None
    if isinstance(start, datetime) != isinstance(end, datetime):
        return None
    length = end - start
    return length if isinstance(length, timedelta) else None


# -- excluded instances (EXDATE, RFC 5545 §3.8.5.1) ----------------------------


def exclude_instances(master: Component, rids: Iterable[str], zone: tzinfo) -> Event:
    """A copy of ``master`` with an EXDATE for each normalised RECURRENCE-ID.

    Instances cancelled one by one are kept aside by the store (under
    ``cancellations/``); a calendar handed to anyone else must say so in
    the series itself, or every client shows them again. The values take
    DTSTART's form (RFC 5545 §3.8.5.1: "the same value type as DTSTART"):
    a DATE, or a DATE-TIME in DTSTART's zone (floating when DTSTART is).
    ``zone`` is the calendar user's, for floating DTSTARTs.
    """
    excluded = copy_component(master)
    values = [v for v in (_exdate_value(master, rid, zone) for rid in rids) if v is not None]
    if values:
        excluded.add("EXDATE", values)
    return excluded


def _exdate_value(master: Component, rid: str, zone: tzinfo) -> date | datetime | None:
    try:
        moment = parse_recurrence_id(rid)
        start = value_of(master, "DTSTART")
    except (ValueError, CalendarDataError):
        return None
    if not isinstance(start, datetime):
        return moment if not isinstance(moment, datetime) else moment.astimezone(zone).date()
    if not isinstance(moment, datetime):
        return None  # a date cannot name an instance of a timed series
    if start.tzinfo is None:
        return moment.astimezone(zone).replace(tzinfo=None)
    return moment.astimezone(start.tzinfo)


def include_instance(master: Component, rid: str, zone: tzinfo) -> bool:
    """Remove the EXDATE values that exclude instance ``rid``; True if any did.

    An organiser may reinstate an excluded occurrence by sending it as an
    overridden instance (CalendarServer's "override of EXDATE"): the
    occurrence exists again, so the series must stop excluding it.
    Floating values are read in DTSTART's zone (else ``zone``), as the
    expansion reads them. Unreadable EXDATEs are left alone.
    """
    frame = start_zone(master, zone) or zone
    try:
        values = [v for v in date_values(master, "EXDATE") if not isinstance(v, tuple)]
    except CalendarDataError:
        return False
    kept = [v for v in values if format_recurrence_id(v, frame) != rid]
    if len(kept) == len(values):
        return False
    master.pop("EXDATE", None)
    for value in kept:
        master.add("EXDATE", value)
    return True


# -- keeping an attendee's answer across updates -------------------------------------

#: What makes an update significant for an attendee's answer: when, how
#: often, where (CalendarServer's iCalDiff and Exchange reset the answer for
#: these; a new SUMMARY or DESCRIPTION keeps it).
SIGNIFICANT = ("DTSTART", "DTEND", "DURATION", "DUE", "RRULE", "RDATE", "EXDATE", "LOCATION")


def significant_change(old: Component, new: Component, zone: tzinfo) -> bool:
    """True if ``new`` differs from ``old`` in time, recurrence or location.

    Times compare as instants (``zone`` for floating values), so a change
    of spelling (another TZID for the same moment) is not significant;
    everything else compares as written. Unreadable values count as a
    change.
    """
    return any(_value(old, name, zone) != _value(new, name, zone) for name in SIGNIFICANT)


def _value(component: Component, name: str, zone: tzinfo) -> object:
    try:
        if name in ("DTSTART", "DTEND", "DUE"):
            value = value_of(component, name)
            return None if value is None else format_recurrence_id(value, zone)
        if name in ("RDATE", "EXDATE"):
            return sorted(str(v) for v in date_values(component, name))
    except CalendarDataError:
        return object()  # never equal: unreadable counts as changed
    props = component.get(name)
    items = props if isinstance(props, list) else [] if props is None else [props]
    return sorted(" ".join(item.to_ical().decode("utf-8", "replace").split()) for item in items)


def keep_answer(old: Component, new: Component, user: str) -> bool:
    """Give ``user``'s ATTENDEE in ``new`` the PARTSTAT it has in ``old``.

    Returns True if that changed ``new``. Only PARTSTAT (and RSVP, cleared
    once answered) moves: the rest of the organiser's update stands.
    """
    before, after = find_attendee(old, user), find_attendee(new, user)
    if before is None or after is None or "PARTSTAT" not in before.params:
        return False
    partstat = str(before.params["PARTSTAT"]).upper()
    if str(after.params.get("PARTSTAT", "NEEDS-ACTION")).upper() == partstat:
        return False
    after.params["PARTSTAT"] = partstat
    if partstat != "NEEDS-ACTION":
        after.params.pop("RSVP", None)
    return True
