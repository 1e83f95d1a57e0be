"""A calendar user's situation at a glance: what ``imip-admin show`` prints.

:func:`overview` gathers, from one user's records at ``now``: the upcoming
instances of stored events, the queue of items awaiting the user, the
counter-proposals received and the offers held. Rows are plain dicts of
strings (times in UTC, iCalendar form), ready for a table or JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from icalendar import Component

from imiptools.dates import format_utc, to_utc
from imiptools.errors import InputError
from imiptools.itip.objects import iter_components, organizer_of, text_of
from imiptools.records import UserRecords, freebusy_status

Row = dict[str, str]


@dataclass
class Overview:
    """The rows of each section of :func:`overview`."""

    upcoming: list[Row] = field(default_factory=list)
    requests: list[Row] = field(default_factory=list)
    counters: list[Row] = field(default_factory=list)
    offers: list[Row] = field(default_factory=list)


def overview(records: UserRecords, ahead: timedelta) -> Overview:
    """The user's overview from ``records.now`` to ``records.now + ahead``."""
    result = Overview()
    summaries: dict[str, str] = {}
    for uid in sorted(records.uids()):
        rows = _upcoming(records, uid, ahead)
        result.upcoming += rows
        summaries[uid] = rows[0]["summary"] if rows else _summary_of(records, uid)
        result.counters += _counters(records, uid, summaries[uid])
    result.upcoming.sort(key=lambda row: (row["start"], row["uid"]))
    for uid, rid, kind in records.store.get_requests(records.user):
        summary = summaries.get(uid) or _summary_of(records, uid)
        result.requests.append({"uid": uid, "instance": rid, "kind": kind, "summary": summary})
    for expires, period in records.store.all_offers(records.user):
        if expires > records.now:
            result.offers.append(
                {
                    "start": format_utc(period.start),
                    "end": format_utc(period.end),
                    "uid": period.uid,
                    "expires": format_utc(expires),
                }
            )
    return result


def _upcoming(records: UserRecords, uid: str, ahead: timedelta) -> list[Row]:
    try:
        stored = records.stored(uid)
        if stored is None:
            return []
        instances = records.expand(stored, records.limits(records.now, records.now + ahead))
    except InputError:
        return [_unreadable(uid)]
    return [
        {
            "start": format_utc(i.start),
            "end": format_utc(i.end),
            "summary": text_of(i.component, "SUMMARY"),
            "organiser": organizer_of(i.component),
            "status": freebusy_status(i.component, records.user) or "FREE",
            "uid": uid,
            "instance": i.recurrenceid,
        }
        for i in instances.instances
    ]


def _unreadable(uid: str) -> Row:
    return {"start": "", "end": "", "summary": "(unreadable)", "organiser": "", "status": "",
            "uid": uid, "instance": ""}  # fmt: skip


def _summary_of(records: UserRecords, uid: str) -> str:
    try:
        stored = records.stored(uid)
    except InputError:
        return "(unreadable)"
    return text_of(stored.first, "SUMMARY") if stored is not None else "(not stored)"


def _counters(records: UserRecords, uid: str, summary: str) -> list[Row]:
    rows = []
    for attendee, text in sorted(records.store.get_counters(records.user, uid).items()):
        proposed = _proposed(text, records)
        rows.append({"uid": uid, "attendee": attendee, "proposed": proposed, "summary": summary})
    return rows


def _proposed(text: str, records: UserRecords) -> str:
    """``START/END`` proposed in a COUNTER (UTC), or '?' if unreadable."""
    try:
        component: Component = next(iter_components(text))
        start = to_utc(component.decoded("DTSTART"), records.zone)
        end = to_utc(component.decoded("DTEND"), records.zone)
    except (InputError, StopIteration, KeyError, ValueError, TypeError):
        return "?"
    return f"{format_utc(start)}/{format_utc(end)}"
