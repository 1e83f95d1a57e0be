"""The outbox in the database: :class:`PgOutbox`, shared by every host.

An :class:`~imiptools.spool.Outbox` whose messages are rows of ``outbox``:
a reply is put in the unit of work's transaction
(:meth:`imiptools.backends.postgresql.store.PgStore.commit`), so it exists
exactly when the decision it answers is stored, whichever host sends it.
Sending (:func:`imiptools.agent.flush`) holds the outbox's session-level
advisory lock (:meth:`PgOutbox.locked`) so that two hosts never send one
message twice; each sent message is forgotten at once (its own
transaction). A held message has ``held_at`` and ``reason`` set.

Ids are :func:`~imiptools.spool.new_id` values, as in a file spool; rows
are read in id order (the time the message was spooled).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from imiptools.backends.postgresql.session import PgSession, lock_key
from imiptools.spool import (
    HeldMessage,
    Outbox,
    SpooledMessage,
    check_key,
    envelope_block,
    new_id,
    one_line,
)

_COLUMNS = "id, envelope_from, recipients, message, key"


def _message(row: Sequence[Any]) -> SpooledMessage:
    identifier, envelope_from, recipients, message, key = row[:5]
    return SpooledMessage(identifier, envelope_from, list(recipients), bytes(message), key)


class PgOutbox(Outbox):
    """The outbox in the database of ``session`` (see the module docstring)."""

    def __init__(self, session: PgSession) -> None:
        self.db = session

    @property
    def location(self) -> str:
        """The database's outbox table."""
        return f"the outbox table of the {self.db.describe()}"

    @contextmanager
    def locked(self, timeout: float, shared: bool = False) -> Iterator[None]:
        """Hold the outbox's session-level lock (across the transactions of
        each sent message), exclusively even for a sender (``shared``): one
        sender at a time, each message its own (:meth:`claimed` is always
        True); LockTimeout after ``timeout`` s."""
        key = lock_key("outbox", "")
        self.db.lock_session(key, timeout, "outbox")
        try:
            yield
        finally:
            self.db.unlock_session(key)

    def put(
        self,
        message: bytes,
        envelope_from: str,
        recipients: Sequence[str],
        key: str | None = None,
    ) -> str:
        """Add ``message`` (replacing a waiting one with the same key), at once."""
        key = check_key(key or "")
        envelope_block(envelope_from, recipients)  # validates the addresses
        identifier = new_id(key)
        with self.db.transaction():
            if key:
                self.db.write("DELETE FROM outbox WHERE key = %s AND held_at IS NULL", (key,))
            self.db.write(
                f"INSERT INTO outbox ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s)",
                (identifier, envelope_from, list(recipients), message, key),
            )
        return identifier

    def scan(self) -> tuple[list[SpooledMessage], list[tuple[str, str]]]:
        """The messages waiting, oldest first (none is unreadable)."""
        rows = self.db.rows(f"SELECT {_COLUMNS} FROM outbox WHERE held_at IS NULL ORDER BY id")
        return [_message(row) for row in rows], []

    def done(self, identifier: str) -> None:
        self.db.write("DELETE FROM outbox WHERE id = %s AND held_at IS NULL", (identifier,))

    def hold(self, identifier: str, reason: str) -> None:
        self.db.write(
            "UPDATE outbox SET held_at = now(), reason = %s WHERE id = %s AND held_at IS NULL",
            (one_line(reason), identifier),
        )

    def held(self) -> list[HeldMessage]:
        rows = self.db.rows(
            f"SELECT {_COLUMNS}, reason, held_at FROM outbox WHERE held_at IS NOT NULL ORDER BY id"
        )
        return [HeldMessage(row[0], row[5], row[6].timestamp(), _message(row)) for row in rows]

    def release(self, identifier: str) -> bool:
        cursor = self.db.execute(
            "UPDATE outbox SET held_at = NULL, reason = NULL WHERE id = %s AND held_at IS NOT NULL",
            (identifier,),
        )
        return cursor.rowcount > 0

    def drop(self, identifier: str) -> bool:
        cursor = self.db.execute(
            "DELETE FROM outbox WHERE id = %s AND held_at IS NOT NULL", (identifier,)
        )
        return cursor.rowcount > 0
