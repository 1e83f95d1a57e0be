"""The file and PostgreSQL backends side by side (issue 16 item 5).

The same invitation (``examples/01-alice-books.eml``, moved to a free day
each round) is answered and booked by a room on each backend, in the
harness's shuffled order per round (see :mod:`harness`):

- ``pipe``: ``imip-resource`` as the MTA runs it, one process per message
  (interpreter, imports, for PostgreSQL the driver's import, connecting and
  the schema check, the work, the reply written to ``--output``), each
  reading its site from a configuration file (``-c``);
- ``in process``: ``imiptools.agent.run`` on an open site (for PostgreSQL
  the connection open already, as in the LMTP service's workers), a
  request for a free slot.

:func:`daemon_postgresql` is the daemon row (:mod:`daemon`) on this backend:
``imip-agent-lmtp`` against ``imip-resource``, each on a database of its own
(``run.py --only daemon-postgresql``).

The CPU figures are the agent's process's; the database server's work
shows in the wall time (the agent waits for it). The database is created
on the server ``$IMIP_BENCH_POSTGRESQL`` names (a connection string to a
database from which others may be created; default the local socket's
``postgres``) and dropped at the end. Run::

    .venv/bin/python benchmarks/run.py --only backends --rounds 21
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from daemon import NotAvailable, at_each_count
from harness import Outcome, Sample, Variant, compare, run_program
from psycopg2 import sql
from psycopg2.extensions import make_dsn, parse_dsn
from scenarios import MTA_ENV, Config, _expect_accepted, _in_process
from sites import BIN, NOW_TEXT, ORGANISER, BenchSite, invitation, request

from imiptools.backends.postgresql import schema
from imiptools.config import Settings
from tests.support import Agent

ADMIN_DSN = os.environ.get("IMIP_BENCH_POSTGRESQL", "dbname=postgres")


@dataclass(frozen=True)
class ConfiguredSite(BenchSite):
    """A site under ``root`` named by a configuration file there; with
    ``dsn`` its data is in that database (free/busy published under
    ``root``)."""

    dsn: str | None = None

    @property
    def settings(self) -> Settings:
        """The site's settings (the file backend's, or the database's)."""
        files = super().settings
        if self.dsn is None:
            return files
        return Settings(
            backend="postgresql",
            dsn=self.dsn,
            store=files.store,
            preferences=files.preferences,
            journal=files.journal,
            publishing=files.publishing,
        )

    def options(self) -> list[str]:
        """``-c`` and the site's configuration file (written now)."""
        settings = self.settings
        lines = ["[agent]", f'backend = "{settings.backend}"']
        lines += [f'dsn = "{self.dsn}"'] if self.dsn else []
        for name in ("store", "preferences", "journal", "publishing"):
            lines.append(f'{name} = "{getattr(settings, name)}"')
        path = self.root / "imip-agent.toml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return ["-c", str(path)]


def _run(admin: str, statement: sql.Composable) -> None:
    connection = psycopg2.connect(admin, connect_timeout=5)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


@contextmanager
def database() -> Iterator[str]:
    """A new database with the schema (its connection string), dropped after.

    Raises NotAvailable when the server cannot be reached."""
    name = sql.Identifier(f"imip_bench_{os.getpid()}_{secrets.token_hex(4)}")
    try:
        _run(ADMIN_DSN, sql.SQL("CREATE DATABASE {}").format(name))
    except psycopg2.Error as exc:
        raise NotAvailable(f"no PostgreSQL server at {ADMIN_DSN!r}: {exc}".strip()) from exc
    params = parse_dsn(ADMIN_DSN)
    params["dbname"] = name.string
    dsn = make_dsn(**params)
    try:
        connection = psycopg2.connect(dsn)
        try:
            connection.autocommit = True
            schema.migrate(connection)
        finally:
            connection.close()
        yield dsn
    finally:
        _run(ADMIN_DSN, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


def _site(root: Path, dsn: str | None) -> ConfiguredSite:
    """A new site at ``root`` (the directories ``imip-admin init`` makes)."""
    for name in ("store", "prefs"):
        (root / name).mkdir(parents=True)
    return ConfiguredSite(root, dsn)


def _pipe(site: ConfiguredSite) -> Variant:
    out = site.root / "out"
    argv = [str(BIN / "imip-resource"), *site.options(), "--now", NOW_TEXT]
    argv += ["-o", "room@example.com", "-s", ORGANISER, "--output", str(out)]
    label = "postgresql" if site.dsn else "file"

    def measure(number: int) -> Sample:
        return run_program(argv, invitation(number + 1), MTA_ENV)

    return Variant(label, measure)


def backends(config: Config) -> list[Outcome]:
    """Per message, the file backend (A) against PostgreSQL (B): as a pipe
    program and in process."""
    root = config.work / "backends"
    with database() as dsn:
        sites = [_site(root / "pipe-file", None), _site(root / "pipe-pg", dsn)]
        pipe = compare(
            "pipe, file vs postgresql",
            [_pipe(site) for site in sites],
            config.rounds,
            config.seed,
            note="imip-resource as the MTA runs it, its site from a configuration file; "
            "for postgresql: importing psycopg2, connecting over the local socket, the "
            "schema check; CPU is the agent's (the server's work is in the wall time)",
        )
        for site in sites:
            _expect_accepted(site.root / "out", config.rounds + 1)
        inside = [_site(root / "in-file", None), _site(root / "in-pg", dsn)]
        variants = [
            Variant("postgresql" if s.dsn else "file", _in_process(s, request)) for s in inside
        ]
        in_process = compare(
            "in process, file vs postgresql",
            variants,
            config.rounds,
            config.seed,
            note="agent.run on an open site (the database's connection open, as in the "
            "LMTP service); the file store fsyncs, the database commits once",
        )
    return [pipe, in_process]


def daemon_postgresql(config: Config) -> list[Outcome]:
    """The daemon row on the PostgreSQL backend: ``imip-agent-lmtp`` against
    ``imip-resource``, each on a database of its own, at each client count
    (see :mod:`daemon`). The pipe connects for every message; the daemon's
    workers keep their connection (as on a real site)."""
    root = config.work / "daemon-postgresql"
    root.mkdir(parents=True)
    with database() as piped_dsn, database() as served_dsn:
        piped = Agent(root / "pipe", config=_configuration(root / "pipe.toml", piped_dsn))
        served = Agent(root / "lmtp", config=_configuration(root / "lmtp.toml", served_dsn))
        return at_each_count(config, root, piped, served, "PostgreSQL")


def _configuration(path: Path, dsn: str) -> Path:
    """A configuration file at ``path`` putting the site in database ``dsn``."""
    path.write_text(f'[agent]\nbackend = "postgresql"\ndsn = "{dsn}"\n', encoding="utf-8")
    return path


if __name__ == "__main__":
    sys.exit("run it as: .venv/bin/python benchmarks/run.py --only backends [--rounds N]")
