"""The quota ledger in the database: :class:`PgLedger`.

A :class:`~imiptools.quota.base.QuotaLedger` over the tables ``quotas``,
``quota_lists`` (each admin list's text as written) and
``quota_bookings``. Its contract, as the file journal keeps it:

* **Locks**: a quota's lock is a transaction-scoped advisory lock, taken in
  the transaction that is open (the unit of work's, opened by the user's
  lock, which is therefore always taken first) or in one of its own;
  several are taken in sorted order, and a lock asked out of that order is
  a :class:`~imiptools.quota.model.LockOrderError`. Being transaction
  locks, they are held until that transaction ends, whatever the ``with``.
* **Deferred writes** (:meth:`PgLedger.defer`): while a quota's lock is held
  here, a write goes into the unit's transaction as a :class:`DeferredWrite`
  and into this instance's view at once; the database store applies it
  when it commits the unit (in the same database transaction). Never
  committed, it is dropped with the lock.
* **Records**: a user's records in a quota are replaced as a whole, in one
  transaction; reads take no lock (one statement: a consistent state).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager

from imiptools.backends.postgresql.periods import utc
from imiptools.backends.postgresql.session import PerTransaction, PgSession, lock_key
from imiptools.backends.postgresql.text import from_db, to_db
from imiptools.deferred import dataclass
from imiptools.quota.base import Change, QuotaLedger
from imiptools.quota.limits import QuotaBooking
from imiptools.quota.model import LockOrderError, booking_order, check_quota_name
from imiptools.stores.transaction import Transaction

_BOOKING_COLUMNS = "usr, resource, uid, rid, start_at, end_at"


@dataclass(frozen=True)
class DeferredWrite:
    """``user``'s records in ``quota`` becoming ``bookings`` when the unit of
    work commits (see the module docstring)."""

    ledger: PgLedger
    quota: str
    user: str
    bookings: tuple[QuotaBooking, ...]

    def apply(self) -> None:
        """Write the records (the store's commit calls this in its transaction).

        Raises ValueError if the quota's lock was released meanwhile (a bug:
        the records would be written without it)."""
        if self.quota not in self.ledger.held:
            raise ValueError(f"quota {self.quota}: lock released before the commit")
        self.ledger.replace_records(self.quota, self.user, self.bookings)


class PgLedger(QuotaLedger):
    """The quota groups in the database of ``session``; ``timeout`` is the
    deadline for the quota locks that updates take themselves."""

    def __init__(self, session: PgSession, timeout: float = 30.0) -> None:
        self.db = session
        self.timeout = timeout
        #: The quotas whose lock is held here, in the order taken.
        self.held: list[str] = []
        self._alone: set[str] = set()
        self._transaction: Transaction | None = None
        #: Records written into the unit's transaction, not yet committed.
        self._deferred: dict[tuple[str, str], tuple[QuotaBooking, ...]] = {}
        #: Each quota's admin lists, read once per transaction.
        self._lists: PerTransaction[str, dict[str, str]] = PerTransaction(session)

    def defer(self, transaction: Transaction | None) -> None:
        """Send the writes of the quotas held to ``transaction`` (None: write
        at once)."""
        self._transaction = transaction

    # -- locks ------------------------------------------------------------------------

    @contextmanager
    def lock(self, quota: str, timeout: float) -> Iterator[None]:
        """Hold the advisory lock of ``quota`` (see the module docstring);
        LockOrderError if a quota of a later or equal name is held."""
        check_quota_name(quota)
        if self.held and self.held[-1] >= quota:
            raise LockOrderError(f"quota lock {quota!r} after {self.held[-1]!r}")
        with self.db.transaction():
            self.db.lock(lock_key("quota", quota), timeout, f"quota {quota}")
            self.held.append(quota)
            try:
                yield
            finally:
                self.held.remove(quota)
                for key in [k for k in self._deferred if k[0] == quota]:
                    del self._deferred[key]

    @contextmanager
    def locked(self, quotas: Iterable[str], timeout: float) -> Iterator[None]:
        """Hold the locks of all ``quotas``, taken in sorted order (duplicates once)."""
        with ExitStack() as stack:
            for quota in sorted(set(quotas)):
                stack.enter_context(self.lock(quota, timeout))
            yield

    @contextmanager
    def _guard(self, quota: str) -> Iterator[None]:
        """Use the lock of ``quota`` if held, else take it alone."""
        if quota in self.held:
            yield
            return
        with self.lock(quota, self.timeout):
            self._alone.add(quota)
            try:
                yield
            finally:
                self._alone.discard(quota)

    # -- quota groups and admin lists -------------------------------------------------

    def quotas(self) -> list[str]:
        return sorted(row[0] for row in self.db.rows("SELECT name FROM quotas"))

    def exists(self, quota: str) -> bool:
        found = self.db.value("SELECT 1 FROM quotas WHERE name = %s", (check_quota_name(quota),))
        return found is not None

    def location(self, quota: str | None = None, name: str | None = None) -> str:
        """The database, and the quota and list named."""
        where = self.db.describe()
        if quota is None:
            return where
        return f"{where}, quota {quota}" + (f", list {name}" if name else "")

    def admin_lines(self, quota: str, name: str) -> list[str]:
        """The list's lines (inside a transaction, the quota's lists are read
        once, all together)."""
        lists = self._lists.get(check_quota_name(quota), lambda: self._all_lists(quota))
        found = lists.get(name)
        return [] if found is None else found.splitlines()

    def _all_lists(self, quota: str) -> dict[str, str]:
        rows = self.db.rows("SELECT name, body FROM quota_lists WHERE quota = %s", (quota,))
        return {name: from_db(body) for name, body in rows}

    def store_admin_text(self, quota: str, name: str, text: str) -> None:
        """Replace the list (under the quota's lock), creating the quota."""
        with self._guard(quota), self.db.transaction():
            self._lists.forget(quota)
            self._create(quota)
            self.db.write(
                "INSERT INTO quota_lists (quota, name, body) VALUES (%s, %s, %s)"
                " ON CONFLICT (quota, name) DO UPDATE SET body = EXCLUDED.body",
                (quota, name, to_db(text)),
            )

    def _create(self, quota: str) -> None:
        self.db.write("INSERT INTO quotas (name) VALUES (%s) ON CONFLICT DO NOTHING", (quota,))

    # -- booking records ----------------------------------------------------------------

    def booking_users(self, quota: str) -> list[str]:
        rows = self.db.rows(
            "SELECT DISTINCT usr FROM quota_bookings WHERE quota = %s", (check_quota_name(quota),)
        )
        users = {from_db(row[0]) for row in rows}
        for (q, user), found in self._deferred.items():
            if q == quota:
                users = users | {user} if found else users - {user}
        return sorted(users)

    def user_bookings(self, quota: str, user: str) -> tuple[QuotaBooking, ...]:
        deferred = self._deferred.get((quota, user))
        if deferred is not None:
            return deferred
        rows = self.db.rows(
            f"SELECT {_BOOKING_COLUMNS} FROM quota_bookings WHERE quota = %s AND usr = %s",
            (check_quota_name(quota), to_db(user)),
        )
        found = [
            QuotaBooking(
                from_db(usr), from_db(resource), from_db(uid), from_db(rid), utc(start), utc(end)
            )
            for usr, resource, uid, rid, start, end in rows
        ]
        return tuple(sorted(found, key=booking_order))

    def replace_records(self, quota: str, user: str, bookings: Iterable[QuotaBooking]) -> None:
        """Make ``user``'s records in ``quota`` exactly ``bookings``, at once
        (the caller holds the quota's lock)."""
        rows = [
            (quota, *map(to_db, (b.user, b.resource, b.uid, b.rid)), b.start, b.end)
            for b in bookings
        ]
        with self.db.transaction():
            self._create(quota)
            self.db.write(
                "DELETE FROM quota_bookings WHERE quota = %s AND usr = %s", (quota, to_db(user))
            )
            self.db.execute_many(
                f"INSERT INTO quota_bookings (quota, {_BOOKING_COLUMNS})"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                rows,
            )

    def _write_user(self, quota: str, user: str, bookings: Iterable[QuotaBooking]) -> None:
        """Replace ``user``'s records now, or defer the write (see the module)."""
        ordered = tuple(sorted(bookings, key=booking_order))
        transaction = self._transaction
        if transaction is not None and quota in self.held and quota not in self._alone:
            self._deferred[(quota, user)] = ordered
            transaction.deferred.append(DeferredWrite(self, quota, user, ordered))
        else:
            self.replace_records(quota, user, ordered)

    def update_user(self, quota: str, user: str, change: Change) -> int:
        """Apply ``change`` to ``user``'s records under the quota's lock; write
        only when something changed. Returns how many records differ."""
        with self._guard(quota):
            old = self.user_bookings(quota, user)
            new = change(old)
            differ = len(set(old) ^ set(new))
            if differ:
                self._write_user(quota, user, new)
            return differ
