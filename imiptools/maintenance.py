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

It skips an event whose free/busy cannot have changed since the last run.
What an event's free/busy depends on is its stored records (main object,
overridden and cancelled instances), the user's zone and window, and
"now"; and as "now" moves, the result changes only when an instance leaves
the window (the window's start passes its end) or enters it (the window's
end passes its start). So each run keeps a memo per user
(:meth:`~imiptools.stores.base.Store.get_memo`): per event, a hash of its
records and the span of "now" over which deriving gives the same periods.
An event whose records hash the same and whose span holds the new "now" is
skipped, as its stored periods are what deriving would write. This holds as
long as whoever writes free/busy (the agents, make-freebusy) never goes back
in time, which a system clock gives; an earlier ``--now`` than a memo's
simply re-derives, and ``--reset`` forgets the memo.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import field
from datetime import datetime, timedelta

from imiptools.dates import format_utc, parse_utc
from imiptools.deferred import dataclass
from imiptools.errors import InputError
from imiptools.itip.objects import ItipObject, parse_calendars, scheduling_objects
from imiptools.itip.recurrence import Limits
from imiptools.periods import Period
from imiptools.records import DERIVATION_VERSION, Held, UserRecords, periods_digest
from imiptools.records import LOOKAHEAD as LOOKAHEAD  # make-freebusy's, as before
from imiptools.site import Site

log = logging.getLogger(__name__)

#: A per-user refresh run by ``make-freebusy`` under the user's lock.
Refresh = Callable[[UserRecords], object]

_TICK = timedelta(microseconds=1)


@contextmanager
def locked_records(site: Site, user: str, now: datetime) -> Iterator[UserRecords]:
    """``user``'s records, under the user's lock (LockTimeout after the
    configured ``lock_timeout``)."""
    with site.store.lock(user, site.settings.lock_timeout):
        yield site.records(user, now)


# -- free/busy ------------------------------------------------------------------


@dataclass
class Refreshed:
    """What :func:`refresh_window` did: events re-derived, skipped as
    unchanged since the last run, and unreadable (their periods kept)."""

    derived: int = 0
    skipped: int = 0
    failed: int = 0

    def __iadd__(self, other: Refreshed) -> Refreshed:
        self.derived += other.derived
        self.skipped += other.skipped
        self.failed += other.failed
        return self


def refresh_window(records: UserRecords) -> Refreshed:
    """Re-derive the free/busy of every stored event (and drop that of
    indexed uids no longer stored), over the window at ``records.now``,
    skipping each event whose free/busy cannot have changed since the last
    run (see :func:`derive_event` and the module docstring).

    An event whose stored data cannot be read keeps its periods (logged).
    The memo is written last and only when it changed: a crash part way
    leaves the last run's memo, which still tells the truth.
    """
    memo = read_memo(records)
    kept: dict[str, Held] = {}
    counts = Refreshed()
    uids = set(records.uids()) | set(records.store.freebusy_uids(records.user))
    for uid in sorted(uids):
        try:
            fingerprint = event_fingerprint(records, uid)
            previous = memo.get(uid)
            if previous is not None and previous.holds(fingerprint, records.now):
                kept[uid] = previous
                counts.skipped += 1
                continue
            span, periods = _derive(records, uid)
        except InputError as exc:
            log.warning("user=%s uid=%r: free/busy kept: %s", records.user, uid[:200], exc)
            counts.failed += 1
            continue
        counts.derived += 1
        if span is not None:
            kept[uid] = Held(fingerprint, *span, periods_digest(periods))
    if kept != memo:
        write_memo(records, kept)
    log.info(
        "user=%s free/busy: %d event(s) re-derived, %d unchanged (skipped), %d unreadable",
        records.user,
        counts.derived,
        counts.skipped,
        counts.failed,
    )
    return counts


# -- the memo: what each event's free/busy was derived from, and how long it holds --

#: The memo (:meth:`~imiptools.stores.base.Store.get_memo`) of make-freebusy.
MEMO = "freebusy"
#: Bumped whenever what a memo entry means changes (old memos are then ignored).
MEMO_VERSION = DERIVATION_VERSION


def event_fingerprint(records: UserRecords, uid: str) -> str:
    """A hash of everything ``uid``'s free/busy is derived from but the
    time: its stored main object, overridden instances and cancelled
    instances (the user's zone and window are in :func:`memo_context`)."""
    return records.fingerprint(uid)


def memo_context(records: UserRecords) -> str:
    """What every entry of a user's memo also depends on: the format, the
    user, the zone and the window's bounds (a change ignores the memo)."""
    return records.derivation_context()


def read_memo(records: UserRecords) -> dict[str, Held]:
    """The user's memo, if it is readable and of the same context; else empty."""
    text = records.store.get_memo(records.user, MEMO)
    if not text:
        return {}
    try:
        data = json.loads(text)
        if data["context"] != memo_context(records):
            return {}
        return {
            uid: Held(fingerprint, parse_utc(since), parse_utc(until) if until else None, periods)
            for uid, (fingerprint, since, until, periods) in data["events"].items()
        }
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("user=%s: make-freebusy memo ignored: %s", records.user, exc)
        return {}


def write_memo(records: UserRecords, events: dict[str, Held]) -> None:
    """Keep ``events`` as the user's memo (dropped when there are none)."""
    if not events:
        records.store.set_memo(records.user, MEMO, None)
        return
    entries = {
        uid: [held.fingerprint, format_utc(held.since), _utc_or_empty(held.until), held.periods]
        for uid, held in sorted(events.items())
    }
    text = json.dumps({"context": memo_context(records), "events": entries}, ensure_ascii=False)
    records.store.set_memo(records.user, MEMO, text)


def _utc_or_empty(value: datetime | None) -> str:
    return format_utc(value) if value is not None else ""


def derive_event(records: UserRecords, uid: str) -> tuple[datetime, datetime | None] | None:
    """Make ``uid``'s free/busy match its stored object at ``records.now``
    (as :meth:`UserRecords.refresh_freebusy`) and say for which "now" the
    result holds: ``(since, until)``, None when it cannot be told.

    The expansion looks :data:`LOOKAHEAD` beyond the window, so it knows
    the first instance that will enter the window; the first period to
    leave it is the earliest to end. Between the two, deriving again gives
    the same periods. An expansion cut short by a bound (instance cap,
    iterations, time) cannot tell: the periods are then derived as usual
    and the event is derived again next time. Raises InputError.
    """
    return _derive(records, uid)[0]


def _derive(
    records: UserRecords, uid: str
) -> tuple[tuple[datetime, datetime | None] | None, list[Period]]:
    """:func:`derive_event`, and the periods it wrote (make-freebusy's memo
    records what they were derived from: no derivation record is written)."""
    derivation = records.derive(records.stored(uid))
    records.store.set_freebusy_for_uid(records.user, uid, derivation.periods)
    return derivation.span, derivation.periods


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
    """Regenerate the user's whole free/busy from the stored objects, and
    forget make-freebusy's memo (the next run derives every event).

    Periods of uids that are not stored objects are dropped; see
    :meth:`~imiptools.stores.base.Store.replace_freebusy` for crash safety.
    """
    records.store.set_memo(records.user, MEMO, None)
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
