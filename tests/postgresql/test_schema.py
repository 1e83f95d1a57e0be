"""The schema: created and upgraded by imip-admin init, refused when it does
not match this program (exit 75 for the agents, so mail waits)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from imiptools.backends.postgresql import schema
from imiptools.errors import ConfigError
from imiptools.site import open_site
from tests.pg import connected, fresh_database, require_server, run, settings_of, write_config
from tests.support import BIN

USER = "mailto:room@example.com"


@pytest.fixture
def empty_database() -> Iterator[str]:
    """A database without the schema (dropped after)."""
    require_server()
    with fresh_database(migrated=False) as dsn:
        yield dsn


def _set_version(dsn: str, version: int) -> None:
    with connected(dsn) as connection:
        run(connection, "UPDATE imip_schema SET version = %s", (version,))


def admin(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [str(BIN / "imip-admin"), "-c", str(config), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def test_agents_refuse_a_database_without_the_schema(empty_database: str, tmp_path: Path) -> None:
    store = open_site(settings_of(empty_database, tmp_path)).store
    with pytest.raises(ConfigError, match="run imip-admin init"):
        store.get_object(USER, "a")


def test_init_creates_then_keeps_the_schema(empty_database: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "site.toml", empty_database)
    options = ("-P", str(tmp_path / "published"), "init", "--no-config")
    first = admin(config, *options)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"database schema version {schema.LATEST} created" in first.stdout
    second = admin(config, *options)
    assert second.returncode == 0 and "up to date" in second.stdout
    store = open_site(settings_of(empty_database, tmp_path)).store
    store.set_object(USER, "a", "text")
    assert store.get_object(USER, "a") == "text"


def test_a_newer_schema_is_refused_by_agents_and_init(pg_dsn: str, tmp_path: Path) -> None:
    _set_version(pg_dsn, schema.LATEST + 1)
    try:
        store = open_site(settings_of(pg_dsn, tmp_path)).store
        with pytest.raises(ConfigError, match="newer than this imip-agent's"):
            store.get_object(USER, "a")
        result = admin(write_config(tmp_path / "site.toml", pg_dsn), "init", "--no-config")
        assert result.returncode == 75
        assert "upgrade imip-agent" in result.stdout + result.stderr
    finally:
        _set_version(pg_dsn, schema.LATEST)


def test_an_older_schema_is_refused_until_migrated(empty_database: str) -> None:
    """Version 2 of a schema (the real one and one more step) against a
    database at version 1: refused, then upgraded in place."""
    upgraded = [*schema.MIGRATIONS, ["ALTER TABLE objects ADD COLUMN note text"]]
    with connected(empty_database) as connection:
        schema.migrate(connection)
        with pytest.raises(ConfigError, match=r"older than this imip-agent's .* imip-admin init"):
            schema.check_version(connection, latest=len(upgraded))
        assert schema.migrate(connection, upgraded) == (len(upgraded) - 1, len(upgraded))
        schema.check_version(connection, latest=len(upgraded))
        with pytest.raises(ConfigError, match="newer"):
            schema.check_version(connection)
        with pytest.raises(ConfigError, match="newer"):
            schema.migrate(connection)


def test_migrations_run_in_order_and_stop_at_the_latest(empty_database: str) -> None:
    with connected(empty_database) as connection:
        assert schema.stored_version(connection) == 0
        assert schema.migrate(connection) == (0, schema.LATEST)
        assert schema.migrate(connection) == (schema.LATEST, schema.LATEST)
        assert schema.stored_version(connection) == schema.LATEST
