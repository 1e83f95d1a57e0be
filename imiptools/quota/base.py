"""The quota ledger interface: what every ledger (files now, a database later) offers.

A ledger keeps, per quota group (``rooms``), the admin lists (limits,
groups, exempt users, delegates, zone: see :mod:`imiptools.quota.model`)
and the booking records of the resources that count in it, one set of
records per user. Policy code reads a :class:`~imiptools.quota.model.QuotaState`
(:meth:`QuotaLedger.snapshot`); confirmation steps and maintenance jobs
update records through this interface only.

Contracts every implementation keeps (``tests/quota/contract.py`` checks them):

* **Locks.** :meth:`QuotaLedger.locked` holds the locks of a set of quotas,
  taken in sorted name order (duplicates once), each with the deadline
  ``timeout`` (:class:`~imiptools.errors.LockTimeout`, exit 75, when it
  passes). A unit of work takes the resource's store lock first, then its
  quota locks, so that concurrent deliveries can never deadlock; a lock
  requested out of that order raises
  :class:`~imiptools.quota.model.LockOrderError`. Updates made while the
  quota's lock is held use it (check, then write, in one critical
  section); an update outside takes that quota's lock alone, with the
  ledger's own ``timeout``. An instance belongs to one thread.
* **Transactions.** :meth:`QuotaLedger.defer` sends the writes of held
  quotas into a unit of work's
  :class:`~imiptools.stores.transaction.Transaction`: they are seen at
  once by this instance's reads and reach the ledger when the transaction
  commits, together with the store writes and the replies (the README's
  "Crash safety"). Whoever next takes a quota's lock first completes the
  deferred writes of a transaction that committed and drops those of one
  that did not, so a crash at any point leaves the old state or the new.
* **Records.** One record per (user, resource, uid, rid); updates are
  atomic per user and idempotent (running one twice changes nothing the
  second time). Reads take no lock and see a consistent state per user.
* **Admin lists.** Kept as lines as an admin wrote them (comments
  included); :meth:`QuotaLedger.write_admin_file` validates every line
  before anything is written; a bad stored line makes the reading methods
  raise ValueError naming where it is (:meth:`QuotaLedger.location`) and
  its line number.
* Quota names are verbatim safe components
  (:func:`~imiptools.quota.model.check_quota_name`: UnsafeName, 65, else).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import datetime, tzinfo
from typing import TypeVar

from imiptools.dates import resolve_zone
from imiptools.quota.limits import QuotaBooking, QuotaLimit
from imiptools.quota.model import (
    QuotaState,
    content_lines,
    parse_group_line,
    parse_limit,
    parse_user,
    same_event,
    validate_admin_text,
)
from imiptools.stores.transaction import Transaction

T = TypeVar("T")

#: A change of one user's records: old records -> new records.
Change = Callable[[tuple[QuotaBooking, ...]], list[QuotaBooking]]


class QuotaLedger(ABC):
    """The quota groups of a site (see the module docstring for the contract)."""

    #: Deadline in seconds for the quota locks that updates take themselves.
    timeout: float = 30.0

    # -- locks and transactions --------------------------------------------------

    @abstractmethod
    def locked(self, quotas: Iterable[str], timeout: float) -> AbstractContextManager[None]:
        """Hold the locks of all ``quotas``, taken in sorted order (duplicates
        once); LockTimeout after ``timeout`` seconds for any of them."""

    @abstractmethod
    def defer(self, transaction: Transaction | None) -> None:
        """Send the record writes of the quotas held with :meth:`locked` to
        ``transaction`` (None: write at once); an update that takes its
        quota's lock alone writes at once. See the module docstring."""

    # -- quota groups and their admin lists ------------------------------------------

    @abstractmethod
    def quotas(self) -> list[str]:
        """The names of the quota groups the ledger holds."""

    @abstractmethod
    def exists(self, quota: str) -> bool:
        """Whether the quota group ``quota`` exists."""

    @abstractmethod
    def location(self, quota: str | None = None, name: str | None = None) -> str:
        """Where the ledger (or ``quota``, or its admin list ``name``) is
        kept, for people: a directory, a file, a database."""

    @abstractmethod
    def admin_lines(self, quota: str, name: str) -> list[str]:
        """The lines of admin list ``name`` as written (comments and blanks
        included; [] when there is none)."""

    @abstractmethod
    def store_admin_text(self, quota: str, name: str, text: str) -> None:
        """Replace admin list ``name`` of ``quota`` with ``text`` (validated
        by the caller), atomically, under the quota's lock."""

    def write_admin_file(self, quota: str, name: str, lines: Iterable[str]) -> None:
        """Replace admin list ``name`` of ``quota`` with ``lines``, each
        validated first (ValueError ``name:LINE: why``; nothing written)."""
        text = "".join(line + "\n" for line in lines)
        validate_admin_text(name, text)
        self.store_admin_text(quota, name, text)

    def _parsed(self, quota: str, name: str, parse: Callable[[str], T]) -> list[T]:
        """``parse`` of each content line of admin list ``name``; a bad line
        raises ValueError naming where it is and its line number."""
        values = []
        for number, line in content_lines("\n".join(self.admin_lines(quota, name))):
            try:
                values.append(parse(line))
            except ValueError as exc:
                raise ValueError(f"{self.location(quota, name)}:{number}: {exc}") from exc
        return values

    def limits(self, quota: str) -> list[QuotaLimit]:
        """The limits of ``quota`` in list order ([] without any)."""
        return self._parsed(quota, "limits", parse_limit)

    def groups(self, quota: str) -> dict[str, str]:
        """User (normalised) to group name; a later line for a user wins."""
        return dict(self._parsed(quota, "groups", parse_group_line))

    def group_of(self, quota: str, user: str) -> str | None:
        """The group of ``user`` in ``quota``, or None."""
        return self.groups(quota).get(parse_user(user))

    def members(self, quota: str, group: str) -> set[str]:
        """The users (normalised) of ``group`` in ``quota``."""
        return {user for user, name in self.groups(quota).items() if name == group}

    def exempt(self, quota: str) -> set[str]:
        """The exempt users (normalised) of ``quota``."""
        return set(self._parsed(quota, "exempt", parse_user))

    def is_exempt(self, quota: str, user: str) -> bool:
        """True if ``user`` is listed as exempt."""
        return parse_user(user) in self.exempt(quota)

    def delegates(self, quota: str) -> list[str]:
        """The resources (normalised URIs) that may stand in for each other."""
        return self._parsed(quota, "delegates", parse_user)

    def zone(self, quota: str) -> tzinfo | None:
        """The zone of the ``tzid`` list (None without one); ValueError if unknown."""
        lines = [line for _, line in content_lines("\n".join(self.admin_lines(quota, "tzid")))]
        if not lines:
            return None
        zone = resolve_zone(lines[0])
        if zone is None:
            raise ValueError(f"{self.location(quota, 'tzid')}: unknown time zone {lines[0]!r}")
        return zone

    def snapshot(self, quota: str, user: str | None = None) -> QuotaState:
        """Everything about ``quota`` at once; ValueError for a bad list.

        With ``user``, the bookings are only those of ``user`` and of the
        members of their group (all that a decision for them needs).
        """
        groups = self.groups(quota)
        scope = None
        if user is not None:
            group = groups.get(user)
            scope = {user} | {u for u, g in groups.items() if group and g == group}
        return QuotaState(
            quota,
            tuple(self.limits(quota)),
            groups,
            frozenset(self.exempt(quota)),
            tuple(self.delegates(quota)),
            tuple(self.bookings(quota, scope)),
            self.zone(quota),
        )

    # -- booking records -------------------------------------------------------------

    @abstractmethod
    def booking_users(self, quota: str) -> list[str]:
        """The users with records in ``quota`` (sorted)."""

    @abstractmethod
    def user_bookings(self, quota: str, user: str) -> tuple[QuotaBooking, ...]:
        """``user``'s records in ``quota``, in time order
        (:func:`~imiptools.quota.model.booking_order`)."""

    @abstractmethod
    def update_user(self, quota: str, user: str, change: Change) -> int:
        """Apply ``change`` to ``user``'s records in ``quota``, under the
        quota's lock (see the module docstring), writing only when something
        changed; returns how many records differ."""

    def bookings(self, quota: str, users: Iterable[str] | None = None) -> list[QuotaBooking]:
        """The records of ``users`` (normalised; default: everyone) in
        ``quota``, by user, each user's in time order."""
        chosen = self.booking_users(quota) if users is None else sorted(set(users))
        found: list[QuotaBooking] = []
        for user in chosen:
            found += self.user_bookings(quota, user)
        return found

    def add_bookings(self, quota: str, items: Iterable[QuotaBooking]) -> None:
        """Record ``items``; a record with the same key replaces the old one."""
        by_user: dict[str, list[QuotaBooking]] = {}
        for item in items:
            by_user.setdefault(item.user, []).append(item)
        for user, added in by_user.items():

            def merged(old: tuple[QuotaBooking, ...]) -> list[QuotaBooking]:
                records = {b.key: b for b in old}
                records.update((b.key, b) for b in added)  # noqa: B023 (used at once)
                return list(records.values())

            self.update_user(quota, user, merged)

    def remove_bookings(
        self,
        quota: str,
        user: str,
        resource: str,
        uid: str,
        rids: Iterable[str] | None = None,
    ) -> int:
        """Drop the records of (user, resource, uid), only ``rids`` if given.

        Returns how many were dropped (0 when there were none: idempotent).
        """
        wanted = None if rids is None else set(rids)

        def kept(old: tuple[QuotaBooking, ...]) -> list[QuotaBooking]:
            return [
                b
                for b in old
                if (b.resource, b.uid) != (resource, uid)
                or (wanted is not None and b.rid not in wanted)
            ]

        return self.update_user(quota, user, kept)

    def replace_event(
        self,
        quota: str,
        resource: str,
        uid: str,
        items: Iterable[QuotaBooking],
        since: datetime,
        users: Iterable[str] | None = None,
    ) -> bool:
        """Make the records of (``resource``, ``uid``) ending after ``since`` be
        exactly ``items``; earlier records stay, for period limits, until
        :meth:`expire`. Looks in the records of ``users`` and of the users of
        ``items`` (default: every user). Returns whether anything changed.
        """
        wanted = [b for b in items if b.end > since]
        owners = {b.user for b in wanted}
        scope = set(self.booking_users(quota)) if users is None else set(users)
        changed = 0
        for user in sorted(scope | owners):
            mine = [b for b in wanted if b.user == user]

            def replaced(old: tuple[QuotaBooking, ...]) -> list[QuotaBooking]:
                keys = {b.key for b in mine}  # noqa: B023 (used at once)
                kept = [b for b in old if not same_event(b, resource, uid, since, keys)]
                return kept + mine  # noqa: B023

            changed += self.update_user(quota, user, replaced)
        return bool(changed)

    def expire(self, quota: str, before: datetime, now: datetime | None = None) -> int:
        """Drop records that ended at or before ``now`` (default ``before``) and
        started before ``before``; return how many."""
        ended = before if now is None else now
        dropped = 0
        for user in self.booking_users(quota):
            dropped += self.update_user(
                quota,
                user,
                lambda old: [b for b in old if not (b.end <= ended and b.start < before)],
            )
        return dropped
