"""A user's free/busy as one VFREEBUSY (RFC 5546 §3.3.1 PUBLISH).

What ``imip-admin freebusy`` prints and what a published ``.ifb`` or a
client's free/busy view needs: the user's busy periods (events and held
offers are what :meth:`~imiptools.records.UserRecords.busy_between`
returns), merged per FBTYPE and clipped to the span asked for.
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
