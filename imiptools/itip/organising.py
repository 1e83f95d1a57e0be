"""Building what an organiser sends: a new event, an update, a CANCEL, a
DECLINECOUNTER (one instance, or a series split: :mod:`imiptools.itip.series`).

RFC 5546 §3.2.2 (REQUEST), §3.2.5 (CANCEL) and §3.2.8 (DECLINECOUNTER).
Like :mod:`imiptools.itip.replies`, every function returns a complete
:class:`icalendar.Calendar` with METHOD, and every value goes through
icalendar's model (RFC 5545 §3.3.11 escaping is icalendar's). Front ends
(``imip-client``, ``imip-manager``) build with these and record what they
built as ``imip-person-outgoing`` records what a person sent.
"""

from __future__ import annotations

from dataclasses import field
from datetime import UTC, date, datetime, timedelta, tzinfo
from uuid import uuid4

from dateutil.rrule import rrulestr
from icalendar import Calendar, Component, Event, vCalAddress, vRecur

from imiptools.dates import to_utc
from imiptools.deferred import dataclass
from imiptools.i18n import N_
from imiptools.itip.instances import (
    cancelled_exdates,
    carried,
    next_sequence,
    offset,
    shift_dates,
)
from imiptools.itip.merge import copy_component
from imiptools.itip.objects import (
    ItipObject,
    attendees_of,
    mail_address_of,
    make_calendar,
    organizer_of,
    sequence_of,
    text_of,
)

#: The ROLE values an attendee may have (RFC 5545 §3.2.16).
ROLES = ("REQ-PARTICIPANT", "OPT-PARTICIPANT", "NON-PARTICIPANT", "CHAIR")
#: The CUTYPE values an invitee may have (RFC 5545 §3.2.3).
CUTYPES = ("INDIVIDUAL", "GROUP", "RESOURCE", "ROOM", "UNKNOWN")
#: CLASS (RFC 5545 §3.8.1.3), STATUS of a VEVENT (§3.8.1.11), TRANSP (§3.8.2.7).
CLASSES = ("PUBLIC", "PRIVATE", "CONFIDENTIAL")
STATUSES = ("TENTATIVE", "CONFIRMED", "CANCELLED")
TRANSPARENCIES = ("OPAQUE", "TRANSPARENT")


@dataclass(frozen=True)
class Invitee:
    """An attendee of a new event: address, ROLE, CUTYPE (RFC 5545 §3.2.3)
    and whether an answer is requested (RSVP, §3.2.17)."""

    address: str
    role: str = "REQ-PARTICIPANT"
    cutype: str = "INDIVIDUAL"
    name: str = ""
    rsvp: bool = True


@dataclass(frozen=True)
class Draft:
    """A new event as its organiser describes it.

    ``start`` and ``end`` are both dates (an all-day event, ``end``
    exclusive) or both aware date-times; a series recurs in ``start``'s
    zone (RFC 5545 §3.3.10), whose VTIMEZONE is added. ``rrule`` is the
    RRULE value's text (``FREQ=WEEKLY;COUNT=10``); ``uid`` is made when ''.
    ``exdates`` and ``rdates`` (RFC 5545 §3.8.5.1, §3.8.5.2) are of
    ``start``'s kind; ``url`` (§3.8.4.6), ``klass`` (CLASS), ``priority``
    (0 to 9, None for none), ``status`` and ``transp`` are left out when ''.
    """

    summary: str
    start: date | datetime
    end: date | datetime
    invitees: tuple[Invitee, ...] = ()
    location: str = ""
    description: str = ""
    rrule: str = ""
    uid: str = ""
    categories: tuple[str, ...] = field(default=())
    url: str = ""
    klass: str = ""
    priority: int | None = None
    status: str = ""
    transp: str = ""
    exdates: tuple[date | datetime, ...] = ()
    rdates: tuple[date | datetime, ...] = ()


class DraftError(ValueError):
    """What :func:`check_draft` refuses: ``message`` an English
    ``str.format`` template marked for translation (:func:`~imiptools.i18n.N_`),
    ``values`` its placeholders; ``str()`` is the English text, and a front
    end says it in its user's language by translating the template first."""

    def __init__(self, message: str, **values: str) -> None:
        super().__init__(message.format(**values))
        self.message, self.values = message, values


def check_draft(draft: Draft) -> None:
    """Raise :class:`DraftError`, naming the field, when ``draft`` is no valid event."""
    if not draft.summary.strip():
        raise DraftError(N_("the summary is empty"))
    timed = isinstance(draft.start, datetime)
    if timed != isinstance(draft.end, datetime):
        raise DraftError(N_("the start and the end must both be dates or both date-times"))
    if (
        isinstance(draft.start, datetime)
        and isinstance(draft.end, datetime)
        and (draft.start.tzinfo is None or draft.end.tzinfo is None)
    ):
        raise DraftError(N_("the start and the end need a time zone"))
    if draft.end <= draft.start:
        raise DraftError(N_("the end must be after the start"))
    for invitee in draft.invitees:
        if invitee.role not in ROLES:
            raise DraftError(N_("not an attendee role: {value}"), value=repr(invitee.role))
        if invitee.cutype not in CUTYPES:
            raise DraftError(N_("not a calendar user type: {value}"), value=repr(invitee.cutype))
    _check_choices(draft)
    if draft.rrule:
        check_rule(draft.rrule, draft.start)
    kinds = (
        (N_("an exception must be of the start's kind (a date or a date-time)"), draft.exdates),
        (N_("an extra date must be of the start's kind (a date or a date-time)"), draft.rdates),
    )
    for message, moments in kinds:
        if not all(_same_kind(moment, timed) for moment in moments):
            raise DraftError(message)


def _same_kind(moment: date | datetime, timed: bool) -> bool:
    if isinstance(moment, datetime):
        return timed and moment.tzinfo is not None
    return not timed


def _check_choices(draft: Draft) -> None:
    for message, value, allowed in (
        (N_("not a class: {value}"), draft.klass, CLASSES),
        (N_("not a status: {value}"), draft.status, STATUSES),
        (N_("not a transparency: {value}"), draft.transp, TRANSPARENCIES),
    ):
        if value and value not in allowed:
            raise DraftError(message, value=repr(value[:40]))
    if draft.priority is not None and not 0 <= draft.priority <= 9:
        raise DraftError(N_("the priority must be from 0 to 9"))
    if draft.url and (not draft.url.isprintable() or " " in draft.url or ":" not in draft.url):
        raise DraftError(N_("not a URL: {value}"), value=repr(draft.url[:100]))


def check_rule(rule: str, start: date | datetime) -> None:
    """:class:`DraftError` unless ``rule`` is an RRULE value (RFC 5545
    §3.3.10) that icalendar and dateutil both read."""
    try:
        vRecur.from_ical(rule)
        first = (
            start if isinstance(start, datetime) else datetime.combine(start, datetime.min.time())
        )
        rrulestr(f"RRULE:{rule}", dtstart=first)
    except (ValueError, TypeError, KeyError) as exc:
        raise DraftError(N_("not a recurrence rule: {value}"), value=repr(rule[:100])) from exc


def new_event(
    draft: Draft, organiser: str, stamp: datetime, *, cn: str = "", domain: str
) -> Calendar:
    """The REQUEST inviting ``draft``'s invitees (RFC 5546 §3.2.2).

    SEQUENCE 0; the organiser is also an ATTENDEE, CHAIR and ACCEPTED;
    every invitee is NEEDS-ACTION with its RSVP (TRUE unless the invitee
    says otherwise). Raises ValueError as
    :func:`check_draft`.
    """
    check_draft(draft)
    event = Event()
    event.add("UID", draft.uid or f"{uuid4()}@{domain}")
    event.add("SEQUENCE", 0)
    event.add("DTSTAMP", to_utc(stamp))
    event.add("DTSTART", draft.start)
    event.add("DTEND", draft.end)
    event.add("SUMMARY", draft.summary)
    for name, value in (("LOCATION", draft.location), ("DESCRIPTION", draft.description)):
        if value:
            event.add(name, value)
    if draft.categories:
        event.add("CATEGORIES", list(draft.categories))
    _add_extras(event, draft)
    if draft.rrule:
        event.add("RRULE", vRecur.from_ical(draft.rrule))
    if draft.exdates:
        event.add("EXDATE", list(draft.exdates))
    if draft.rdates:
        event.add("RDATE", list(draft.rdates))
    event.add("ORGANIZER", _address(organiser, cn=cn))
    event.add("ATTENDEE", _address(organiser, cn=cn, ROLE="CHAIR", PARTSTAT="ACCEPTED"))
    for invitee in draft.invitees:
        event.add("ATTENDEE", _invited(invitee))
    calendar = make_calendar([event], "REQUEST")
    if isinstance(draft.start, datetime):
        calendar.add_missing_timezones()
    return calendar


def _add_extras(event: Component, draft: Draft) -> None:
    """URL, CLASS, PRIORITY, STATUS and TRANSP of ``draft``, those given."""
    for name, value in (
        ("URL", draft.url),
        ("CLASS", draft.klass),
        ("STATUS", draft.status),
        ("TRANSP", draft.transp),
    ):
        if value:
            event.add(name, value)
    if draft.priority is not None:
        event.add("PRIORITY", draft.priority)


@dataclass(frozen=True)
class Revision:
    """Changes an organiser makes to an event; None leaves a field as it is
    ('' or () removes the property: LOCATION, DESCRIPTION, RRULE, URL,
    CLASS, PRIORITY, STATUS, TRANSP, CATEGORIES, EXDATE, RDATE).
    ``priority`` is its text (``"5"``); ``removed`` names attendees dropped
    (send them :func:`removal`)."""

    summary: str | None = None
    start: date | datetime | None = None
    end: date | datetime | None = None
    location: str | None = None
    description: str | None = None
    rrule: str | None = None
    invitees: tuple[Invitee, ...] = ()
    categories: tuple[str, ...] | None = None
    url: str | None = None
    klass: str | None = None
    priority: str | None = None
    status: str | None = None
    transp: str | None = None
    exdates: tuple[date | datetime, ...] | None = None
    rdates: tuple[date | datetime, ...] | None = None
    removed: tuple[str, ...] = ()
    #: (address, ROLE) of attendees whose role changes (RFC 5545 §3.2.16).
    roles: tuple[tuple[str, str], ...] = ()
    #: (address, RSVP) of attendees asked to answer (True) or not (§3.2.17).
    rsvps: tuple[tuple[str, bool], ...] = ()

    @property
    def significant(self) -> bool:
        """Whether attendees must answer again: the time or the recurrence
        changes (RFC 5546 §2.1.4, as CalendarServer and Exchange judge it;
        an extra date is a new occurrence, an exception is not)."""
        return any(v is not None for v in (self.start, self.end, self.rrule, self.rdates))


def revised(
    stored: ItipObject,
    revision: Revision,
    stamp: datetime,
    *,
    floor: int = -1,
    cancelled: tuple[str, ...] = (),
    zone: tzinfo = UTC,
) -> Calendar:
    """The REQUEST updating ``stored`` (RFC 5546 §2.1.4, §3.2.2): the master
    (or the single event) with ``revision`` applied, SEQUENCE one more than
    every one sent (:func:`~imiptools.itip.instances.next_sequence`, with
    ``floor``), a new DTSTAMP, the new invitees added, and, for a
    significant change, every attendee but the organiser asked again
    (NEEDS-ACTION, RSVP).

    The REQUEST replaces what attendees hold, so it is the complete event:
    the instances cancelled one by one (``cancelled``, normalised
    RECURRENCE-IDs in ``zone``) become EXDATEs, and every stored override
    still an occurrence comes along as the series changed it
    (:func:`~imiptools.itip.instances.carried`). When the start moves and
    the revision leaves EXDATE (RDATE) alone, they move with it. Raises
    ValueError as :func:`check_draft` for the result."""
    source = stored.master or stored.first
    event = copy_component(source)
    _apply(event, revision)
    _apply_extras(event, revision)
    if stored.master is not None and cancelled and revision.exdates is None:
        exdates = cancelled_exdates(source, cancelled, zone)
        if exdates:
            event.add("EXDATE", exdates)
    _move_lists(event, source, revision)
    check_draft(_as_draft(event))
    sequence = next_sequence(stored, floor)
    _stamp(event, sequence, stamp)
    for invitee in revision.invitees:
        event.add("ATTENDEE", _invited(invitee))
    set_attendee_params(event, revision.roles, revision.rsvps)
    if revision.significant:
        _ask_again(event)
    overrides = carried(
        stored.overrides if stored.master is not None else [],
        source,
        event,
        sequence=sequence,
        stamp=stamp,
        significant=revision.significant,
        zone=zone,
    )
    calendar = make_calendar([event, *overrides], "REQUEST", list(stored.timezones))
    if isinstance(event.decoded("DTSTART"), datetime):
        calendar.add_missing_timezones()
    return calendar


def _stamp(event: Component, sequence: int, stamp: datetime) -> None:
    """SEQUENCE and DTSTAMP of a new version (RFC 5545 §3.8.7.2, §3.8.7.4)."""
    event.pop("SEQUENCE", None)
    event.add("SEQUENCE", sequence)
    event.pop("DTSTAMP", None)
    event.add("DTSTAMP", to_utc(stamp))


def _ask_again(event: Component) -> None:
    """Every attendee but the organiser asked to answer again (RFC 5546
    §2.1.4): NEEDS-ACTION, and RSVP=TRUE unless the organiser chose
    RSVP=FALSE for them (no answer expected, RFC 5545 §3.2.17)."""
    organiser = organizer_of(event)
    for attendee in attendees_of(event):
        if mail_address_of(attendee) != organiser:
            attendee.params["PARTSTAT"] = "NEEDS-ACTION"
            if str(attendee.params.get("RSVP", "")).upper() != "FALSE":
                attendee.params["RSVP"] = "TRUE"


def set_attendee_params(
    event: Component,
    roles: tuple[tuple[str, str], ...],
    rsvps: tuple[tuple[str, bool], ...],
) -> None:
    """ROLE (RFC 5545 §3.2.16) and RSVP (§3.2.17: TRUE asks for an answer)
    of the attendees ``roles`` and ``rsvps`` name; ValueError for a role
    not in :data:`ROLES` or someone not an attendee."""
    for _, role in roles:
        if role not in ROLES:
            raise ValueError(f"not an attendee role: {role[:40]!r}")
    _set_param(event, "ROLE", {mail_address_of(a): r for a, r in roles})
    answers = {mail_address_of(a): "TRUE" if r else "FALSE" for a, r in rsvps}
    _set_param(event, "RSVP", answers)


def _set_param(event: Component, name: str, wanted: dict[str, str]) -> None:
    """Parameter ``name`` of each attendee ``wanted`` names (address ->
    value); ValueError for an address that is no attendee."""
    found = set()
    for attendee in attendees_of(event):
        address = mail_address_of(attendee)
        if address in wanted:
            attendee.params[name] = wanted[address]
            found.add(address)
    if set(wanted) - found:
        raise ValueError("not an attendee: " + ", ".join(sorted(set(wanted) - found)))


def _move_lists(event: Component, source: Component, revision: Revision) -> None:
    """When the start moves, the EXDATEs and RDATEs the revision leaves
    alone move with it (they name occurrences of the old start)."""
    if revision.start is None:
        return
    old, new = source.decoded("DTSTART"), event.decoded("DTSTART")
    by = offset(old, new)
    if not by:
        return
    zone = new.tzinfo if isinstance(new, datetime) else None
    for name, given in (("EXDATE", revision.exdates), ("RDATE", revision.rdates)):
        if given is None and name in event:
            shift_dates(event, name, by, zone)


def _apply(event: Component, revision: Revision) -> None:
    texts = {"SUMMARY": revision.summary, "LOCATION": revision.location}
    texts["DESCRIPTION"] = revision.description
    for name, value in texts.items():
        if value is not None:
            event.pop(name, None)
            if value:
                event.add(name, value)
    for name, moment in (("DTSTART", revision.start), ("DTEND", revision.end)):
        if moment is not None:
            event.pop(name, None)
            if name == "DTEND":
                event.pop("DURATION", None)
            event.add(name, moment)
    if revision.rrule is not None:
        event.pop("RRULE", None)
        if revision.rrule:
            event.add("RRULE", vRecur.from_ical(revision.rrule))


def _apply_extras(event: Component, revision: Revision) -> None:
    """The properties :func:`_apply` leaves: checked as a draft's are."""
    priority = revision.priority
    if priority and not priority.isdigit():
        raise ValueError("the priority must be from 0 to 9")
    _check_choices(
        Draft(
            "-",
            date.min,
            date.max,
            url=revision.url or "",
            klass=revision.klass or "",
            priority=int(priority) if priority else None,
            status=revision.status or "",
            transp=revision.transp or "",
        )
    )
    texts = {"URL": revision.url, "CLASS": revision.klass, "PRIORITY": priority}
    texts.update(STATUS=revision.status, TRANSP=revision.transp)
    for name, value in texts.items():
        if value is not None:
            event.pop(name, None)
            if value:
                event.add(name, int(value) if name == "PRIORITY" else value)
    lists: dict[str, tuple[object, ...] | None] = {"CATEGORIES": revision.categories}
    lists.update(EXDATE=revision.exdates, RDATE=revision.rdates)
    for name, values in lists.items():
        if values is not None:
            event.pop(name, None)
            if values:
                event.add(name, list(values))
    if revision.removed:
        gone = {mail_address_of(a) for a in revision.removed}
        kept = [a for a in attendees_of(event) if mail_address_of(a) not in gone]
        event.pop("ATTENDEE", None)
        for attendee in kept:
            event.add("ATTENDEE", attendee)


def _as_draft(event: Component) -> Draft:
    rule = event.get("RRULE")
    text = rule.to_ical() if rule is not None else b""
    return Draft(
        summary=text_of(event, "SUMMARY"),
        start=event.decoded("DTSTART"),
        end=event.decoded("DTEND"),
        rrule=text.decode() if isinstance(text, bytes) else str(text),
    )


def cancellation(
    stored: ItipObject,
    stamp: datetime,
    instance: Component | None = None,
    comment: str = "",
    *,
    floor: int = -1,
) -> Calendar:
    """The CANCEL of ``stored`` (RFC 5546 §3.2.5): the whole event, or the
    one ``instance`` (a component carrying its RECURRENCE-ID).

    SEQUENCE is one more than every one sent for the UID (the stored
    components and ``floor``, the highest of the CANCELs of single
    instances: RFC 5545 §3.8.7.4), STATUS is CANCELLED, and every attendee
    of the cancelled component is named, so each receives it.
    """
    source = instance if instance is not None else (stored.master or stored.first)
    event = Event()
    event.add("UID", stored.uid)
    event.add("SEQUENCE", next_sequence(stored, floor))
    event.add("DTSTAMP", to_utc(stamp))
    for name in ("ORGANIZER", "ATTENDEE", "DTSTART", "DTEND", "RECURRENCE-ID", "SUMMARY"):
        if name in source:
            event[name] = source[name]
    event.add("STATUS", "CANCELLED")
    if comment:
        event.add("COMMENT", comment)
    return make_calendar([event], "CANCEL", list(stored.timezones))


def removal(
    stored: ItipObject, removed: tuple[str, ...], stamp: datetime, *, floor: int = -1
) -> Calendar:
    """The CANCEL telling ``removed`` attendees they are no longer invited
    (RFC 5546 §3.2.5, §4.2.10): it names only them and is not STATUS
    CANCELLED, so the organiser's own copy keeps the event (the others
    receive the update of :func:`revised`, ``Revision.removed``, whose
    ``floor`` is then this SEQUENCE)."""
    source = stored.master or stored.first
    gone = {mail_address_of(a) for a in removed}
    event = Event()
    event.add("UID", stored.uid)
    event.add("SEQUENCE", next_sequence(stored, floor))
    event.add("DTSTAMP", to_utc(stamp))
    for name in ("ORGANIZER", "DTSTART", "DTEND", "SUMMARY"):
        if name in source:
            event[name] = source[name]
    for attendee in attendees_of(source):
        if mail_address_of(attendee) in gone:
            event.add("ATTENDEE", attendee)
    if "ATTENDEE" not in event:
        raise ValueError("none of those is an attendee")
    return make_calendar([event], "CANCEL", list(stored.timezones))


def decline_counter(counter: ItipObject, stamp: datetime, comment: str = "") -> Calendar:
    """The DECLINECOUNTER answering ``counter`` (RFC 5546 §3.2.8): its UID,
    SEQUENCE, RECURRENCE-ID, ORGANIZER and countering ATTENDEE, a new
    DTSTAMP, and the organiser's COMMENT."""
    components = []
    for source in counter.components:
        event = Event()
        event.add("UID", counter.uid)
        event.add("SEQUENCE", sequence_of(source))
        event.add("DTSTAMP", to_utc(stamp))
        for name in ("ORGANIZER", "ATTENDEE", "RECURRENCE-ID"):
            if name in source:
                event[name] = source[name]
        if comment:
            event.add("COMMENT", comment)
        components.append(event)
    return make_calendar(components, "DECLINECOUNTER", list(counter.timezones))


def recipients_of(component: Component, organiser: str) -> list[str]:
    """The attendees' addresses, the organiser's own left out, in order."""
    found = [mail_address_of(a) for a in attendees_of(component)]
    own = mail_address_of(organiser)
    return list(dict.fromkeys(a for a in found if a and a != own))


def all_day_end(start: date, days: int = 1) -> date:
    """The exclusive end of an all-day event of ``days`` days (RFC 5545 §3.6.1)."""
    return start + timedelta(days=days)


def _invited(invitee: Invitee) -> vCalAddress:
    params = {
        "ROLE": invitee.role,
        "CUTYPE": invitee.cutype,
        "PARTSTAT": "NEEDS-ACTION",
        "RSVP": "TRUE" if invitee.rsvp else "FALSE",
    }
    return _address(invitee.address, cn=invitee.name, **params)


def _address(who: str, *, cn: str = "", **params: str) -> vCalAddress:
    address = vCalAddress(f"mailto:{mail_address_of(who)}")
    if cn:
        address.params["CN"] = cn
    for name, value in params.items():
        address.params[name] = value
    return address
