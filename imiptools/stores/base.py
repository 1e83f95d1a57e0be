"""The store interface: what every store (file now, PostgreSQL later) offers.

Stores keep iCalendar text and period records per calendar user and know
nothing of policy. A calendar user is identified by a normalised ``mailto:``
URI (see :func:`imiptools.stores.names.normalise_user`). UIDs and
RECURRENCE-IDs are untrusted text: implementations must map them to
locations that can never escape the user's area.

Every mutating method is atomic on its own (a crash leaves the old or the new
state of what it wrote, never a mixture). Callers hold :meth:`Store.lock` for
the user around a unit of work; reprocessing the same message converges.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import NamedTuple

from imiptools.fileutil import atomic_write, remove_file
from imiptools.periods import Period
from imiptools.stores.transaction import Transaction

#: The span :meth:`Store.all_freebusy` covers: every period a store can hold.
ALL_TIME = (datetime(1900, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))


class EventTexts(NamedTuple):
    """Every stored text of one event, as :class:`EventReader` reads them:
    the main object (None: none), the overridden instances and the
    cancelled ones as (RECURRENCE-ID, text) sorted by RECURRENCE-ID (as
    :meth:`Store.recurrence_ids` and :meth:`Store.cancelled_recurrence_ids`
    list them; a text None: gone meanwhile), the whole-event cancellation
    and the counter-proposals (as :meth:`Store.get_counters`)."""

    uid: str
    text: str | None
    recurrences: list[tuple[str, str | None]]
    cancellation: str | None
    cancelled: list[tuple[str, str | None]]
    counters: dict[str, str]


class EventReader:
    """Reads the texts of many events of one user in one pass
    (:meth:`Store.event_reader`, for ``imip-admin check``), each through the
    store's own getters: what any store gives. A store may read faster
    (the file store opens each directory once), never differently."""

    def __init__(self, store: Store, user: str) -> None:
        self.store, self.user = store, user

    def texts(self, uid: str) -> EventTexts:
        """Every stored text of ``uid`` (see :class:`EventTexts`)."""
        store, user = self.store, self.user
        return EventTexts(
            uid,
            store.get_object(user, uid),
            [
                (rid, store.get_recurrence(user, uid, rid))
                for rid in store.recurrence_ids(user, uid)
            ],
            store.get_cancelled_object(user, uid),
            [
                (rid, store.get_cancelled_recurrence(user, uid, rid))
                for rid in store.cancelled_recurrence_ids(user, uid)
            ],
            store.get_counters(user, uid),
        )

    def derivation(self, uid: str) -> str | None:
        """:meth:`Store.get_derivation` of ``uid``."""
        return self.store.get_derivation(self.user, uid)


class Store(ABC):
    """Per-user calendar records (the original's layout, RFC-neutral)."""

    # -- locking ---------------------------------------------------------

    @abstractmethod
    def lock(self, user: str, timeout: float) -> AbstractContextManager[None]:
        """Hold the user's exclusive lock; raise LockTimeout after ``timeout`` s."""

    def commit(self, transaction: Transaction) -> None:
        """Make every write of ``transaction`` happen: its store calls, its
        writes in other lock domains (held by the caller) and its messages
        (spooled). The caller holds the user's lock.

        Contract: after a crash at any point, the store holds all of it or
        none of it by the time the user's lock is next taken (a durable
        store overrides this: see :mod:`imiptools.stores.file`). This
        default applies each part in turn, for stores that are not durable
        (an overlay for a what-if).
        """
        for directory in transaction.foreign.values():
            for path, text in directory.writes.items():
                if text is None:
                    remove_file(path)
                else:
                    atomic_write(path, text)
        for name, args in transaction.calls:
            getattr(self, name)(*args)
        for uid, text in transaction.derivations.items():
            self.set_derivation(transaction.user, uid, text)
        for message in transaction.messages:
            assert transaction.outbox is not None
            transaction.outbox.put(
                message.message, message.envelope_from, message.recipients, key=message.key
            )

    # -- users -----------------------------------------------------------

    @abstractmethod
    def users(self) -> Iterator[str]:
        """The calendar users the store holds (normalised URIs)."""

    # -- current objects (objects/UID, recurrences/UID/RID) --------------

    @abstractmethod
    def get_object(self, user: str, uid: str) -> str | None:
        """The stored iCalendar text of the event ``uid`` (its main object)."""

    @abstractmethod
    def set_object(self, user: str, uid: str, text: str) -> None:
        """Store the main object of ``uid`` (replacing any)."""

    @abstractmethod
    def remove_object(self, user: str, uid: str) -> None:
        """Forget ``uid`` entirely: main object and overridden instances."""

    @abstractmethod
    def object_uids(self, user: str) -> Iterator[str]:
        """UIDs of the current (not cancelled) events, in no given order.

        An event is current when it has a main object *or* at least one
        overridden instance: an instance-only invitation (RFC 5546 §3.2.2,
        a REQUEST with RECURRENCE-ID and no master, as Outlook, Evolution
        and Thunderbird send) is held only in ``recurrences``, and every
        listing (export, show, check, free/busy regeneration, copying) must
        see it. Callers that need the main object read :meth:`get_object`.
        """

    @abstractmethod
    def get_recurrence(self, user: str, uid: str, rid: str) -> str | None:
        """The stored overridden instance ``rid`` of ``uid``."""

    @abstractmethod
    def set_recurrence(self, user: str, uid: str, rid: str, text: str) -> None:
        """Store an overridden instance (RECURRENCE-ID normalised as ``rid``)."""

    @abstractmethod
    def remove_recurrence(self, user: str, uid: str, rid: str) -> None:
        """Remove one overridden instance, if present."""

    @abstractmethod
    def recurrence_ids(self, user: str, uid: str) -> list[str]:
        """The normalised RECURRENCE-IDs of stored overridden instances, sorted."""

    # -- cancellations ---------------------------------------------------

    @abstractmethod
    def get_cancelled_object(self, user: str, uid: str) -> str | None:
        """The cancelled main object of ``uid``, if it was cancelled whole."""

    @abstractmethod
    def cancel_object(self, user: str, uid: str, text: str) -> None:
        """Record ``uid`` as cancelled with the CANCEL's text, then remove the
        current main object and its overridden instances."""

    @abstractmethod
    def uncancel_object(self, user: str, uid: str) -> None:
        """Forget a whole-event cancellation (the event was re-requested)."""

    @abstractmethod
    def get_cancelled_recurrence(self, user: str, uid: str, rid: str) -> str | None:
        """The cancellation of one instance, if any."""

    @abstractmethod
    def cancel_recurrence(self, user: str, uid: str, rid: str, text: str) -> None:
        """Record instance ``rid`` of ``uid`` as cancelled; remove its override."""

    @abstractmethod
    def uncancel_recurrence(self, user: str, uid: str, rid: str) -> None:
        """Forget the cancellation of one instance."""

    @abstractmethod
    def cancelled_recurrence_ids(self, user: str, uid: str) -> list[str]:
        """Normalised RECURRENCE-IDs of cancelled instances of ``uid``, sorted."""

    @abstractmethod
    def cancelled_object_uids(self, user: str) -> Iterator[str]:
        """UIDs of the events cancelled whole, in no given order."""

    # -- the user's own free/busy ---------------------------------------

    @abstractmethod
    def get_freebusy(self, user: str, start: datetime, end: datetime) -> list[Period]:
        """The user's periods overlapping ``[start, end)``, sorted.

        Cost must depend on the periods in that span, not on the total held.
        """

    @abstractmethod
    def set_freebusy_for_uid(self, user: str, uid: str, periods: Iterable[Period]) -> None:
        """Replace every period of event ``uid`` with ``periods`` (maybe none)."""

    @abstractmethod
    def freebusy_uids(self, user: str) -> Iterator[str]:
        """UIDs that have periods in the user's free/busy (for checks)."""

    def all_freebusy(self, user: str) -> list[Period]:
        """Every period of the user's free/busy, sorted (for maintenance)."""
        return self.get_freebusy(user, *ALL_TIME)

    def replace_freebusy(self, user: str, periods: Iterable[Period]) -> None:
        """Make the user's whole free/busy exactly ``periods`` (by their uid).

        Periods of uids not among ``periods`` are dropped. Each write is
        atomic; a crash part way leaves every period as before or as after,
        and rerunning converges. This default works through
        :meth:`set_freebusy_for_uid`; stores override it to also drop
        records their indexes lost.
        """
        by_uid: dict[str, list[Period]] = {}
        for period in periods:
            by_uid.setdefault(period.uid, []).append(period)
        for uid in sorted(set(self.freebusy_uids(user)) | by_uid.keys()):
            self.set_freebusy_for_uid(user, uid, by_uid.get(uid, []))

    # -- others' free/busy (freebusy-other/USER) -------------------------

    @abstractmethod
    def get_freebusy_other(
        self, user: str, other: str, start: datetime, end: datetime
    ) -> list[Period]:
        """Periods received from ``other`` overlapping ``[start, end)``."""

    @abstractmethod
    def set_freebusy_other(self, user: str, other: str, periods: Iterable[Period]) -> None:
        """Replace what is known of ``other``'s free/busy."""

    @abstractmethod
    def freebusy_other_users(self, user: str) -> list[str]:
        """The others whose free/busy the user holds (as given), sorted."""

    # -- offers: periods we proposed in COUNTERs, held until they expire -----

    @abstractmethod
    def get_offers(self, user: str, now: datetime) -> list[Period]:
        """The user's offers that have not expired at ``now``, sorted."""

    @abstractmethod
    def set_offers(self, user: str, uid: str, periods: Iterable[Period], expires: datetime) -> None:
        """Hold ``periods`` for event ``uid`` until ``expires`` (replacing its offers)."""

    @abstractmethod
    def remove_offers(self, user: str, uid: str) -> None:
        """Drop the offers made for ``uid``."""

    @abstractmethod
    def all_offers(self, user: str) -> list[tuple[datetime, Period]]:
        """Every offer with its expiry, expired ones included, sorted."""

    def expire_offers(self, user: str, now: datetime) -> list[str]:
        """Drop the offers of every uid whose offers have all expired at ``now``.

        Returns those uids, sorted. Idempotent; the caller holds the lock.
        """
        live: dict[str, bool] = {}
        for expires, period in self.all_offers(user):
            live[period.uid] = live.get(period.uid, False) or expires > now
        expired = sorted(uid for uid, alive in live.items() if not alive)
        for uid in expired:
            self.remove_offers(user, uid)
        return expired

    # -- counter-proposals (counters/UID/ATTENDEE) ---------------------

    @abstractmethod
    def get_counters(self, user: str, uid: str) -> dict[str, str]:
        """Stored COUNTERs of ``uid``: attendee URI -> iCalendar text."""

    @abstractmethod
    def set_counter(self, user: str, uid: str, attendee: str, text: str) -> None:
        """Store ``attendee``'s COUNTER for ``uid`` (replacing theirs)."""

    @abstractmethod
    def remove_counters(self, user: str, uid: str, attendee: str | None = None) -> None:
        """Remove one attendee's counter, or all of ``uid``'s."""

    # -- the decision log (append-only) -----------------------------------

    @abstractmethod
    def log_decision(self, user: str, line: str) -> None:
        """Append one line (no newlines in it) to the user's decision log."""

    @abstractmethod
    def decisions(self, user: str) -> Iterator[str]:
        """The lines of the user's decision log, oldest first."""

    # -- the queue of items awaiting the user (requests) ----------------

    @abstractmethod
    def get_requests(self, user: str) -> list[tuple[str, str, str]]:
        """Queued items as (uid, rid or "", kind) in arrival order."""

    @abstractmethod
    def queue_request(self, user: str, uid: str, rid: str = "", kind: str = "REQUEST") -> None:
        """Queue an item for the user's attention (idempotent)."""

    @abstractmethod
    def dequeue_request(self, user: str, uid: str, rid: str = "") -> None:
        """Remove an item from the queue, if present."""

    # -- memos: what a maintenance job derived, to skip the work next time ----

    def get_memo(self, user: str, name: str) -> str | None:
        """The text kept under ``name`` for ``user`` by :meth:`set_memo`
        (None: none kept).

        A memo is derived data that only saves work (``make-freebusy``
        keeps what it derived each event's free/busy from, see
        :mod:`imiptools.maintenance`): a store may lose one at any time, and
        keeping none at all (this default) is correct, only slower. Names
        are lower-case letters, digits and ``-``.
        """
        return None

    def set_memo(self, user: str, name: str, text: str | None) -> None:
        """Keep ``text`` under ``name`` for ``user`` (``None``: drop it),
        atomically: a reader sees the old memo or the new one (or none).
        The caller holds the user's lock. This default keeps nothing."""
        return None

    # -- derivation records: what an event's free/busy was last derived from ----

    def keeps_derivations(self) -> bool:
        """Whether :meth:`set_derivation` keeps anything: when not, callers
        need not work out a record (nor read what it hashes). This default
        keeps none."""
        return False

    def get_derivation(self, user: str, uid: str) -> str | None:
        """The text kept for ``uid`` of ``user`` by :meth:`set_derivation`
        (None: none kept).

        A derivation record says which texts an event's free/busy was
        derived from and what that gave (see
        :meth:`~imiptools.records.UserRecords.record_derivation`): derived
        data that only saves work (``imip-admin check`` takes it instead of
        parsing the event again), whose reader believes it only when its
        own digest and every hash in it match what is stored. So a store
        may keep it without fsync, lose it, or keep an old one after a
        crash; keeping none at all (this default) is correct, only slower.
        """
        return None

    def set_derivation(self, user: str, uid: str, text: str | None) -> None:
        """Keep ``text`` as the derivation record of ``uid`` (``None``:
        drop it), neither necessarily atomically nor durably (never an
        fsync): the record carries its own digest, so a reader refuses one
        torn, old or half overwritten (see :meth:`get_derivation`). Writing it is no store write
        of a unit of work (a transaction carries it beside its calls, see
        :attr:`~imiptools.stores.transaction.Transaction.derivations`), and
        failing to is no error. The caller holds the user's lock. This
        default keeps nothing."""
        return None

    # -- reading many events at once (imip-admin check) ---------------------------

    def event_reader(self, user: str) -> AbstractContextManager[EventReader]:
        """An :class:`EventReader` of ``user``'s events for the block, which
        the caller runs under the user's lock (the reader may keep what it
        opened or listed for the whole block). This default reads through
        the getters."""
        return nullcontext(EventReader(self, user))
