"""The quota journal: one directory per quota group, files an admin can read.

Layout under the journal root (``-j DIR``, setting ``journal``)::

    rooms/limits     WHO MEASURE PERIOD VALUE      (see imiptools.quota.limits)
    rooms/groups     ADDRESS GROUP                 one user a line
    rooms/exempt     ADDRESS                       one user a line
    rooms/delegates  RESOURCE-URI                  one resource a line
    rooms/tzid       ZONE                          calendar periods' zone (optional)
    rooms/bookings/mailto:alice@example.com        one file per user, lines:
                     USER<TAB>RESOURCE<TAB>UID<TAB>RID<TAB>START<TAB>END
    rooms/.lock      flock target, never deleted

In the admin files blank lines and ``#`` comments are ignored; a bad line
raises ValueError naming the file and line number. ``bookings`` is written
only by this module, one file per user (named as the store names users:
the address, or a hash for a hostile one) so that a decision reads only
the files of the organiser and their group: fields from event data are
percent-escaped as in :mod:`imiptools.periods`, times are UTC
(``20300108T100000Z``).

Locking and lock order: every update of ``bookings`` rewrites the whole
file atomically (:func:`~imiptools.fileutil.atomic_write`) under the quota's
lock. A unit of work that touches quotas takes, in this order, the user
store lock of the resource first, then the quota locks sorted by name
(:meth:`QuotaJournal.locked`), so that concurrent deliveries to several
resources of several quotas can never deadlock. A journal instance
remembers the quota locks it holds: updates made inside :meth:`locked` use
them (check, then write, in one critical section); an update outside takes
its quota's lock alone, and one that would take a lock out of order raises
:class:`LockOrderError`. An instance belongs to one thread.

Symlinks: the root may be reached through symlinks (resolved once); below
it every file goes through :mod:`imiptools.fileutil`, which refuses a
symlink (:class:`~imiptools.errors.SymlinkRefused`) instead of following
it, and :meth:`QuotaJournal.quotas` does not list a quota directory that is
a symlink.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, unquote

from imiptools.dates import format_utc, parse_utc, resolve_zone
from imiptools.errors import UnsafeName
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
from imiptools.quota.limits import (
    EVERYONE,
    GROUP_PREFIX,
    QuotaBooking,
    QuotaLimit,
    parse_period,
    parse_value,
)
from imiptools.stores.names import is_hashed, is_verbatim, normalise_user, user_component
from imiptools.stores.transaction import Transaction

LOCK_FILE = ".lock"
BOOKINGS = "bookings"
BOOKING_FIELDS = 6
T = TypeVar("T")
_SAFE = " !\"#$&'()*+,-./:;<=>?@[]^_`{|}~"
#: Text that quote() with _SAFE leaves unchanged (ASCII letters, digits, _SAFE).
_PLAIN = re.compile(r"[A-Za-z0-9" + re.escape(_SAFE) + r"]+")


class LockOrderError(RuntimeError):
    """A quota lock was requested out of the documented order (a bug)."""


def _escape(text: str) -> str:
    """Percent-escape as :mod:`imiptools.periods` does; '' becomes '-'."""
    if not text:
        return "-"
    if text == "-":
        return "%2D"
    if _PLAIN.fullmatch(text):  # the common case, without quote()'s cost
        return text
    return quote(text, safe=_SAFE, errors="surrogatepass")


def _unescape(text: str) -> str:
    if text == "-":
        return ""
    return unquote(text, errors="surrogatepass") if "%" in text else text


def booking_line(booking: QuotaBooking) -> str:
    """One ``bookings`` line (no newline) for ``booking``."""
    fields = (booking.user, booking.resource, booking.uid, booking.rid)
    times = (format_utc(booking.start), format_utc(booking.end))
    return "\t".join((*map(_escape, fields), *times))


def parse_booking(line: str) -> QuotaBooking:
    """Inverse of :func:`booking_line`; raises ValueError."""
    parts = line.split("\t")
    if len(parts) != BOOKING_FIELDS:
        raise ValueError(f"expected {BOOKING_FIELDS} tab-separated fields")
    user, resource, uid, rid = map(_unescape, parts[:4])
    start, end = parse_utc(parts[4]), parse_utc(parts[5])
    if not start < end:
        raise ValueError("start must be before end")
    return QuotaBooking(user, resource, uid, rid, start, end)


def parse_who(text: str) -> str:
    """WHO of a limit: ``*``, ``@group`` or an address (normalised)."""
    if text == EVERYONE:
        return text
    if text.startswith(GROUP_PREFIX):
        return GROUP_PREFIX + parse_group(text[1:])
    return parse_user(text)


def parse_user(text: str) -> str:
    """A user address, normalised to ``mailto:...``; ValueError if unusable."""
    try:
        return normalise_user(text)
    except UnsafeName as exc:
        raise ValueError(str(exc)) from exc


def parse_group(text: str) -> str:
    """A group name: a verbatim safe component (``staff``); ValueError else."""
    if not is_verbatim(text):
        raise ValueError(f"bad group name {text!r}")
    return text


def parse_limit(line: str) -> QuotaLimit:
    """One ``limits`` line ``WHO MEASURE PERIOD VALUE``; raises ValueError."""
    words = line.split()
    if len(words) != 4:
        raise ValueError("expected WHO MEASURE PERIOD VALUE")
    who, measure, period, value = words
    return QuotaLimit(parse_who(who), measure, parse_period(period), parse_value(measure, value))


def _parse_group_line(line: str) -> tuple[str, str]:
    words = line.split()
    if len(words) != 2:
        raise ValueError("expected ADDRESS GROUP")
    return parse_user(words[0]), parse_group(words[1])


def _parse_lines(path: Path, parse: Callable[[str], T]) -> list[T]:
    """``parse`` of each content line of ``path`` ([] if absent); a bad line
    raises ValueError naming the file and line number."""
    values = []
    for number, line in _content_lines(read_text(path) or ""):
        try:
            values.append(parse(line))
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from exc
    return values


@dataclass(frozen=True)
class QuotaState:
    """A consistent reading of one quota group (taken under its lock).

    ``zone`` is the zone of the ``tzid`` file, None when there is none
    (the deciding resource's zone applies then).
    """

    name: str
    limits: tuple[QuotaLimit, ...] = ()
    groups: Mapping[str, str] = field(default_factory=dict)
    exempt: frozenset[str] = frozenset()
    delegates: tuple[str, ...] = ()
    bookings: tuple[QuotaBooking, ...] = ()
    zone: tzinfo | None = None

    def members(self, group: str | None) -> set[str]:
        """The users of ``group`` (none for None)."""
        return {user for user, name in self.groups.items() if group and name == group}


def _content_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, stripped line) of lines that are not blank or comments."""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield number, line


class QuotaJournal:
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

    def defer(self, transaction: Transaction | None) -> None:
        """Send bookings writes of held quotas to ``transaction`` (None: write
        at once). A deferred write is seen by this instance's reads at once
        and reaches the files when the transaction commits, under the same
        locks (see :mod:`imiptools.pending`)."""
        self._transaction = transaction

    def directory(self, quota: str) -> Path:
        """The directory of ``quota``; raises :class:`UnsafeName` for bad names."""
        if not is_verbatim(quota):
            raise UnsafeName(f"bad quota name {quota!r}")
        return self.root / quota

    # Locks.

    @contextmanager
    def lock(self, quota: str, timeout: float) -> Iterator[None]:
        """Hold the flock of ``quota`` (``<quota>/.lock``); LockTimeout after ``timeout`` s.

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
                yield

    # Admin files.

    def _parse_file(self, quota: str, name: str, parse: Callable[[str], T]) -> list[T]:
        return _parse_lines(self.directory(quota) / name, parse)

    def limits(self, quota: str) -> list[QuotaLimit]:
        """The limits of ``quota`` in file order ([] without a file)."""
        return self._parse_file(quota, "limits", parse_limit)

    def groups(self, quota: str) -> dict[str, str]:
        """User (normalised) to group name; a later line for a user wins."""
        return dict(self._parse_file(quota, "groups", _parse_group_line))

    def group_of(self, quota: str, user: str) -> str | None:
        """The group of ``user`` in ``quota``, or None."""
        return self.groups(quota).get(parse_user(user))

    def members(self, quota: str, group: str) -> set[str]:
        """The users (normalised) of ``group`` in ``quota``."""
        return {user for user, name in self.groups(quota).items() if name == group}

    def exempt(self, quota: str) -> set[str]:
        """The exempt users (normalised) of ``quota``."""
        return set(self._parse_file(quota, "exempt", parse_user))

    def is_exempt(self, quota: str, user: str) -> bool:
        """True if ``user`` is listed in ``exempt``."""
        return parse_user(user) in self.exempt(quota)

    def delegates(self, quota: str) -> list[str]:
        """The resources (normalised URIs) that may stand in for each other."""
        return self._parse_file(quota, "delegates", parse_user)

    def zone(self, quota: str) -> tzinfo | None:
        """The zone of ``<quota>/tzid`` (None without one); ValueError if unknown."""
        path = self.directory(quota) / "tzid"
        lines = [line for _, line in _content_lines(read_text(path) or "")]
        if not lines:
            return None
        zone = resolve_zone(lines[0])
        if zone is None:
            raise ValueError(f"{path}: unknown time zone {lines[0]!r}")
        return zone

    def snapshot(self, quota: str, user: str | None = None) -> QuotaState:
        """Everything about ``quota`` at once; ValueError for a bad file.

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

    def quotas(self) -> list[str]:
        """The names of the quota groups that exist under the root."""
        names = list_names(self.root)
        return [n for n in names if is_verbatim(n) and is_directory(self.root / n)]

    # Admin updates (validated before writing; atomic, under the quota's lock).

    def write_admin_file(self, quota: str, name: str, lines: Iterable[str]) -> None:
        """Replace the admin file ``name`` of ``quota`` with ``lines`` (validated)."""
        parse = _ADMIN_FILES[name]
        text = "".join(line + "\n" for line in lines)
        for number, line in _content_lines(text):
            try:
                parse(line)
            except ValueError as exc:
                raise ValueError(f"{name}:{number}: {exc}") from exc
        with self._guard(quota):
            atomic_write(self.directory(quota) / name, text)

    def admin_lines(self, quota: str, name: str) -> list[str]:
        """The lines of admin file ``name`` (comments and blanks included)."""
        return (read_text(self.directory(quota) / name) or "").splitlines()

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
                users.update(b.user for b in self._parse_path(directory / name))
        if quota in self._held:  # writes not yet committed, kept in the cache
            users |= {u for (q, u), found in self._cache.items() if q == quota and found}
            users -= {u for (q, u), found in self._cache.items() if q == quota and not found}
        return sorted(users)

    def bookings(self, quota: str, users: Iterable[str] | None = None) -> list[QuotaBooking]:
        """The bookings of ``users`` (normalised; default: everyone) in
        ``quota``, by user, each user's in time order."""
        chosen = self.booking_users(quota) if users is None else sorted(set(users))
        found: list[QuotaBooking] = []
        for user in chosen:
            found += self._user_bookings(quota, user)
        return found

    def _user_bookings(self, quota: str, user: str) -> tuple[QuotaBooking, ...]:
        key = (quota, user)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        found = self._parse_path(self._bookings_dir(quota) / user_component(user))
        if quota in self._held:
            self._cache[key] = found
        return found

    @staticmethod
    def _parse_path(path: Path) -> tuple[QuotaBooking, ...]:
        return tuple(_parse_lines(path, parse_booking))

    def _write_user(self, quota: str, user: str, bookings: Iterable[QuotaBooking]) -> None:
        """Replace ``user``'s file (removed when empty), atomically."""
        ordered = tuple(sorted(bookings, key=_order))
        path = self._bookings_dir(quota) / user_component(user)
        self._cache.pop((quota, user), None)
        text = "".join(booking_line(b) + "\n" for b in ordered) if ordered else None
        if self._transaction is not None and quota in self._held:
            self._transaction.write_foreign(self.directory(quota), path, text)
        elif text is not None:
            atomic_write(path, text)
        else:
            remove_file(path)
        if quota in self._held:
            self._cache[(quota, user)] = ordered

    def _update_user(
        self,
        quota: str,
        user: str,
        change: Callable[[tuple[QuotaBooking, ...]], list[QuotaBooking]],
    ) -> int:
        """Apply ``change`` to ``user``'s records under the quota's lock; write
        only when something changed. Returns how many records differ."""
        with self._guard(quota):
            old = self._user_bookings(quota, user)
            new = change(old)
            differ = len(set(old) ^ set(new))
            if differ:
                self._write_user(quota, user, new)
            return differ

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

            self._update_user(quota, user, merged)

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

        return self._update_user(quota, user, kept)

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
        :meth:`expire`. Looks in the files of ``users`` and of the users of
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
                kept = [b for b in old if not _same_event(b, resource, uid, since, keys)]
                return kept + mine  # noqa: B023

            changed += self._update_user(quota, user, replaced)
        return bool(changed)

    def expire(self, quota: str, before: datetime, now: datetime | None = None) -> int:
        """Drop bookings that ended at or before ``now`` (default ``before``) and
        started before ``before``; return how many."""
        ended = before if now is None else now
        dropped = 0
        for user in self.booking_users(quota):
            dropped += self._update_user(
                quota,
                user,
                lambda old: [b for b in old if not (b.end <= ended and b.start < before)],
            )
        return dropped


def _same_event(
    booking: QuotaBooking, resource: str, uid: str, since: datetime, keys: Collection[object]
) -> bool:
    """Whether ``booking`` is a record of (resource, uid) that a replacement drops:
    one that has not ended at ``since``, or one that a new record replaces."""
    if (booking.resource, booking.uid) != (resource, uid):
        return False
    return booking.end > since or booking.key in keys


def _parse_tzid(line: str) -> str:
    if resolve_zone(line) is None:
        raise ValueError(f"unknown time zone {line!r}")
    return line


_ADMIN_FILES: dict[str, Callable[[str], object]] = {
    "limits": parse_limit,
    "groups": _parse_group_line,
    "exempt": parse_user,
    "delegates": parse_user,
    "tzid": _parse_tzid,
}


def _order(booking: QuotaBooking) -> tuple[datetime, tuple[str, str, str, str]]:
    return (booking.start, booking.key)
