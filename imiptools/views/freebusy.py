"""A user's free/busy as one VFREEBUSY (RFC 5546 §3.3.1 PUBLISH), or as a table.

What ``imip-admin freebusy`` prints and what a published ``.ifb`` or a
client's free/busy view needs: the user's busy periods (events and held
offers are what :meth:`~imiptools.records.UserRecords.busy_between`
returns), merged per FBTYPE and clipped to the span asked for. With
``--format table``, the same periods for an admin to read
(:func:`freebusy_table`): local times and the events' names.
"""

from __future__ import annotations

from datetime import datetime

from icalendar import Calendar

from imiptools.itip import replies
from imiptools.itip.objects import make_calendar
from imiptools.records import HISTORY, UserRecords


def freebusy_span(
    records: UserRecords, start: datetime | None = None, end: datetime | None = None
) -> tuple[datetime, datetime]:
    """``[start, end)``, each defaulting as free/busy is recorded: from a
    week before ``records.now`` (:data:`~imiptools.records.HISTORY`) to
    the end of the user's window."""
    return (
        records.now - HISTORY if start is None else start,
        records.now + records.window.ahead if end is None else end,
    )


def freebusy_calendar(records: UserRecords, start: datetime, end: datetime) -> Calendar:
    """The user's free/busy over ``[start, end)`` as a METHOD:PUBLISH
    calendar (ORGANIZER the user, UID ``freebusy-USER``); ValueError
    unless ``start < end``."""
    if end <= start:
        raise ValueError("the end must be after the start")
    component = replies.freebusy_component(
        records.busy_between(start, end), start, end, records.now
    )
    component.add("ORGANIZER", records.user)
    component.add("UID", f"freebusy-{records.user}")
    return make_calendar([component], "PUBLISH")


#: The words of a period's FBTYPE in :func:`freebusy_table`.
STATUS_WORDS = {"BUSY": "busy", "BUSY-TENTATIVE": "tentative", "BUSY-UNAVAILABLE": "unavailable"}


def freebusy_table(records: UserRecords, start: datetime, end: datetime) -> str:
    """The user's busy periods over ``[start, end)`` as a table for people:
    the same periods as :func:`freebusy_calendar` (one row per booked
    instance, not merged), in the user's time zone, each with the name of
    the event (its SUMMARY) and its organiser. Admins see every name: this
    view is theirs, not the organisers'. ValueError unless ``start < end``."""
    if end <= start:
        raise ValueError("the end must be after the start")
    zone = records.zone
    zone_name = getattr(zone, "key", None) or start.astimezone(zone).tzname()
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    lines = [
        f"Free/busy of {records.user.removeprefix('mailto:')}"
        f" from {local_start:%Y-%m-%d %H:%M} to {local_end:%Y-%m-%d %H:%M} ({zone_name})"
    ]
    periods = sorted(
        (p for p in records.busy_between(start, end) if p.transp != "TRANSPARENT"),
        key=lambda p: p.key(),
    )
    if not periods:
        return "\n".join([*lines, "free throughout"]) + "\n"
    rows = [("Day", "Time", "Status", "Event")]
    for period in periods:
        begin, finish = period.start.astimezone(zone), period.end.astimezone(zone)
        until = f"{finish:%H:%M}" if finish.date() == begin.date() else f"{finish:%Y-%m-%d %H:%M}"
        event = period.summary or "-"
        if period.organiser:
            event += f" ({period.organiser.removeprefix('mailto:')})"
        status = STATUS_WORDS.get(period.status, period.status.lower())
        rows.append((f"{begin:%a %Y-%m-%d}", f"{begin:%H:%M}-{until}", status, event))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, _printable(row[3])]).rstrip())
    return "\n".join(lines) + "\n"


def _printable(text: str) -> str:
    """``text`` on one line with no control characters (event data is untrusted)."""
    return "".join(c if c.isprintable() else " " for c in text)[:200]
