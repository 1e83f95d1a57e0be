"""A calendar user's situation at a glance: what ``imip-admin show`` prints.

:func:`overview` gathers, from one user's records at ``now``: the upcoming
instances of stored events, the queue of items awaiting the user, the
counter-proposals received and the offers held. Rows are typed values of
strings (times in UTC, iCalendar form); :meth:`Row.as_dict` gives each as
the JSON object ``show --json`` prints.
"""

from __future__ import annotations

from dataclasses import asdict, field
from datetime import timedelta

from icalendar import Component

from imiptools.dates import format_utc, to_utc
from imiptools.deferred import dataclass
from imiptools.errors import InputError
from imiptools.itip.objects import iter_components, organizer_of, text_of
from imiptools.records import UserRecords, freebusy_status


class Row:
    """A row of a section (a dataclass of strings)."""

    def as_dict(self) -> dict[str, str]:
        """The row's fields by name, in their order."""
        return asdict(self)  # type: ignore[call-overload, no-any-return]


@dataclass(frozen=True)
class Upcoming(Row):
    """An instance of a stored event (``status``: the user's FBTYPE, or
    FREE; an event that cannot be read is one row, summary ``(unreadable)``)."""

    start: str
    end: str
    summary: str
    organiser: str
    status: str
    uid: str
    instance: str


@dataclass(frozen=True)
class Request(Row):
    """An item of the queue awaiting the user."""

    uid: str
    instance: str
    kind: str
    summary: str


@dataclass(frozen=True)
class Counter(Row):
    """A counter-proposal received (``proposed``: ``START/END`` in UTC, or '?')."""

    uid: str
    attendee: str
    proposed: str
    summary: str


@dataclass(frozen=True)
class Offer(Row):
    """A period the user holds for an organiser it counter-proposed to."""

    start: str
    end: str
    uid: str
    expires: str


@dataclass
class Overview:
    """The rows of each section of :func:`overview`."""

    upcoming: list[Upcoming] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    counters: list[Counter] = field(default_factory=list)
    offers: list[Offer] = field(default_factory=list)

    def sections(self) -> dict[str, list[Row]]:
        """Each section by name, in the order ``show`` prints them."""
        return {
            "upcoming": list(self.upcoming),
            "requests": list(self.requests),
            "counters": list(self.counters),
            "offers": list(self.offers),
        }


def overview(records: UserRecords, ahead: timedelta) -> Overview:
    """The user's overview from ``records.now`` to ``records.now + ahead``."""
    result = Overview()
    summaries: dict[str, str] = {}
    for uid in sorted(records.uids()):
        rows = _upcoming(records, uid, ahead)
        result.upcoming += rows
        summaries[uid] = rows[0].summary if rows else _summary_of(records, uid)
        result.counters += _counters(records, uid, summaries[uid])
    result.upcoming.sort(key=lambda row: (row.start, row.uid))
    for uid, rid, kind in records.store.get_requests(records.user):
        summary = summaries.get(uid) or _summary_of(records, uid)
        result.requests.append(Request(uid, rid, kind, summary))
    for expires, period in records.store.all_offers(records.user):
        if expires > records.now:
            result.offers.append(
                Offer(
                    format_utc(period.start),
                    format_utc(period.end),
                    period.uid,
                    format_utc(expires),
                )
            )
    return result


def _upcoming(records: UserRecords, uid: str, ahead: timedelta) -> list[Upcoming]:
    try:
        stored = records.stored(uid)
        if stored is None:
            return []
        instances = records.expand(stored, records.limits(records.now, records.now + ahead))
    except InputError:
        return [Upcoming("", "", "(unreadable)", "", "", uid, "")]
    return [
        Upcoming(
            start=format_utc(i.start),
            end=format_utc(i.end),
            summary=text_of(i.component, "SUMMARY"),
            organiser=organizer_of(i.component),
            status=freebusy_status(i.component, records.user) or "FREE",
            uid=uid,
            instance=i.recurrenceid,
        )
        for i in instances.instances
    ]


def _summary_of(records: UserRecords, uid: str) -> str:
    try:
        stored = records.stored(uid)
    except InputError:
        return "(unreadable)"
    return text_of(stored.first, "SUMMARY") if stored is not None else "(not stored)"


def _counters(records: UserRecords, uid: str, summary: str) -> list[Counter]:
    rows = []
    for attendee, text in sorted(records.store.get_counters(records.user, uid).items()):
        rows.append(Counter(uid, attendee, _proposed(text, records), summary))
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
