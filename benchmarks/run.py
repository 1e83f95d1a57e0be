"""Run the benchmarks of issues 15 and 16 and print one Markdown table.

Every figure is min / median / max over the rounds; every ratio (B/A) is
taken per round between variants run in the same round, in a shuffled
order (see ``benchmarks/harness.py``). Usage::

    .venv/bin/python benchmarks/run.py            # the full run (about 20 minutes)
    .venv/bin/python benchmarks/run.py --quick    # fewer rounds and smaller sites
    .venv/bin/python benchmarks/run.py --only pipe,check --rounds 9

docs/development/performance.md records the table and the command that made it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from backends import backends, daemon_postgresql
from daemon import NotAvailable, daemon
from harness import Outcome, table
from scenarios import SCENARIOS, Config, remove, scratch_directory

ALL = {**SCENARIOS, "daemon": daemon, "daemon-postgresql": daemon_postgresql, "backends": backends}


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 rounds, smaller sites")
    parser.add_argument("--rounds", type=int, help="rounds per comparison (default 15, quick 5)")
    parser.add_argument("--only", default="", help=f"comma-separated, of: {', '.join(ALL)}")
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-round order")
    parser.add_argument("--work", help="where to build the sites (default: the temp dir)")
    return parser.parse_args(argv)


def config_of(args: argparse.Namespace, work: Path) -> Config:
    config = Config(work=work, seed=args.seed)
    if args.quick:
        config = replace(config, rounds=5, check_objects=500, users=20)
    if args.rounds:
        config = replace(config, rounds=args.rounds)
    return config


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    names = [n for n in args.only.split(",") if n] or list(ALL)
    unknown = [n for n in names if n not in ALL]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}", file=sys.stderr)
        return 64
    work = scratch_directory(args.work)
    config = config_of(args, work)
    outcomes: list[Outcome] = []
    skipped = []
    begin = time.perf_counter()
    try:
        for name in names:
            try:
                found = ALL[name](config)
                outcomes += found if isinstance(found, list) else [found]
            except NotAvailable as exc:
                skipped.append(f"- {name}: not measured: {exc}")
    finally:
        remove(work)
    minutes = (time.perf_counter() - begin) / 60
    print(table(outcomes), end="")
    if skipped:
        print("\n".join(skipped))
    command = " ".join(["benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])])
    print(
        f"\n`{command}`: {config.rounds} rounds, {minutes:.0f} min, "
        f"Python {platform.python_version()}, {platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} cores"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
