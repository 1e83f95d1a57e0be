"""The outbox: a Maildir-style spool of messages waiting to be sent.

A reply decided under a user's lock is spooled at once, sent after the
lock is released, and removed only once the MTA took it, so that it is
never lost; a rerun of the same incoming message replaces what it spooled
before (same ``key``) instead of adding a second copy. The protocol is
``maildir(5)``'s and Python's ``mailbox.Maildir.add``: write the file in
``tmp/``, fsync it, rename it into ``new/``, fsync ``new/``.

Layout under the spool directory::

    tmp/<id>     being written (a crash may leave one: ignored)
    new/<id>     ready to send, in ``<id>`` order
    .lock        taken by whoever sends (see ``imiptools.agent.flush``)

A spooled file is readable with ``cat``: an envelope block of lines
``X-Imip-Envelope-From: <address>`` (empty for the null sender) and one
``X-Imip-Envelope-To: <address>`` per recipient, a blank line, then the
message bytes exactly as given. Addresses must not hold CR, LF or NUL.

An ``<id>`` is ``<time_ns, 20 digits>-<pid>-<counter>`` and, when the
message has a key, ``-<key>``: unique on one host and sortable by the time
the message was spooled.

The spool directory's parent (the store) is trusted and resolved once
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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from imiptools.errors import StoreUnavailable
from imiptools.fileutil import (
    list_names,
    move_file,
    read_bytes,
    remove_file,
    resolve_root,
    write_new_file,
)

log = logging.getLogger(__name__)

FROM_HEADER = b"X-Imip-Envelope-From: "
TO_HEADER = b"X-Imip-Envelope-To: "
_KEY = re.compile(r"[A-Za-z0-9_]{1,100}")
_ID = re.compile(r"(\d{20})-(\d+)-(\d+)(?:-([A-Za-z0-9_]{1,100}))?")
_BAD_ADDRESS = re.compile(r"[\r\n\x00]")
_counter = itertools.count()


@dataclass(frozen=True)
class SpooledMessage:
    """One message waiting in ``new/``."""

    id: str
    envelope_from: str
    recipients: list[str]
    message: bytes
    key: str = ""


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


def new_id(key: str = "") -> str:
    """A fresh, unique, sortable id (with ``key`` appended if given)."""
    identifier = f"{time.time_ns():020d}-{os.getpid()}-{next(_counter)}"
    return f"{identifier}-{key}" if key else identifier


class Spool:
    """A directory of messages to send (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        directory = Path(directory)
        self.directory = resolve_root(directory.parent) / directory.name
        self.tmp = self.directory / "tmp"
        self.new = self.directory / "new"

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
        if key and _KEY.fullmatch(key) is None:
            raise ValueError(f"unusable spool key {key[:80]!r}")
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

    def _ids_with_key(self, key: str) -> list[str]:
        if not key:
            return []
        return [name for name in self._ids() if key_of(name) == key]

    def _ids(self) -> list[str]:
        return [name for name in list_names(self.new) if _ID.fullmatch(name)]

    def pending(self) -> list[SpooledMessage]:
        """The messages in ``new/``, oldest first.

        Files that cannot be parsed are logged and left for an admin.
        """
        messages = []
        for identifier in self._ids():
            data = read_bytes(self.new / identifier)
            if data is None:
                continue  # sent meanwhile by someone else
            try:
                messages.append(parse_spooled(identifier, data))
            except (ValueError, UnicodeDecodeError) as exc:
                log.warning("spool: skipping unreadable %s: %s", identifier, exc)
        return messages

    def done(self, identifier: str) -> None:
        """Forget a sent message; an id already gone is fine."""
        key_of(identifier)  # validates: an id never names another path
        remove_file(self.new / identifier)


def _discard(path: Path) -> None:
    try:
        remove_file(path)
    except StoreUnavailable:
        log.debug("spool: could not remove %s", path)
