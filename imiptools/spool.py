"""The outbox: a Maildir-style spool of messages waiting to be sent.

A reply decided under a user's lock is spooled at once, sent after the
lock is released, and removed only once the MTA took it, so that it is
never lost; a rerun of the same incoming message replaces what it spooled
before (same ``key``) instead of adding a second copy. The protocol is
``maildir(5)``'s and Python's ``mailbox.Maildir.add``: write the file in
``tmp/``, fsync it, rename it into ``new/``, fsync ``new/``.

Layout under the spool directory::

    tmp/<id>            being written (a crash may leave one: ignored)
    new/<id>            ready to send, in ``<id>`` order
    held/<id>           set aside: it can never be sent as it is (a
                        permanent refusal, an unusable address, an
                        unreadable file); unchanged, so it can be retried
    held/<id>.reason    why, one line (written before the message moves)
    .lock               shared by whoever sends messages
                        (``imiptools.agent.flush``), exclusive for whoever
                        moves them otherwise (``imip-admin outbox``)
    .gate               passed through before ``.lock`` (see below)

Senders work side by side (issue 15: under one exclusive lock, every
delivery of a site waited for the others' replies to go, one ``sendmail`` at
a time): each sends only the messages it has claimed, a claim being an
exclusive ``flock`` on the message's own file, taken without waiting (one
being sent by another sender is left to it) and kept until the message is
gone from ``new/``; a sender that dies lets go of its claims with its open
files. So two senders never send one message twice, but between two of
them the order of sending is not that of the ids; nothing depends on it
(mail keeps no order, and iTIP orders by SEQUENCE and DTSTAMP, RFC 5546
§2.1.5). ``flock`` does not queue waiters, so while senders overlapped without
a pause (a slow ``sendmail`` under steady load), ``imip-admin outbox`` could
wait for a free lock until its ``lock_timeout``: every taker of ``.lock``
passes ``.gate`` first (:func:`~imiptools.lock.gated_lock`), which
``imip-admin outbox`` holds while it waits, so that no new sender starts and
those sending finish.

A held message never stops the others: ``imip-admin check`` reports it and
``imip-admin outbox list|retry|drop`` shows it, puts it back into ``new/``
or removes it.

A spooled file is readable with ``cat``: an envelope block of lines
``X-Imip-Envelope-From: <address>`` (empty for the null sender) and one
``X-Imip-Envelope-To: <address>`` per recipient, a blank line, then the
message bytes exactly as given. Addresses must not hold CR, LF or NUL.

An ``<id>`` is ``<time_ns, 20 digits>-<pid>-<counter>`` and, when the
message has a key, ``-<key>``: unique on one host and sortable by the time
the message was spooled.

Where the spool lives is the backend's business (the file backend keeps
it in the store, ``STORE/.outbox``: see :mod:`imiptools.backends.file`).
The spool directory's parent is trusted and resolved once
(:func:`~imiptools.fileutil.resolve_root`); the spool directory itself and
everything in it are reached through :mod:`imiptools.fileutil`, so that a
symlink planted at ``.outbox``, ``new/``, ``tmp/`` or ``.lock`` raises
:class:`~imiptools.errors.SymlinkRefused` instead of being followed.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from imiptools.deferred import dataclass
from imiptools.errors import StoreUnavailable
from imiptools.fileutil import (
    atomic_write,
    ensure_directory,
    held_directory,
    list_names,
    move_file,
    open_if_present,
    read_bytes,
    remove_file,
    resolve_root,
    same_file,
    write_new_file,
)
from imiptools.lock import gated_lock, try_flock

log = logging.getLogger(__name__)

FROM_HEADER = b"X-Imip-Envelope-From: "
TO_HEADER = b"X-Imip-Envelope-To: "
_KEY = r"[A-Za-z0-9_]{1,100}"
_ID = re.compile(r"(\d{20})-(\d+)-(\d+)(?:-([A-Za-z0-9_]{1,100}))?")
_BAD_ADDRESS = re.compile(r"[\r\n\x00]")
_CONTROL = r"[\x00-\x1f\x7f]"
REASON_SUFFIX = ".reason"
MAX_REASON = 500
_counter = itertools.count()


@dataclass(frozen=True)
class SpooledMessage:
    """One message waiting in ``new/``."""

    id: str
    envelope_from: str
    recipients: list[str]
    message: bytes
    key: str = ""


@dataclass(frozen=True)
class HeldMessage:
    """A message set aside in ``held/``: why, since when, and (if readable) what."""

    id: str
    reason: str
    held_at: float  # seconds since the epoch
    message: SpooledMessage | None


def _check_address(address: str) -> bytes:
    if _BAD_ADDRESS.search(address):
        raise ValueError(f"unusable envelope address {address[:80]!r}")
    return address.encode("utf-8")


def envelope_block(envelope_from: str, recipients: Sequence[str]) -> bytes:
    """The lines put before the message (ending with the blank line)."""
    if not recipients:
        raise ValueError("a spooled message needs at least one recipient")
    lines = [FROM_HEADER + _check_address(envelope_from)]
    lines += [TO_HEADER + _check_address(recipient) for recipient in recipients]
    return b"\n".join(lines) + b"\n\n"


def parse_spooled(identifier: str, data: bytes) -> SpooledMessage:
    """Split a spooled file into envelope and message; raises ValueError."""
    block, separator, message = data.partition(b"\n\n")
    lines = block.split(b"\n")
    if not separator or not lines[0].startswith(FROM_HEADER):
        raise ValueError(f"spooled file {identifier} has no envelope")
    recipients = [line.removeprefix(TO_HEADER).decode("utf-8") for line in lines[1:]]
    if not recipients or not all(line.startswith(TO_HEADER) for line in lines[1:]):
        raise ValueError(f"spooled file {identifier} has no recipients")
    sender = lines[0].removeprefix(FROM_HEADER).decode("utf-8")
    return SpooledMessage(identifier, sender, recipients, message, key_of(identifier))


def key_of(identifier: str) -> str:
    """The key part of a spool id ("" if none); raises ValueError if not an id."""
    match = _ID.fullmatch(identifier)
    if match is None:
        raise ValueError(f"not a spool id: {identifier[:80]!r}")
    return match.group(4) or ""


def check_key(key: str) -> str:
    """``key`` if usable as a message key (letters, digits, ``_``; or ''),
    else ValueError."""
    if key and re.fullmatch(_KEY, key) is None:
        raise ValueError(f"unusable spool key {key[:80]!r}")
    return key


def new_id(key: str = "") -> str:
    """A fresh, unique, sortable id (with ``key`` appended if given)."""
    identifier = f"{time.time_ns():020d}-{os.getpid()}-{next(_counter)}"
    return f"{identifier}-{key}" if key else identifier


class Outbox(ABC):
    """Messages waiting to be sent, and those set aside: the interface the
    agents (:func:`imiptools.agent.flush`), ``imip-admin outbox`` and
    ``check`` use, whatever keeps them (:class:`Spool` here, a database
    table in another backend).

    Contract: :meth:`put` is durable when it returns (or, inside a store's
    transaction, when that commits) and replaces a pending message with
    the same key; whoever sends messages holds :meth:`locked` ``shared`` and
    sends, sets aside or forgets a message only inside :meth:`claimed`,
    whoever moves them otherwise holds :meth:`locked` exclusively, so that
    two runs never send one message twice; ids are :func:`new_id` values,
    sortable by the time the message was spooled.
    """

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the messages are kept, for people."""

    @abstractmethod
    def locked(self, timeout: float, shared: bool = False) -> AbstractContextManager[None]:
        """Hold the outbox's lock (``shared``: as one of its senders, see
        :meth:`claimed`; an outbox may take it exclusively all the same);
        LockTimeout after ``timeout`` s."""

    def claimed(self, identifier: str) -> AbstractContextManager[bool]:
        """Whether the message ``identifier`` is this sender's to send, set
        aside or forget for the block (False: another sender has it, or it is
        gone). Here always True: an outbox whose :meth:`locked` is always
        exclusive has one sender at a time."""
        return nullcontext(True)

    @abstractmethod
    def put(
        self,
        message: bytes,
        envelope_from: str,
        recipients: Sequence[str],
        key: str | None = None,
    ) -> str:
        """Spool ``message`` and return its id (see the class docstring)."""

    @abstractmethod
    def scan(self) -> tuple[list[SpooledMessage], list[tuple[str, str]]]:
        """The readable messages waiting, oldest first, and the ids of those
        that cannot be read with the reason."""

    def pending(self) -> list[SpooledMessage]:
        """The messages waiting, oldest first (unreadable ones logged and left)."""
        messages, unreadable = self.scan()
        for identifier, reason in unreadable:
            log.warning("spool: skipping unreadable %s: %s", identifier, reason)
        return messages

    @abstractmethod
    def done(self, identifier: str) -> None:
        """Forget a sent message; an id already gone is fine."""

    @abstractmethod
    def hold(self, identifier: str, reason: str) -> None:
        """Set a waiting message aside with ``reason``; an id gone is fine."""

    @abstractmethod
    def held(self) -> list[HeldMessage]:
        """The messages set aside, oldest first."""

    @abstractmethod
    def release(self, identifier: str) -> bool:
        """Put a held message back in line; False if no such held message."""

    @abstractmethod
    def drop(self, identifier: str) -> bool:
        """Remove a held message for good; False if no such held message."""


class Spool(Outbox):
    """A directory of messages to send (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        directory = Path(directory)
        self.directory = resolve_root(directory.parent) / directory.name
        self.tmp = self.directory / "tmp"
        self.new = self.directory / "new"
        self.held_directory = self.directory / "held"

    @property
    def location(self) -> str:
        """The spool directory."""
        return str(self.directory)

    @property
    def lock_path(self) -> Path:
        """The lock file taken to send or move messages."""
        return self.directory / ".lock"

    @property
    def gate_path(self) -> Path:
        """The lock file passed before :attr:`lock_path` (see :meth:`locked`)."""
        return self.directory / ".gate"

    @contextmanager
    def locked(self, timeout: float, shared: bool = False) -> Iterator[None]:
        """Hold the outbox's lock: ``shared`` by senders (each sends what it
        claims, :meth:`claimed`), exclusively to move messages otherwise,
        which senders that keep overlapping cannot put off (taken through
        :attr:`gate_path`, :func:`~imiptools.lock.gated_lock`); LockTimeout
        after ``timeout`` s.

        The outbox's directory (created with the lock file) is held open
        meanwhile (:func:`~imiptools.fileutil.held_directory`; nothing renames
        or removes it), so that what is sent is reached from there, not
        walked from the root again for each file.
        """
        with (
            gated_lock(self.lock_path, self.gate_path, timeout, shared),
            held_directory(self.directory),
        ):
            yield

    @contextmanager
    def claimed(self, identifier: str) -> Iterator[bool]:
        """Claim ``new/<id>`` for the block: an exclusive ``flock`` on the
        file, taken without waiting; True only if it was free and the file
        is still ``new/<id>`` once held (not sent and removed, nor set aside,
        by the sender that had it). Raises StoreUnavailable."""
        key_of(identifier)  # validates: an id never names another path
        path = self.new / identifier
        descriptor = open_if_present(path, os.O_RDONLY)
        if descriptor is None:
            yield False
            return
        try:
            yield try_flock(descriptor, path) and same_file(descriptor, path)
        finally:
            os.close(descriptor)

    def put(
        self,
        message: bytes,
        envelope_from: str,
        recipients: Sequence[str],
        key: str | None = None,
    ) -> str:
        """Spool ``message`` durably and return its id.

        With a ``key`` (letters, digits, ``_``), any message still pending
        under the same key is removed first, so that reprocessing an incoming
        message replaces its replies. Removing before writing means a crash
        in between loses the old copy, never sends two: the crash makes the
        MTA deliver the incoming message again, which spools the reply anew.
        """
        check_key(key or "")
        data = envelope_block(envelope_from, recipients) + message
        for older in self._ids_with_key(key or ""):
            remove_file(self.new / older)
        identifier = new_id(key or "")
        self._deliver(identifier, data)
        return identifier

    def _deliver(self, identifier: str, data: bytes) -> None:
        """Write ``tmp/<id>``, fsync, rename it to ``new/<id>``, fsync ``new/``
        (each directory created if missing)."""
        temporary = self.tmp / identifier
        write_new_file(temporary, data)
        try:
            move_file(temporary, self.new / identifier)
        except StoreUnavailable:
            _discard(temporary)
            raise

    def adopt(self, source: Path, identifier: str) -> None:
        """Move the complete spool file ``source`` into ``new/`` as ``identifier``.

        ``source`` was written and fsynced by its writer on the same
        filesystem (a store transaction's staged message); one rename makes
        it ready to send, so it can never be spooled twice. A ``source``
        already gone (moved by an earlier, interrupted run) is fine.
        """
        key_of(identifier)  # validates: an id never names another path
        _move(source, self.new / identifier)

    def _ids_with_key(self, key: str) -> list[str]:
        if not key:
            return []
        return [name for name in self._ids() if key_of(name) == key]

    def _ids(self) -> list[str]:
        return [name for name in list_names(self.new) if _ID.fullmatch(name)]

    def scan(self) -> tuple[list[SpooledMessage], list[tuple[str, str]]]:
        """The readable messages in ``new/``, oldest first, and the ids of
        the files that cannot be parsed with the reason."""
        messages: list[SpooledMessage] = []
        unreadable: list[tuple[str, str]] = []
        for identifier in self._ids():
            data = read_bytes(self.new / identifier)
            if data is None:
                continue  # sent meanwhile by someone else
            try:
                messages.append(parse_spooled(identifier, data))
            except (ValueError, UnicodeDecodeError) as exc:
                unreadable.append((identifier, f"unreadable spool file: {exc}"))
        return messages, unreadable

    def done(self, identifier: str) -> None:
        """Forget a sent message; an id already gone is fine.

        The removal is not fsynced: sending is at-least-once anyway (a crash
        between the MTA taking the message and this removal sends it again),
        and a power failure just after it can at worst bring the message
        back to be sent again, with the same Message-ID.
        """
        key_of(identifier)  # validates: an id never names another path
        remove_file(self.new / identifier, durable=False)

    # -- messages set aside ---------------------------------------------------

    def hold(self, identifier: str, reason: str) -> None:
        """Move ``new/<id>`` to ``held/<id>``, with ``reason`` (one line) beside it.

        The reason is written first, so a held message always has one (a
        reason left alone by a crash is ignored). An id no longer in
        ``new/`` (sent or moved meanwhile) is fine. Raises StoreUnavailable.
        """
        key_of(identifier)
        ensure_directory(self.held_directory)
        reason_path = self.held_directory / (identifier + REASON_SUFFIX)
        atomic_write(reason_path, one_line(reason) + "\n")
        if not _move(self.new / identifier, self.held_directory / identifier):
            remove_file(reason_path)

    def held(self) -> list[HeldMessage]:
        """The messages set aside, oldest first."""
        found = []
        for identifier in list_names(self.held_directory):
            if _ID.fullmatch(identifier) is None:
                continue
            entry = self._held_entry(identifier)
            if entry is not None:
                found.append(entry)
        return found

    def _held_entry(self, identifier: str) -> HeldMessage | None:
        path = self.held_directory / identifier
        data = read_bytes(path)
        if data is None:
            return None
        reason_path = self.held_directory / (identifier + REASON_SUFFIX)
        reason = (read_bytes(reason_path) or b"").decode("utf-8", "replace").strip()
        held_at = _mtime(reason_path) or _mtime(path)
        try:
            message: SpooledMessage | None = parse_spooled(identifier, data)
        except (ValueError, UnicodeDecodeError):
            message = None
        return HeldMessage(identifier, reason or "(no reason recorded)", held_at, message)

    def release(self, identifier: str) -> bool:
        """Put ``held/<id>`` back into ``new/`` (sent by the next flush);
        False if no such held message. Raises StoreUnavailable."""
        key_of(identifier)
        if not _move(self.held_directory / identifier, self.new / identifier):
            return False
        remove_file(self.held_directory / (identifier + REASON_SUFFIX))
        return True

    def drop(self, identifier: str) -> bool:
        """Remove a held message for good; False if no such held message."""
        key_of(identifier)
        path = self.held_directory / identifier
        if read_bytes(path) is None:
            return False
        remove_file(path)
        remove_file(self.held_directory / (identifier + REASON_SUFFIX))
        return True


def _move(source: Path, target: Path) -> bool:
    """Move ``source`` to ``target`` durably; False when ``source`` is gone
    (moved meanwhile). Raises StoreUnavailable."""
    try:
        move_file(source, target)
    except StoreUnavailable:
        if read_bytes(source) is None:
            return False
        raise
    return True


def _mtime(path: Path) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0


def one_line(reason: str) -> str:
    """``reason`` as one line of at most MAX_REASON characters (controls made spaces)."""
    return " ".join(re.sub(_CONTROL, " ", reason).split())[:MAX_REASON] or "(no reason given)"


def _discard(path: Path) -> None:
    try:
        remove_file(path)
    except StoreUnavailable:
        log.debug("spool: could not remove %s", path)
