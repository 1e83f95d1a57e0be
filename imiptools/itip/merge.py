"""Editing stored scheduling objects: participation, attendees, instances.

Small functions over icalendar components used when an organiser merges a
REPLY (RFC 5546 §3.2.3), when an attendee records its own answer, and when
attendees are removed (§4.2.10) or delegated (§4.2.5). They change the
component given and return what they did; they never touch a store.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from icalendar import Component, Event, vCalAddress

from imiptools.itip.objects import attendees_of, find_attendee, mail_address_of

#: ATTENDEE parameters an attendee controls in its REPLY (RFC 5545 §3.2).
REPLY_PARAMETERS = ("PARTSTAT", "DELEGATED-TO", "DELEGATED-FROM", "SENT-BY", "CN")


def set_participation(component: Component, answer: vCalAddress) -> bool:
    """Copy the replying attendee's parameters onto its ATTENDEE in ``component``.

    Returns False when ``component`` does not name that attendee.
    """
    target = find_attendee(component, mail_address_of(answer))
    if target is None:
        return False
    for name in REPLY_PARAMETERS:
        if name in answer.params:
            target.params[name] = answer.params[name]
    if "PARTSTAT" in answer.params:
        target.params.pop("RSVP", None)  # answered: no reply is expected any more
    return True


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
    copied = Event.from_ical(component.to_ical())
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
