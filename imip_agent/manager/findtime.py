"""Find a time: the first slots in which the user and everyone named is free.

``/calendar/ADDRESS/find-time?people=...&duration=MINUTES&from=DATE&days=N``
(a GET: a search changes nothing). The busy time of each person is what
the store holds (RFC 5546 §3.3):

- the user's own free/busy;
- for a calendar user of this site who shares or publishes their free/busy
  (``freebusy_sharing = share`` or ``freebusy_publishing = publish``),
  their own free/busy, as the agents would answer a VFREEBUSY request;
- for anyone else, what the user's calendar holds of them (VFREEBUSY
  replies, published free/busy fetched); of whom nothing is held, they
  count as free and the page says so.

The slots are those of :func:`imiptools.views.freetime.free_slots` (the
library's search: working hours 09:00-17:00, Monday to Friday, in the
user's zone, every 30 minutes). The page shows them as a sentence
("Everyone is free: Tue 08 Jan 10:00–11:00, ...") and, for the day of the
first one, a table of people against half-hour slots (rendered here: no
script; headers for rows and columns, every cell a word).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from flask import Blueprint, render_template, request

from imip_agent.manager.common import own, services, site
from imip_agent.manager.language import gettext, when
from imiptools.countering import proposals
from imiptools.dates import zone_or_utc
from imiptools.deferred import dataclass
from imiptools.errors import ImipError
from imiptools.i18n import N_
from imiptools.itip.objects import text_of
from imiptools.periods import Period, Timeline, busy_only
from imiptools.preferences import Preferences
from imiptools.records import UserRecords
from imiptools.scheduling.hours import parse_opening
from imiptools.site import Site
from imiptools.stores.names import normalise_user
from imiptools.views.freetime import Hours, Ranked, Search, ranked_slots
from imiptools.views.published import Unreadable, fetch_busy, prefixes_of

blueprint = Blueprint("findtime", __name__)

#: How many slots are proposed.
COUNT = 5
#: The most people in one search, and the longest span (days).
MAX_PEOPLE = 20
MAX_DAYS = 62
#: Durations offered (minutes).
DURATIONS = (15, 30, 45, 60, 90, 120, 180, 240)
#: The slots of the table, and the day's hours searched.
STEP = timedelta(minutes=30)
HOURS = (time(9), time(17))
#: Before anything the user's calendar may hold of someone.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: A cell of the table (its CSS class, and its text once translated).
FREE, BUSY, UNKNOWN = N_("free"), N_("busy"), N_("unknown")


@dataclass(frozen=True)
class Person:
    """A row of the table: the address, their busy periods (None: nothing
    known), and where they came from."""

    address: str
    busy: list[Period] | None
    source: str
    hours: Hours | None = None
    """Their working hours when the site knows them (their ``TZID`` and
    ``opening_hours``); None: the user's own zone and default hours."""


@dataclass(frozen=True)
class Row:
    """A person's cells: (slot start, ``free``/``busy``/``unknown``)."""

    label: str
    cells: list[str]


def people_of(text: str) -> tuple[list[str], list[str]]:
    """The addresses in ``text`` (separated by spaces, commas or lines),
    in order and once each, and the pieces that are no address."""
    found: list[str] = []
    bad: list[str] = []
    for piece in re.split(r"[\s,;]+", text.strip()):
        if not piece:
            continue
        try:
            uri = normalise_user(piece)
        except (ImipError, ValueError):
            bad.append(piece)
            continue
        if uri not in found:
            found.append(uri)
    return found, bad


def busy_of(
    site_: Site, records: UserRecords, other: str, start: datetime, end: datetime
) -> Person:
    """What is known of ``other``'s busy time in [start, end) (see the module)."""
    shown = other.removeprefix("mailto:")
    hours = None
    if _of_site(site_, other):
        preferences = site_.preferences_of(other)
        hours = hours_of(preferences)
        if (
            preferences.get("freebusy_sharing") == "share"
            or preferences.get("freebusy_publishing") == "publish"
        ):
            busy = site_.records(other).busy_between(start, end)
            return Person(shown, busy, N_("this site"), hours)
    known = records.freebusy_of(other, start, end)
    if known or records.freebusy_of(other, EPOCH, end + timedelta(days=3650)):
        return Person(shown, known, N_("free/busy received"), hours)
    return Person(shown, None, N_("nothing known"), hours)


#: The most published free/busy URLs one search reads.
MAX_URLS = 5


def published(
    text: str, start: datetime, end: datetime, unread: list[tuple[str, str]]
) -> list[Person]:
    """A person for each URL in ``text`` (up to :data:`MAX_URLS`) whose
    published free/busy could be read, if the site allows any; each URL
    that could not be read is added to ``unread`` with the reason."""
    prefixes = prefixes_of(services().settings.freebusy_urls)
    if not prefixes:
        return []
    people = []
    for url in list(dict.fromkeys(text.split()))[:MAX_URLS]:
        try:
            found = fetch_busy(url, prefixes, start, end)
        except Unreadable as exc:
            unread.append((url, str(exc)))
            continue
        people.append(Person(found.label, found.busy, N_("published free/busy")))
    return people


def _of_site(site_: Site, other: str) -> bool:
    """Whether ``other`` is a calendar user of this site: the store holds
    their calendar or they have preferences of their own."""
    return other in set(site_.store.users()) or bool(site_.preferences.names(other))


def hours_of(preferences: Preferences) -> Hours:
    """A calendar user's working hours: their ``opening_hours`` (binding:
    the agents decline outside them) in their ``TZID``, else Monday to
    Friday 09:00-17:00 there."""
    zone = zone_or_utc(preferences.get("TZID"))
    try:
        opening = parse_opening(preferences.get("opening_hours"), zone)
    except ValueError:
        opening = None
    return Hours(zone, opening, binding=opening is not None)


def hours_text(hours: Hours) -> str:
    """Working hours in words: ``MO-FR 08:00-18:00 (Europe/Berlin)``."""
    rules = hours.opening.describe() if hours.opening else "MO-FR 09:00-17:00"
    return f"{rules} ({hours.zone})"


def table(
    people: list[Person], day: date, zone: tzinfo, hours: tuple[time, time] = HOURS
) -> tuple[list[datetime], list[Row]]:
    """The half-hour slots of ``day`` between ``hours`` and a row per
    person, then one for everyone."""
    first = datetime.combine(day, hours[0], zone)
    slots = []
    moment = first
    while moment.time() < hours[1] and moment.date() == day:
        slots.append(moment)
        moment += STEP
    rows, everyone = [], [FREE] * len(slots)
    for person in people:
        timeline = Timeline(busy_only(person.busy)) if person.busy is not None else None
        cells = []
        for n, slot in enumerate(slots):
            if timeline is None:
                cells.append(UNKNOWN)
            elif timeline.peak(slot, slot + STEP):
                cells.append(BUSY)
                everyone[n] = BUSY
            else:
                cells.append(FREE)
        rows.append(Row(person.address, cells))
    rows.append(Row(N_("Everyone"), everyone))
    return slots, rows


@dataclass(frozen=True)
class Received:
    """A counter-proposal received for an event the user organises, within
    the search: its proposer, time (the user's zone), event and whether
    everyone searched is free then (the event itself left out)."""

    attendee: str
    start: datetime
    end: datetime
    summary: str
    free: bool


def received(
    records: UserRecords, busy: list[Period], start: datetime, end: datetime
) -> list[Received]:
    """The proposals held for the user's events (RFC 5546 §3.2.7) that
    fall in [start, end), each checked against ``busy`` (everyone's)."""
    found = []
    uids = dict.fromkeys(uid for uid, _, kind in records.queued() if kind == "COUNTER")
    for uid in uids:
        stored = records.stored(uid)
        summary = text_of(stored.first, "SUMMARY") if stored is not None else ""
        for p in proposals(records, uid):
            if p.start < end and start < p.end:
                clash = any(b.uid != uid and b.overlaps(p.start, p.end) for b in busy_only(busy))
                local = (p.start.astimezone(records.zone), p.end.astimezone(records.zone))
                found.append(Received(p.attendee, *local, summary, not clash))
    return sorted(found, key=lambda r: (not r.free, r.start))


def _said(slot: Ranked, zone: tzinfo) -> str:
    """A slot in words, with how many it suits when that is not everyone."""
    start, end = slot.start.astimezone(zone), slot.end.astimezone(zone)
    text = f"{when(start, 'shortday')}–{when(end, 'time')}"
    if slot.inside == slot.of:
        return text
    suits = gettext("within the working hours of {n} of {of}")
    return f"{text} ({suits.format(n=slot.inside, of=slot.of)})"


def _int(name: str, default: int, low: int, high: int) -> int:
    text = request.args.get(name, "")
    return min(max(int(text), low), high) if text.isdigit() else default


@blueprint.get("/calendar/<address>/find-time")
def search(address: str) -> str:
    """The form, and with people or a duration given, the slots found."""
    user = own(address)
    opened = site()
    records = opened.records(user)
    zone = records.zone
    today = records.now.astimezone(zone).date()
    people_text = request.args.get("people", "")
    duration = _int("duration", 60, 5, 8 * 60)
    days = _int("days", 14, 1, MAX_DAYS)
    try:
        first = date.fromisoformat(request.args.get("from") or today.isoformat())
    except ValueError:
        first = today
    context = {
        "address": address,
        "people_text": people_text,
        "duration": duration,
        "durations": DURATIONS,
        "days": days,
        "first": first,
        "zone": str(zone),
        "searched": "duration" in request.args,
        "urls_allowed": bool(prefixes_of(services().settings.freebusy_urls)),
        "urls_text": request.args.get("urls", "")[:4000],
    }
    if not context["searched"]:
        return render_template("findtime.html", **context)
    others, bad = people_of(people_text)
    others = [o for o in others if o != user][:MAX_PEOPLE]
    start = max(datetime.combine(first, time(0), zone), records.now)
    end = datetime.combine(first + timedelta(days=days), time(0), zone)
    mine = Hours(zone)
    me = Person(address, records.busy_between(start, end), N_("your calendar"), mine)
    people = [me] + [busy_of(opened, records, o, start, end) for o in others]
    unread: list[tuple[str, str]] = []
    people += published(request.args.get("urls", "")[:4000], start, end, unread)
    busy = [p for person in people for p in (person.busy or [])]
    wanted = Search(start, end, timedelta(minutes=duration), hours=HOURS, zone=zone)
    hours = [p.hours or mine for p in people]
    ranked = ranked_slots(busy, wanted, COUNT, hours) if end > start else []
    local = [(r.start.astimezone(zone), r.end.astimezone(zone)) for r in ranked]
    day = local[0][0].date() if local else first
    columns, rows = table(people, day, zone)
    proposed = {a for a, _ in local}
    return render_template(
        "findtime.html",
        **context,
        bad=bad,
        people=people,
        slots=local,
        unknown=[p.address for p in people if p.busy is None],
        unread=unread,
        table_day=day,
        columns=columns,
        rows=rows,
        proposed=proposed,
        slots_text="; ".join(_said(r, zone) for r in ranked),
        proposals=received(records, busy, start, end),
        hours={p.address: hours_text(p.hours) for p in people if p.hours is not None},
    )
