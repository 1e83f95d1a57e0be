"""The file store: one directory of plain text files per calendar user.

The original imip-agent's layout, readable by an admin with ``ls`` and
``cat``; every file holds iCalendar text or lines of text. Under
``root/<user>/`` (``<user>`` is :func:`~imiptools.stores.names.user_component`,
e.g. ``mailto:room@example.com``)::

    .lock                               flock target, never deleted
    .user                               the user's URI, only if <user> is hashed
    objects/<uid>                       current main objects
    recurrences/<uid>/<rid>             overridden instances
    cancellations/objects/<uid>         whole-event cancellations
    cancellations/recurrences/<uid>/<rid>
    counters/objects/<uid>/<attendee>   COUNTERs received
    freebusy/YYYY-MM                    busy periods overlapping that UTC month
    freebusy/long                       periods touching more than 12 months
    freebusy-index/<uid>                "uid <escaped uid>" then the uid's buckets
    freebusy-cache/YYYY-MM, long        a large bucket's arrays (derived, never fsynced)
    freebusy-derived/<uid>              what the uid's free/busy was derived from (never fsynced)
    freebusy-other/<other>              free/busy received from others
    freebusy-offers                     periods offered in our COUNTERs, with expiry
    decisions.log                       the resource's decisions, one JSON object a line
    requests                            "uid<TAB>rid<TAB>kind" lines, escaped
    memos/<name>                        what a maintenance job derived (may be removed)

Names: every ``<uid>``, ``<rid>``, ``<attendee>`` and ``<other>`` is
:func:`~imiptools.stores.names.safe_component` of the real text. When that
is a hashed name (``_h_`` + SHA-256), the real text is kept in a sidecar
``_h_<hex>.name`` beside it, written before the file it names and removed
after it, so that listings (:meth:`FileStore.object_uids`, recurrence ids,
counters) return real UIDs, RECURRENCE-IDs and attendees whatever the file
content. A hashed ``recurrences/<uid>`` directory has its sidecar beside it
too, so that events held only as overridden instances are listed. The
sidecar is preferred to reading the UID out of the iCalendar text because
it also serves attendees and RECURRENCE-IDs, and does not tie the store to
the content. Normalised RECURRENCE-IDs (``20300108T100000Z``,
``20300108``) are always kept verbatim.

Free/busy scales with the span asked for, not with the periods held: a
period is stored in every monthly bucket it overlaps (UTC months; years
clamped to 1900..9999), or in ``freebusy/long`` if it touches more than
:data:`MAX_MONTHS` buckets, so that a hostile event lasting centuries costs
one write, not thousands. :meth:`FileStore.get_freebusy` reads the buckets
of the span and ``long``; :meth:`FileStore.set_freebusy_for_uid` finds the
uid's old buckets in its index. Under the user's lock a bucket is read
and indexed once; a bucket of :data:`SMALL_BUCKET` bytes or more is indexed
by the arrays of its index file in ``freebusy-cache/`` (see
:mod:`~imiptools.stores.bucketindex`: believed only for the very text it
was written for, else built from the text and written again), and a
booking's lines are spliced into the bucket and its arrays. Periods are
stored from 1900-01-01 onward (earlier starts are clamped, periods ending
before are dropped; the same holds for others' free/busy).

Symlinks: the root may be reached through symlinks (it is resolved once,
:func:`~imiptools.fileutil.resolve_root`); below it every file is reached
through :mod:`imiptools.fileutil`, which refuses a symlink anywhere on the
way (:class:`~imiptools.errors.SymlinkRefused`) instead of following it.
:meth:`FileStore.users` lists a symlink named as a user (so that tools name
it when they refuse it) but not one with a hashed name.

Durability: every write is :func:`~imiptools.fileutil.atomic_write`; multi-file
operations are ordered so that a crash between steps leaves a state that
rerunning the same operation converges from (see each method). Callers hold
:meth:`FileStore.lock` around a unit of work.
"""

from __future__ import annotations

import json
import logging
import operator
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from imiptools.dates import format_utc, parse_utc
from imiptools.deferred import dataclass
from imiptools.errors import StoreUnavailable, UnsafeName
from imiptools.fileutil import (
    DirectoryReader,
    append_line,
    atomic_write,
    decode_text,
    deferred_directory_syncs,
    encode_text,
    ensure_directory,
    fsync_directory,
    held_directory,
    is_directory,
    is_symlink,
    list_names,
    overwrite_checked,
    read_bytes,
    read_text,
    reading_directory,
    remove_directory,
    remove_empty_directory,
    remove_file,
    resolve_root,
    rewrite_in_place,
    sync_deferred_directories,
    write_new_file,
)
from imiptools.lock import file_lock
from imiptools.pending import apply_record, commit_record, sealed, write_record
from imiptools.periods import Period
from imiptools.spool import Spool, envelope_block
from imiptools.spool import new_id as new_spool_id
from imiptools.stores.base import EventReader, EventTexts, Store
from imiptools.stores.bucketindex import IndexedBucket, index, load, to_bytes
from imiptools.stores.names import (
    is_hashed,
    is_safe_component,
    is_verbatim,
    normalise_user,
    safe_component,
    user_component,
)
from imiptools.stores.transaction import Transaction, decode_call, encode_call
from imiptools.stores.transaction import new_id as new_transaction_id

logger = logging.getLogger(__name__)

LOCK = ".lock"
USER_MARKER = ".user"
NAME_SUFFIX = ".name"
OBJECTS = "objects"
RECURRENCES = "recurrences"
CANCELLED_OBJECTS = "cancellations/objects"
CANCELLED_RECURRENCES = "cancellations/recurrences"
COUNTERS = "counters/objects"
FREEBUSY = "freebusy"
FREEBUSY_INDEX = "freebusy-index"
FREEBUSY_OTHER = "freebusy-other"
FREEBUSY_OFFERS = "freebusy-offers"
FREEBUSY_CACHE = "freebusy-cache"
FREEBUSY_DERIVED = "freebusy-derived"
DECISIONS = "decisions.log"
#: The user's directories held open with the user's lock, when they exist
#: (:func:`~imiptools.fileutil.held_directory`: each file in them is reached
#: from there): those a delivery reads and writes, which nothing removes.
HELD_SUBDIRECTORIES = (OBJECTS, FREEBUSY, FREEBUSY_INDEX, FREEBUSY_DERIVED)
TXN = ".txn"
STAGED = ".staged"
#: A ``.txn`` record whose messages are staged as ``.staged/<txn>.<id>``
#: (records without it staged them in ``.staged/<txn>/<id>``).
STAGING_FLAT = 2
#: How far from its end the decision log is searched for a replayed line.
LOG_TAIL = 1 << 20
REQUESTS = "requests"
MEMOS = "memos"
_MEMO_NAME = r"[a-z0-9][a-z0-9-]{0,63}"

#: Periods touching more monthly buckets than this go to :data:`LONG_BUCKET`.
MAX_MONTHS = 12
LONG_BUCKET = "long"
#: Buckets of fewer bytes than this (about 250 lines) are indexed from their
#: text, which costs less than reading and writing an index file beside them.
SMALL_BUCKET = 1 << 15
#: Spans of more months than this list ``freebusy/`` instead of probing.
PROBE_MONTHS = 36
FIRST_YEAR = 1900
LAST_YEAR = 9999
FLOOR = datetime(FIRST_YEAR, 1, 1, tzinfo=UTC)
_TICK = timedelta(microseconds=1)
_MONTH_NAME = r"[0-9]{4}-[0-9]{2}"
_INDEX_HEADER = "uid "
_SAFE_CHARS = " !\"#$&'()*+,-./:;<=>?@[]^_`{|}~"


def escape_field(text: str) -> str:
    """Percent-encode ``text`` so that it holds no tab, newline or non-ASCII."""
    return quote(encode_text(text), safe=_SAFE_CHARS)


def unescape_field(text: str) -> str:
    """Inverse of :func:`escape_field`."""
    return decode_text(unquote_to_bytes(text))


# -- monthly buckets ------------------------------------------------------


def month_number(value: datetime) -> int:
    """Months since year 0 of the UTC month of ``value``, clamped to
    1900-01..9999-12."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the free/busy store")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        return LAST_YEAR * 12 + 11 if value.year == LAST_YEAR else FIRST_YEAR * 12
    number = utc.year * 12 + utc.month - 1
    return min(max(number, FIRST_YEAR * 12), LAST_YEAR * 12 + 11)


def month_name(number: int) -> str:
    """``YYYY-MM`` for a :func:`month_number`."""
    return f"{number // 12:04d}-{number % 12 + 1:02d}"


def _month_range(start: datetime, end: datetime) -> range:
    last = end - _TICK if end > start else start
    return range(month_number(start), month_number(last) + 1)


def period_buckets(period: Period) -> list[str]:
    """The bucket names that hold ``period``."""
    months = _month_range(period.start, period.end)
    if len(months) > MAX_MONTHS:
        return [LONG_BUCKET]
    return [month_name(number) for number in months]


def _is_month_name(name: str) -> bool:
    return re.fullmatch(_MONTH_NAME, name) is not None


def _uid_field(uid: str) -> str:
    """The third field of a :meth:`Period.to_line` of ``uid``."""
    return Period(FLOOR, FLOOR + _TICK, uid).to_line().split("\t")[2]


def clamped(periods: Iterable[Period]) -> Iterator[Period]:
    """``periods`` as stored: starts before :data:`FLOOR` are moved to it and
    periods ending by then are dropped (the line format needs 4-digit years)."""
    for period in periods:
        if period.end > FLOOR:
            yield period if period.start >= FLOOR else replace(period, start=FLOOR)


def _lines_by_bucket(uid: str, periods: Iterable[Period]) -> dict[str, set[str]]:
    buckets: dict[str, set[str]] = {}
    for period in clamped(periods):
        stored = period if period.uid == uid else replace(period, uid=uid)
        line = stored.to_line()
        for name in period_buckets(stored):
            buckets.setdefault(name, set()).add(line)
    return buckets


def _parse_periods(lines: Iterable[str], start: datetime, end: datetime) -> list[Period]:
    """The periods of ``lines`` overlapping [start, end), sorted. A line that
    is plainly outside (its UTC texts compare like the times they spell) is
    not parsed."""
    periods = []
    first, last = format_utc(start), format_utc(end)
    for line in lines:
        if _outside(line, first, last):
            continue
        try:
            period = Period.from_line(line)
        except ValueError as exc:
            raise StoreUnavailable(f"corrupt free/busy line {line[:80]!r}") from exc
        if period.overlaps(start, end):
            periods.append(period)
    return sorted(periods, key=Period.key)


def _shaped(line: str) -> bool:
    """Whether ``line`` starts with two UTC texts of fixed width (as
    :meth:`Period.to_line` writes them), so that its times can be compared
    as text without parsing it."""
    return line[16:17] == "\t" and line[33:34] == "\t" and line[:4].isdigit()


def _outside(line: str, first: str, last: str) -> bool:
    """Whether a well-formed line's period plainly misses [first, last) (UTC
    texts of fixed width compare like the times they spell); a line of
    another shape is never skipped, so that its parsing reports it."""
    return _shaped(line) and (line[:16] >= last or line[17:33] <= first)


def _has_uid_field(line: str, marker: str) -> bool:
    """Whether the uid field (the third) of ``line`` is ``marker``."""
    if _shaped(line):
        end = 34 + len(marker)
        return line.startswith(marker, 34) and line[end : end + 1] == "\t"
    return line.split("\t")[2:3] == [marker]


#: What :func:`_shaped` checks, for a whole bucket at C speed.
_LINE_SHAPE = re.compile(r"[0-9]{4}[^\t]{12}\t[^\t]{16}\t")
_START_TEXT = operator.itemgetter(slice(0, 16))
_END_TEXT = operator.itemgetter(slice(17, 33))


@dataclass(frozen=True)
class _Bucket:
    """A bucket's lines, indexed so that a narrow query reads few of them.

    ``lines`` are sorted (by their start text first: the texts have a fixed
    width), ``starts`` are those texts and ``reach[i]`` the latest end text
    of ``lines[: i + 1]``: the lines that may overlap [first, last) are a
    slice found by two bisections. A bucket holding a line of another shape
    is not indexed (``starts`` None) and every query scans it, so that
    parsing reports the line. A bucket as this store writes it is an
    :class:`~imiptools.stores.bucketindex.IndexedBucket` instead; this is
    for one that is not (lines out of order, a line of another shape).
    """

    lines: list[str]
    starts: list[str] | None = None
    reach: Sequence[str] = ()

    @classmethod
    def indexed(cls, text: str) -> _Bucket:
        """The lines of ``text`` indexed (every step a C loop: buckets hold
        thousands)."""
        lines = _lines(text)
        if not all(map(_LINE_SHAPE.match, lines)):
            return cls(lines)
        if not all(map(operator.le, lines, lines[1:])):
            lines = sorted(lines)  # not as this store writes it: index a sorted copy
        starts = list(map(_START_TEXT, lines))
        ends = list(map(_END_TEXT, lines))
        if not all(map(operator.le, ends, ends[1:])):  # else each end is its own reach
            ends = list(accumulate(ends, max))
        return cls(lines, starts, ends)

    def near(self, first: str, last: str) -> list[str]:
        """The lines whose period may overlap [first, last) (UTC texts)."""
        if self.starts is None:
            return self.lines
        low = bisect_right(self.reach, first)
        return self.lines[low : bisect_left(self.starts, last, lo=low)]


def _lines(text: str | None) -> list[str]:
    return list(filter(None, text.split("\n"))) if text else []


def _join(lines: Iterable[str]) -> str:
    joined = "\n".join(lines)
    return joined + "\n" if joined else ""


class FileStore(Store):
    """The :class:`Store` over a directory tree (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = resolve_root(root)
        #: The user directories this process holds the lock of, and their
        #: free/busy buckets read meanwhile (by path): no other process
        #: writes them then, and this one forgets a bucket it rewrites, so
        #: that a series' many narrow queries read each bucket once. (A
        #: FileStore serves one thread: the LMTP service's workers are
        #: processes, each with its own.)
        self._locked: set[Path] = set()
        self._user_dirs: dict[str, Path] = {}
        self._buckets: dict[tuple[Path, str], _Bucket | IndexedBucket] = {}
        self._held_offers: dict[Path, list[tuple[datetime, Period]]] = {}

    # -- users and locking ------------------------------------------------

    def _user_dir(self, user: str) -> Path:
        """``root/<user_component(user)>``, made once per user (every
        access of a user's records starts here)."""
        found = self._user_dirs.get(user)
        if found is None:
            found = self._user_dirs[user] = self.root / user_component(user)
        return found

    def user_directory(self, user: str) -> Path:
        """The directory holding ``user``'s records (for checks and tools)."""
        return self._user_dir(user)

    def _ensure_user(self, user: str) -> Path:
        """The user's directory, created with its ``.user`` marker if hashed."""
        base = self._user_dir(user)
        if is_hashed(base.name):
            marker = base / USER_MARKER
            if read_text(marker) is None:
                atomic_write(marker, normalise_user(user) + "\n")
        else:
            ensure_directory(base)
        return base

    @contextmanager
    def lock(self, user: str, timeout: float) -> Iterator[None]:
        """Hold ``<user>/.lock`` (see :func:`imiptools.lock.file_lock`), first
        completing a transaction an earlier holder committed but did not
        finish (see :meth:`commit`).

        Creates the user's directory, so a locked user is listed by
        :meth:`users` from then on. The directory is held open meanwhile
        (:func:`~imiptools.fileutil.held_directory`, closed with the lock),
        so that each file below it is reached from there, not from the root;
        so are those of :data:`HELD_SUBDIRECTORIES` that exist.
        """
        directory = self._ensure_user(user)
        with held_directory(directory), file_lock(directory / LOCK, timeout), ExitStack() as held:
            for name in HELD_SUBDIRECTORIES:
                held.enter_context(held_directory(directory / name, required=False))
            self._recover(user, directory, timeout)
            self._locked.add(directory)
            try:
                yield
            finally:
                self._locked.discard(directory)
                self._forget_buckets(directory)

    # -- transactions (.txn, .staged/) -------------------------------------------

    def commit(self, transaction: Transaction) -> None:
        """Commit ``transaction`` durably (the caller holds the user's lock and
        the locks of its foreign writes).

        Order: the messages are staged (``.staged/<id>.<message id>``, each
        fsynced, then ``.staged/`` once), the foreign writes become pending
        records in their domains (see :mod:`imiptools.pending`), then the
        record is written into ``.txn``, sealed with its digest, in place
        (:func:`~imiptools.fileutil.rewrite_in_place`: the same file every
        time, so no new name to make durable) and fsynced: the commit point.
        It is then applied (see :meth:`_apply`) and ``.txn`` emptied. A crash
        before the commit point leaves garbage that the next lock removes
        (nothing was decided; a torn ``.txn`` is known by its digest); a
        crash after it is completed by the next lock of the user (or, for
        the pending records, of their domain).
        """
        if transaction.empty():
            return
        if transaction.deferred:
            raise ValueError("the file store cannot commit another backend's deferred writes")
        if transaction.messages and not isinstance(transaction.outbox, Spool):
            raise ValueError("the file store spools only into a file outbox")
        directory = self._ensure_user(transaction.user)
        txn = new_transaction_id()
        messages = self._stage(directory / STAGED, txn, transaction)
        pending = [
            [str(write_record(f.directory, txn, directory / TXN, f.writes)), str(f.lock)]
            for f in transaction.foreign.values()
            if f.writes
        ]
        outbox = str(transaction.outbox.directory) if isinstance(transaction.outbox, Spool) else ""
        record = {
            "id": txn,
            "calls": [encode_call(c) for c in transaction.calls],
            "pending": pending,
            "outbox": outbox,
            "messages": messages,
            "staging": STAGING_FLAT,
        }
        rewrite_in_place(directory / TXN, sealed(json.dumps(record, ensure_ascii=False)))
        self._apply(transaction.user, directory, record, None)
        for uid, text in transaction.derivations.items():
            self.set_derivation(transaction.user, uid, text)

    @staticmethod
    def _stage(directory: Path, txn: str, transaction: Transaction) -> list[str]:
        """Write each message, ready to spool, into ``directory`` (as
        ``<txn>.<message id>``) and make them durable; their ids."""
        if not transaction.messages:
            return []
        identifiers = []
        for message in transaction.messages:
            identifier = new_spool_id(message.key)
            data = envelope_block(message.envelope_from, message.recipients) + message.message
            write_new_file(directory / f"{txn}.{identifier}", data)
            identifiers.append(identifier)
        fsync_directory(directory)
        return identifiers

    def _apply(
        self, user: str, directory: Path, record: dict[str, Any], timeout: float | None
    ) -> None:
        """Apply a committed record; ``timeout`` None: the foreign locks are held.

        The pending records go first, each made durable in its own domain
        before its lock is let go. Then the store calls and the messages
        (renamed from ``.staged/`` into the outbox) are applied with their
        directory fsyncs deferred (:func:`~imiptools.fileutil.deferred_directory_syncs`):
        every file is fsynced before it is renamed into place, and each
        directory touched is fsynced once at the end. Only then is ``.txn``
        emptied (and fsynced): until that point a
        crash, even a power failure keeping any subset of the renames,
        leaves ``.txn`` to apply the same calls again, which converges from
        any such state (each call is idempotent given its arguments; a
        message already moved is not moved again; a decision line already
        logged is not logged again). A staged message's departure from
        ``.staged/`` needs no fsync: one that a power failure brings back
        once ``.txn`` is empty is dropped by the next lock as uncommitted.
        """
        for path, lock in record["pending"]:
            if timeout is None:
                apply_record(Path(path))
            else:
                with file_lock(Path(lock), timeout):
                    apply_record(Path(path))
        replaying = timeout is not None
        with deferred_directory_syncs():
            for call in record["calls"]:
                name, args = decode_call(call)
                if not (replaying and name == "log_decision" and self._logged(user, args[1])):
                    getattr(self, name)(*args)
            self._spool(directory, record)
        rewrite_in_place(directory / TXN, b"")

    @staticmethod
    def _spool(directory: Path, record: dict[str, Any]) -> None:
        """Move the record's staged messages into its outbox (those gone
        were moved by an earlier, interrupted apply)."""
        if not record["messages"]:
            return
        outbox = Spool(Path(record["outbox"]))
        flat = record.get("staging") == STAGING_FLAT
        staged = directory / STAGED if flat else directory / STAGED / record["id"]
        for identifier in record["messages"]:
            name = f"{record['id']}.{identifier}" if flat else identifier
            outbox.adopt(staged / name, identifier)
        if not flat:  # a record of an earlier version: its own directory
            remove_directory(staged)

    def _recover(self, user: str, directory: Path, timeout: float) -> None:
        """Finish a committed transaction left by a crash; drop uncommitted
        staged messages. Runs under the user's lock. A torn ``.txn`` (a
        power failure while it was written: its digest does not match) never
        committed: it is emptied."""
        data = read_bytes(directory / TXN)
        record = commit_record(data) if data else None
        if record is not None:
            logger.warning("user=%s completing interrupted transaction %s", user, record["id"])
            self._apply(user, directory, record, timeout)
        elif data:
            logger.warning("user=%s dropping a torn, uncommitted transaction record", user)
            rewrite_in_place(directory / TXN, b"")
        for name in list_names(directory / STAGED):
            logger.info("user=%s dropping uncommitted message %s", user, name)
            staged = directory / STAGED / name
            if is_directory(staged):  # staged by an earlier version
                remove_directory(staged)
            else:
                remove_file(staged)

    def _logged(self, user: str, line: str) -> bool:
        """Whether ``line`` ends the decision log already (a replayed append)."""
        text = read_bytes(self._user_dir(user) / DECISIONS) or b""
        return encode_text(line) + b"\n" in text[-LOG_TAIL:]

    def users(self) -> Iterator[str]:
        for name in list_names(self.root):
            uri = self._user_of(name)
            if uri is not None:
                yield uri

    def _user_of(self, name: str) -> str | None:
        """The user whose directory is ``name``; None for anything else.

        A symlink with a user's name is listed, so that tools name it when
        they refuse it; one with a hashed name is not (its ``.user`` would
        have to be read through it), and :mod:`imiptools.check` reports it.
        """
        path = self.root / name
        if not is_directory(path) and (is_hashed(name) or not is_symlink(path)):
            return None
        candidate = (read_text(path / USER_MARKER) or "").strip() if is_hashed(name) else name
        try:
            valid = user_component(candidate) == name
        except UnsafeName:
            return None
        return normalise_user(candidate) if valid else None

    # -- files named by untrusted keys ---------------------------------------

    def _write_keyed(self, directory: Path, key: str, text: str) -> None:
        """Write ``directory/safe(key)``, its sidecar first if hashed."""
        self._name(directory, key)
        atomic_write(directory / safe_component(key), text)

    @staticmethod
    def _name(directory: Path, key: str) -> None:
        """Write the sidecar naming ``directory/safe(key)`` if that is hashed
        (before the file or directory it names is made)."""
        name = safe_component(key)
        if is_hashed(name):
            sidecar = directory / (name + NAME_SUFFIX)
            if read_text(sidecar) != key:
                atomic_write(sidecar, key)

    def _remove_keyed(self, directory: Path, key: str) -> None:
        """Remove ``directory/safe(key)``, then its sidecar."""
        name = safe_component(key)
        remove_file(directory / name)
        if is_hashed(name):
            remove_file(directory / (name + NAME_SUFFIX))

    @staticmethod
    def _read_keyed(directory: Path, key: str) -> str | None:
        return read_text(directory / safe_component(key))

    def _keys(self, directory: Path, skip: Collection[str] = ()) -> list[str]:
        """The real keys of the entries in ``directory`` (strays and the
        names in ``skip`` left out)."""
        keys = []
        for name in list_names(directory):
            key = None if name in skip else self._key(directory, name)
            if key is not None:
                keys.append(key)
        return keys

    @staticmethod
    def _key(directory: Path, name: str) -> str | None:
        """The real key of entry ``name`` of ``directory``; None for a stray."""
        return _real_key(name, lambda sidecar: read_text(directory / sidecar), directory)

    # -- current objects ------------------------------------------------------

    def get_object(self, user: str, uid: str) -> str | None:
        return self._read_keyed(self._user_dir(user) / OBJECTS, uid)

    def set_object(self, user: str, uid: str, text: str) -> None:
        self._write_keyed(self._ensure_user(user) / OBJECTS, uid, text)

    def remove_object(self, user: str, uid: str) -> None:
        """Remove the overridden instances (their directory, then its
        sidecar), then the main object (and its derivation record, not
        durably: see :meth:`set_derivation`)."""
        base = self._user_dir(user)
        remove_directory(base / RECURRENCES / safe_component(uid))
        self._remove_keyed(base / RECURRENCES, uid)
        self._remove_keyed(base / OBJECTS, uid)
        self.set_derivation(user, uid, None)

    def object_uids(self, user: str) -> Iterator[str]:
        """The UIDs in ``objects/``, then those only in ``recurrences/``
        (events held only as overridden instances) that hold an instance."""
        base = self._user_dir(user)
        main = list_names(base / OBJECTS)
        yield from self._keys(base / OBJECTS)
        for uid in self._keys(base / RECURRENCES, skip=set(main)):
            if self.recurrence_ids(user, uid):
                yield uid

    def _recurrences(self, user: str, uid: str) -> Path:
        return self._user_dir(user) / RECURRENCES / safe_component(uid)

    def get_recurrence(self, user: str, uid: str, rid: str) -> str | None:
        return self._read_keyed(self._recurrences(user, uid), rid)

    def set_recurrence(self, user: str, uid: str, rid: str, text: str) -> None:
        """Name the UID's directory (a sidecar if hashed), then write the instance."""
        self._name(self._ensure_user(user) / RECURRENCES, uid)
        self._write_keyed(self._recurrences(user, uid), rid, text)

    def remove_recurrence(self, user: str, uid: str, rid: str) -> None:
        """Remove the instance; once the UID has none, its directory and sidecar."""
        directory = self._recurrences(user, uid)
        self._remove_keyed(directory, rid)
        remove_empty_directory(directory)
        if not directory.exists():
            self._remove_keyed(directory.parent, uid)

    def recurrence_ids(self, user: str, uid: str) -> list[str]:
        return sorted(self._keys(self._recurrences(user, uid)))

    # -- cancellations ------------------------------------------------------

    def get_cancelled_object(self, user: str, uid: str) -> str | None:
        return self._read_keyed(self._user_dir(user) / CANCELLED_OBJECTS, uid)

    def cancel_object(self, user: str, uid: str, text: str) -> None:
        """Record the cancellation first, then remove the current object.

        A crash in between leaves the event both cancelled and current;
        rerunning completes the removal.
        """
        self._write_keyed(self._ensure_user(user) / CANCELLED_OBJECTS, uid, text)
        self.remove_object(user, uid)

    def uncancel_object(self, user: str, uid: str) -> None:
        self._remove_keyed(self._user_dir(user) / CANCELLED_OBJECTS, uid)

    def _cancelled_recurrences(self, user: str, uid: str) -> Path:
        return self._user_dir(user) / CANCELLED_RECURRENCES / safe_component(uid)

    def get_cancelled_recurrence(self, user: str, uid: str, rid: str) -> str | None:
        return self._read_keyed(self._cancelled_recurrences(user, uid), rid)

    def cancel_recurrence(self, user: str, uid: str, rid: str, text: str) -> None:
        """Record the instance's cancellation first, then remove its override."""
        self._ensure_user(user)
        self._write_keyed(self._cancelled_recurrences(user, uid), rid, text)
        self.remove_recurrence(user, uid, rid)

    def uncancel_recurrence(self, user: str, uid: str, rid: str) -> None:
        directory = self._cancelled_recurrences(user, uid)
        self._remove_keyed(directory, rid)
        remove_empty_directory(directory)

    def cancelled_recurrence_ids(self, user: str, uid: str) -> list[str]:
        return sorted(self._keys(self._cancelled_recurrences(user, uid)))

    def cancelled_object_uids(self, user: str) -> Iterator[str]:
        yield from self._keys(self._user_dir(user) / CANCELLED_OBJECTS)

    # -- the user's own free/busy ----------------------------------------------

    def _read_bucket(self, directory: Path, name: str) -> bytes:
        """The bytes of bucket ``name`` (a hook: tests count the reads)."""
        return read_bytes(directory / name) or b""

    def _bucket(self, directory: Path, name: str) -> _Bucket | IndexedBucket:
        """Bucket ``name`` of ``directory`` (a user's ``freebusy``): read and
        indexed once while this process holds the user's lock (see
        :meth:`_indexed`), read afresh otherwise (with its index file if
        that holds, else scanned whole)."""
        bucket = self._buckets.get((directory, name))
        if bucket is not None:
            return bucket
        if directory.parent not in self._locked:
            text = self._read_bucket(directory, name)
            if len(text) < SMALL_BUCKET:
                found = index(text)
            else:
                found = load(text, read_bytes(directory.parent / FREEBUSY_CACHE / name))
            return found if found is not None else _Bucket(_lines(decode_text(text)))
        bucket = self._buckets[directory, name] = self._indexed(directory, name)
        return bucket

    def _indexed(self, directory: Path, name: str) -> _Bucket | IndexedBucket:
        """Bucket ``name`` with its index file (see
        :mod:`~imiptools.stores.bucketindex`), or indexed from its text and
        the index file written (a store's first use, or after a crash or
        ``make-freebusy``); a bucket smaller than :data:`SMALL_BUCKET` is
        indexed from its text without one, and a bucket not as this store
        writes it as lines (and not kept in an index file)."""
        text = self._read_bucket(directory, name)
        small = len(text) < SMALL_BUCKET
        cache = directory.parent / FREEBUSY_CACHE / name
        found = index(text) if small else load(text, read_bytes(cache))
        if found is None and not small:
            found = index(text)
            if found is not None:
                _write_cache(cache, found)
        return found if found is not None else _Bucket.indexed(decode_text(text))

    def _forget_buckets(self, user_directory: Path) -> None:
        """Drop the buckets (and offers) of ``user_directory`` read under its lock."""
        self._held_offers.pop(user_directory, None)
        directory = user_directory / FREEBUSY
        for key in [key for key in self._buckets if key[0] == directory]:
            del self._buckets[key]

    def _span_buckets(self, directory: Path, start: datetime, end: datetime) -> list[str]:
        """The names of the buckets that may hold periods in ``[start, end)``."""
        months = _month_range(start, end)
        if len(months) <= PROBE_MONTHS:
            return [*map(month_name, months), LONG_BUCKET]
        low, high = month_name(months[0]), month_name(months[-1])
        names = [n for n in list_names(directory) if _is_month_name(n) and low <= n <= high]
        return [*names, LONG_BUCKET]

    def get_freebusy(self, user: str, start: datetime, end: datetime) -> list[Period]:
        """Read only the buckets of the span (and ``long``): see the module."""
        if end <= start:
            return []
        directory = self._user_dir(user) / FREEBUSY
        first, last = format_utc(start), format_utc(end)
        lines: set[str] = set()
        for name in self._span_buckets(directory, start, end):
            lines.update(self._bucket(directory, name).near(first, last))
        return _parse_periods(lines, start, end)

    def set_freebusy_for_uid(self, user: str, uid: str, periods: Iterable[Period]) -> None:
        """Replace the periods of ``uid`` (their ``uid`` field is set to it).

        Steps, each atomic: write the index with the union of the old and
        new buckets; rewrite each of those buckets; write the index with the
        new buckets only (or remove it). After a crash at any point the
        index still names every bucket holding a line of ``uid``, so any
        later call for ``uid`` repairs everything.
        """
        base = self._ensure_user(user)
        index = base / FREEBUSY_INDEX / safe_component(uid)
        new = _lines_by_bucket(uid, periods)
        old = _read_index(index)
        affected = old | new.keys()
        if affected != old:
            _write_index(index, uid, affected)
        marker = _uid_field(uid)
        for name in sorted(affected):
            self._rewrite_bucket(base / FREEBUSY, name, marker, new.get(name, set()))
        if new.keys() != affected:
            # Durable before the index forgets a bucket (in a batched apply,
            # a redo could not find the lines left there otherwise).
            sync_deferred_directories()
            _write_index(index, uid, set(new))

    def _rewrite_bucket(self, directory: Path, name: str, marker: str, lines: set[str]) -> None:
        """Replace the lines whose uid field is ``marker`` by ``lines`` (the
        text is searched for them: a bucket the uid's index lost is mended
        too); an indexed bucket is spliced (see
        :meth:`~imiptools.stores.bucketindex.IndexedBucket.replaced`) and its
        index file written after it."""
        bucket = self._buckets.pop((directory, name), None)
        if bucket is None:  # not read under the lock yet (an empty one is falsy)
            bucket = self._indexed(directory, name)
        cache = directory.parent / FREEBUSY_CACHE / name
        if isinstance(bucket, IndexedBucket):
            spliced = bucket.replaced(f"\t{marker}\t".encode(), sorted(lines))
            if spliced is None:
                self._keep(directory, name, bucket)
                return
            if spliced.text:
                atomic_write(directory / name, spliced.text)
                self._keep(directory, name, spliced)
            else:
                remove_file(directory / name)
            if len(spliced.text) >= SMALL_BUCKET:
                _write_cache(cache, spliced)
            elif len(bucket.text) >= SMALL_BUCKET:
                remove_file(cache, durable=False)  # would never be believed again
            return
        current = bucket.lines
        result = sorted({line for line in current if not _has_uid_field(line, marker)} | lines)
        if result == current:
            return
        if result:
            atomic_write(directory / name, _join(result))
        else:
            remove_file(directory / name)

    def _keep(self, directory: Path, name: str, bucket: IndexedBucket) -> None:
        """Keep ``bucket`` as read while this process holds the user's lock."""
        if directory.parent in self._locked:
            self._buckets[directory, name] = bucket

    def replace_freebusy(self, user: str, periods: Iterable[Period]) -> None:
        """Rewrite every bucket and index of the user from ``periods``.

        Steps, each file atomic: write each new uid's index with the union
        of its old and new buckets; write every bucket (existing or new)
        with exactly its new lines, dropping unreadable lines and lines no
        index names; write or remove each index. A period wanted before and
        after is present throughout; rerunning converges.
        """
        base = self._ensure_user(user)
        self._forget_buckets(base)
        buckets, indexes = _layout(periods)
        index_dir = base / FREEBUSY_INDEX
        for uid, names in indexes.items():
            path = index_dir / safe_component(uid)
            _write_index(path, uid, _readable_index(path) | names)
        existing = [n for n in list_names(base / FREEBUSY) if _is_bucket_name(n)]
        for name in sorted(set(existing) | buckets.keys()):
            _write_if_changed(base / FREEBUSY / name, sorted(buckets.get(name, set())))
        wanted = {safe_component(uid): uid for uid in indexes}
        for name in filter(is_safe_component, list_names(index_dir)):
            if name in wanted:
                _write_index(index_dir / name, wanted[name], indexes[wanted[name]])
            else:
                remove_file(index_dir / name)

    def freebusy_uids(self, user: str) -> Iterator[str]:
        """The uids with an index: a verbatim name is its uid (see
        :func:`~imiptools.stores.names.safe_component`), a hashed one's is
        read from the index's first line."""
        directory = self._user_dir(user) / FREEBUSY_INDEX
        for name in filter(is_safe_component, list_names(directory)):
            if is_verbatim(name):
                yield name
                continue
            header = (read_text(directory / name) or "").split("\n", 1)[0]
            if header.startswith(_INDEX_HEADER):
                yield unescape_field(header[len(_INDEX_HEADER) :])

    # -- others' free/busy ------------------------------------------------------

    def get_freebusy_other(
        self, user: str, other: str, start: datetime, end: datetime
    ) -> list[Period]:
        text = self._read_keyed(self._user_dir(user) / FREEBUSY_OTHER, other)
        return _parse_periods(_lines(text), start, end)

    def set_freebusy_other(self, user: str, other: str, periods: Iterable[Period]) -> None:
        """Replace the file of ``other`` (removed when there are no periods)."""
        directory = self._ensure_user(user) / FREEBUSY_OTHER
        lines = sorted({period.to_line() for period in clamped(periods)})
        if lines:
            self._write_keyed(directory, other, _join(lines))
        else:
            self._remove_keyed(directory, other)

    def freebusy_other_users(self, user: str) -> list[str]:
        return sorted(self._keys(self._user_dir(user) / FREEBUSY_OTHER))

    # -- decision log (decisions.log: one JSON object a line, appended) -------

    def log_decision(self, user: str, line: str) -> None:
        """Append with O_APPEND and fsync; a crash can only cut the last line."""
        if "\n" in line or "\r" in line:
            raise ValueError("a log line must be one line")
        append_line(self._ensure_user(user) / DECISIONS, encode_text(line + "\n"), 0o640)

    def decisions(self, user: str) -> Iterator[str]:
        text = read_text(self._user_dir(user) / DECISIONS) or ""
        return iter([line for line in text.split("\n") if line])

    # -- offers (freebusy-offers: "<expiry>\t<period line>", sorted) ----------

    def _offers(self, user: str) -> list[tuple[datetime, Period]]:
        """The user's offers, read once while this process holds their lock
        (a series' clash checks ask once per instance)."""
        directory = self._user_dir(user)
        if directory not in self._locked:
            return self._read_offers(directory)
        offers = self._held_offers.get(directory)
        if offers is None:
            offers = self._held_offers[directory] = self._read_offers(directory)
        return list(offers)

    def _read_offers(self, directory: Path) -> list[tuple[datetime, Period]]:
        text = read_text(directory / FREEBUSY_OFFERS)
        offers = []
        for line in _lines(text):
            expires, _, period = line.partition("\t")
            try:
                offers.append((parse_utc(expires), Period.from_line(period)))
            except ValueError as exc:
                raise StoreUnavailable(f"corrupt {FREEBUSY_OFFERS} line: {line[:80]!r}") from exc
        return offers

    def _write_offers(self, user: str, offers: Iterable[tuple[datetime, Period]]) -> None:
        lines = sorted(f"{format_utc(when)}\t{period.to_line()}" for when, period in offers)
        self._held_offers.pop(self._user_dir(user), None)
        path = self._ensure_user(user) / FREEBUSY_OFFERS
        if lines:
            atomic_write(path, _join(lines))
        else:
            remove_file(path)

    def get_offers(self, user: str, now: datetime) -> list[Period]:
        return sorted(period for expires, period in self._offers(user) if expires > now)

    def set_offers(self, user: str, uid: str, periods: Iterable[Period], expires: datetime) -> None:
        kept = [(when, p) for when, p in self._offers(user) if p.uid != uid]
        added = [(expires, replace(p, uid=uid)) for p in clamped(periods)]
        self._write_offers(user, kept + added)

    def remove_offers(self, user: str, uid: str) -> None:
        offers = self._offers(user)
        kept = [(when, p) for when, p in offers if p.uid != uid]
        if len(kept) != len(offers):
            self._write_offers(user, kept)

    def all_offers(self, user: str) -> list[tuple[datetime, Period]]:
        return sorted(self._offers(user))

    # -- counter-proposals ------------------------------------------------------

    def _counters(self, user: str, uid: str) -> Path:
        return self._user_dir(user) / COUNTERS / safe_component(uid)

    def get_counters(self, user: str, uid: str) -> dict[str, str]:
        directory = self._counters(user, uid)
        counters = {}
        for attendee in self._keys(directory):
            text = self._read_keyed(directory, attendee)
            if text is not None:
                counters[attendee] = text
        return counters

    def set_counter(self, user: str, uid: str, attendee: str, text: str) -> None:
        self._ensure_user(user)
        self._write_keyed(self._counters(user, uid), attendee, text)

    def remove_counters(self, user: str, uid: str, attendee: str | None = None) -> None:
        directory = self._counters(user, uid)
        if attendee is None:
            remove_directory(directory)
            return
        self._remove_keyed(directory, attendee)
        remove_empty_directory(directory)

    # -- the queue of requests --------------------------------------------------

    def get_requests(self, user: str) -> list[tuple[str, str, str]]:
        text = read_text(self._user_dir(user) / REQUESTS)
        return [_parse_request(line) for line in _lines(text)]

    def queue_request(self, user: str, uid: str, rid: str = "", kind: str = "REQUEST") -> None:
        """Append ``(uid, rid, kind)``; an item for ``(uid, rid)`` keeps its
        place in the queue and takes the new ``kind``."""
        items = self.get_requests(user)
        keys = [(item_uid, item_rid) for item_uid, item_rid, _ in items]
        updated = list(items)
        if (uid, rid) in keys:
            updated[keys.index((uid, rid))] = (uid, rid, kind)
        else:
            updated.append((uid, rid, kind))
        if updated != items:
            self._write_requests(user, updated)

    def dequeue_request(self, user: str, uid: str, rid: str = "") -> None:
        items = self.get_requests(user)
        updated = [item for item in items if item[:2] != (uid, rid)]
        if updated != items:
            self._write_requests(user, updated)

    def _write_requests(self, user: str, items: list[tuple[str, str, str]]) -> None:
        path = self._ensure_user(user) / REQUESTS
        if not items:
            remove_file(path)
            return
        atomic_write(path, _join("\t".join(map(escape_field, item)) for item in items))

    # -- memos (memos/<name>) ---------------------------------------------------

    def _memo(self, user: str, name: str) -> Path:
        if re.fullmatch(_MEMO_NAME, name) is None:
            raise ValueError(f"not a memo name: {name[:80]!r}")
        return self._user_dir(user) / MEMOS / name

    def get_memo(self, user: str, name: str) -> str | None:
        return read_text(self._memo(user, name))

    def set_memo(self, user: str, name: str, text: str | None) -> None:
        """Write (atomically) or remove ``memos/<name>``."""
        path = self._memo(user, name)
        if text is None:
            remove_file(path)
        else:
            self._ensure_user(user)
            atomic_write(path, text)

    # -- derivation records (freebusy-derived/<uid>) -------------------------------

    def keeps_derivations(self) -> bool:
        return True

    def get_derivation(self, user: str, uid: str) -> str | None:
        return read_text(self._user_dir(user) / FREEBUSY_DERIVED / safe_component(uid))

    def set_derivation(self, user: str, uid: str, text: str | None) -> None:
        """Write ``freebusy-derived/<uid>`` in place (or remove it), without
        any fsync (:func:`~imiptools.fileutil.overwrite_checked`: the record
        carries its own digest); failing to is only logged."""
        path = self._user_dir(user) / FREEBUSY_DERIVED / safe_component(uid)
        try:
            if text is None:
                remove_file(path, durable=False)
            else:
                overwrite_checked(path, encode_text(text))
        except StoreUnavailable as exc:
            logger.debug("derivation record not written: %s", exc)

    # -- reading many events at once (imip-admin check) ---------------------------

    @contextmanager
    def event_reader(self, user: str) -> Iterator[EventReader]:
        """A :class:`_FileEventReader`: each directory of the user's events
        opened and listed once, for the block (run under the user's lock)."""
        base = self._user_dir(user)
        with ExitStack() as stack:

            def listed(name: str) -> _Listed:
                return _Listed(stack.enter_context(reading_directory(base / name)))

            yield _FileEventReader(self, user, listed)


class _Listed:
    """A directory of a user's records opened and listed once (see
    :class:`_FileEventReader`): its entries' names, and each file read
    relative to it."""

    __slots__ = ("directory", "names")

    def __init__(self, directory: DirectoryReader) -> None:
        self.directory = directory
        self.names = frozenset(directory.names())

    def read(self, name: str) -> str | None:
        """The text of entry ``name`` (None: not listed, or gone)."""
        return self.directory.read_text(name) if name in self.names else None

    def keyed(self, name: str, by_key: bool = True) -> list[tuple[str, str | None]]:
        """The texts the directory ``name`` holds, by real key (what
        :meth:`FileStore._keys` lists, sorted by key, else in its order),
        each read relative to it."""
        if name not in self.names:
            return []
        with self.directory.directory(name) as directory:
            names = directory.names()
            listed = set(names)

            def sidecar(entry: str) -> str | None:
                return directory.read_text(entry) if entry in listed else None

            keyed = []
            for entry in names:
                key = _real_key(entry, sidecar, directory.path)
                if key is not None:
                    keyed.append((key, entry))
            if by_key:
                keyed.sort()
            return [(key, directory.read_text(entry)) for key, entry in keyed]


class _FileEventReader(EventReader):
    """The file store's :class:`~imiptools.stores.base.EventReader`: the
    user's ``objects/``, ``recurrences/``, ``cancellations/objects/``,
    ``cancellations/recurrences/``, ``counters/objects/`` and
    ``freebusy-derived/`` opened and listed once (their descriptors held
    for the block, under the user's lock: nothing renames them meanwhile),
    each event's files read relative to them, and only those listed: the
    same texts as the getters read, without a walk and a failed open per
    missing file. Every file is still opened without following a symlink
    (:class:`~imiptools.fileutil.DirectoryReader`)."""

    def __init__(self, store: FileStore, user: str, listed: Callable[[str], _Listed]) -> None:
        """``listed``: each directory (relative to the user's) opened and
        listed, for as long as the reader is used."""
        super().__init__(store, user)
        self.objects = listed(OBJECTS)
        self.recurrences = listed(RECURRENCES)
        self.cancelled_objects = listed(CANCELLED_OBJECTS)
        self.cancelled_recurrences = listed(CANCELLED_RECURRENCES)
        self.counters = listed(COUNTERS)
        self.derived = listed(FREEBUSY_DERIVED)

    def texts(self, uid: str) -> EventTexts:
        name = safe_component(uid)
        text = self.objects.read(name)
        recurrences = self.recurrences.keyed(name)
        cancellation = self.cancelled_objects.read(name)
        cancelled = self.cancelled_recurrences.keyed(name)
        counters = self.counters.keyed(name, by_key=False)
        kept = {attendee: counter for attendee, counter in counters if counter is not None}
        return EventTexts(uid, text, recurrences, cancellation, cancelled, kept)

    def derivation(self, uid: str) -> str | None:
        return self.derived.read(safe_component(uid))


def _real_key(name: str, read: Callable[[str], str | None], directory: Path) -> str | None:
    """The real key of entry ``name`` of ``directory``: itself if verbatim,
    else what its sidecar names (``read`` of the sidecar's name gives its
    text, None if missing), if that hashes to ``name``; None for a stray (a
    hashed one without a usable sidecar is logged)."""
    if is_verbatim(name):
        return name
    if not is_hashed(name):
        return None
    key = read(name + NAME_SUFFIX)
    if key is not None and safe_component(key) == name:
        return key
    logger.warning("no usable name for %s", directory / name)
    return None


def _parse_request(line: str) -> tuple[str, str, str]:
    fields = line.split("\t")
    if len(fields) != 3:
        raise StoreUnavailable(f"corrupt requests line {line[:80]!r}")
    uid, rid, kind = map(unescape_field, fields)
    return uid, rid, kind


def _is_bucket_name(name: str) -> bool:
    return name == LONG_BUCKET or _is_month_name(name)


def _layout(periods: Iterable[Period]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Bucket name -> lines, and uid -> bucket names, for ``periods``."""
    by_uid: dict[str, list[Period]] = {}
    for period in periods:
        by_uid.setdefault(period.uid, []).append(period)
    buckets: dict[str, set[str]] = {}
    indexes: dict[str, set[str]] = {}
    for uid, group in by_uid.items():
        for name, lines in _lines_by_bucket(uid, group).items():
            buckets.setdefault(name, set()).update(lines)
            indexes.setdefault(uid, set()).add(name)
    return buckets, indexes


def _write_if_changed(path: Path, lines: list[str]) -> None:
    """Make ``path`` hold ``lines`` (removed when none), writing only if needed."""
    if not lines:
        remove_file(path)
    elif read_bytes(path) != encode_text(_join(lines)):
        atomic_write(path, _join(lines))


def _write_cache(path: Path, bucket: IndexedBucket) -> None:
    """Write the index file of ``bucket`` at ``path``, not durably (see
    :mod:`~imiptools.stores.bucketindex`); failing to is no error (the
    bucket is indexed from its text next time)."""
    try:
        overwrite_checked(path, to_bytes(bucket))
    except StoreUnavailable as exc:
        logger.debug("free/busy index not written: %s", exc)


def _read_index(path: Path) -> set[str]:
    """The bucket names listed in a free/busy index file."""
    return set(_lines(read_text(path))[1:])


def _readable_index(path: Path) -> set[str]:
    """:func:`_read_index`, empty when the file cannot be read (to be rewritten)."""
    try:
        return _read_index(path)
    except StoreUnavailable:
        return set()


def _write_index(path: Path, uid: str, buckets: set[str]) -> None:
    if not buckets:
        remove_file(path)
        return
    atomic_write(path, _join([_INDEX_HEADER + escape_field(uid), *sorted(buckets)]))
