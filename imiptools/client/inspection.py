"""What a message is, seen from the user's calendar (``imip-client inspect``).

Reading only: the message's scheduling objects (parsed as the agents parse
them, :func:`imiptools.agent.read`), each compared with the stored copy
(RFC 5546 §2.1.5 ordering by SEQUENCE and DTSTAMP), its instances checked
against the user's busy periods, and the actions a client may offer.
"""

from __future__ import annotations

from collections.abc import Sequence

from icalendar import Component, vCalAddress

from imiptools.client.model import Clash, ObjectView, Participant
from imiptools.dates import format_utc
from imiptools.errors import CalendarDataError
from imiptools.itip.objects import (
    ItipObject,
    attendees_of,
    find_attendee,
    mail_address_of,
    organizer_of,
    recurrence_id_of,
    sent_by_of,
    sequence_of,
    text_of,
    version_key,
)
from imiptools.periods import Period
from imiptools.records import UserRecords

#: Properties whose change a client shows (what an update changed).
COMPARED = (
    "DTSTART",
    "DTEND",
    "DURATION",
    "RRULE",
    "RDATE",
    "EXDATE",
    "LOCATION",
    "SUMMARY",
    "DESCRIPTION",
    "STATUS",
)
#: The most clashes reported per object (a long series against a full calendar).
MAX_CLASHES = 20
#: The most instances checked for clashes per object.
MAX_CHECKED = 500
#: Methods a client may apply (record in the store).
APPLICABLE = {"REQUEST", "CANCEL", "ADD", "PUBLISH", "REPLY", "COUNTER", "DECLINECOUNTER"}


def participant(prop: vCalAddress | None) -> Participant | None:
    """The :class:`Participant` an ORGANIZER or ATTENDEE names."""
    if prop is None:
        return None
    params = getattr(prop, "params", {})
    return Participant(
        address=mail_address_of(prop),
        name=str(params.get("CN", "")),
        role=str(params.get("ROLE", "")).upper(),
        partstat=str(params.get("PARTSTAT", "")).upper(),
        rsvp=str(params.get("RSVP", "")).upper() == "TRUE",
        delegated_to=_addresses(params.get("DELEGATED-TO")),
        delegated_from=_addresses(params.get("DELEGATED-FROM")),
    )


def _addresses(value: object) -> tuple[str, ...]:
    if not value:
        return ()
    items = value if isinstance(value, list) else str(value).split(",")
    return tuple(mail_address_of(str(item).strip().strip('"')) for item in items)


def own_identity(obj: ItipObject, identities: Sequence[str]) -> str:
    """The first of ``identities`` (``mailto:`` URIs) that the object names
    as an attendee, else as organiser, else ''."""
    for who in identities:
        if any(find_attendee(c, who) is not None for c in obj.components):
            return who
    for who in identities:
        if organizer_of(obj.first) == who.removeprefix("mailto:"):
            return who
    return ""


def sender_speaks_for(obj: ItipObject, sender: str) -> bool:
    """Whether ``sender`` is the participant who sends ``obj`` by its
    METHOD (RFC 5546 §1.4): the organiser (or its SENT-BY) for REQUEST,
    CANCEL, ADD, PUBLISH, DECLINECOUNTER; an attendee (or its SENT-BY) for
    REPLY, COUNTER, REFRESH."""
    component = obj.first
    if obj.method in ("REPLY", "COUNTER", "REFRESH"):
        props = attendees_of(component)
    else:
        organiser = component.get("ORGANIZER")
        props = [organiser] if organiser is not None else []
    return any(sender in (mail_address_of(p), sent_by_of(p)) for p in props)


def view(obj: ItipObject, records: UserRecords | None, user: str) -> ObjectView:
    """The :class:`ObjectView` of ``obj`` for ``user`` (a ``mailto:`` URI,
    '' when none of the identities takes part), against ``records``."""
    first = obj.first
    mine = find_attendee(first, user) if user else None
    if mine is None and user:
        mine = next((a for c in obj.components if (a := find_attendee(c, user)) is not None), None)
    stored = records.stored(obj.uid) if records is not None and obj.uid else None
    state = _state(obj, records, stored, user)
    is_attendee = mine is not None
    reply_required = (
        obj.method == "REQUEST"
        and mine is not None
        and state in ("new", "update")
        and str(mine.params.get("RSVP", "")).upper() == "TRUE"
    )
    return ObjectView(
        method=obj.method,
        kind=obj.kind,
        uid=obj.uid,
        sequence=max(sequence_of(c) for c in obj.components),
        recurrence_ids=tuple(_rid(c) for c in obj.components),
        summary=text_of(first, "SUMMARY"),
        start=_time(first, "DTSTART"),
        end=_time(first, "DTEND"),
        location=text_of(first, "LOCATION"),
        organiser=participant(first.get("ORGANIZER")),
        attendees=tuple(p for a in attendees_of(first) if (p := participant(a)) is not None),
        user=user.removeprefix("mailto:"),
        user_partstat=str(mine.params.get("PARTSTAT", "NEEDS-ACTION")).upper() if mine else "",
        state=state,
        changes=_changes(stored.first, first) if stored is not None and state == "update" else (),
        clashes=_clashes(obj, records) if records is not None and obj.method == "REQUEST" else (),
        actions=_actions(obj, state, is_attendee),
        reply_required=reply_required,
    )


def _rid(component: Component) -> str:
    try:
        return recurrence_id_of(component)
    except CalendarDataError:
        return text_of(component, "RECURRENCE-ID")


def _time(component: Component, name: str) -> str:
    """A DTSTART/DTEND in UTC (iCalendar form), a date as ``YYYYMMDD``."""
    if name not in component:
        return ""
    try:
        value = component.decoded(name)
    except (ValueError, TypeError, AttributeError):
        return ""
    if hasattr(value, "hour"):
        return format_utc(value) if value.tzinfo else value.strftime("%Y%m%dT%H%M%S")
    return str(value.strftime("%Y%m%d"))


def _state(
    obj: ItipObject, records: UserRecords | None, stored: ItipObject | None, user: str
) -> str:
    if obj.method == "CANCEL" or (records is not None and records.cancellation(obj.uid)):
        return "cancelled"
    if stored is None:
        return "new"
    if obj.method in ("REPLY", "COUNTER"):
        # An attendee's DTSTAMP orders its own answers, not the organiser's
        # versions: only an older SEQUENCE makes an answer outdated.
        if sequence_of(obj.first) < sequence_of(_counterpart(stored, obj.first)):
            return "outdated"
        return _reply_state(obj, stored)
    incoming, current = version_key(obj.first), version_key(_counterpart(stored, obj.first))
    if incoming > current:
        return "update"
    if incoming < current:
        return "outdated"
    answer = find_attendee(_counterpart(stored, obj.first), user) if user else None
    partstat = str(answer.params.get("PARTSTAT", "NEEDS-ACTION")).upper() if answer else ""
    return "answered" if partstat not in ("", "NEEDS-ACTION") else "new"


def _reply_state(obj: ItipObject, stored: ItipObject) -> str:
    """An attendee's answer: ``answered`` when the stored copy has it already."""
    for attendee in attendees_of(obj.first):
        held = find_attendee(_counterpart(stored, obj.first), mail_address_of(attendee))
        if held is None or held.params.get("PARTSTAT") != attendee.params.get("PARTSTAT"):
            return "update"
    return "answered"


def _counterpart(stored: ItipObject, incoming: Component) -> Component:
    """The stored component of the same RECURRENCE-ID, else the stored first."""
    rid = _rid(incoming)
    for component in stored.components:
        if _rid(component) == rid:
            return component
    return stored.first


def _changes(before: Component, after: Component) -> tuple[str, ...]:
    return tuple(
        name for name in COMPARED if _property_text(before, name) != _property_text(after, name)
    )


def _property_text(component: Component, name: str) -> bytes:
    value = component.get(name)
    items = value if isinstance(value, list) else [value]
    return b"\n".join(item.to_ical() if hasattr(item, "to_ical") else b"" for item in items)


def _clashes(obj: ItipObject, records: UserRecords) -> tuple[Clash, ...]:
    try:
        periods = records.periods(obj)[:MAX_CHECKED]
    except CalendarDataError:
        return ()
    if not periods:
        return ()
    start, end = min(p.start for p in periods), max(p.end for p in periods)
    busy = [p for p in records.busy_between(start, end, obj.uid) if p.transp != "TRANSPARENT"]
    found: dict[tuple[str, str], Clash] = {}
    for period in periods:
        for other in busy:
            if other.overlaps(period.start, period.end) and len(found) < MAX_CLASHES:
                found.setdefault((other.uid, other.recurrenceid), _clash(other))
    return tuple(sorted(found.values(), key=lambda c: (c.start, c.uid)))


def _clash(period: Period) -> Clash:
    return Clash(
        period.uid, period.summary, format_utc(period.start), format_utc(period.end), period.status
    )


def _actions(obj: ItipObject, state: str, is_attendee: bool) -> tuple[str, ...]:
    if state == "outdated" or obj.method not in APPLICABLE:
        return ()
    answers = ("accept", "tentative", "decline") if obj.method == "REQUEST" and is_attendee else ()
    return (*answers, "apply")
