"""A private PostgreSQL server: the tests' (tests/pg.py), and one for a test
that restarts it (tests/hosts).

:func:`private_server` runs ``initdb`` and ``pg_ctl`` from Debian's
``/usr/lib/postgresql/N/bin`` on a data directory in a temporary
directory, listening on a unix socket there only (no TCP port), with
trust authentication; it is stopped and removed afterwards. The system's
clusters are never touched, so the test may restart (or crash) this one
at will. initdb refuses to run as root: as root the server runs as the
``postgres`` system user (Debian's package creates it), the temporary
directory given to it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import IN_CI

POSTGRESQL = Path("/usr/lib/postgresql")
PORT = 5499


def binaries() -> Path | None:
    """The newest installed server's ``bin`` directory (None: none)."""
    versions = sorted(
        (p for p in POSTGRESQL.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return versions[-1] if versions else None


def _owner() -> str | None:
    """The system user the server runs as (None: the current one)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "nobody"
    return "postgres"


@dataclass
class Server:
    """A running private server."""

    bindir: Path
    root: Path
    owner: str | None
    #: More server settings (``-c name=value ...``).
    options: str = ""

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def dsn(self) -> str:
        """The connection string of database ``imip``."""
        return f"host={self.root} port={PORT} dbname=imip user=postgres"

    @property
    def admin_dsn(self) -> str:
        return f"host={self.root} port={PORT} dbname=postgres user=postgres"

    def run(self, *argv: str) -> None:
        """Run a server program (as the server's owner)."""
        command = [str(self.bindir / argv[0]), *argv[1:]]
        if self.owner:
            command = ["runuser", "-u", self.owner, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def pg_ctl(self, action: str, *options: str) -> None:
        """``pg_ctl ACTION`` on the data directory, waiting for it."""
        settings = (
            f"-c listen_addresses='' -c unix_socket_directories='{self.root}' -c port={PORT}"
            f" {self.options}"
        ).strip()
        self.run(
            "pg_ctl", action, "-D", str(self.data), "-w", "-o", settings,
            "-l", str(self.root / "server.log"), *options,
        )  # fmt: skip

    def restart(self, mode: str = "immediate") -> None:
        """Restart; ``immediate`` is a crash (recovery from the WAL at start)."""
        self.pg_ctl("restart", "-m", mode)


def _skip(why: str) -> None:
    if IN_CI:
        pytest.fail(why)
    pytest.skip(why)


#: Settings of a server whose data may be lost in a machine crash (not in a
#: crash of the server itself: what it wrote is in the page cache).
FAST = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


@contextmanager
def private_server(fast: bool = False) -> Iterator[Server]:
    """A fresh server with an empty database ``imip`` (see the module);
    ``fast``: without fsync (:data:`FAST`)."""
    bindir = binaries()
    if bindir is None:
        _skip(f"no PostgreSQL server programs under {POSTGRESQL}")
    assert bindir is not None
    root = Path(tempfile.mkdtemp(prefix="imip-pg-"))
    owner = _owner()
    if owner:
        shutil.chown(root, owner)
    server = Server(bindir, root, owner, FAST if fast else "")
    try:
        server.run("initdb", "-D", str(server.data), "--auth=trust", "-U", "postgres", "--no-sync")
        server.pg_ctl("start")
        server.run("createdb", "-h", str(root), "-p", str(PORT), "-U", "postgres", "imip")
        yield server
    finally:
        if (server.data / "postmaster.pid").exists():
            server.pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(root, ignore_errors=True)
