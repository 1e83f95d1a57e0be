"""Moving calendars in and out of a store: import, export, copy a store.

:func:`import_calendar` loads an existing calendar (say, a room's bookings
exported from a previous system) into one user's records, as the agents
would have stored it, and records its free/busy. :func:`export_calendar`
gives a user's current events as one calendar any client reads the same
way the agents do. :func:`copy_user` copies
one user's records from one :class:`~imiptools.stores.base.Store` to
another through the interface only, so that it works between any two
store types; :func:`copy_preferences` and :func:`copy_quotas` do the same
for preferences and the quota ledger, so that a whole site moves between
backends (``imip-admin copy-store --to-config``; ``check --compare`` then
compares the two, see :mod:`imiptools.comparison`). Callers hold the
user's lock (both stores' for a copy). All are idempotent: a rerun after
a crash converges.
"""

from __future__ import annotations

import logging
from dataclasses import field
from datetime import datetime

from icalendar import Calendar, Component, Timezone

from imiptools.deferred import dataclass
from imiptools.itip import merge
from imiptools.itip.objects import (
    ItipObject,
    find_attendee,
    make_calendar,
    parse_calendars,
    portable_timezones,
    scheduling_objects,
    text_of,
)
from imiptools.periods import Period
from imiptools.preferences import PreferenceSource
from imiptools.quota.base import QuotaLedger
from imiptools.quota.model import ADMIN_LISTS
from imiptools.records import UserRecords
from imiptools.stores.base import ALL_TIME, Store

log = logging.getLogger(__name__)


@dataclass
class Imported:
    """UIDs imported, kept (the stored version is as new or newer), skipped (no UID)."""

    imported: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    skipped: int = 0


def import_calendar(records: UserRecords, text: str, accept: bool = False) -> Imported:
    """Store every VEVENT of ``text`` (an iCalendar stream) for the user.

    Events are grouped by UID (RFC 5545 §3.8.4.7); a UID whose stored
    version is at least as new (SEQUENCE, then DTSTAMP: RFC 5546 §2.1.5)
    is kept as stored. With ``accept``, the user's PARTSTAT becomes
    ACCEPTED where the user is an attendee (bookings a previous system
    confirmed). Raises :class:`~imiptools.errors.CalendarDataError` when
    ``text`` does not parse; nothing is stored then.
    """
    objects = [
        obj
        for calendar in parse_calendars(text)
        for obj in scheduling_objects(calendar)
        if obj.kind == "VEVENT"
    ]
    result = Imported()
    for obj in objects:
        if not obj.uid:
            result.skipped += 1
        elif _is_newer(records, obj):
            _store(records, obj, accept)
            result.imported.append(obj.uid)
        else:
            result.kept.append(obj.uid)
    return result


def export_calendar(records: UserRecords) -> Calendar:
    """Every current event of the user, with its overridden instances.

    Events held only as overridden instances are included (they are listed
    by :meth:`~imiptools.stores.base.Store.object_uids`). Instances
    cancelled one by one, which the store keeps aside, become EXDATEs of
    the series (RFC 5545 §3.8.5.1), so that a client reading the export
    does not show them again. VTIMEZONEs are made portable
    (:func:`~imiptools.itip.objects.portable_timezones`). Raises
    :class:`~imiptools.errors.CalendarDataError` when a stored object
    cannot be read.
    """
    components: list[Component] = []
    zones: dict[str, Timezone] = {}
    for uid in sorted(records.uids()):
        stored = records.stored(uid)
        if stored is None:
            continue
        components += _exported(records, stored)
        zones.update((text_of(z, "TZID"), z) for z in stored.timezones)
    return portable_timezones(make_calendar(components, None, list(zones.values())))


def export_event(records: UserRecords, uid: str) -> Calendar | None:
    """One stored event as :func:`export_calendar` writes it (its cancelled
    instances as EXDATEs, portable VTIMEZONEs); None when not stored."""
    stored = records.stored(uid)
    if stored is None:
        return None
    components = _exported(records, stored)
    return portable_timezones(make_calendar(components, None, list(stored.timezones)))


def _exported(records: UserRecords, stored: ItipObject) -> list[Component]:
    """The components of ``stored``, its cancelled instances excluded."""
    cancelled = records.store.cancelled_recurrence_ids(records.user, stored.uid)
    master = stored.master
    if master is None or not cancelled:
        return list(stored.components)
    excluded = merge.exclude_instances(master, cancelled, records.zone)
    return [excluded if c is master else c for c in stored.components]


def _is_newer(records: UserRecords, obj: ItipObject) -> bool:
    stored = records.stored(obj.uid)
    return stored is None or obj.latest_key() > stored.latest_key()


def _store(records: UserRecords, obj: ItipObject, accept: bool) -> None:
    if accept:
        for component in obj.components:
            _accept(component, records.user)
    records.save(obj)
    records.refresh_freebusy(obj.uid)


def _accept(component: Component, user: str) -> None:
    attendee = find_attendee(component, user)
    if attendee is not None:
        attendee.params["PARTSTAT"] = "ACCEPTED"


# -- copying between stores -------------------------------------------------------


def copy_user(source: Store, target: Store, user: str) -> None:
    """Make ``target`` hold ``user``'s records as ``source`` holds them.

    Copies current and cancelled objects with their instances, counters,
    free/busy, others' free/busy, offers, the request queue and the
    decision log (lines ``target`` lacks are appended, so a rerun adds
    none twice). Instance cancellations are copied for UIDs that have a
    current event (a main object or, for an instance-only invitation,
    overridden instances alone) or a cancelled one. Nothing is removed
    from ``target``.
    """
    uids = set(source.object_uids(user)) | set(source.cancelled_object_uids(user))
    for uid in sorted(uids):
        _copy_event(source, target, user, uid)
    target.replace_freebusy(user, source.all_freebusy(user))
    for other in source.freebusy_other_users(user):
        periods = source.get_freebusy_other(user, other, *ALL_TIME)
        target.set_freebusy_other(user, other, periods)
    _copy_offers(source, target, user)
    for uid, rid, kind in source.get_requests(user):
        target.queue_request(user, uid, rid, kind)
    _copy_decisions(source, target, user)


def _copy_event(source: Store, target: Store, user: str, uid: str) -> None:
    """The cancellation first (it removes the target's current object), then
    the current object and its instances, if any: the source's state exactly."""
    cancelled = source.get_cancelled_object(user, uid)
    if cancelled is not None:
        target.cancel_object(user, uid, cancelled)
    text = source.get_object(user, uid)
    if text is not None:
        target.set_object(user, uid, text)
    for rid in source.recurrence_ids(user, uid):
        override = source.get_recurrence(user, uid, rid)
        if override is not None:
            target.set_recurrence(user, uid, rid, override)
    for rid in source.cancelled_recurrence_ids(user, uid):
        cancellation = source.get_cancelled_recurrence(user, uid, rid)
        if cancellation is not None:
            target.cancel_recurrence(user, uid, rid, cancellation)
    for attendee, counter in source.get_counters(user, uid).items():
        target.set_counter(user, uid, attendee, counter)


def _copy_offers(source: Store, target: Store, user: str) -> None:
    by_uid: dict[str, tuple[datetime, list[Period]]] = {}
    for expires, period in source.all_offers(user):
        latest, periods = by_uid.get(period.uid, (expires, []))
        by_uid[period.uid] = (max(latest, expires), [*periods, period])
    for uid, (expires, periods) in sorted(by_uid.items()):
        target.set_offers(user, uid, periods, expires)


def _copy_decisions(source: Store, target: Store, user: str) -> None:
    """Append the lines the target lacks; a target log that is not a start
    of the source's is left alone (logged)."""
    lines = list(source.decisions(user))
    present = list(target.decisions(user))
    if lines[: len(present)] != present:
        log.warning("user=%s: the target's decision log differs; not copied", user)
        return
    for line in lines[len(present) :]:
        target.log_decision(user, line)


def copy_preferences(source: PreferenceSource, target: PreferenceSource, user: str) -> None:
    """Make ``target`` hold exactly ``user``'s preferences in ``source``
    (values as they are, unvalidated; names ``source`` lacks are unset)."""
    names = source.names(user)
    for name in names:
        value = source.get(user, name)
        if value is not None and target.get(user, name) != value:
            target.set(user, name, value)
    for name in set(target.names(user)) - set(names):
        target.unset(user, name)


def copy_quotas(source: QuotaLedger, target: QuotaLedger, timeout: float) -> list[str]:
    """Make ``target`` hold every quota group of ``source``: its admin lists
    (as written, comments included) and every user's records, each quota
    under its lock in ``target``. Returns the quotas copied."""
    quotas = source.quotas()
    for quota in quotas:
        with target.locked([quota], timeout):
            for name in ADMIN_LISTS:
                lines = source.admin_lines(quota, name)
                if lines or target.admin_lines(quota, name):
                    target.store_admin_text(quota, name, "".join(f"{line}\n" for line in lines))
            users = set(source.booking_users(quota)) | set(target.booking_users(quota))
            for user in sorted(users):
                records = list(source.user_bookings(quota, user))
                target.update_user(quota, user, lambda _old: records)  # noqa: B023
    return quotas
