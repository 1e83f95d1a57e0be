"""Store maintenance: the periodic jobs of ``imip-admin``, per calendar user.

The original imip-agent's ``make_freebusy.py`` and friends, over the
:class:`~imiptools.stores.base.Store` interface of a
:class:`~imiptools.site.Site`. Every function works on one
user's :class:`~imiptools.records.UserRecords` and expects the caller to
hold that user's lock (:func:`locked_records`), so that it can run while
agents process mail. Each is idempotent: running it twice changes nothing
the second time, and rerunning after a crash converges.

Free/busy is derived from the stored objects over the window around "now"
(:meth:`UserRecords.refresh_freebusy`); as time passes, instances of
indefinitely recurring events enter the window and only a refresh records
them. :func:`refresh_window` is that refresh for every event of a user.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from imiptools.errors import InputError
from imiptools.itip.objects import ItipObject, parse_calendars, scheduling_objects
from imiptools.itip.recurrence import Limits
from imiptools.periods import Period
from imiptools.records import UserRecords
from imiptools.site import Site

log = logging.getLogger(__name__)

#: A per-user refresh run by ``make-freebusy`` under the user's lock.
Refresh = Callable[[UserRecords], None]

_TICK = timedelta(microseconds=1)


@contextmanager
def locked_records(site: Site, user: str, now: datetime) -> Iterator[UserRecords]:
    """``user``'s records, under the user's lock (LockTimeout after the
    configured ``lock_timeout``)."""
    with site.store.lock(user, site.settings.lock_timeout):
        yield site.records(user, now)


# -- free/busy ------------------------------------------------------------------


def refresh_window(records: UserRecords) -> None:
    """Re-derive the free/busy of every stored event (and drop that of
    indexed uids no longer stored), over the window at ``records.now``.

    An event whose stored data cannot be read keeps its periods (logged).
    """
    uids = set(records.uids()) | set(records.store.freebusy_uids(records.user))
    for uid in sorted(uids):
        try:
            records.refresh_freebusy(uid)
        except InputError as exc:
            log.warning("user=%s uid=%r: free/busy kept: %s", records.user, uid[:200], exc)


def derived_periods(records: UserRecords) -> tuple[list[Period], list[str]]:
    """The free/busy every stored event gives, and the uids that failed.

    A uid whose stored data cannot be read or expanded is listed as failed
    and contributes the periods it has now (nothing is lost by a reset).
    """
    periods: list[Period] = []
    failed: list[str] = []
    for uid in sorted(records.uids()):
        try:
            stored = records.stored(uid)
            periods += records.periods(stored) if stored is not None else []
        except InputError as exc:
            log.warning("user=%s uid=%r unreadable: %s", records.user, uid[:200], exc)
            failed.append(uid)
    if failed:
        kept = set(failed)
        periods += [p for p in records.store.all_freebusy(records.user) if p.uid in kept]
    return periods, failed


def reset_freebusy(records: UserRecords) -> None:
    """Regenerate the user's whole free/busy from the stored objects.

    Periods of uids that are not stored objects are dropped; see
    :meth:`~imiptools.stores.base.Store.replace_freebusy` for crash safety.
    """
    periods, _ = derived_periods(records)
    records.store.replace_freebusy(records.user, periods)


# -- offers and purging ---------------------------------------------------------


def expire_offers(records: UserRecords) -> list[str]:
    """Drop counter-proposal offers that expired by ``records.now``; their uids."""
    return records.store.expire_offers(records.user, records.now)


@dataclass
class Purged:
    """What :func:`purge` removed (uids), and the cancellations it kept
    because their dates could not be read."""

    objects: list[str] = field(default_factory=list)
    cancellations: list[str] = field(default_factory=list)
    undated: list[str] = field(default_factory=list)


def ends_before(records: UserRecords, obj: ItipObject, before: datetime) -> bool:
    """True if no instance of ``obj`` ends after ``before`` (cancelled ones
    aside); an expansion cut short by a bound counts as not ended.

    Raises :class:`~imiptools.errors.CalendarDataError` for unusable data.
    """
    limits = Limits(before, before + _TICK, records.window.max_instances)
    expansion = records.expand(obj, limits)
    return not expansion.instances and not expansion.truncated


def purge(records: UserRecords, before: datetime) -> Purged:
    """Remove the user's events that ended before ``before``, and the
    records of events cancelled whole that ended before it.

    Everything of a purged uid goes: queued requests, counters, offers,
    free/busy (and its index), cancelled instances, the object with its
    overridden instances. The object goes last, so a crash part way leaves
    it to be found and purged by a rerun. Unreadable objects are kept.
    """
    purged = Purged()
    for uid in sorted(records.uids()):
        stored = _readable(records, uid)
        if stored is not None and ends_before(records, stored, before):
            _forget(records, uid)
            purged.objects.append(uid)
    for uid in sorted(records.store.cancelled_object_uids(records.user)):
        verdict = _cancellation_ended(records, uid, before)
        if verdict is None:
            purged.undated.append(uid)
        elif verdict:
            _forget(records, uid)
            records.store.uncancel_object(records.user, uid)
            purged.cancellations.append(uid)
    return purged


def _readable(records: UserRecords, uid: str) -> ItipObject | None:
    try:
        return records.stored(uid)
    except InputError as exc:
        log.warning("user=%s uid=%r kept, unreadable: %s", records.user, uid[:200], exc)
        return None


def _cancellation_ended(records: UserRecords, uid: str, before: datetime) -> bool | None:
    """Whether the cancelled event ``uid`` ended before ``before``; None:
    its cancellation says no usable dates."""
    text = records.store.get_cancelled_object(records.user, uid)
    try:
        calendars = parse_calendars(text or "")
        objects = [o for c in calendars for o in scheduling_objects(c) if o.uid == uid]
        if not objects or objects[0].master is None or "DTSTART" not in objects[0].master:
            return None
        return ends_before(records, objects[0], before)
    except InputError:
        return None


def _forget(records: UserRecords, uid: str) -> None:
    store, user = records.store, records.user
    for item_uid, rid, _ in store.get_requests(user):
        if item_uid == uid:
            store.dequeue_request(user, uid, rid)
    store.remove_counters(user, uid)
    store.remove_offers(user, uid)
    store.set_freebusy_for_uid(user, uid, [])
    for rid in store.cancelled_recurrence_ids(user, uid):
        store.uncancel_recurrence(user, uid, rid)
    store.remove_object(user, uid)
