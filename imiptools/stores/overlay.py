"""The overlay store: a store's view with changes kept in memory only.

:class:`OverlayStore` wraps any :class:`~imiptools.stores.base.Store` (the
*base*). Reads see the base with the overlay's own changes applied; writes
change only the overlay, so the base is never written, not even a lock
file. ``imip-admin whatif`` runs the agent over one, to show what a message
would do without doing it.

Each kind of record keeps its changes in the overlay as the key it is
stored under (user, UID, RECURRENCE-ID, attendee...) mapped to the new
value, ``None`` meaning "removed here". A read asks the base and then
applies those changes; a listing merges the base's keys with the keys
added and removed here. Free/busy, others' free/busy and offers are
replaced whole per key (as the interface replaces them), so base periods
of a replaced key are hidden and the overlay's own are shown instead.

Periods are kept as given, with their uid field set to the UID they are
stored under and duplicates merged (a base may normalise more: the file
store clamps ancient dates and shortens long summaries).

Users are keyed by :func:`~imiptools.stores.names.normalise_user`, like
every store; keys inside a user are exact text (no collisions, no paths).

Locking: :meth:`OverlayStore.lock` is a no-op. Nothing is written, so
nothing needs excluding, and taking the base's lock would write its lock
file. A concurrent delivery may therefore change the base while a what-if
runs; the what-if then mixes the two states, which is fine for a forecast
(it answers "what would happen now", and "now" moved). The lists of an
event's overridden and cancelled instances are asked of the base once per
view; a unit of work's commit starts a new view.

Cost: reads are those of the base plus a scan of the changes, which is
linear in their number: fine for one message, not meant for long runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import field, replace
from datetime import datetime

from imiptools.deferred import dataclass
from imiptools.periods import Period
from imiptools.stores.base import Store
from imiptools.stores.names import normalise_user

Key = tuple[str, ...]


@dataclass
class Changes:
    """Texts written (``str``) or removed (``None``) in the overlay, by key.

    A key is a tuple whose last item names the record within the
    collection given by the items before it (its *prefix*), e.g.
    ``(user, uid, rid)`` for an overridden instance.
    """

    entries: dict[Key, str | None] = field(default_factory=dict)

    def set(self, key: Key, text: str | None) -> None:
        """Record ``key`` as written with ``text`` (``None``: removed)."""
        self.entries[key] = text

    def read(self, key: Key, base: Callable[[], str | None]) -> str | None:
        """What a read of ``key`` sees; ``base`` reads it from the base."""
        return self.entries[key] if key in self.entries else base()

    def within(self, prefix: Key) -> dict[str, str | None]:
        """The changes under ``prefix``: last key item -> text or ``None``."""
        size = len(prefix)
        return {
            key[size]: text
            for key, text in self.entries.items()
            if len(key) == size + 1 and key[:size] == prefix
        }

    def names(self, prefix: Key, base: Iterable[str]) -> list[str]:
        """The names under ``prefix``: the base's, less removals, plus additions.

        Base order is kept; names added here follow in insertion order.
        """
        changes = self.within(prefix)
        names = [name for name in base if changes.get(name, "") is not None]
        seen = set(names)
        return names + [n for n, text in changes.items() if text is not None and n not in seen]

    def merged(self, prefix: Key, base: dict[str, str]) -> dict[str, str]:
        """``base`` (name -> text under ``prefix``) with the changes applied."""
        result = dict(base)
        for name, text in self.within(prefix).items():
            if text is None:
                result.pop(name, None)
            else:
                result[name] = text
        return result


@dataclass(frozen=True)
class Offer:
    """The offers made for one UID in the overlay (which maps a UID whose
    offers were removed to ``None`` instead)."""

    periods: list[Period]
    expires: datetime


def _as_uid(uid: str, periods: Iterable[Period]) -> list[Period]:
    """``periods`` stored under ``uid``: that uid field, duplicates merged, sorted."""
    return sorted({p if p.uid == uid else replace(p, uid=uid) for p in periods})


def _overlapping(periods: Iterable[Period], start: datetime, end: datetime) -> list[Period]:
    return [p for p in periods if p.overlaps(start, end)]


class OverlayStore(Store):
    """A :class:`Store` that reads through to ``base`` and writes to memory.

    Contract: after any sequence of calls, every read returns what the same
    read would return had the same calls been made on (a copy of) the base,
    up to what the base normalises in periods; the base itself is only ever
    read. See the module docstring for periods and locking.
    """

    def __init__(self, base: Store) -> None:
        self.base = base
        self._objects = Changes()
        self._recurrences = Changes()
        self._cancelled = Changes()
        self._cancelled_recurrences = Changes()
        self._counters = Changes()
        #: The base's lists of an event's overridden and cancelled instances,
        #: each read once (:meth:`_base_ids`).
        self._base_listed: dict[Key, list[str]] = {}
        self._freebusy: dict[Key, list[Period]] = {}
        self._freebusy_other: dict[Key, list[Period]] = {}
        self._offers: dict[Key, Offer | None] = {}
        self._requests: dict[str, list[tuple[str, str, str]]] = {}
        self._decisions: dict[str, list[str]] = {}
        self._users: dict[str, None] = {}

    def _user(self, user: str, create: bool = False) -> str:
        """The normalised ``user``; with ``create``, listed by :meth:`users`."""
        uri = normalise_user(user)
        if create:
            self._users[uri] = None
        return uri

    # -- locking and users ----------------------------------------------------

    def lock(self, user: str, timeout: float) -> AbstractContextManager[None]:
        """A no-op: nothing is written to the base (see the module docstring)."""
        self._user(user)
        return nullcontext()

    def users(self) -> Iterator[str]:
        """The base's users, then those the overlay wrote records for."""
        base = list(self.base.users())
        yield from base
        yield from (user for user in self._users if user not in base)

    def added_decisions(self, user: str) -> list[str]:
        """The decision log lines appended through the overlay, oldest first."""
        return list(self._decisions.get(self._user(user), []))

    # -- current objects -----------------------------------------------------

    def get_object(self, user: str, uid: str) -> str | None:
        key = (self._user(user), uid)
        return self._objects.read(key, lambda: self.base.get_object(user, uid))

    def set_object(self, user: str, uid: str, text: str) -> None:
        self._objects.set((self._user(user, create=True), uid), text)

    def remove_object(self, user: str, uid: str) -> None:
        """Remove the overridden instances, then the main object."""
        for rid in self.recurrence_ids(user, uid):
            self.remove_recurrence(user, uid, rid)
        self._objects.set((self._user(user), uid), None)

    def object_uids(self, user: str) -> Iterator[str]:
        """The base's UIDs untouched here, then those touched here (a main
        object or an overridden instance written or removed) that still
        hold a main object or an instance."""
        uri = self._user(user)
        touched = {key[1]: None for key in self._objects.entries if key[0] == uri}
        touched.update((key[1], None) for key in self._recurrences.entries if key[0] == uri)
        yield from (uid for uid in self.base.object_uids(user) if uid not in touched)
        for uid in touched:
            if self.get_object(user, uid) is not None or self.recurrence_ids(user, uid):
                yield uid

    def get_recurrence(self, user: str, uid: str, rid: str) -> str | None:
        key = (self._user(user), uid, rid)
        return self._recurrences.read(key, lambda: self.base.get_recurrence(user, uid, rid))

    def set_recurrence(self, user: str, uid: str, rid: str, text: str) -> None:
        self._recurrences.set((self._user(user, create=True), uid, rid), text)

    def remove_recurrence(self, user: str, uid: str, rid: str) -> None:
        self._recurrences.set((self._user(user), uid, rid), None)

    def recurrence_ids(self, user: str, uid: str) -> list[str]:
        base = self._base_ids("recurrences", user, uid, self.base.recurrence_ids)
        return sorted(self._recurrences.names((self._user(user), uid), base))

    def _base_ids(
        self, kind: str, user: str, uid: str, read: Callable[[str, str], list[str]]
    ) -> list[str]:
        """``read(user, uid)`` of the base, asked once for this view: a unit
        of work holds the user's lock and writes the base only at its
        commit, which starts a new view (:class:`~imiptools.stores.recording.RecordingStore`);
        a what-if reads a moving base anyway (see the module docstring).
        Building a reply lists an event's instances again: on a database
        each list is a round trip."""
        key = (kind, self._user(user), uid)
        if key not in self._base_listed:
            self._base_listed[key] = read(user, uid)
        return self._base_listed[key]

    # -- cancellations -------------------------------------------------------

    def get_cancelled_object(self, user: str, uid: str) -> str | None:
        key = (self._user(user), uid)
        return self._cancelled.read(key, lambda: self.base.get_cancelled_object(user, uid))

    def cancel_object(self, user: str, uid: str, text: str) -> None:
        self._cancelled.set((self._user(user, create=True), uid), text)
        self.remove_object(user, uid)

    def uncancel_object(self, user: str, uid: str) -> None:
        self._cancelled.set((self._user(user), uid), None)

    def get_cancelled_recurrence(self, user: str, uid: str, rid: str) -> str | None:
        key = (self._user(user), uid, rid)
        return self._cancelled_recurrences.read(
            key, lambda: self.base.get_cancelled_recurrence(user, uid, rid)
        )

    def cancel_recurrence(self, user: str, uid: str, rid: str, text: str) -> None:
        self._cancelled_recurrences.set((self._user(user, create=True), uid, rid), text)
        self.remove_recurrence(user, uid, rid)

    def uncancel_recurrence(self, user: str, uid: str, rid: str) -> None:
        self._cancelled_recurrences.set((self._user(user), uid, rid), None)

    def cancelled_recurrence_ids(self, user: str, uid: str) -> list[str]:
        base = self._base_ids("cancelled", user, uid, self.base.cancelled_recurrence_ids)
        return sorted(self._cancelled_recurrences.names((self._user(user), uid), base))

    def cancelled_object_uids(self, user: str) -> Iterator[str]:
        base = self.base.cancelled_object_uids(user)
        yield from self._cancelled.names((self._user(user),), base)

    # -- the user's own free/busy ---------------------------------------------

    def get_freebusy(self, user: str, start: datetime, end: datetime) -> list[Period]:
        """The base's periods of uids not replaced here, plus the overlay's."""
        found = self.base.get_freebusy(user, start, end)
        if end <= start:
            return []
        uri = self._user(user)
        replaced = {key[1]: periods for key, periods in self._freebusy.items() if key[0] == uri}
        kept = [p for p in found if p.uid not in replaced]
        added = [p for periods in replaced.values() for p in _overlapping(periods, start, end)]
        return sorted(kept + added, key=Period.key)

    def set_freebusy_for_uid(self, user: str, uid: str, periods: Iterable[Period]) -> None:
        """Replace the periods of ``uid`` (their ``uid`` field is set to it)."""
        self._freebusy[(self._user(user, create=True), uid)] = _as_uid(uid, periods)

    def freebusy_uids(self, user: str) -> Iterator[str]:
        uri = self._user(user)
        replaced = {key[1]: periods for key, periods in self._freebusy.items() if key[0] == uri}
        yield from (uid for uid in self.base.freebusy_uids(user) if uid not in replaced)
        yield from (uid for uid, periods in replaced.items() if periods)

    # -- others' free/busy ---------------------------------------------------

    def get_freebusy_other(
        self, user: str, other: str, start: datetime, end: datetime
    ) -> list[Period]:
        key = (self._user(user), other)
        if key not in self._freebusy_other:
            return self.base.get_freebusy_other(user, other, start, end)
        return _overlapping(self._freebusy_other[key], start, end)

    def set_freebusy_other(self, user: str, other: str, periods: Iterable[Period]) -> None:
        self._freebusy_other[(self._user(user, create=True), other)] = sorted(set(periods))

    def freebusy_other_users(self, user: str) -> list[str]:
        """The base's others not emptied here, plus those given periods here."""
        uri = self._user(user)
        mine = {k[1]: bool(periods) for k, periods in self._freebusy_other.items() if k[0] == uri}
        base = [o for o in self.base.freebusy_other_users(user) if mine.get(o, True)]
        return sorted(set(base) | {other for other, held in mine.items() if held})

    # -- offers --------------------------------------------------------------

    def get_offers(self, user: str, now: datetime) -> list[Period]:
        """The base's offers of uids not replaced here, plus the overlay's."""
        uri = self._user(user)
        replaced = {key[1]: offer for key, offer in self._offers.items() if key[0] == uri}
        kept = [p for p in self.base.get_offers(user, now) if p.uid not in replaced]
        live = [o for o in replaced.values() if o is not None and o.expires > now]
        return sorted(kept + [p for offer in live for p in offer.periods])

    def set_offers(self, user: str, uid: str, periods: Iterable[Period], expires: datetime) -> None:
        self._offers[(self._user(user, create=True), uid)] = Offer(_as_uid(uid, periods), expires)

    def remove_offers(self, user: str, uid: str) -> None:
        self._offers[(self._user(user), uid)] = None

    def all_offers(self, user: str) -> list[tuple[datetime, Period]]:
        """The base's offers of uids not replaced here, plus the overlay's."""
        uri = self._user(user)
        replaced = {key[1]: offer for key, offer in self._offers.items() if key[0] == uri}
        kept = [(e, p) for e, p in self.base.all_offers(user) if p.uid not in replaced]
        mine = [(o.expires, p) for o in replaced.values() if o is not None for p in o.periods]
        return sorted(kept + mine)

    # -- counter-proposals ---------------------------------------------------

    def get_counters(self, user: str, uid: str) -> dict[str, str]:
        base = self.base.get_counters(user, uid)
        return self._counters.merged((self._user(user), uid), base)

    def set_counter(self, user: str, uid: str, attendee: str, text: str) -> None:
        self._counters.set((self._user(user, create=True), uid, attendee), text)

    def remove_counters(self, user: str, uid: str, attendee: str | None = None) -> None:
        attendees = list(self.get_counters(user, uid)) if attendee is None else [attendee]
        for each in attendees:
            self._counters.set((self._user(user), uid, each), None)

    # -- the decision log ----------------------------------------------------

    def log_decision(self, user: str, line: str) -> None:
        """Keep ``line`` in memory; ValueError if it is not one line."""
        if "\n" in line or "\r" in line:
            raise ValueError("a log line must be one line")
        self._decisions.setdefault(self._user(user, create=True), []).append(line)

    def decisions(self, user: str) -> Iterator[str]:
        """The base's lines, then those appended through the overlay."""
        yield from self.base.decisions(user)
        yield from self.added_decisions(user)

    # -- the queue of requests -------------------------------------------------

    def get_requests(self, user: str) -> list[tuple[str, str, str]]:
        uri = self._user(user)
        if uri in self._requests:
            return list(self._requests[uri])
        return self.base.get_requests(user)

    def queue_request(self, user: str, uid: str, rid: str = "", kind: str = "REQUEST") -> None:
        """Append ``(uid, rid, kind)``; an item for ``(uid, rid)`` keeps its
        place in the queue and takes the new ``kind``."""
        items = self.get_requests(user)
        keys = [item[:2] for item in items]
        if (uid, rid) in keys:
            items[keys.index((uid, rid))] = (uid, rid, kind)
        else:
            items.append((uid, rid, kind))
        self._requests[self._user(user, create=True)] = items

    def dequeue_request(self, user: str, uid: str, rid: str = "") -> None:
        items = self.get_requests(user)
        self._requests[self._user(user)] = [item for item in items if item[:2] != (uid, rid)]
