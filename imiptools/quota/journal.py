"""The quota journal: the file ledger, one directory per quota group, files an admin can read.

Layout under the journal root (``-j DIR``, setting ``journal``)::

    rooms/limits     WHO MEASURE PERIOD VALUE      (see imiptools.quota.limits)
    rooms/groups     ADDRESS GROUP                 one user a line
    rooms/exempt     ADDRESS                       one user a line
    rooms/delegates  RESOURCE-URI                  one resource a line
    rooms/tzid       ZONE                          calendar periods' zone (optional)
    rooms/bookings/mailto:alice@example.com        one file per user, lines:
                     USER<TAB>RESOURCE<TAB>UID<TAB>RID<TAB>START<TAB>END
    rooms/pending/   writes of transactions not yet applied (imiptools.pending)
    rooms/.lock      flock target, never deleted

What the lines mean is :mod:`imiptools.quota.model`'s business; the
contract (locks, lock order, transactions) is
:class:`~imiptools.quota.base.QuotaLedger`'s. ``bookings`` is written only
by this module, one file per user (named as the store names users: the
address, or a hash for a hostile one) so that a decision reads only the
files of the organiser and their group.

Locking: every update of ``bookings`` rewrites the whole file atomically
(:func:`~imiptools.fileutil.atomic_write`) under the quota's flock
(:meth:`QuotaJournal.locked`). A journal instance remembers the quota
locks it holds. Deferred writes (:meth:`QuotaJournal.defer`) become a
pending record in ``rooms/pending/`` when the transaction commits (see
:meth:`imiptools.stores.file.FileStore.commit`), resolved by the next
holder of the quota's lock (:func:`imiptools.pending.resolve_all`).

Symlinks: the root may be reached through symlinks (resolved once); below
it every file goes through :mod:`imiptools.fileutil`, which refuses a
symlink (:class:`~imiptools.errors.SymlinkRefused`) instead of following
it, and :meth:`QuotaJournal.quotas` does not list a quota directory that is
a symlink.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from imiptools.fileutil import (
    atomic_write,
    is_directory,
    list_names,
    read_text,
    remove_file,
    resolve_root,
)
from imiptools.lock import file_lock
from imiptools.pending import resolve_all
from imiptools.quota.base import Change, QuotaLedger
from imiptools.quota.limits import QuotaBooking
from imiptools.quota.model import (
    LockOrderError,
    booking_line,
    booking_order,
    check_quota_name,
    content_lines,
    parse_booking,
)
from imiptools.stores.names import is_hashed, is_verbatim, user_component
from imiptools.stores.transaction import Transaction

LOCK_FILE = ".lock"
BOOKINGS = "bookings"


def _parse_path(path: Path) -> tuple[QuotaBooking, ...]:
    """The records of a bookings file ([] if absent); a bad line raises
    ValueError naming the file and line number."""
    values = []
    for number, line in content_lines(read_text(path) or ""):
        try:
            values.append(parse_booking(line))
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from exc
    return tuple(values)


class QuotaJournal(QuotaLedger):
    """The quota groups under ``root``; see the module docstring for the files.

    ``timeout`` is the deadline in seconds for the quota locks that updates
    take themselves. Reads take no lock (files are replaced atomically).
    """

    def __init__(self, root: Path, timeout: float = 30.0) -> None:
        self.root = resolve_root(root)
        self.timeout = timeout
        self._held: list[str] = []
        #: Each user's bookings read or written while their quota's lock is
        #: held here (nobody else can change them then); dropped with the lock.
        self._cache: dict[tuple[str, str], tuple[QuotaBooking, ...]] = {}
        #: Where bookings writes go while a unit of work runs (see :meth:`defer`).
        self._transaction: Transaction | None = None
        #: Quotas locked by :meth:`_guard` for one update alone: their writes
        #: are never deferred (the lock is gone before any commit).
        self._alone: set[str] = set()

    def defer(self, transaction: Transaction | None) -> None:
        """Send bookings writes of the quotas held with :meth:`locked` to
        ``transaction`` (None: write at once). A deferred write is seen by
        this instance's reads at once and reaches the files when the
        transaction commits, under the same locks (see
        :mod:`imiptools.pending`). An update that takes its quota's lock
        alone writes at once."""
        self._transaction = transaction

    def directory(self, quota: str) -> Path:
        """The directory of ``quota``; raises :class:`UnsafeName` for bad names."""
        return self.root / check_quota_name(quota)

    # Locks.

    @contextmanager
    def lock(self, quota: str, timeout: float) -> Iterator[None]:
        """Hold the flock of ``quota`` (``<quota>/.lock``); LockTimeout after
        ``timeout`` s. Resolves the quota's pending records first.

        Raises :class:`LockOrderError` if a quota of a later or equal name is held.
        """
        if self._held and self._held[-1] >= quota:
            raise LockOrderError(f"quota lock {quota!r} after {self._held[-1]!r}")
        with file_lock(self.directory(quota) / LOCK_FILE, timeout):
            resolve_all(self.directory(quota))
            self._held.append(quota)
            try:
                yield
            finally:
                self._held.remove(quota)
                for key in [k for k in self._cache if k[0] == quota]:
                    del self._cache[key]

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
        if quota in self._held:
            yield
        else:
            with self.lock(quota, self.timeout):
                self._alone.add(quota)
                try:
                    yield
                finally:
                    self._alone.discard(quota)

    # Quota groups and admin files.

    def quotas(self) -> list[str]:
        """The names of the quota groups that exist under the root."""
        names = list_names(self.root)
        return [n for n in names if is_verbatim(n) and is_directory(self.root / n)]

    def exists(self, quota: str) -> bool:
        """Whether ``quota`` has a directory."""
        return self.directory(quota).is_dir()

    def location(self, quota: str | None = None, name: str | None = None) -> str:
        """The root, the quota's directory, or the admin file's path."""
        if quota is None:
            return str(self.root)
        directory = self.directory(quota)
        return str(directory / name if name else directory)

    def admin_lines(self, quota: str, name: str) -> list[str]:
        """The lines of admin file ``name`` (comments and blanks included)."""
        return (read_text(self.directory(quota) / name) or "").splitlines()

    def store_admin_text(self, quota: str, name: str, text: str) -> None:
        """Replace the admin file ``name`` of ``quota`` (atomically, under its lock)."""
        with self._guard(quota):
            atomic_write(self.directory(quota) / name, text)

    # Bookings: one file per user under <quota>/bookings/.

    def _bookings_dir(self, quota: str) -> Path:
        return self.directory(quota) / BOOKINGS

    def booking_users(self, quota: str) -> list[str]:
        """The users with a bookings file in ``quota`` (sorted)."""
        directory = self._bookings_dir(quota)
        users = set()
        for name in list_names(directory):
            if is_verbatim(name):
                users.add(name)  # user_component() of a normal address
            elif is_hashed(name):
                users.update(b.user for b in _parse_path(directory / name))
        if quota in self._held:  # writes not yet committed, kept in the cache
            users |= {u for (q, u), found in self._cache.items() if q == quota and found}
            users -= {u for (q, u), found in self._cache.items() if q == quota and not found}
        return sorted(users)

    def user_bookings(self, quota: str, user: str) -> tuple[QuotaBooking, ...]:
        """``user``'s records (cached while the quota's lock is held here)."""
        key = (quota, user)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        found = _parse_path(self._bookings_dir(quota) / user_component(user))
        if quota in self._held:
            self._cache[key] = found
        return found

    def _write_user(self, quota: str, user: str, bookings: Iterable[QuotaBooking]) -> None:
        """Replace ``user``'s file (removed when empty), atomically, or defer it."""
        ordered = tuple(sorted(bookings, key=booking_order))
        path = self._bookings_dir(quota) / user_component(user)
        self._cache.pop((quota, user), None)
        text = "".join(booking_line(b) + "\n" for b in ordered) if ordered else None
        if self._transaction is not None and quota in self._held and quota not in self._alone:
            self._transaction.write_foreign(self.directory(quota), path, text)
        elif text is not None:
            atomic_write(path, text)
        else:
            remove_file(path)
        if quota in self._held:
            self._cache[(quota, user)] = ordered

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
