"""A user's calendar over a span, and the requests awaiting them.

What a calendar front end (``imip-manager``) shows, computed by the library:

- :func:`agenda`: every instance of the user's stored events that overlaps
  ``[start, end)``, recurring events expanded by the agents' own expansion
  (:meth:`imiptools.records.UserRecords.expand`: overrides, EXDATE,
  cancelled instances and the bounds on work apply as they do for
  free/busy), with times in the user's zone;
- :func:`pending`: the queue the person's agent keeps (items an
  invitation or an update put there), each with its event's summary,
  organiser and time, and for a series the instances ahead that may be
  answered one by one.

Values are plain: strings from the event as text (never markup: a front
end escapes them) and aware datetimes in the user's zone.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from imiptools.deferred import dataclass
from imiptools.errors import InputError
from imiptools.itip.objects import ItipObject, find_attendee, organizer_of, text_of
from imiptools.itip.recurrence import Instance
from imiptools.records import UserRecords

#: How far ahead :func:`pending` lists the instances of a series.
INSTANCES_AHEAD = timedelta(days=92)
#: At most this many instances of a series are listed to answer one by one.
MAX_LISTED = 50


@dataclass(frozen=True)
class Entry:
    """One instance in the user's calendar (``start``/``end`` in the user's
    zone; ``partstat``: the user's answer, '' for their own events or when
    they are not an attendee)."""

    uid: str
    recurrence_id: str
    start: datetime
    end: datetime
    all_day: bool
    summary: str
    location: str
    organiser: str
    status: str
    partstat: str
    recurring: bool


@dataclass(frozen=True)
class Occurrence:
    """An instance of a pending series (``start`` in the user's zone)."""

    recurrence_id: str
    start: datetime


@dataclass(frozen=True)
class Pending:
    """An item of the user's queue with what is needed to answer it.

    ``recurrence_id`` is '' when the item is about the whole event;
    ``occurrences`` lists the instances ahead of a series (empty for a
    single event or an item about one instance). ``start`` is None when
    the event is no longer stored (or cannot be read).
    """

    uid: str
    recurrence_id: str
    kind: str
    summary: str
    organiser: str
    start: datetime | None
    partstat: str
    occurrences: tuple[Occurrence, ...]


def agenda(records: UserRecords, start: datetime, end: datetime) -> list[Entry]:
    """The user's instances overlapping ``[start, end)``, by start then UID.

    An event that cannot be read is left out (``imip-admin check`` reports it).
    """
    entries: list[Entry] = []
    limits = records.limits(start, end)
    for uid in sorted(records.uids()):
        try:
            stored = records.stored(uid)
            if stored is None:
                continue
            expansion = records.expand(stored, limits)
        except InputError:
            continue
        recurring = _recurring(stored)
        entries += [_entry(records, i, recurring) for i in expansion.instances]
    entries.sort(key=lambda e: (e.start, e.uid, e.recurrence_id))
    return entries


def _recurring(stored: ItipObject) -> bool:
    master = stored.master
    return bool(stored.overrides) or (
        master is not None and any(n in master for n in ("RRULE", "RDATE"))
    )


def _entry(records: UserRecords, instance: Instance, recurring: bool) -> Entry:
    component = instance.component
    return Entry(
        uid=text_of(component, "UID"),
        recurrence_id=instance.recurrenceid,
        start=instance.start.astimezone(records.zone),
        end=instance.end.astimezone(records.zone),
        all_day=instance.all_day,
        summary=text_of(component, "SUMMARY"),
        location=text_of(component, "LOCATION"),
        organiser=organizer_of(component),
        status=text_of(component, "STATUS").upper(),
        partstat=_partstat(component, records.user),
        recurring=recurring,
    )


def _partstat(component: object, user: str) -> str:
    attendee = find_attendee(component, user)  # type: ignore[arg-type]
    if attendee is None:
        return ""
    return str(attendee.params.get("PARTSTAT", "NEEDS-ACTION")).upper()


def pending(records: UserRecords) -> list[Pending]:
    """The user's queue in arrival order, each item with its event's details."""
    return [_pending(records, uid, rid, kind) for uid, rid, kind in records.queued()]


def _pending(records: UserRecords, uid: str, rid: str, kind: str) -> Pending:
    try:
        stored = records.stored(uid)
        window = records.limits(records.now, records.now + INSTANCES_AHEAD)
        instances = records.expand(stored, window).instances if stored is not None else []
    except InputError:
        stored, instances = None, []
    if stored is None:
        return Pending(uid, rid, kind, "", "", None, "", ())
    chosen = [i for i in instances if i.recurrenceid == rid] if rid else instances[:1]
    component = chosen[0].component if chosen else stored.first
    start = chosen[0].start.astimezone(records.zone) if chosen else None
    occurrences: tuple[Occurrence, ...] = ()
    if not rid and _recurring(stored):
        occurrences = tuple(
            Occurrence(i.recurrenceid, i.start.astimezone(records.zone))
            for i in instances[:MAX_LISTED]
        )
    return Pending(
        uid=uid,
        recurrence_id=rid,
        kind=kind,
        summary=text_of(component, "SUMMARY"),
        organiser=organizer_of(component),
        start=start,
        partstat=_partstat(component, records.user),
        occurrences=occurrences,
    )
