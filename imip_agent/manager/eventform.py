"""The event form: its fields as text, read into a :class:`Draft`, and an
event read back into the form.

:class:`EventForm` holds what the form shows, every value as the page
writes it (``YYYY-MM-DD``, ``HH:MM``, a zone name, text). :func:`read_form`
takes a posted form; :func:`to_draft` checks it and makes the
:class:`~imiptools.itip.organising.Draft` the library builds a REQUEST
from, raising :class:`FormErrors` with every message; :func:`from_event`
is the form of a stored or received event, so that an event the form made
shows the same form again (RFC 5545 §3.6.1, §3.8).

Recurrence (RFC 5545 §3.3.10): structured controls (frequency, interval,
weekdays, month days, set positions, COUNT or UNTIL) or the raw RRULE,
which wins when given. An event's rule comes back in the structured
controls when they express it exactly, otherwise in the raw field (in
icalendar's order of the parts). :func:`describe` says a rule in words;
:func:`upcoming` lists the first occurrences (dateutil expands).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from dataclasses import field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import cache
from itertools import islice
from typing import Any

from dateutil.rrule import rrulestr
from icalendar import Component, vRecur

from imip_agent.manager.language import MONTHS, gettext
from imiptools.deferred import dataclass
from imiptools.i18n import N_, translator
from imiptools.itip.objects import attendees_of, mail_address_of, organizer_of, text_of
from imiptools.itip.organising import (
    CLASSES,
    CUTYPES,
    ROLES,
    STATUSES,
    TRANSPARENCIES,
    Draft,
    DraftError,
    Invitee,
    check_draft,
)

#: The frequencies the structured controls offer (RFC 5545 §3.3.10).
FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
#: Weekdays as RRULE names them, Monday first.
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: How a series ends.
ENDS = ("never", "count", "until")
#: An attendee's RSVP (RFC 5545 §3.2.17): an answer requested, or none.
RSVPS = ("TRUE", "FALSE")
#: Attendee rows the form offers beyond those it holds.
SPARE_ROWS = 3
#: The parts the structured controls express.
_STRUCTURED = {"FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "BYSETPOS", "COUNT", "UNTIL"}


class FormErrors(ValueError):
    """The form does not make an event: every message, for the page."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


@dataclass(frozen=True)
class Person:
    """One attendee row: address, ROLE, CUTYPE (a person, a room, a
    resource) and RSVP (``TRUE``: an answer is requested, RFC 5545
    §3.2.17; ``FALSE``: none)."""

    address: str
    role: str = "REQ-PARTICIPANT"
    cutype: str = "INDIVIDUAL"
    rsvp: str = "TRUE"


@dataclass(frozen=True)
class EventForm:
    """The form's values, as text (see the module)."""

    summary: str = ""
    location: str = ""
    description: str = ""
    categories: str = ""
    url: str = ""
    klass: str = ""
    priority: str = ""
    status: str = ""
    transp: str = ""
    all_day: bool = False
    start_date: str = ""
    start_time: str = ""
    end_date: str = ""
    end_time: str = ""
    tzid: str = "UTC"
    attendees: tuple[Person, ...] = ()
    freq: str = ""
    interval: str = "1"
    byday: tuple[str, ...] = ()
    bymonthday: str = ""
    bysetpos: str = ""
    ends: str = "never"
    count: str = ""
    until: str = ""
    rrule: str = ""
    exdates: str = ""
    rdates: str = ""
    #: Attendee addresses of a stored event the organiser removes.
    removed: tuple[str, ...] = field(default=())

    def rows(self) -> list[Person]:
        """The attendee rows to show: those held and some empty ones."""
        return [*self.attendees, *(Person("") for _ in range(SPARE_ROWS))]

    def rule(self) -> str:
        """The RRULE text the form says ('' for none): the raw field when
        given, else the structured controls'."""
        if self.rrule.strip():
            return _canonical(self.rrule.strip())
        if not self.freq:
            return ""
        parts = [f"FREQ={self.freq}"]
        if self.interval.strip() not in ("", "1"):
            parts.append(f"INTERVAL={self.interval.strip()}")
        if self.ends == "until" and self.until:
            parts.append(f"UNTIL={self._until_text()}")
        if self.ends == "count" and self.count:
            parts.append(f"COUNT={self.count.strip()}")
        if self.byday:
            parts.append("BYDAY=" + ",".join(self.byday))
        if self.bymonthday.strip():
            parts.append("BYMONTHDAY=" + _list_text(self.bymonthday))
        if self.bysetpos.strip():
            parts.append("BYSETPOS=" + _list_text(self.bysetpos))
        return _canonical(";".join(parts))

    def _until_text(self) -> str:
        """UNTIL of the structured controls: the date for an all-day
        event, else the end of that day in the event's zone, in UTC
        (RFC 5545 §3.3.10 wants UTC with a zoned DTSTART)."""
        day = date.fromisoformat(self.until)
        if self.all_day:
            return day.strftime("%Y%m%d")
        last = datetime.combine(day, time(23, 59, 59), _zone(self.tzid))
        return last.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def zones() -> list[str]:
    """The time zones to pick from (the system's, by name)."""
    return _zones()


@cache
def _zones() -> list[str]:
    return sorted(zoneinfo.available_timezones() | {"UTC"})


def blank(zone: str, day: date) -> EventForm:
    """An empty form in the user's ``zone``: ``day``, 09:00 to 10:00."""
    text = day.isoformat()
    return EventForm(
        start_date=text, start_time="09:00", end_date=text, end_time="10:00", tzid=zone
    )


def read_form(form: Mapping[str, str], resources: Mapping[str, str] | None = None) -> EventForm:
    """The form posted (``form``: a werkzeug MultiDict, or any mapping
    with ``getlist``), newlines as ``\\n``, nothing checked yet.

    ``resources`` (address in lower case -> CUTYPE, the site's rooms and
    resources) are those the form offers to pick: each picked (``room``
    with a ``room_role``) is one more attendee of that CUTYPE, unless the
    form names it already."""
    many = getattr(form, "getlist", None)

    def values(name: str) -> list[str]:
        return [str(v) for v in many(name)] if many is not None else []

    def text(name: str) -> str:
        return str(form.get(name, "") or "").replace("\r\n", "\n").replace("\r", "\n")

    attendees = []
    removed = {r.lower() for r in values("remove")}
    for index, address in enumerate(values("attendee")):
        roles, kinds, rsvps = values("role"), values("cutype"), values("rsvp")
        if address.strip() and address.strip().lower() not in removed:
            role = roles[index] if index < len(roles) else "REQ-PARTICIPANT"
            cutype = kinds[index] if index < len(kinds) else "INDIVIDUAL"
            rsvp = rsvps[index] if index < len(rsvps) else "TRUE"
            attendees.append(Person(address.strip(), role, cutype, rsvp))
    attendees += _picked(values("room"), values("room_role"), resources or {}, attendees)
    return EventForm(
        summary=text("summary"),
        location=text("location"),
        description=text("description"),
        categories=text("categories"),
        url=text("url").strip(),
        klass=text("class"),
        priority=text("priority"),
        status=text("status"),
        transp=text("transp"),
        all_day=text("all_day") == "yes",
        start_date=text("start_date"),
        start_time=text("start_time"),
        end_date=text("end_date"),
        end_time=text("end_time"),
        tzid=text("tzid") or "UTC",
        attendees=tuple(attendees),
        freq=text("freq"),
        interval=text("interval") or "1",
        byday=tuple(d for d in WEEKDAYS if d in values("byday")),
        bymonthday=text("bymonthday"),
        bysetpos=text("bysetpos"),
        ends=text("ends") or "never",
        count=text("count"),
        until=text("until"),
        rrule=text("rrule").strip(),
        exdates=text("exdates"),
        rdates=text("rdates"),
        removed=tuple(values("remove")),
    )


def _picked(
    rooms: list[str], roles: list[str], resources: Mapping[str, str], named: list[Person]
) -> list[Person]:
    """The resources picked from the list (a role chosen), as attendees of
    their CUTYPE, those not ``named`` already."""
    held = {p.address.lower() for p in named}
    found = []
    for address, role in zip(rooms, roles, strict=False):
        key = address.strip().lower()
        if role and key in resources and key not in held:
            found.append(Person(address.strip(), role, resources[key]))
            held.add(key)
    return found


def to_draft(values: EventForm, uid: str = "") -> Draft:
    """The draft ``values`` describe, checked by the library
    (:func:`~imiptools.itip.organising.check_draft`); FormErrors with
    every message the form earns."""
    errors: list[str] = []
    start = end = None
    zone = _zone_or_none(values.tzid)
    if zone is None:
        errors.append(
            gettext("Time zone: not a time zone: {value}.").format(value=repr(values.tzid[:60]))
        )
        zone = UTC
    try:
        start = _moment(values.start_date, values.start_time, values.all_day, zone)
    except ValueError:
        errors.append(
            gettext("Start: give a date.")
            if values.all_day
            else gettext("Start: give a date and a time.")
        )
    try:
        end = _moment(values.end_date, values.end_time, values.all_day, zone)
        if values.all_day and end is not None:
            end += timedelta(days=1)  # the form says the last day; DTEND is exclusive
    except ValueError:
        errors.append(
            gettext("End: give a date.")
            if values.all_day
            else gettext("End: give a date and a time.")
        )
    errors += _text_errors(values)
    rule = ""
    try:
        rule = values.rule()
    except ValueError:
        errors.append(gettext("Repeat: the rule's numbers or its end date cannot be read."))
    exdates = _dates(values.exdates, values.all_day, zone, N_("Exceptions"), errors)
    rdates = _dates(values.rdates, values.all_day, zone, N_("Extra dates"), errors)
    if errors or start is None or end is None:
        raise FormErrors(errors or [gettext("The form is incomplete.")])
    draft = Draft(
        summary=values.summary,
        start=start,
        end=end,
        invitees=tuple(
            Invitee(p.address, p.role, p.cutype, rsvp=p.rsvp == "TRUE") for p in values.attendees
        ),
        location=values.location,
        description=values.description,
        rrule=rule,
        uid=uid,
        categories=_categories(values.categories),
        url=values.url,
        klass=values.klass,
        priority=int(values.priority) if values.priority.isdigit() else None,
        status=values.status,
        transp=values.transp,
        exdates=exdates,
        rdates=rdates,
    )
    try:
        check_draft(draft)
    except DraftError as exc:
        said = gettext(exc.message).format(**exc.values)
        raise FormErrors([f"{said[:1].upper()}{said[1:]}."]) from exc
    return draft


def _text_errors(values: EventForm) -> list[str]:
    errors = []
    for label, value in ((N_("Summary"), values.summary), (N_("Location"), values.location)):
        if "\n" in value:
            errors.append(gettext("{label}: one line only.").format(label=gettext(label)))
    if not values.summary.strip():
        errors.append(gettext("Summary: say what the event is."))
    if values.priority and not (values.priority.isdigit() and 0 <= int(values.priority) <= 9):
        errors.append(gettext("Priority: a number from 0 to 9."))
    for label, value, allowed in (
        (N_("Class"), values.klass, CLASSES),
        (N_("Status"), values.status, STATUSES),
        (N_("Show as"), values.transp, TRANSPARENCIES),
    ):
        if value and value not in allowed:
            errors.append(gettext("{label}: not one of the choices.").format(label=gettext(label)))
    for person in values.attendees:
        if "@" not in person.address or any(c.isspace() for c in person.address):
            errors.append(
                gettext("Attendee: not a mail address: {value}.").format(
                    value=repr(person.address[:80])
                )
            )
        if person.role not in ROLES or person.cutype not in CUTYPES or person.rsvp not in RSVPS:
            errors.append(
                gettext("Attendee {value}: not one of the choices.").format(
                    value=repr(person.address[:80])
                )
            )
    if not values.rrule.strip() and values.freq and values.freq not in FREQUENCIES:
        errors.append(gettext("Repeat: not one of the choices."))
    if values.ends == "count" and values.freq and not values.count.strip().isdigit():
        errors.append(gettext("Repeat: give how many times."))
    if values.ends == "until" and values.freq and not values.until:
        errors.append(gettext("Repeat: give the last day."))
    return errors


def from_event(
    event: Component, zone: tzinfo, exdates: tuple[date | datetime, ...] = ()
) -> EventForm:
    """The form showing ``event`` (a master or single VEVENT): times in
    the event's own zone (else ``zone``), the organiser left out of the
    attendees; its EXDATEs and RDATEs, and ``exdates`` (instances known
    cancelled) among the exceptions."""
    start, end = event.decoded("DTSTART"), _end(event)
    all_day = not isinstance(start, datetime)
    own = start.tzinfo if isinstance(start, datetime) and start.tzinfo is not None else zone
    tzid = _zone_name(own) or _zone_name(zone) or "UTC"
    shown = _zone(tzid)
    organiser = organizer_of(event)
    people = tuple(
        Person(
            mail_address_of(a),
            str(a.params.get("ROLE", "REQ-PARTICIPANT")).upper(),
            str(a.params.get("CUTYPE", "INDIVIDUAL")).upper(),
            _rsvp_of(a),
        )
        for a in attendees_of(event)
        if mail_address_of(a) != organiser
    )
    priority = event.get("PRIORITY")
    values = EventForm(
        summary=text_of(event, "SUMMARY"),
        location=text_of(event, "LOCATION"),
        description=text_of(event, "DESCRIPTION"),
        categories=", ".join(_categories_of(event)),
        url=str(event.get("URL", "")),
        klass=text_of(event, "CLASS").upper(),
        priority="" if priority is None else str(int(priority)),
        status=text_of(event, "STATUS").upper(),
        transp=text_of(event, "TRANSP").upper(),
        all_day=all_day,
        start_date=_day_text(start, shown),
        start_time=_time_text(start, shown),
        end_date=_day_text(end - timedelta(days=1) if all_day else end, shown),
        end_time=_time_text(end, shown),
        tzid=tzid,
        attendees=people,
        exdates=_lines([*_listed(event, "EXDATE"), *exdates], shown),
        rdates=_lines(_listed(event, "RDATE"), shown),
    )
    rule = event.get("RRULE")
    if rule is None:
        return values
    return with_rule(values, _ical_text(rule))


def _rsvp_of(attendee: Any) -> str:
    """The form's RSVP of an attendee: ``FALSE`` only when the event says
    so; without RSVP (an attendee who has answered: their answer clears
    it) the next version asks them again, as ``TRUE`` says."""
    return "FALSE" if str(attendee.params.get("RSVP", "")).upper() == "FALSE" else "TRUE"


def instance_form(before: EventForm, form: Mapping[str, str]) -> EventForm:
    """The form of one instance posted (``form``): its summary, location,
    description and times; the zone, the kind (all-day or timed) and the
    rest as ``before`` (the instance's own form) has them."""
    posted = read_form(form)
    return replace(
        before,
        summary=posted.summary,
        location=posted.location,
        description=posted.description,
        start_date=posted.start_date,
        start_time="" if before.all_day else posted.start_time,
        end_date=posted.end_date,
        end_time="" if before.all_day else posted.end_time,
    )


def following_form(before: EventForm, form: Mapping[str, str]) -> EventForm:
    """The new series' part of the form of one occurrence posted for "this
    and following" (``form``): its rule (the controls, or the raw RRULE)
    and its attendee rows (and those marked removed); the rest as
    ``before`` (the series' form, its rule as the new series would keep
    it) has them."""
    posted = read_form(form)
    return replace(
        before,
        freq=posted.freq,
        interval=posted.interval,
        byday=posted.byday,
        bymonthday=posted.bymonthday,
        bysetpos=posted.bysetpos,
        ends=posted.ends,
        count=posted.count,
        until=posted.until,
        rrule=posted.rrule,
        attendees=posted.attendees,
        removed=posted.removed,
    )


def with_rule(values: EventForm, rule: str) -> EventForm:
    """``values`` showing ``rule``: in the structured controls when they
    express it exactly, else in the raw field."""
    cleared = replace(
        values,
        freq="",
        interval="1",
        byday=(),
        bymonthday="",
        bysetpos="",
        ends="never",
        count="",
        until="",
        rrule="",
    )
    if not rule:
        return cleared
    rule = _canonical(rule)
    structured = _structured(cleared, rule)
    if structured is not None and structured.rule() == rule:
        return structured
    return replace(cleared, rrule=rule)


def _structured(values: EventForm, rule: str) -> EventForm | None:
    parts = dict(p.split("=", 1) for p in rule.split(";") if "=" in p)
    if not set(parts) <= _STRUCTURED or parts.get("FREQ") not in FREQUENCIES:
        return None
    days = tuple(parts["BYDAY"].split(",")) if "BYDAY" in parts else ()
    if any(d not in WEEKDAYS for d in days) or tuple(d for d in WEEKDAYS if d in days) != days:
        return None
    until = ""
    if "UNTIL" in parts:
        text = parts["UNTIL"]
        moment = datetime.strptime(text[:8], "%Y%m%d")
        if text.endswith("Z"):
            moment = datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            until = moment.astimezone(_zone(values.tzid)).date().isoformat()
        else:
            until = moment.date().isoformat()
    return replace(
        values,
        freq=parts["FREQ"],
        interval=parts.get("INTERVAL", "1"),
        byday=days,
        bymonthday=parts.get("BYMONTHDAY", "").replace(",", ", "),
        bysetpos=parts.get("BYSETPOS", "").replace(",", ", "),
        ends="count" if "COUNT" in parts else "until" if until else "never",
        count=parts.get("COUNT", ""),
        until=until,
    )


def normalised(values: EventForm) -> EventForm:
    """``values`` as the page shows them once an event holds them: the
    rule where :func:`with_rule` puts it, categories and lists tidied, no
    attendee marked removed."""
    categories = ", ".join(_categories(values.categories))
    zone = _zone(values.tzid)
    tidy = replace(
        values,
        categories=categories,
        exdates=_lines(_dates(values.exdates, values.all_day, zone, "", []), zone),
        rdates=_lines(_dates(values.rdates, values.all_day, zone, "", []), zone),
        start_time="" if values.all_day else values.start_time,
        end_time="" if values.all_day else values.end_time,
        removed=(),
    )
    return with_rule(tidy, values.rule())


def describe(rule: str, start: date | datetime | None = None, language: str = "en") -> str:
    """``rule`` in words: "every second week on Tuesday until 30 June 2030"
    (parts the words do not cover are named as they are), in English or,
    for ``language`` ``de``, in German ("jede 2. Woche am Dienstag bis
    30. Juni 2030": the words of a rule need each language's grammar, not
    a catalogue's phrases)."""
    if language.startswith("de"):
        return _german(rule, start)
    if not rule:
        return "does not repeat"
    try:
        recur = vRecur.from_ical(rule)
    except ValueError:
        return "not a rule that can be read"
    freq = str(_first(recur, "FREQ")).upper()
    interval = int(_first(recur, "INTERVAL") or 1)
    unit = {"DAILY": "day", "WEEKLY": "week", "MONTHLY": "month", "YEARLY": "year"}.get(freq)
    unit = unit or freq.lower()
    words = ["every", unit] if interval == 1 else ["every", _ordinal(interval), unit]
    days = [str(d) for d in recur.get("BYDAY", [])]
    if days:
        words += ["on", _join([_day_words(d) for d in days])]
    if recur.get("BYMONTHDAY"):
        words += ["on day", _join([str(d) for d in recur["BYMONTHDAY"]])]
    if recur.get("BYSETPOS"):
        positions = [_position(int(p)) for p in recur["BYSETPOS"]]
        words += ["(the", _join(positions), "of those in each", unit + ")"]
    words += _unknown_parts(recur)
    count, until = _first(recur, "COUNT"), _first(recur, "UNTIL")
    if count:
        words.append("once" if int(count) == 1 else f"{int(count)} times")
    if until:
        shown = _in_zone_of(until, start)
        words += ["until", f"{shown.day} {shown.strftime('%B %Y')}"]
    return " ".join(words)


def upcoming(draft: Draft, count: int = 5) -> list[date | datetime]:
    """The first ``count`` occurrences of ``draft`` (dateutil expands the
    RRULE, RDATEs and EXDATEs: RFC 5545 §3.8.5)."""
    if not (draft.rrule or draft.rdates):
        return [draft.start]
    first = draft.start
    timed = isinstance(first, datetime)
    anchor = first if isinstance(first, datetime) else datetime.combine(first, time(0))
    lines = [f"RRULE:{draft.rrule}"] if draft.rrule else []
    text = "\n".join(lines) or "RDATE:" + anchor.strftime("%Y%m%dT%H%M%S")
    rules = rrulestr(text, dtstart=anchor, forceset=True, unfold=True)
    for extra in draft.rdates:
        rules.rdate(_naive_or(extra, anchor))
    for gone in draft.exdates:
        rules.exdate(_naive_or(gone, anchor))
    found = list(islice(rules, count))
    return [m if timed else m.date() for m in found]


def _naive_or(moment: date | datetime, anchor: datetime) -> datetime:
    if isinstance(moment, datetime):
        return moment.astimezone(anchor.tzinfo) if anchor.tzinfo else moment
    return datetime.combine(moment, time(0), anchor.tzinfo)


# -- small pieces -------------------------------------------------------------


def _zone(name: str) -> tzinfo:
    return _zone_or_none(name) or UTC


def _zone_or_none(name: str) -> tzinfo | None:
    if name == "UTC":
        return UTC
    if name not in _zones():
        return None
    return zoneinfo.ZoneInfo(name)


def _zone_name(zone: tzinfo | None) -> str:
    if zone is None:
        return ""
    key = getattr(zone, "key", None) or getattr(zone, "zone", None)
    if key in _zones():
        return str(key)
    if zone.utcoffset(None) == timedelta(0) and str(zone) in ("UTC", "Z", "UTC+00:00"):
        return "UTC"
    name = str(zone)
    return name if name in _zones() else ""


def _moment(day: str, clock: str, all_day: bool, zone: tzinfo) -> date | datetime:
    on = date.fromisoformat(day)
    if all_day:
        return on
    return datetime.combine(on, time.fromisoformat(clock), zone)


def _dates(
    text: str, all_day: bool, zone: tzinfo, label: str, errors: list[str]
) -> tuple[date | datetime, ...]:
    found: list[date | datetime] = []
    for line in text.split("\n"):
        item = line.strip()
        if not item:
            continue
        try:
            day, _, clock = item.replace("T", " ").partition(" ")
            found.append(_moment(day, clock.strip(), all_day, zone))
        except ValueError:
            shape = "YYYY-MM-DD" if all_day else "YYYY-MM-DD HH:MM"
            errors.append(
                gettext("{label}: {value} is not {shape}.").format(
                    label=gettext(label), value=repr(item[:40]), shape=shape
                )
            )
    return tuple(sorted(set(found), key=_sort_key))


def _sort_key(moment: date | datetime) -> datetime:
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).replace(tzinfo=None)
    return datetime.combine(moment, time(0))


def _lines(moments: list[date | datetime] | tuple[date | datetime, ...], zone: tzinfo) -> str:
    unique = sorted(set(moments), key=_sort_key)
    return "\n".join(
        m.astimezone(zone).strftime("%Y-%m-%d %H:%M") if isinstance(m, datetime) else m.isoformat()
        for m in unique
    )


def _day_text(moment: date | datetime, zone: tzinfo) -> str:
    if isinstance(moment, datetime):
        return moment.astimezone(zone).date().isoformat()
    return moment.isoformat()


def _time_text(moment: date | datetime, zone: tzinfo) -> str:
    if isinstance(moment, datetime):
        return moment.astimezone(zone).strftime("%H:%M")
    return ""


def _end(event: Component) -> date | datetime:
    if "DTEND" in event:
        end: date | datetime = event.decoded("DTEND")
        return end
    start = event.decoded("DTSTART")
    duration = event.decoded("DURATION") if "DURATION" in event else None
    if duration is not None:
        return start + duration  # type: ignore[no-any-return]
    return start + timedelta(days=1) if not isinstance(start, datetime) else start


def _listed(event: Component, name: str) -> list[date | datetime]:
    value = event.get(name)
    if value is None:
        return []
    found: list[date | datetime] = []
    for item in value if isinstance(value, list) else [value]:
        for each in getattr(item, "dts", []):
            moment = each.dt
            if isinstance(moment, (date, datetime)):
                found.append(moment)
    return found


def _categories(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c.strip() for c in text.split(",") if c.strip()))


def _categories_of(event: Component) -> list[str]:
    value = event.get("CATEGORIES")
    if value is None:
        return []
    found: list[str] = []
    for item in value if isinstance(value, list) else [value]:
        found += [str(c) for c in getattr(item, "cats", [])]
    return found


def _canonical(rule: str) -> str:
    """``rule`` as icalendar writes it (its parts in its order, names upper case)."""
    return _ical_text(vRecur.from_ical(rule))


def _ical_text(value: object) -> str:
    text = value.to_ical()  # type: ignore[attr-defined]
    return text.decode() if isinstance(text, bytes) else str(text)


def _list_text(text: str) -> str:
    items = [t.strip() for t in text.split(",") if t.strip()]
    for item in items:
        int(item)  # ValueError for what is not a number
    return ",".join(items)


def _first(recur: vRecur, name: str) -> Any:
    value = recur.get(name)
    if isinstance(value, list):
        return value[0] if value else None
    return value


_ORDINALS = ("", "", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")


def _ordinal(number: int) -> str:
    return _ORDINALS[number] if 0 < number < len(_ORDINALS) else f"{number}th"


def _position(number: int) -> str:
    if number == -1:
        return "last"
    if number < 0:
        return f"{_ordinal(-number)} last"
    return "first" if number == 1 else _ordinal(number)


def _day_words(text: str) -> str:
    code = text[-2:].upper()
    name = WEEKDAY_NAMES[WEEKDAYS.index(code)] if code in WEEKDAYS else code
    number = text[:-2]
    return f"the {_position(int(number))} {name}" if number else name


def _join(items: list[str]) -> str:
    if len(items) < 2:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


#: German: a unit's noun and the form of "every" that agrees with it (accusative).
_GERMAN_UNITS = {
    "DAILY": ("Tag", "jeden"),
    "WEEKLY": ("Woche", "jede"),
    "MONTHLY": ("Monat", "jeden"),
    "YEARLY": ("Jahr", "jedes"),
}
_GERMAN_DAYS = dict(
    zip(
        WEEKDAYS,
        ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
        strict=True,
    )
)


def _german(rule: str, start: date | datetime | None) -> str:
    """``rule`` in German words (see :func:`describe`)."""
    if not rule:
        return "keine Wiederholung"
    try:
        recur = vRecur.from_ical(rule)
    except ValueError:
        return "keine lesbare Regel"
    freq = str(_first(recur, "FREQ")).upper()
    interval = int(_first(recur, "INTERVAL") or 1)
    noun, every = _GERMAN_UNITS.get(freq, (freq.lower(), "jede"))
    words = [every, noun] if interval == 1 else [every, f"{interval}.", noun]
    days = [str(d) for d in recur.get("BYDAY", [])]
    if days:
        words += ["am", _german_join([_german_day(d) for d in days])]
    if recur.get("BYMONTHDAY"):
        words += ["an den Monatstagen", _german_join([str(d) for d in recur["BYMONTHDAY"]])]
    if recur.get("BYSETPOS"):
        positions = [_german_position(int(p)) for p in recur["BYSETPOS"]]
        words += ["(davon jeweils", _german_join(positions) + ")"]
    words += _unknown_parts(recur)
    count, until = _first(recur, "COUNT"), _first(recur, "UNTIL")
    if count:
        words.append("einmal" if int(count) == 1 else f"{int(count)}-mal")
    if until:
        shown = _in_zone_of(until, start)
        words += ["bis", f"{shown.day}. {gettext_de(MONTHS[shown.month - 1])} {shown.year}"]
    return " ".join(words)


#: The rule parts the describers put in words; any other is shown as it is.
_DESCRIBED = frozenset(
    {"FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "BYSETPOS", "COUNT", "UNTIL", "WKST"}
)


def _unknown_parts(recur: Any) -> list[str]:
    """``(NAME=values)`` for each part of ``recur`` no describer puts in words."""
    return [
        f"({name.upper()}={','.join(str(v) for v in recur[name])})"
        for name in recur
        if name.upper() not in _DESCRIBED
    ]


def _in_zone_of(until: Any, start: Any) -> Any:
    """UNTIL as the event's start shows time: in its zone, when both are
    aware date-times (RFC 5545 §3.3.10: UNTIL is UTC when DTSTART has a zone)."""
    if isinstance(until, datetime) and isinstance(start, datetime) and start.tzinfo:
        return until.astimezone(start.tzinfo)
    return until


def gettext_de(message: str) -> str:
    """``message`` from the German catalogue."""
    return translator("de").gettext(message)


def _german_day(text: str) -> str:
    code = text[-2:].upper()
    name = _GERMAN_DAYS.get(code, code)
    number = text[:-2]
    return f"{_german_position(int(number))} {name}" if number else name


def _german_position(number: int) -> str:
    if number == -1:
        return "letzten"
    if number < 0:
        return f"{-number}.-letzten"
    return f"{number}."


def _german_join(items: list[str]) -> str:
    if len(items) < 2:
        return "".join(items)
    return ", ".join(items[:-1]) + " und " + items[-1]
