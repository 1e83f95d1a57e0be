"""Backends benchmark: the per-message cost of the file and PostgreSQL backends.

A resource answers (and books) a request for a free slot, as in
``benchmarks/scale.py``, once with each backend per round, the order of
the two alternating from round to round so that a change in the machine's
load hits both alike. Measured:

* whole process: ``imip-resource`` as the MTA runs it (interpreter start,
  imports, for PostgreSQL psycopg's import and the connection set-up, the
  work, sending to ``--output``);
* in process: ``imiptools.agent.run`` on an open site (for PostgreSQL the
  connection is open already, as in a long-running service).

For each: min, median and max milliseconds per backend, and of the ratio
PostgreSQL / file of each round. The database is created on the server
``$IMIP_BENCH_POSTGRESQL`` names (default: the local socket, database
``postgres``) and dropped at the end. Usage::

    .venv/bin/python benchmarks/backends.py [--rounds 21]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import BIN, NOW, ROOM, request

from imiptools import agent
from imiptools.backends.postgresql import schema
from imiptools.config import Settings
from imiptools.dates import FixedClock
from imiptools.handlers.common import Envelope
from imiptools.handlers.resource import ResourceHandler
from imiptools.mail.send import DirectorySender
from imiptools.site import open_site

ADMIN_DSN = os.environ.get("IMIP_BENCH_POSTGRESQL", "dbname=postgres")


@contextmanager
def database() -> Iterator[str]:
    """A fresh database with the schema (its connection string), dropped after."""
    name = f"imip_bench_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
    params["dbname"] = name
    dsn = psycopg.conninfo.make_conninfo(**params)
    try:
        with psycopg.connect(dsn, autocommit=True) as connection:
            schema.migrate(connection)
        yield dsn
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(name)))


def settings_of(root: Path, dsn: str | None) -> Settings:
    """A file site under ``root``, or (with ``dsn``) one in that database."""
    paths = {
        "store": str(root / "store"),
        "preferences": str(root / "prefs"),
        "journal": str(root / "journal"),
        "publishing": str(root / "published"),
    }
    if dsn is None:
        return Settings(**paths)
    return Settings(backend="postgresql", dsn=dsn, **paths)


def config_of(root: Path, dsn: str | None) -> Path:
    """A configuration file naming the site of :func:`settings_of`."""
    settings = settings_of(root, dsn)
    lines = ["[agent]", f'backend = "{settings.backend}"']
    if dsn is not None:
        lines.append(f'dsn = "{dsn}"')
    lines += [
        f'{name} = "{getattr(settings, name)}"' for name in ("store", "preferences", "journal")
    ]
    path = root / "imip-agent.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def whole_process(root: Path, dsn: str | None) -> Callable[[int], float]:
    """A function running ``imip-resource`` for request ``index``; its seconds."""
    root.mkdir(parents=True, exist_ok=True)
    argv = [
        str(BIN / "imip-resource"),
        "-c",
        str(config_of(root, dsn)),
        "--now",
        "2030-01-01T00:00:00Z",
        "-o",
        "room@example.com",
        "-s",
        "alice@example.com",
        "--output",
        str(root / "out"),
    ]

    def run(index: int) -> float:
        begin = time.perf_counter()
        subprocess.run(argv, input=request(index), check=True, capture_output=True)
        return time.perf_counter() - begin

    return run


def in_process(root: Path, dsn: str | None) -> Callable[[int], float]:
    """A function running ``agent.run`` for request ``index`` on an open site."""
    site = open_site(settings_of(root, dsn), FixedClock(NOW))
    ctx = agent.Context(
        settings=site.settings,
        store=site.store,
        preferences=site.preferences,
        clock=site.clock,
        sender=DirectorySender(root / "out-in"),
        spool=site.outbox,
        ledger=site.ledger,
    )

    def run(index: int) -> float:
        begin = time.perf_counter()
        result = agent.run(
            request(index), [Envelope(ROOM, "alice@example.com")], ctx, ResourceHandler
        )
        assert result.code == 0, result
        return time.perf_counter() - begin

    return run


def interleaved(
    file_run: Callable[[int], float], pg_run: Callable[[int], float], rounds: int, offset: int
) -> tuple[list[float], list[float]]:
    """Seconds of each backend per round, the order alternating."""
    file_times, pg_times = [], []
    for number in range(rounds):
        index = offset + number
        if number % 2:
            pg_times.append(pg_run(index))
            file_times.append(file_run(index))
        else:
            file_times.append(file_run(index))
            pg_times.append(pg_run(index))
    return file_times, pg_times


def row(label: str, values: list[float], unit: str = "ms", scale: float = 1000) -> str:
    low, mid, high = min(values), statistics.median(values), max(values)
    if unit == "x":
        return f"| {label} | {low:.2f} | {mid:.2f} | {high:.2f} |"
    cells = " | ".join(f"{value * scale:.0f} {unit}" for value in (low, mid, high))
    return f"| {label} | {cells} |"


def report(title: str, file_times: list[float], pg_times: list[float]) -> list[str]:
    ratios = [pg / file for file, pg in zip(file_times, pg_times, strict=True)]
    return [
        f"| {title} | min | median | max |",
        "|---|---:|---:|---:|",
        row("file", file_times),
        row("postgresql", pg_times),
        row("ratio postgresql / file", ratios, unit="x"),
        "",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, database() as dsn:
        root = Path(tmp)
        outside = interleaved(
            whole_process(root / "file", None), whole_process(root / "pg", dsn), args.rounds, 0
        )
        inside = interleaved(
            in_process(root / "file", None), in_process(root / "pg", dsn), args.rounds, 1000
        )
        replies = len(list((root / "file" / "out").iterdir()))
        assert replies == args.rounds, f"expected {args.rounds} file replies, found {replies}"
    lines = [f"{args.rounds} rounds, interleaved", ""]
    lines += report("whole process", *outside)
    lines += report("in process", *inside)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
