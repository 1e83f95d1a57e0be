"""The database schema and its versioned migrations.

:data:`MIGRATIONS` lists the schema's versions in order, each the
statements that make the version before it into it; the table
``imip_schema`` holds the version a database has. ``imip-admin init``
(:func:`migrate`) runs the missing migrations in one transaction under an
advisory lock, so two admins cannot run them at once and a failure leaves
the schema as it was; it refuses a database whose schema is newer than
this program. The agents (:func:`check_version`) refuse a database whose
schema is not exactly this program's, with a ConfigError (75: mail waits
while the admin runs ``imip-admin init`` or upgrades imip-agent).

A new version is a new entry at the end of :data:`MIGRATIONS`; an entry
is never changed once released.

Tables (text from messages is stored as
:func:`~imiptools.backends.postgresql.text.to_db` gives it; ``usr`` is a
normalised calendar user URI; times are ``timestamptz`` in UTC):

- ``users``: the users the agents have locked (the store's users are these
  and those with any record);
- ``objects``, ``recurrences``, ``cancelled_objects``,
  ``cancelled_recurrences``, ``counters``: iCalendar text by UID (and
  RECURRENCE-ID, attendee);
- ``freebusy`` (``is_long`` marks a period of more than
  :data:`LONG_PERIOD`, so that a span's query reads only the periods that
  start in the span or up to that long before it, and the long ones),
  ``freebusy_other``, ``offers`` (with their expiry);
- ``decisions`` (the decision log, in ``id`` order), ``requests`` (the
  queue, in ``id`` order);
- ``preferences``;
- ``quotas``, ``quota_lists`` (an admin list's text as written),
  ``quota_bookings``;
- ``outbox``: replies waiting to be sent (``held_at`` set: set aside).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from psycopg2 import Error, errors
from psycopg2.extensions import connection as Connection

from imiptools.errors import ConfigError

#: Free/busy periods longer than this are kept apart (``is_long``).
LONG_PERIOD = timedelta(days=366)

#: The advisory lock that migrations take (a fixed key of this program).
MIGRATION_LOCK = 0x696D6970_73636865  # "imipsche"

_PERIOD = """
    rid text NOT NULL,
    transp text NOT NULL,
    summary text NOT NULL,
    organiser text NOT NULL,
    status text NOT NULL,
    start_at timestamptz NOT NULL,
    end_at timestamptz NOT NULL
"""

#: Version n is made by MIGRATIONS[n - 1].
MIGRATIONS: list[list[str]] = [
    [
        "CREATE TABLE imip_schema (version integer NOT NULL)",
        "CREATE TABLE users (uri text PRIMARY KEY)",
        """CREATE TABLE objects (
            usr text NOT NULL, uid text NOT NULL, body text NOT NULL,
            PRIMARY KEY (usr, uid))""",
        """CREATE TABLE recurrences (
            usr text NOT NULL, uid text NOT NULL, rid text NOT NULL, body text NOT NULL,
            PRIMARY KEY (usr, uid, rid))""",
        """CREATE TABLE cancelled_objects (
            usr text NOT NULL, uid text NOT NULL, body text NOT NULL,
            PRIMARY KEY (usr, uid))""",
        """CREATE TABLE cancelled_recurrences (
            usr text NOT NULL, uid text NOT NULL, rid text NOT NULL, body text NOT NULL,
            PRIMARY KEY (usr, uid, rid))""",
        """CREATE TABLE counters (
            usr text NOT NULL, uid text NOT NULL, attendee text NOT NULL, body text NOT NULL,
            PRIMARY KEY (usr, uid, attendee))""",
        f"""CREATE TABLE freebusy (
            usr text NOT NULL, uid text NOT NULL, is_long boolean NOT NULL, {_PERIOD})""",
        "CREATE INDEX freebusy_span ON freebusy (usr, is_long, start_at)",
        "CREATE INDEX freebusy_uid ON freebusy (usr, uid)",
        f"""CREATE TABLE freebusy_other (
            usr text NOT NULL, other text NOT NULL, uid text NOT NULL, {_PERIOD})""",
        "CREATE INDEX freebusy_other_user ON freebusy_other (usr, other)",
        f"""CREATE TABLE offers (
            usr text NOT NULL, uid text NOT NULL, expires timestamptz NOT NULL, {_PERIOD})""",
        "CREATE INDEX offers_user ON offers (usr, uid)",
        """CREATE TABLE decisions (
            id bigserial PRIMARY KEY, usr text NOT NULL, line text NOT NULL)""",
        "CREATE INDEX decisions_user ON decisions (usr, id)",
        """CREATE TABLE requests (
            id bigserial PRIMARY KEY, usr text NOT NULL, uid text NOT NULL,
            rid text NOT NULL, kind text NOT NULL, UNIQUE (usr, uid, rid))""",
        """CREATE TABLE preferences (
            usr text NOT NULL, name text NOT NULL, value text NOT NULL,
            PRIMARY KEY (usr, name))""",
        "CREATE TABLE quotas (name text PRIMARY KEY)",
        """CREATE TABLE quota_lists (
            quota text NOT NULL REFERENCES quotas, name text NOT NULL, body text NOT NULL,
            PRIMARY KEY (quota, name))""",
        """CREATE TABLE quota_bookings (
            quota text NOT NULL REFERENCES quotas, usr text NOT NULL,
            resource text NOT NULL, uid text NOT NULL, rid text NOT NULL,
            start_at timestamptz NOT NULL, end_at timestamptz NOT NULL,
            PRIMARY KEY (quota, usr, resource, uid, rid))""",
        """CREATE TABLE outbox (
            id text PRIMARY KEY, key text NOT NULL, envelope_from text NOT NULL,
            recipients text[] NOT NULL, message bytea NOT NULL,
            held_at timestamptz, reason text)""",
        "CREATE INDEX outbox_key ON outbox (key) WHERE key <> ''",
    ],
]

#: The schema version this program reads and writes.
LATEST = len(MIGRATIONS)


def _first(connection: Connection, query: str, params: Sequence[Any] = ()) -> Any:
    """The first column of the first row of ``query`` (None without rows)."""
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        row = cursor.fetchone()
    return None if row is None else row[0]


def stored_version(connection: Connection) -> int:
    """The schema version of the database (0: no schema yet)."""
    if not _first(connection, "SELECT to_regclass('imip_schema') IS NOT NULL"):
        return 0
    found = _first(connection, "SELECT max(version) FROM imip_schema")
    return int(found) if found is not None else 0


def _newer(version: int, latest: int) -> ConfigError:
    return ConfigError(
        f"the database schema is version {version}, newer than this imip-agent's"
        f" ({latest}): upgrade imip-agent"
    )


def check_version(connection: Connection, latest: int = LATEST) -> None:
    """Raise ConfigError unless the database's schema is version ``latest``
    (``connection`` in autocommit mode, outside a transaction)."""
    try:
        found = _first(connection, "SELECT max(version) FROM imip_schema")
    except errors.UndefinedTable:
        found = None
    version = int(found) if found is not None else 0
    if version == latest:
        return
    if version > latest:
        raise _newer(version, latest)
    if version == 0:
        raise ConfigError("the database has no imip-agent schema: run imip-admin init")
    raise ConfigError(
        f"the database schema is version {version}, older than this imip-agent's"
        f" ({latest}): run imip-admin init to upgrade it"
    )


def migrate(
    connection: Connection, migrations: Sequence[Sequence[str]] = MIGRATIONS
) -> tuple[int, int]:
    """Bring the schema to the last version of ``migrations`` (see the
    module docstring); returns (version before, version after).
    ConfigError for a newer one. ``connection`` is in autocommit mode,
    outside a transaction: the migrations run in one of their own."""
    latest = len(migrations)
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        try:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            before = stored_version(connection)
            if before > latest:
                raise _newer(before, latest)
            for statements in migrations[before:]:
                for statement in statements:
                    cursor.execute(statement)
            if before < latest:
                cursor.execute("DELETE FROM imip_schema")
                cursor.execute("INSERT INTO imip_schema (version) VALUES (%s)", (latest,))
        except BaseException:
            if not connection.closed:
                with contextlib.suppress(Error):  # the error that ended it is raised
                    cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")
    return before, latest
