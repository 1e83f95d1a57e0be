"""The next occurrences of a series, as its organiser previews them.

:func:`preview` lists the next occurrences of a stored series from the
user's now (RFC 5545 §3.8.5: RRULE, RDATE, less EXDATE, with overrides,
§3.8.4.4), each marked as the organiser needs to see it: moved (an
override starting elsewhere than its RECURRENCE-ID), cancelled (a CANCEL
of that instance, RFC 5546 §3.2.5), excluded (an EXDATE of the master,
listed so that it can be restored), and who declined it (the PARTSTAT
that replies stored for that instance, or for the series, say: RFC 5546
§3.2.3), people and rooms apart.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

from icalendar import Component

from imiptools.dates import format_recurrence_id, parse_recurrence_id, to_utc
from imiptools.deferred import dataclass
from imiptools.errors import CalendarDataError, InputError
from imiptools.i18n import N_
from imiptools.itip.objects import (
    ItipObject,
    attendees_of,
    mail_address_of,
    organizer_of,
    text_of,
)
from imiptools.itip.timing import date_values
from imiptools.records import UserRecords

#: How many occurrences the preview lists, and how far ahead it looks.
LISTED = 20
AHEAD = timedelta(days=3 * 366)

#: The marks of an occurrence.
CANCELLED, EXCLUDED = N_("cancelled"), N_("excluded")


@dataclass(frozen=True)
class Occurrence:
    """One occurrence: its normalised RECURRENCE-ID, start and end in the
    user's zone (dates for an all-day event), SUMMARY; ``moved_from`` its
    original start when an override moved it; ``state`` '' or
    :data:`CANCELLED` or :data:`EXCLUDED`; ``declined`` the (address,
    CUTYPE) of the attendees who declined it."""

    rid: str
    start: date | datetime
    end: date | datetime
    summary: str
    moved_from: date | datetime | None = None
    state: str = ""
    declined: tuple[tuple[str, str], ...] = ()

    @property
    def open(self) -> bool:
        """Whether it takes place (neither cancelled nor excluded)."""
        return not self.state


def preview(records: UserRecords, stored: ItipObject, count: int = LISTED) -> list[Occurrence]:
    """The next ``count`` occurrences of ``stored`` from ``records.now``,
    with the excluded ones among them (empty for an event that does not
    recur, or whose data cannot be expanded)."""
    master = stored.master
    if master is None or not any(n in master for n in ("RRULE", "RDATE")):
        return []
    try:
        limits = records.limits(records.now, records.now + AHEAD)
        expansion = records.expand(stored, replace(limits, max_instances=count), cancelled=())
        cancelled = set(records.cancelled_instances(stored.uid))
        excluded = _excluded(master, records, limits.window_end)
    except (InputError, CalendarDataError):
        return []
    found = [
        _occurrence(i.recurrenceid, i.start, i.end, i.component, records, cancelled)
        for i in expansion.instances
    ]
    found += excluded
    found.sort(key=lambda o: to_utc(o.start, records.zone))
    return found[:count]


def _occurrence(
    rid: str,
    start: datetime,
    end: datetime,
    component: Component,
    records: UserRecords,
    cancelled: set[str],
) -> Occurrence:
    zone = records.zone
    all_day = not isinstance(component.decoded("DTSTART"), datetime)
    original = parse_recurrence_id(rid) if "RECURRENCE-ID" in component else None
    moved = original is not None and to_utc(original, zone) != start
    return Occurrence(
        rid=rid,
        start=start.astimezone(zone).date() if all_day else start.astimezone(zone),
        end=end.astimezone(zone).date() if all_day else end.astimezone(zone),
        summary=text_of(component, "SUMMARY"),
        moved_from=_shown(original, records) if moved and original is not None else None,
        state=CANCELLED if rid in cancelled else "",
        declined=_declined(component),
    )


def _shown(moment: date | datetime, records: UserRecords) -> date | datetime:
    return moment.astimezone(records.zone) if isinstance(moment, datetime) else moment


def _declined(component: Component) -> tuple[tuple[str, str], ...]:
    organiser = organizer_of(component)
    return tuple(
        (mail_address_of(a), str(a.params.get("CUTYPE", "INDIVIDUAL")).upper())
        for a in attendees_of(component)
        if str(a.params.get("PARTSTAT", "")).upper() == "DECLINED"
        and mail_address_of(a) != organiser
    )


def _excluded(master: Component, records: UserRecords, until: datetime) -> list[Occurrence]:
    """The EXDATEs of ``master`` from now to ``until``, as occurrences."""
    start = master.decoded("DTSTART")
    length = master.decoded("DTEND") - start if "DTEND" in master else timedelta(0)
    found = []
    for value in date_values(master, "EXDATE"):
        if isinstance(value, tuple):
            continue
        moment = to_utc(value, records.zone)
        if not records.now <= moment < until:
            continue
        end = value + length
        found.append(
            Occurrence(
                rid=format_recurrence_id(value, records.zone),
                start=_shown(value, records),
                end=_shown(end, records),
                summary=text_of(master, "SUMMARY"),
                state=EXCLUDED,
            )
        )
    return found
