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
from contextlib import AbstractContextManager
from datetime import datetime

from imiptools.periods import Period


class Store(ABC):
    """Per-user calendar records (the original's layout, RFC-neutral)."""

    # -- locking ---------------------------------------------------------

    @abstractmethod
    def lock(self, user: str, timeout: float) -> AbstractContextManager[None]:
        """Hold the user's exclusive lock; raise LockTimeout after ``timeout`` s."""

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
        """UIDs of the current (not cancelled) objects, in no given order."""

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

    # -- others' free/busy (freebusy-other/USER) -------------------------

    @abstractmethod
    def get_freebusy_other(
        self, user: str, other: str, start: datetime, end: datetime
    ) -> list[Period]:
        """Periods received from ``other`` overlapping ``[start, end)``."""

    @abstractmethod
    def set_freebusy_other(self, user: str, other: str, periods: Iterable[Period]) -> None:
        """Replace what is known of ``other``'s free/busy."""

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
