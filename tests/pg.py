"""A PostgreSQL database for the tests: a fresh one per test session, dropped after.

The server is the one ``$IMIP_TEST_POSTGRESQL`` names (a connection string
to a database from which the tests may create and drop others; default:
the local socket, database ``postgres``, as the current user).
``./run-tests`` makes sure one answers (``tools/ci-services`` installs
Debian's postgresql and starts a cluster when none does). Without a
server the PostgreSQL tests skip, each saying why; in CI (``CI=true``)
they fail instead.

Each pytest session (each xdist worker) creates a database
``imip_test_<pid>_<random>`` with the schema (:func:`session_database`)
and drops it at the end (and those of sessions whose process is gone,
killed before they could); between tests :func:`emptied` empties every
table but the schema version, so each test starts from an empty site.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from imiptools.backends.postgresql import schema
from imiptools.config import Settings
from tests.support import IN_CI

ADMIN_DSN = os.environ.get("IMIP_TEST_POSTGRESQL", "dbname=postgres")
PREFIX = "imip_test_"


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=5)


def unavailable() -> str | None:
    """Why no test database can be made here (None: it can)."""
    try:
        with _admin() as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"no PostgreSQL server for the tests ($IMIP_TEST_POSTGRESQL): {exc}".strip()
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
    params = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
    params["dbname"] = name
    return psycopg.conninfo.make_conninfo(**params)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def drop_stale(admin: psycopg.Connection[tuple[object, ...]]) -> None:
    """Drop the databases of test sessions whose process is gone (killed
    before it could drop its own)."""
    rows = admin.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE %s", (PREFIX + "%",)
    ).fetchall()
    for (name,) in rows:
        pid = str(name)[len(PREFIX) :].partition("_")[0]
        if pid.isdigit() and not _alive(int(pid)):
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextmanager
def fresh_database(migrated: bool = True) -> Iterator[str]:
    """A new database (its connection string), with the schema unless
    ``migrated`` is false; dropped after."""
    name = f"{PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
    with _admin() as admin:
        drop_stale(admin)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        dsn = dsn_of(name)
        if migrated:
            with psycopg.connect(dsn, autocommit=True) as connection:
                schema.migrate(connection)
        yield dsn
    finally:
        with _admin() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def emptied(dsn: str) -> str:
    """Empty every table of the database but the schema version (DELETE:
    for a test's few rows far quicker than TRUNCATE)."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                " AND tablename <> 'imip_schema'"
            )
        ]
        with connection.transaction():
            for table in sorted(tables, key=lambda name: name == "quotas"):  # referenced last
                connection.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
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
