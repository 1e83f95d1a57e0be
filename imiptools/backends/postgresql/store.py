"""The calendar store in the database: :class:`PgStore`.

Implements :class:`~imiptools.stores.base.Store` over the tables of
:mod:`~imiptools.backends.postgresql.schema`. The user's lock opens the
unit of work's database transaction and takes the user's advisory lock in
it (:meth:`PgStore.lock`); :meth:`PgStore.commit` applies a unit's
recorded writes, the quota records its ledger deferred and its replies
(rows of the outbox) inside that transaction, which commits when the lock
is released. A write outside any lock is a transaction of its own, so each
method is atomic on its own as the interface requires.

UIDs, RECURRENCE-IDs, attendees and iCalendar text are kept exactly
(:mod:`~imiptools.backends.postgresql.text`). The period records (free/busy,
others' free/busy, offers) are :mod:`~imiptools.backends.postgresql.periods`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from imiptools.backends.postgresql.outbox import PgOutbox
from imiptools.backends.postgresql.periods import PeriodRecords
from imiptools.backends.postgresql.session import PgSession, lock_key
from imiptools.backends.postgresql.text import from_db, to_db, user_key
from imiptools.stores.base import Store
from imiptools.stores.names import normalise_user
from imiptools.stores.transaction import Transaction

#: The tables holding a user's records (``users()`` lists their users).
USER_TABLES = (
    "objects",
    "recurrences",
    "cancelled_objects",
    "cancelled_recurrences",
    "counters",
    "freebusy",
    "freebusy_other",
    "offers",
    "decisions",
    "requests",
)


class PgStore(PeriodRecords, Store):
    """The :class:`Store` in the database of ``session`` (see the module docstring)."""

    def __init__(self, session: PgSession) -> None:
        self.db = session

    # -- locking and transactions -----------------------------------------------------

    @contextmanager
    def lock(self, user: str, timeout: float) -> Iterator[None]:
        """Open (or join) a transaction and take the user's advisory lock in
        it; the transaction commits when the ``with`` ends (rolls back on an
        exception), which releases the lock. The user is listed by
        :meth:`users` from then on."""
        uri = normalise_user(user)
        with self.db.transaction():
            self.db.lock(lock_key("user", uri), timeout, f"user {uri}")
            self.db.write(
                "INSERT INTO users (uri) VALUES (%s) ON CONFLICT DO NOTHING", (to_db(uri),)
            )
            yield

    def commit(self, transaction: Transaction) -> None:
        """Apply ``transaction`` in the database transaction the caller's lock
        opened (or in one of its own): the quota records deferred into it,
        its store calls, its replies (into the outbox of this database)."""
        if transaction.empty():
            return
        if any(f.writes for f in transaction.foreign.values()):
            raise ValueError("the database store cannot commit writes to files")
        outbox = transaction.outbox
        if transaction.messages and not (isinstance(outbox, PgOutbox) and outbox.db is self.db):
            raise ValueError("the database store spools only into its own database's outbox")
        with self.db.transaction():
            for deferred in transaction.deferred:
                deferred.apply()
            for name, args in transaction.calls:
                getattr(self, name)(*args)
            for message in transaction.messages:
                assert outbox is not None
                outbox.put(message.message, message.envelope_from, message.recipients, message.key)

    # -- users ------------------------------------------------------------------------

    def users(self) -> Iterator[str]:
        """The users locked once, and those with any record."""
        selects = ["SELECT uri FROM users", *(f"SELECT usr FROM {t}" for t in USER_TABLES)]
        rows = self.db.rows(" UNION ".join(selects))
        return iter(sorted(from_db(row[0]) for row in rows))

    # -- keyed texts --------------------------------------------------------------------

    def _text(self, query: str, *params: str) -> str | None:
        found = self.db.value(query, params)
        return None if found is None else from_db(found)

    # -- current objects ----------------------------------------------------------------

    def get_object(self, user: str, uid: str) -> str | None:
        return self._text(
            "SELECT body FROM objects WHERE usr = %s AND uid = %s", user_key(user), to_db(uid)
        )

    def set_object(self, user: str, uid: str, text: str) -> None:
        self.db.write(
            "INSERT INTO objects (usr, uid, body) VALUES (%s, %s, %s)"
            " ON CONFLICT (usr, uid) DO UPDATE SET body = EXCLUDED.body",
            (user_key(user), to_db(uid), to_db(text)),
        )

    def remove_object(self, user: str, uid: str) -> None:
        """Remove the main object and the overridden instances, at once."""
        self.db.write(
            "WITH gone AS (DELETE FROM recurrences WHERE usr = %s AND uid = %s)"
            " DELETE FROM objects WHERE usr = %s AND uid = %s",
            (user_key(user), to_db(uid)) * 2,
        )

    def object_uids(self, user: str) -> Iterator[str]:
        """The UIDs with a main object or an overridden instance."""
        usr = user_key(user)
        return iter(
            self._texts(
                "SELECT uid FROM objects WHERE usr = %s"
                " UNION SELECT uid FROM recurrences WHERE usr = %s",
                usr,
                usr,
            )
        )

    def get_recurrence(self, user: str, uid: str, rid: str) -> str | None:
        return self._text(
            "SELECT body FROM recurrences WHERE usr = %s AND uid = %s AND rid = %s",
            user_key(user),
            to_db(uid),
            to_db(rid),
        )

    def set_recurrence(self, user: str, uid: str, rid: str, text: str) -> None:
        self.db.write(
            "INSERT INTO recurrences (usr, uid, rid, body) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (usr, uid, rid) DO UPDATE SET body = EXCLUDED.body",
            (user_key(user), to_db(uid), to_db(rid), to_db(text)),
        )

    def remove_recurrence(self, user: str, uid: str, rid: str) -> None:
        self.db.write(
            "DELETE FROM recurrences WHERE usr = %s AND uid = %s AND rid = %s",
            (user_key(user), to_db(uid), to_db(rid)),
        )

    def recurrence_ids(self, user: str, uid: str) -> list[str]:
        return sorted(
            self._texts(
                "SELECT rid FROM recurrences WHERE usr = %s AND uid = %s",
                user_key(user),
                to_db(uid),
            )
        )

    # -- cancellations ----------------------------------------------------------------

    def get_cancelled_object(self, user: str, uid: str) -> str | None:
        return self._text(
            "SELECT body FROM cancelled_objects WHERE usr = %s AND uid = %s",
            user_key(user),
            to_db(uid),
        )

    def cancel_object(self, user: str, uid: str, text: str) -> None:
        """Record the cancellation and remove the current object, at once."""
        usr, key = user_key(user), to_db(uid)
        self.db.write(
            "WITH gone AS (DELETE FROM recurrences WHERE usr = %s AND uid = %s),"
            " removed AS (DELETE FROM objects WHERE usr = %s AND uid = %s)"
            " INSERT INTO cancelled_objects (usr, uid, body) VALUES (%s, %s, %s)"
            " ON CONFLICT (usr, uid) DO UPDATE SET body = EXCLUDED.body",
            (usr, key, usr, key, usr, key, to_db(text)),
        )

    def uncancel_object(self, user: str, uid: str) -> None:
        self.db.write(
            "DELETE FROM cancelled_objects WHERE usr = %s AND uid = %s",
            (user_key(user), to_db(uid)),
        )

    def get_cancelled_recurrence(self, user: str, uid: str, rid: str) -> str | None:
        return self._text(
            "SELECT body FROM cancelled_recurrences WHERE usr = %s AND uid = %s AND rid = %s",
            user_key(user),
            to_db(uid),
            to_db(rid),
        )

    def cancel_recurrence(self, user: str, uid: str, rid: str, text: str) -> None:
        """Record the instance's cancellation and remove its override, at once."""
        keys = (user_key(user), to_db(uid), to_db(rid))
        self.db.write(
            "WITH gone AS (DELETE FROM recurrences WHERE usr = %s AND uid = %s AND rid = %s)"
            " INSERT INTO cancelled_recurrences (usr, uid, rid, body) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (usr, uid, rid) DO UPDATE SET body = EXCLUDED.body",
            (*keys, *keys, to_db(text)),
        )

    def uncancel_recurrence(self, user: str, uid: str, rid: str) -> None:
        self.db.write(
            "DELETE FROM cancelled_recurrences WHERE usr = %s AND uid = %s AND rid = %s",
            (user_key(user), to_db(uid), to_db(rid)),
        )

    def cancelled_recurrence_ids(self, user: str, uid: str) -> list[str]:
        return sorted(
            self._texts(
                "SELECT rid FROM cancelled_recurrences WHERE usr = %s AND uid = %s",
                user_key(user),
                to_db(uid),
            )
        )

    def cancelled_object_uids(self, user: str) -> Iterator[str]:
        return iter(self._texts("SELECT uid FROM cancelled_objects WHERE usr = %s", user_key(user)))

    # -- counter-proposals --------------------------------------------------------------

    def get_counters(self, user: str, uid: str) -> dict[str, str]:
        rows = self.db.rows(
            "SELECT attendee, body FROM counters WHERE usr = %s AND uid = %s",
            (user_key(user), to_db(uid)),
        )
        return {from_db(attendee): from_db(body) for attendee, body in sorted(rows)}

    def set_counter(self, user: str, uid: str, attendee: str, text: str) -> None:
        self.db.write(
            "INSERT INTO counters (usr, uid, attendee, body) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (usr, uid, attendee) DO UPDATE SET body = EXCLUDED.body",
            (user_key(user), to_db(uid), to_db(attendee), to_db(text)),
        )

    def remove_counters(self, user: str, uid: str, attendee: str | None = None) -> None:
        if attendee is None:
            self.db.write(
                "DELETE FROM counters WHERE usr = %s AND uid = %s",
                (user_key(user), to_db(uid)),
            )
            return
        self.db.write(
            "DELETE FROM counters WHERE usr = %s AND uid = %s AND attendee = %s",
            (user_key(user), to_db(uid), to_db(attendee)),
        )

    # -- the decision log ---------------------------------------------------------------

    def log_decision(self, user: str, line: str) -> None:
        if "\n" in line or "\r" in line:
            raise ValueError("a log line must be one line")
        self.db.write(
            "INSERT INTO decisions (usr, line) VALUES (%s, %s)", (user_key(user), to_db(line))
        )

    def decisions(self, user: str) -> Iterator[str]:
        return iter(
            self._texts("SELECT line FROM decisions WHERE usr = %s ORDER BY id", user_key(user))
        )

    # -- the queue of requests ----------------------------------------------------------

    def get_requests(self, user: str) -> list[tuple[str, str, str]]:
        rows = self.db.rows(
            "SELECT uid, rid, kind FROM requests WHERE usr = %s ORDER BY id", (user_key(user),)
        )
        return [(from_db(uid), from_db(rid), from_db(kind)) for uid, rid, kind in rows]

    def queue_request(self, user: str, uid: str, rid: str = "", kind: str = "REQUEST") -> None:
        """Append ``(uid, rid, kind)``; an item for ``(uid, rid)`` keeps its
        place in the queue and takes the new ``kind``."""
        self.db.write(
            "INSERT INTO requests (usr, uid, rid, kind) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (usr, uid, rid) DO UPDATE SET kind = EXCLUDED.kind",
            (user_key(user), to_db(uid), to_db(rid), to_db(kind)),
        )

    def dequeue_request(self, user: str, uid: str, rid: str = "") -> None:
        self.db.write(
            "DELETE FROM requests WHERE usr = %s AND uid = %s AND rid = %s",
            (user_key(user), to_db(uid), to_db(rid)),
        )
