"""One connection to the site's database, shared by the backend's parts.

A :class:`PgSession` connects on first use (``autocommit``: a statement
outside a transaction is its own transaction), checks that the schema is
the one this program knows (:func:`~imiptools.backends.postgresql.schema.check_version`)
and reconnects after the connection was lost.

Transactions (:meth:`PgSession.transaction`): the first ``with`` opens one
and commits it when it ends (rolls it back on an exception); a ``with``
inside an open transaction joins it. So the user's lock
(:meth:`imiptools.backends.postgresql.store.PgStore.lock`) opens the unit
of work's transaction, everything the unit writes (records, quota records,
replies in the outbox) joins it, and it commits when the lock is released:
a crash or a lost connection before that leaves nothing of it.

Round trips (each costs a wait on the server, which on a busy machine is
most of a statement's time): a transaction's ``BEGIN`` goes with its first
statement, and the statements whose result nobody reads
(:meth:`PgSession.write`: the unit's writes at commit, the outbox's rows)
wait and go with the next one, the ``COMMIT`` at the latest, as one
simple query of several statements (parameters are put in by psycopg2 on
this side). An accepted request is 18 round trips, the connection's
included (``tests/postgresql/test_round_trips.py`` counts them).

Locks (:meth:`PgSession.lock`): transaction-scoped advisory locks
(``pg_advisory_xact_lock``), released by the commit or rollback that ends
the transaction, and so by a crash: nothing can leave one behind. A wait
longer than the deadline is :class:`~imiptools.errors.LockTimeout` (75).
Keys are 64-bit hashes of the kind and name (:func:`lock_key`).

Failures (every call goes through :meth:`PgSession.failure`): the database
down, restarting, refusing connections, a lost connection, a deadlock or
a serialization failure are :class:`~imiptools.errors.StoreUnavailable`
(75: the MTA keeps the mail and retries); a lock wait past its deadline is
LockTimeout (75); anything else is a bug and propagates as it is. The
connection string is never logged nor put in an error message: it may
hold a password.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Generic, NoReturn, TypeVar

import psycopg2
from psycopg2 import errors
from psycopg2.extensions import TRANSACTION_STATUS_IDLE, parse_dsn
from psycopg2.extensions import connection as Connection
from psycopg2.extensions import cursor as Cursor

from imiptools.backends.base import reusing_connections
from imiptools.backends.postgresql import schema
from imiptools.errors import ConfigError, ImipError, LockTimeout, StoreUnavailable

log = logging.getLogger(__name__)

#: Seconds to wait for a connection unless the connection string says.
CONNECT_TIMEOUT = 10
APPLICATION = "imip-agent"

K = TypeVar("K")
V = TypeVar("V")


def lock_key(kind: str, name: str) -> int:
    """The advisory lock key of ``name`` of ``kind`` (``user``, ``quota``,
    ``outbox``): a signed 64-bit hash, so that keys of different kinds and
    of other applications practically never meet."""
    data = f"imip-agent\0{kind}\0{name}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)


def connection_parameters(dsn: str) -> dict[str, Any]:
    """The keyword parameters of ``dsn``, with this program's defaults
    (connect timeout, application name) and the session's time zone UTC.

    Raises ConfigError, without quoting the string (it may hold a password).
    """
    try:
        params: dict[str, Any] = parse_dsn(dsn)
    except psycopg2.Error as exc:
        raise ConfigError("the database connection string (dsn) cannot be parsed") from exc
    params.setdefault("connect_timeout", CONNECT_TIMEOUT)
    params.setdefault("fallback_application_name", APPLICATION)
    options = str(params.get("options", ""))
    params["options"] = f"{options} -c TimeZone=UTC".strip()
    return params


def describe(dsn: str) -> str:
    """The database of ``dsn`` for people: name, host or socket, user; never
    the password."""
    try:
        params = parse_dsn(dsn)
    except psycopg2.Error:
        return "postgresql (the connection string cannot be parsed)"
    name = params.get("dbname") or params.get("user") or "(default)"
    host = params.get("host") or params.get("hostaddr") or "the local socket"
    port = f":{params['port']}" if params.get("port") else ""
    user = f" as {params['user']}" if params.get("user") else ""
    return f"postgresql database {name} on {host}{port}{user}"


def _summary(exc: BaseException) -> str:
    """The first line of an error, shortened (libpq's messages name the
    server and the user, never the password)."""
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]


class PgSession:
    """A lazily opened connection (see the module docstring).

    ``dsn`` is called for the connection string when connecting (so that
    a file holding it is read only then). With ``check`` false the schema
    version is not checked (for ``imip-admin init``, which creates it).
    """

    def __init__(self, dsn: Callable[[], str], check: bool = True) -> None:
        self._dsn = dsn
        self._check = check
        self._connection: Connection | None = None
        #: How many transactions this session opened (see :class:`PerTransaction`).
        self.transactions = 0
        #: How many times this session waited on the server (connecting counts
        #: one; see ``tests/postgresql/test_round_trips.py``).
        self.round_trips = 0
        #: A transaction is open whose ``BEGIN`` goes with its first statement.
        self._begin = False
        #: Statements of the open transaction waiting to go with its next one.
        self._waiting: list[bytes] = []

    # -- the connection -------------------------------------------------------------

    def connection(self) -> Connection:
        """The open connection, connecting (again) if there is none."""
        if self._connection is None or self._connection.closed:
            self._connection = self._connect()
        return self._connection

    def _connect(self) -> Connection:
        params = connection_parameters(self._dsn())
        try:
            self.round_trips += 1
            connection: Connection = psycopg2.connect(**params)
            connection.autocommit = True
        except psycopg2.Error as exc:
            raise StoreUnavailable(f"cannot connect to the database: {_summary(exc)}") from exc
        if self._check:
            self.round_trips += 1
            try:
                schema.check_version(connection)
            except psycopg2.Error as exc:
                connection.close()
                raise StoreUnavailable(f"database: {_summary(exc)}") from exc
            except ImipError:
                connection.close()
                raise
        return connection

    def reset(self) -> None:
        """Make a kept session as good as a new one: roll back a transaction
        left open and release every advisory lock (the cross-host locks) the
        connection holds; a connection that fails at it is closed, and the
        next statement connects again."""
        self._begin = False
        self._waiting = []
        connection = self._connection
        if connection is None or connection.closed:
            return
        try:
            with connection.cursor() as cursor:
                if connection.info.transaction_status != TRANSACTION_STATUS_IDLE:
                    self.round_trips += 1
                    cursor.execute("ROLLBACK")
                self.round_trips += 1
                cursor.execute("SELECT pg_advisory_unlock_all()")
        except psycopg2.Error:
            self.close()

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back)."""
        self._begin = False
        self._waiting = []
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def describe(self) -> str:
        """The database, for people (see :func:`describe`)."""
        try:
            return describe(self._dsn())
        except ConfigError as exc:
            return f"postgresql ({exc})"

    # -- statements -------------------------------------------------------------------

    def execute(self, query: str, params: Sequence[Any] | None = None) -> Cursor:
        """Run one statement now (with what the open transaction has waiting,
        see :meth:`write`); its rows are fetched (see the module docstring
        for the failures)."""
        try:
            return self._send(self._mogrify(query, params))
        except psycopg2.Error as exc:
            self.fail(exc)

    def write(self, query: str, params: Sequence[Any] | None = None) -> None:
        """Run a statement whose result nobody reads: inside a transaction it
        waits and goes with the transaction's next statement (a read, a lock
        or the ``COMMIT``), in one round trip with it; outside one, now.

        So a failing write inside a transaction raises from that later
        statement, which the transaction's ``with`` then rolls back."""
        self._write(self._mogrify(query, params))

    def execute_many(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        """:meth:`write` ``INSERT ... VALUES (%s, ...)`` for each of ``rows``
        as one statement inserting them all (nothing for none). ``query``
        ends with its ``VALUES`` list."""
        if not rows:
            return
        head, values = query.split(" VALUES ", 1)
        cursor = self._cursor()
        many = b",".join(cursor.mogrify(values, row) for row in rows)
        self._write(head.encode() + b" VALUES " + many)

    def _write(self, statement: bytes) -> None:
        if self.in_transaction():
            self._waiting.append(statement)
            return
        try:
            self._send(statement)
        except psycopg2.Error as exc:
            self.fail(exc)

    def rows(self, query: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """The rows of a query."""
        return self.execute(query, params).fetchall()

    def value(self, query: str, params: Sequence[Any] | None = None) -> Any:
        """The first column of the first row of a query (None without rows)."""
        row = self.execute(query, params).fetchone()
        return None if row is None else row[0]

    def _cursor(self) -> Cursor:
        try:
            return self.connection().cursor()
        except psycopg2.Error as exc:
            self.fail(exc)

    def _mogrify(self, query: str, params: Sequence[Any] | None) -> bytes:
        """``query`` with ``params`` in it, as the server will be sent it."""
        return self._cursor().mogrify(query, params)

    def _send(self, statement: bytes) -> Cursor:
        """Send ``statement`` after the ``BEGIN`` and the writes waiting, all
        in one round trip (a simple query of several statements); the
        cursor holds the result of ``statement``. Raises psycopg2's error."""
        statements = [b"BEGIN"] if self._begin else []
        statements += [*self._waiting, statement]
        self._begin = False
        self._waiting = []
        cursor = self._cursor()
        self.round_trips += 1
        cursor.execute(b";\n".join(statements))
        return cursor

    def in_transaction(self) -> bool:
        """Whether a transaction is open (or opened, to be begun with its
        first statement)."""
        if self._begin:
            return True
        connection = self._connection
        if connection is None or connection.closed:
            return False
        return bool(connection.info.transaction_status != TRANSACTION_STATUS_IDLE)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Open a transaction, or join the one that is open (see the module
        docstring): committed when the outermost ``with`` ends, rolled back
        on an exception. Its ``BEGIN`` goes with its first statement, its
        ``COMMIT`` with the writes waiting (:meth:`write`): no round trip
        of their own."""
        if self.in_transaction():
            yield
            return
        self.transactions += 1
        self.connection()
        self._begin = True
        try:
            yield
        except BaseException as exc:
            self._rollback()
            if isinstance(exc, psycopg2.Error):
                self.fail(exc)
            raise
        if self._begin and not self._waiting:  # nothing to send, nothing to commit
            self._begin = False
            return
        try:
            self._send(b"COMMIT")
        except psycopg2.Error as exc:
            self._rollback()
            self.fail(exc)

    def _rollback(self) -> None:
        """End the open transaction after an exception (what was waiting is
        dropped); a failure to do so (the connection lost) is logged, not
        raised over the exception."""
        self._begin = False
        self._waiting = []
        connection = self._connection
        if connection is None or connection.closed:
            self._connection = None
            return
        if connection.info.transaction_status == TRANSACTION_STATUS_IDLE:
            return
        try:
            with connection.cursor() as cursor:
                self.round_trips += 1
                cursor.execute("ROLLBACK")
        except psycopg2.Error as exc:
            log.warning("database: rollback failed: %s", _summary(exc))
            if connection.closed:
                self._connection = None

    # -- locks ------------------------------------------------------------------------

    def lock(self, key: int, timeout: float, what: str) -> None:
        """Take the transaction-scoped advisory lock ``key`` (inside a
        transaction); LockTimeout naming ``what`` after ``timeout`` s."""
        if not self.in_transaction():
            raise RuntimeError("an advisory transaction lock needs an open transaction")
        self._locked("pg_advisory_xact_lock", key, timeout, what)

    def lock_session(self, key: int, timeout: float, what: str) -> None:
        """Take the session-level advisory lock ``key`` (held across
        transactions until :meth:`unlock_session` or the connection ends).
        Outside a transaction the statement is one of its own, which is
        where its lock timeout ends."""
        self._locked("pg_advisory_lock", key, timeout, what)

    def unlock_session(self, key: int) -> None:
        """Release a session-level lock; nothing to do when the connection
        is gone (the lock went with it)."""
        connection = self._connection
        if connection is None or connection.closed:
            return
        try:
            with connection.cursor() as cursor:
                self.round_trips += 1
                cursor.execute("SELECT pg_advisory_unlock(%s)", (key,))
        except psycopg2.Error as exc:
            log.warning("database: could not release a lock: %s", _summary(exc))

    def _locked(self, function: str, key: int, timeout: float, what: str) -> None:
        """Wait at most ``timeout`` s for lock ``key`` (``lock_timeout`` set
        for the transaction, or for the one statement outside one)."""
        milliseconds = f"{max(1, round(timeout * 1000))}ms"
        query = (
            f"SELECT {function}(%s) FROM (SELECT set_config('lock_timeout', %s, true)) AS deadline"
        )
        try:
            self._send(self._mogrify(query, (key, milliseconds)))
        except errors.LockNotAvailable as exc:
            raise LockTimeout(f"{what}: lock not granted within {timeout:g} s") from exc
        except psycopg2.Error as exc:
            self.fail(exc)

    # -- failures ---------------------------------------------------------------------

    def fail(self, exc: psycopg2.Error) -> NoReturn:
        """Raise the error that ``exc`` means (see :meth:`failure`)."""
        failure = self.failure(exc)
        if failure is exc:
            raise exc
        raise failure from exc

    def failure(self, exc: psycopg2.Error) -> Exception:
        """The error to raise for ``exc`` (see the module docstring)."""
        connection = self._connection
        if connection is not None and connection.closed:
            self._connection = None
        if isinstance(exc, errors.LockNotAvailable):
            return LockTimeout(f"database: {_summary(exc)}")
        if isinstance(exc, errors.UndefinedTable | errors.UndefinedColumn):
            return ConfigError(f"database: {_summary(exc)} (run imip-admin init)")
        transient = (
            psycopg2.OperationalError,
            psycopg2.InterfaceError,
            errors.InFailedSqlTransaction,
        )
        if isinstance(exc, transient):
            return StoreUnavailable(f"database: {_summary(exc)}")
        return exc


class PerTransaction(Generic[K, V]):
    """Values read at most once per transaction of ``session``: within one
    transaction (a unit of work, under its locks) a value read once is
    reused; outside a transaction every read goes to the database. The
    owner forgets a key it writes."""

    def __init__(self, session: PgSession) -> None:
        self.session = session
        self._number = -1
        self._values: dict[K, V] = {}

    def get(self, key: K, load: Callable[[], V]) -> V:
        """The value of ``key``, loaded with ``load`` unless read already in
        this transaction."""
        if not self.session.in_transaction():
            return load()
        if self._number != self.session.transactions:
            self._values.clear()
            self._number = self.session.transactions
        if key not in self._values:
            self._values[key] = load()
        return self._values[key]

    def forget(self, key: K) -> None:
        """Read ``key`` again next time (it was written)."""
        self._values.pop(key, None)


#: Sessions kept by connection string in a process that reuses connections
#: (see :func:`imiptools.backends.base.reuse_connections`).
_kept: dict[str, PgSession] = {}


def session_for(dsn: Callable[[], str]) -> PgSession:
    """A session for the site's database: a new one, or in a process that
    reuses connections the one kept for the same connection string, reset
    (:meth:`PgSession.reset`). The string is read now when reusing (a
    ConfigError then comes from opening the site, as it would from the
    first statement)."""
    if not reusing_connections():
        return PgSession(dsn)
    text = dsn()
    session = _kept.get(text)
    if session is None:
        session = _kept[text] = PgSession(lambda: text)
    else:
        session.reset()
    return session
