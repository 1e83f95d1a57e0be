"""The PostgreSQL backend's assembly: :class:`PgBackend` and :func:`open_backend`.

The connection string comes from, in this order (exactly one is used):

1. the ``dsn`` setting (``[agent] dsn = "host=db.example.com dbname=imip
   user=imip"``; a password is better kept out of the configuration,
   in ``~/.pgpass`` of the agents' user or in the next two places);
2. the file named by the ``dsn_file`` setting, which must be readable by
   its owner only (mode 0600 or 0400): ConfigError otherwise;
3. the environment variable ``IMIP_AGENT_DSN``.

It is read when the first connection is made, never logged, and never put
in a message (:meth:`PgSession.describe <imiptools.backends.postgresql.session.PgSession.describe>`
names the database without the password).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import psycopg2

from imiptools.backends.base import Backend
from imiptools.backends.postgresql import schema
from imiptools.backends.postgresql.ledger import PgLedger
from imiptools.backends.postgresql.outbox import PgOutbox
from imiptools.backends.postgresql.preferences import PgPreferences
from imiptools.backends.postgresql.session import PgSession, session_for
from imiptools.backends.postgresql.store import PgStore
from imiptools.config import Settings
from imiptools.errors import ConfigError, ImipError

ENV_DSN = "IMIP_AGENT_DSN"


def read_dsn_file(path: Path) -> str:
    """The connection string in ``path``, which only its owner may read."""
    try:
        with path.open(encoding="utf-8") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"dsn_file {path}: cannot be read: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"dsn_file {path}: group or others may read it (it may hold a password): chmod 600"
        )
    dsn = text.strip()
    if not dsn:
        raise ConfigError(f"dsn_file {path}: empty")
    return dsn


def dsn_of(settings: Settings) -> str:
    """The connection string of ``settings`` (see the module docstring)."""
    if settings.dsn and settings.dsn_file:
        raise ConfigError("[agent] dsn and dsn_file are both set: keep one")
    if settings.dsn:
        return settings.dsn
    if settings.dsn_file:
        return read_dsn_file(Path(settings.dsn_file))
    found = os.environ.get(ENV_DSN, "").strip()
    if found:
        return found
    raise ConfigError(f"backend postgresql: set [agent] dsn or dsn_file, or ${ENV_DSN}")


class PgBackend(Backend):
    """The site's data in one PostgreSQL database (see the package docstring)."""

    name = "postgresql"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = session_for(lambda: dsn_of(settings))
        self.store = PgStore(self.db)
        self.ledger = PgLedger(self.db, settings.lock_timeout)
        self.preference_rows = PgPreferences(self.db)
        self.preferences = self.preference_rows
        self.outbox = PgOutbox(self.db)

    @property
    def store_location(self) -> str:
        """The database, without the password."""
        return self.db.describe()

    def initialise(self) -> list[str]:
        """Create or upgrade the schema (:func:`schema.migrate`)."""
        session = PgSession(lambda: dsn_of(self.settings), check=False)
        try:
            before, after = schema.migrate(session.connection())
        except psycopg2.Error as exc:
            session.fail(exc)
        finally:
            session.close()
        where = session.describe()
        if before == after:
            return [f"database schema version {after} in the {where}: up to date"]
        if before == 0:
            return [f"database schema version {after} created in the {where}"]
        return [f"database schema upgraded from version {before} to {after} in the {where}"]

    def connection_check(self) -> tuple[bool, str]:
        """Connect (as whoever runs this) and check the schema version."""
        where = self.store_location
        try:
            self.db.value("SELECT 1")
        except ImipError as exc:
            return False, f"{where}: {exc}"
        return True, f"{where}: connected, schema version {schema.LATEST}"

    def preference_users(self) -> list[str]:
        """The users who have preferences (for ``check``, which main's
        Backend interface asks this of)."""
        return self.preference_rows.users()

    def user_locations(self, user: str) -> list[str]:
        """The database, when it holds anything of ``user``."""
        return [self.store_location] if user in set(self.store.users()) else []


def open_backend(settings: Settings) -> PgBackend:
    """The PostgreSQL backend of ``settings`` (the ``imip_agent.backends`` entry point)."""
    return PgBackend(settings)
