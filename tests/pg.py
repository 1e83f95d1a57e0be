"""A PostgreSQL database for the tests: a fresh one per test session, dropped after.

The server is a private one (:func:`tests.pgserver.private_server`): each
pytest process (each xdist worker) that needs a database runs ``initdb``
and ``pg_ctl`` from Debian's server programs (``tools/ci-postgresql``
installs them, as ``./run-tests`` does) on a data directory in a temporary
directory, on a unix socket there only, and stops and removes it when the
process ends; the system's clusters are never used or touched. With
``$IMIP_TEST_POSTGRESQL`` (a connection string to a database from which
the tests may create and drop others) the tests use that server instead.
Without either the PostgreSQL tests skip, each saying why; in CI
(``CI=true``) they fail instead.

Each pytest session (each xdist worker) creates a database
``imip_test_<pid>_<random>`` with the schema (:func:`session_database`)
and drops it at the end (and those of sessions whose process is gone,
killed before they could); between tests :func:`emptied` empties every
table but the schema version, so each test starts from an empty site.
"""

from __future__ import annotations

import atexit
import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from psycopg2.extensions import make_dsn, parse_dsn

from imiptools.backends.postgresql import schema
from imiptools.config import Settings
from tests.pgserver import POSTGRESQL, binaries, private_server
from tests.support import IN_CI

#: The server the tests were given (None: a private one, see the module).
GIVEN_DSN = os.environ.get("IMIP_TEST_POSTGRESQL") or None
PREFIX = "imip_test_"

#: This process's private server, once started (stopped at exit), or why
#: it could not be.
_private: dict[str, str] = {}
_servers = ExitStack()


def _start_private() -> None:
    """Start this process's private server (once); its admin connection
    string, or why it failed, in ``_private``."""
    if _private:
        return
    if binaries() is None:
        _private["why"] = (
            f"no PostgreSQL server programs under {POSTGRESQL} (tools/ci-postgresql "
            "installs them) and no $IMIP_TEST_POSTGRESQL"
        )
        return
    atexit.register(_servers.close)
    try:
        server = _servers.enter_context(private_server(fast=True))
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        why = f"{exc} {detail.decode(errors='replace')}".strip()
        _private["why"] = f"cannot start a private PostgreSQL server: {why}"
        return
    _private["dsn"] = server.admin_dsn


def admin_dsn() -> str:
    """The connection string of the test server's ``postgres`` database
    (starting the private server on first use)."""
    if GIVEN_DSN:
        return GIVEN_DSN
    _start_private()
    return _private.get("dsn", "")


@contextmanager
def connected(dsn: str) -> Iterator[Connection]:
    """A connection to ``dsn`` in autocommit mode, closed after."""
    connection = psycopg2.connect(dsn, connect_timeout=5)
    try:
        connection.autocommit = True
        yield connection
    finally:
        connection.close()


def run(
    connection: Connection, query: str | sql.Composable, params: tuple[object, ...] | None = None
) -> list[tuple[object, ...]]:
    """Run one statement on ``connection``; its rows (none for a command)."""
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def _admin() -> AbstractContextManager[Connection]:
    return connected(admin_dsn())


def unavailable() -> str | None:
    """Why no test database can be made here (None: it can)."""
    if not GIVEN_DSN:
        _start_private()
        if "why" in _private:
            return _private["why"]
    try:
        with _admin() as connection:
            run(connection, "SELECT 1")
    except psycopg2.Error as exc:
        return f"no PostgreSQL server for the tests ({admin_dsn()}): {exc}".strip()
    return None


def require_server() -> None:
    """Skip (or in CI fail) when there is no server."""
    why = unavailable()
    if why is None:
        return
    if IN_CI:
        pytest.fail(why)
    pytest.skip(why)


def dsn_of(name: str) -> str:
    """The connection string of database ``name`` on the test server."""
    params = parse_dsn(admin_dsn())
    params["dbname"] = name
    return make_dsn(**params)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _drop(name: str) -> sql.Composed:
    return sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))


def drop_stale(admin: Connection) -> None:
    """Drop the databases of test sessions whose process is gone (killed
    before it could drop its own)."""
    rows = run(admin, "SELECT datname FROM pg_database WHERE datname LIKE %s", (PREFIX + "%",))
    for (name,) in rows:
        pid = str(name)[len(PREFIX) :].partition("_")[0]
        if pid.isdigit() and not _alive(int(pid)):
            run(
                admin,
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)),
            )


@contextmanager
def fresh_database(migrated: bool = True) -> Iterator[str]:
    """A new database (its connection string), with the schema unless
    ``migrated`` is false; dropped after."""
    name = f"{PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
    with _admin() as admin:
        drop_stale(admin)
        run(admin, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        dsn = dsn_of(name)
        if migrated:
            with connected(dsn) as connection:
                schema.migrate(connection)
        yield dsn
    finally:
        with _admin() as admin:
            run(
                admin,
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)),
            )


def emptied(dsn: str) -> str:
    """Empty every table of the database but the schema version (DELETE:
    for a test's few rows far quicker than TRUNCATE)."""
    with connected(dsn) as connection:
        tables = [
            str(row[0])
            for row in run(
                connection,
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                " AND tablename <> 'imip_schema'",
            )
        ]
        ordered = sorted(tables, key=lambda name: name == "quotas")  # referenced last
        deletes = [sql.SQL("DELETE FROM {}").format(sql.Identifier(t)) for t in ordered]
        run(connection, sql.SQL("; ").join([sql.SQL("BEGIN"), *deletes, sql.SQL("COMMIT")]))
    return dsn


def settings_of(dsn: str, root: Path) -> Settings:
    """Settings of a site in the database ``dsn`` (publishing under ``root``)."""
    return Settings(
        backend="postgresql",
        dsn=dsn,
        store=str(root / "store"),
        preferences=str(root / "prefs"),
        journal=str(root / "journal"),
        publishing=str(root / "published"),
    )


def write_config(path: Path, dsn: str, extra: str = "") -> Path:
    """A configuration file choosing the database ``dsn``."""
    path.write_text(f'[agent]\nbackend = "postgresql"\ndsn = "{dsn}"\n{extra}', encoding="utf-8")
    return path
