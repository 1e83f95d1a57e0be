"""A transaction: everything one scheduling object changes, committed at once.

A unit of work (one scheduling object for one calendar user, see
:mod:`imiptools.agent`) does not write as it goes. Its store writes are
recorded as calls (:class:`~imiptools.stores.recording.RecordingStore`),
the mail it decides to send is kept as :class:`OutgoingMessage` values, and
writes in other lock domains (a quota group's booking files) as
:class:`ForeignWrites`. :meth:`imiptools.stores.base.Store.commit` then
makes all of it happen, or none: the file store writes one transaction
record (its commit point) and applies it, replaying it after a crash at the
next lock of the user (see :mod:`imiptools.stores.file`).

Hence the promises of the README: an answer is only ever sent for a
decision that is stored; a booking is never stored without its free/busy;
quota records never lag the bookings they count.

Calls are kept as ``(method name, arguments)`` and serialised to JSON with
:func:`encode_call` (strings, ``None``, datetimes and lists of periods are
all that store methods take).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from imiptools.dates import format_utc, parse_utc
from imiptools.deferred import dataclass
from imiptools.digests import token_hex
from imiptools.outcomes import StoreWrite
from imiptools.periods import Period
from imiptools.spool import Outbox

#: The store methods that change records (every other public one only reads).
WRITES = (
    "set_object",
    "remove_object",
    "set_recurrence",
    "remove_recurrence",
    "cancel_object",
    "uncancel_object",
    "cancel_recurrence",
    "uncancel_recurrence",
    "set_freebusy_for_uid",
    "set_freebusy_other",
    "set_offers",
    "remove_offers",
    "set_counter",
    "remove_counters",
    "log_decision",
    "queue_request",
    "dequeue_request",
    "set_memo",
)

Call = tuple[str, tuple[Any, ...]]

#: What the arguments after the user of each write are, for
#: :func:`store_write` (the fields of :class:`~imiptools.outcomes.StoreWrite`).
ARGUMENTS: dict[str, tuple[str, ...]] = {
    "set_object": ("uid",),
    "remove_object": ("uid",),
    "set_recurrence": ("uid", "recurrence_id"),
    "remove_recurrence": ("uid", "recurrence_id"),
    "cancel_object": ("uid",),
    "uncancel_object": ("uid",),
    "cancel_recurrence": ("uid", "recurrence_id"),
    "uncancel_recurrence": ("uid", "recurrence_id"),
    "set_freebusy_for_uid": ("uid", "periods"),
    "set_freebusy_other": ("other", "periods"),
    "set_offers": ("uid", "periods"),
    "remove_offers": ("uid",),
    "set_counter": ("uid", "other"),
    "remove_counters": ("uid", "other"),
    "log_decision": (),
    "queue_request": ("uid", "recurrence_id", "other"),
    "dequeue_request": ("uid", "recurrence_id"),
}


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to spool when the transaction commits."""

    envelope_from: str
    recipients: list[str]
    message: bytes
    key: str = ""


@dataclass
class ForeignWrites:
    """Whole-file writes under another lock (``directory/.lock``), held by the
    writer until the commit: path -> new text, ``None`` to remove."""

    directory: Path
    writes: dict[Path, str | None] = field(default_factory=dict)

    @property
    def lock(self) -> Path:
        """The lock file of the domain (see :mod:`imiptools.pending`)."""
        return self.directory / ".lock"


class Deferred(Protocol):
    """Writes of another part of a backend that its store commits (see
    :attr:`Transaction.deferred`)."""

    def apply(self) -> None:
        """Make the writes happen (called by the store's commit, inside its
        own transaction)."""
        ...


@dataclass
class Transaction:
    """What one unit of work for ``user`` changes (see the module docstring)."""

    user: str
    outbox: Outbox | None = None
    calls: list[Call] = field(default_factory=list)
    messages: list[OutgoingMessage] = field(default_factory=list)
    foreign: dict[Path, ForeignWrites] = field(default_factory=dict)
    #: Writes another part of the same backend deferred into this
    #: transaction (a database's quota ledger): applied by that backend's
    #: store when it commits, in the same database transaction. A store
    #: that does not know them refuses to commit them.
    deferred: list[Deferred] = field(default_factory=list)
    #: Derivation records (uid -> text, None to drop) to write once the
    #: store calls are applied (:meth:`~imiptools.stores.base.Store.set_derivation`):
    #: derived data, neither in the commit record nor replayed after a crash
    #: (a record lost that way only makes ``imip-admin check`` parse the event).
    derivations: dict[str, str | None] = field(default_factory=dict)

    def empty(self) -> bool:
        """Whether there is nothing to commit."""
        return not (
            self.calls
            or self.messages
            or self.deferred
            or any(f.writes for f in self.foreign.values())
        )

    def clear(self) -> None:
        """Forget everything (after a commit, or to roll back)."""
        self.calls.clear()
        self.messages.clear()
        self.foreign.clear()
        self.deferred.clear()
        self.derivations.clear()

    def send(self, message: OutgoingMessage) -> None:
        """Spool ``message`` when (and only if) the transaction commits."""
        if self.outbox is None:
            raise ValueError("a transaction without an outbox cannot send")
        self.messages.append(message)

    def write_foreign(self, directory: Path, path: Path, text: str | None) -> None:
        """Write (or with ``None`` remove) ``path`` of the domain ``directory``."""
        self.foreign.setdefault(directory, ForeignWrites(directory)).writes[path] = text


def store_write(call: Call) -> StoreWrite:
    """A recorded write as an outcome: the operation and what it was about
    (periods counted, texts left out)."""
    name, args = call
    values: dict[str, Any] = {}
    for name_of, value in zip(ARGUMENTS.get(name, ()), args[1:], strict=False):
        if name_of == "periods":
            values[name_of] = len(value)
        elif value is not None:
            values[name_of] = str(value)
    return StoreWrite(name, **values)


def new_id() -> str:
    """A transaction id: unique, sortable by time, safe as a file name."""
    return f"{time.time_ns():020d}-{os.getpid()}-{token_hex(4)}"


# -- serialising calls ---------------------------------------------------------------


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return {"utc": format_utc(value)}
    if isinstance(value, Sequence) and all(isinstance(p, Period) for p in value):
        return {"periods": [p.to_line() for p in value]}
    raise TypeError(f"cannot record a store argument of type {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "utc" in value:
        return parse_utc(value["utc"])
    if isinstance(value, dict) and "periods" in value:
        return [Period.from_line(line) for line in value["periods"]]
    return value


def encode_call(call: Call) -> list[Any]:
    """``[name, [arg, ...]]`` for JSON."""
    name, args = call
    return [name, [_encode(a) for a in args]]


def decode_call(item: Any) -> Call:
    """Inverse of :func:`encode_call`; raises ValueError for what it did not write."""
    try:
        name, args = item
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a recorded call: {str(item)[:80]}") from exc
    if name not in WRITES or not isinstance(args, list):
        raise ValueError(f"not a recorded store write: {str(name)[:80]}")
    return name, tuple(_decode(a) for a in args)


def dumps_calls(calls: Sequence[Call]) -> str:
    """The calls as JSON text."""
    return json.dumps([encode_call(c) for c in calls], ensure_ascii=False)
