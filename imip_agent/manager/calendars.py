"""The day and month views (the week view is the application's own).

- ``/calendar/ADDRESS/day?day=YYYY-MM-DD``: one day;
- ``/calendar/ADDRESS/month?month=YYYY-MM``: a month, as a table of weeks
  (Monday first) with each day's events, or with ``empty=hide`` only the
  days that have events, as a list.

As the week, in the user's zone (``TZID``), recurring events expanded by
the library (:func:`imiptools.views.agenda.agenda`). ``empty=hide`` (and
``empty=show``, the default) is the original manager's "hide empty days"
choice, ``busy=show`` (``busy=hide``, the default) its "show busy periods":
each day also lists the busy time the agents keep for the user, as others
see it in free/busy (RFC 5545 §3.6.4, FBTYPE; a transparent event gives
none). The views' links keep both.
"""

from __future__ import annotations

import calendar
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, jsonify, render_template, request, url_for
from werkzeug.wrappers.response import Response

from imip_agent.manager import findtime
from imip_agent.manager.common import day_argument, own, site
from imip_agent.manager.language import WEEKDAYS, WEEKDAYS_SHORT, gettext
from imiptools.deferred import dataclass
from imiptools.i18n import N_
from imiptools.records import UserRecords
from imiptools.views.agenda import Entry, agenda

blueprint = Blueprint("views", __name__)


@dataclass(frozen=True)
class Busy:
    """A busy period of the user within one day, in their zone; ``kind``
    its FBTYPE (``BUSY``, ``BUSY-TENTATIVE``, ``BUSY-UNAVAILABLE``)."""

    start: datetime
    end: datetime
    kind: str


@dataclass(frozen=True)
class Day:
    """A day of a view and the entries overlapping it; ``inside``: whether
    it belongs to the month shown; ``busy``: the user's busy periods that
    day, when the view shows them."""

    day: date
    entries: list[Entry]
    inside: bool = True
    busy: tuple[Busy, ...] = ()


def on_day(entry: Entry, day: date) -> bool:
    """Whether ``entry`` overlaps ``day`` (the user's zone; an end at
    midnight ends the day before, as an all-day event's exclusive end)."""
    first, last = entry.start.date(), entry.end.date()
    if entry.end > entry.start and entry.end.timetz() == time(0, tzinfo=entry.end.tzinfo):
        last -= timedelta(days=1)
    return first <= day <= max(first, last)


def hide_empty() -> bool:
    """Whether the request asks to hide the days without events."""
    return request.args.get("empty") == "hide"


def show_busy() -> bool:
    """Whether the request asks to show the user's busy periods."""
    return request.args.get("busy") == "show"


def _toggled(name: str, value: str | None) -> str:
    """This page with argument ``name`` set to ``value`` (None: left out)."""
    arguments: dict[str, Any] = {k: v for k, v in request.args.items() if k != name}
    if value is not None:
        arguments[name] = value
    return url_for(request.endpoint or "home", **(request.view_args or {}), **arguments)


def view_links(day: date) -> dict[str, Any]:
    """What ``_views.html`` needs besides the address: the day shown, whether
    empty days are hidden and busy periods shown, the arguments that keep
    those choices (``keep``) and this page with the other choice of each
    (``toggle``, ``busy_toggle``)."""
    hide, busy = hide_empty(), show_busy()
    keep = ({"empty": "hide"} if hide else {}) | ({"busy": "show"} if busy else {})
    return {
        "shown_day": day,
        "hide": hide,
        "show_busy": busy,
        "keep": keep,
        "toggle": _toggled("empty", None if hide else "hide"),
        "busy_toggle": _toggled("busy", None if busy else "show"),
    }


def busy_by_day(records: UserRecords, first: date, last: date) -> dict[date, tuple[Busy, ...]]:
    """The user's opaque busy periods from ``first`` to ``last`` (their
    zone), cut at midnight into the days they cover."""
    zone = records.zone
    start = datetime.combine(first, time(0), zone)
    end = datetime.combine(last + timedelta(days=1), time(0), zone)
    found: dict[date, list[Busy]] = {}
    for period in sorted(records.busy_between(start, end), key=lambda p: p.key()):
        if period.transp == "TRANSPARENT":
            continue
        begin, finish = (
            max(period.start, start).astimezone(zone),
            min(period.end, end).astimezone(zone),
        )
        while begin < finish:
            midnight = datetime.combine(begin.date() + timedelta(days=1), time(0), zone)
            piece = Busy(begin, min(finish, midnight), period.status)
            found.setdefault(begin.date(), []).append(piece)
            begin = midnight
    return {d: tuple(pieces) for d, pieces in found.items()}


def with_busy(records: UserRecords, days: list[Day]) -> list[Day]:
    """``days`` with their busy periods when the request shows them."""
    if not days or not show_busy():
        return days
    busy = busy_by_day(records, days[0].day, days[-1].day)
    return [replace(d, busy=busy.get(d.day, ())) for d in days]


def _days(address: str, first: date, last: date) -> tuple[list[Day], str, date]:
    """The days ``first``..``last`` with their entries (and busy periods
    when shown), the zone, today."""
    records = site().records(own(address))
    zone = records.zone
    start = datetime.combine(first, time(0), zone)
    end = datetime.combine(last + timedelta(days=1), time(0), zone)
    entries = agenda(records, start, end)
    days = [
        Day(d, [e for e in entries if on_day(e, d)])
        for d in (first + timedelta(days=n) for n in range((last - first).days + 1))
    ]
    return with_busy(records, days), str(zone), records.now.astimezone(zone).date()


def _month(text: str | None, default: date) -> date:
    """The first day of the month ``YYYY-MM`` (or of ``default``'s)."""
    if not text:
        return default.replace(day=1)
    try:
        return date.fromisoformat(f"{text}-01")
    except ValueError:
        abort(404)


@blueprint.get("/calendar/<address>/day")
def day(address: str) -> str:
    """One day's events."""
    records = site().records(own(address))
    today = records.now.astimezone(records.zone).date()
    shown = day_argument(request.args.get("day"), today)
    (one,), zone, today = _days(address, shown, shown)
    return render_template(
        "day.html",
        **side_by_side(address, shown),
        day=one,
        zone=zone,
        today=today,
        previous=(shown - timedelta(days=1)).isoformat(),
        following=(shown + timedelta(days=1)).isoformat(),
        address=address,
        **view_links(shown),
    )


#: The client-side grid's library, when tools/manager-assets installed it.
GRID_LIBRARY = Path(__file__).resolve().parent / "static" / "vendor" / "event-calendar.min.js"


def grid_available() -> bool:
    """Whether the week page can offer the client-side grid."""
    return GRID_LIBRARY.is_file()


@blueprint.get("/calendar/<address>/week.json")
def week_json(address: str) -> Response:
    """The week's instances for the client-side grid (``static/grid.js``):
    local wall times in the user's zone (no offset: the grid shows them
    as they are, whatever the browser's zone), titles as text."""
    records = site().records(own(address))
    today = records.now.astimezone(records.zone).date()
    shown = day_argument(request.args.get("week"), today)
    first = shown - timedelta(days=shown.weekday())
    start = datetime.combine(first, time(0), records.zone)
    entries = agenda(records, start, start + timedelta(days=7))
    events = []
    for entry in entries:
        event = grid_event(entry)
        event["extendedProps"] = {"url": url_for("event", address=address, uid=entry.uid)}
        events.append(event)
    return jsonify({"events": events})


def grid_event(entry: Entry) -> dict[str, Any]:
    """One instance as event-calendar reads an event: its wall times as
    ``entry`` holds them, its title as text."""
    if entry.all_day:
        start, end = entry.start.date().isoformat(), entry.end.date().isoformat()
    else:
        start = entry.start.replace(tzinfo=None).isoformat(timespec="minutes")
        end = entry.end.replace(tzinfo=None).isoformat(timespec="minutes")
    off = entry.partstat == "DECLINED" or entry.status == "CANCELLED"
    return {
        "id": f"{entry.uid} {entry.recurrence_id}",
        "title": entry.summary or gettext("(no title)"),
        "start": start,
        "end": end,
        "allDay": entry.all_day,
        "classNames": ["off"] if off else [],
    }


#: The hours of the day view's table of others' free/busy (the user's zone).
SIDE_HOURS = (time(7), time(20))


def side_by_side(address: str, shown: date) -> dict[str, Any]:
    """The day view's table of the user and the people of the ``with``
    argument against half-hour slots (as "find a time" shows them, from
    what the store holds of each: :func:`findtime.busy_of`)."""
    text = request.args.get("with", "")[:2000]
    if not text.strip():
        return {"people_text": "", "rows": [], "keep_with": {}}
    user = own(address)
    opened = site()
    records = opened.records(user)
    zone = records.zone
    start = datetime.combine(shown, time(0), zone)
    end = start + timedelta(days=1)
    others, bad = findtime.people_of(text)
    others = [o for o in others if o != user][: findtime.MAX_PEOPLE]
    me = findtime.Person(address, records.busy_between(start, end), N_("your calendar"))
    people = [me] + [findtime.busy_of(opened, records, o, start, end) for o in others]
    columns, rows = findtime.table(people, shown, zone, SIDE_HOURS)
    return {
        "people_text": text,
        "bad": bad,
        "people": people,
        "columns": columns,
        "rows": rows,
        "proposed": set(),
        "table_day": shown,
        "keep_with": {"with": text},
    }


@blueprint.get("/calendar/<address>/month")
def month(address: str) -> str:
    """A month's events, week by week (or only the days with events)."""
    records = site().records(own(address))
    today = records.now.astimezone(records.zone).date()
    first = _month(request.args.get("month"), today)
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    grid_first = first - timedelta(days=first.weekday())
    grid_last = last + timedelta(days=6 - last.weekday())
    days, zone, today = _days(address, grid_first, grid_last)
    days = [replace(d, inside=d.day.month == first.month) for d in days]
    weeks = [days[n : n + 7] for n in range(0, len(days), 7)]
    before = (first - timedelta(days=1)).replace(day=1)
    after = last + timedelta(days=1)
    return render_template(
        "month.html",
        first=first,
        weeks=weeks,
        busy_days=[d for d in days if d.inside and (d.entries or d.busy)],
        weekdays=list(zip(WEEKDAYS, WEEKDAYS_SHORT, strict=True)),
        zone=zone,
        today=today,
        previous=before.strftime("%Y-%m"),
        following=after.strftime("%Y-%m"),
        this_month=today.strftime("%Y-%m"),
        address=address,
        **view_links(first if not first <= today <= last else today),
    )
