"""Senders side by side: deliveries whose replies go through a slow ``sendmail``.

Each delivery sends its replies after its transaction (``imiptools.agent.flush``).
With one exclusive outbox lock, every delivery of a site waited while
another's ``sendmail`` ran, however many cores; now each sender claims the
messages it sends (see :mod:`imiptools.spool`). This measures how the
deliveries of one site scale when their replies go through a ``sendmail``
that takes ``--delay`` ms (a shell script: sleep, then read the message): per
round, ``--messages`` requests (for 16 rooms) delivered by one worker, then by
``--workers`` at once (each a process running the LMTP service's job,
:func:`imip_agent.lmtp_work.run_job`, on the same site), in a shuffled order;
B/A is how many times the messages per second of one worker. Usage::

    .venv/bin/python benchmarks/outbox.py [--rounds 5] [--workers 4] [--delay 10]

``PYTHONPATH=/path/to/other/checkout`` measures another tree the same way.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import spread

ROOT = Path(__file__).resolve().parents[1]

#: One worker: deliver messages OFFSET.. OFFSET+COUNT-1 of benchmarks/lmtp.py's
#: invitations on the site at SITE (set up first if new), with SENDMAIL.
WORKER = """
import os, sys
from pathlib import Path
from imip_agent import lmtp
from imip_agent.lmtp_work import Job, run_job, start_worker
from imiptools import deferred
from tests.support import Agent
sys.path.insert(0, os.environ["BENCH"])  # after the tree measured is imported:
from lmtp import invitation  # benchmarks/lmtp.py puts its own tree first
site, sendmail, offset, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
agent = Agent(site)
if not (site / "store").exists():
    agent.set_up()
options = [*agent.store_options, "--now", agent.now, "--sendmail", sendmail]
args = lmtp.parser().parse_args([*options, "--resource=unix:" + str(site / "r.lmtp")])
deferred.settle_all()
start_worker(args)
jobs = []
for number in range(offset, offset + count):
    message, room = invitation(number)
    text = message.replace(b"\\r\\n", b"\\n")
    jobs.append(Job("resource", text, "alice@example.com", (room,), ""))
print("ready", flush=True)
sys.stdin.readline()
for job in jobs:
    outcome = run_job(job)
    if outcome.code != 0:
        raise SystemExit(f"delivery failed: {outcome}")
"""


def sendmail(directory: Path, delay_ms: float) -> Path:
    """A ``sendmail`` taking ``delay_ms`` ms: sleep, then read the message."""
    path = directory / "sendmail"
    path.write_text(f"#!/bin/sh\nsleep {delay_ms / 1000:.3f}\ncat >/dev/null\n", encoding="ascii")
    path.chmod(0o755)
    return path


def deliver(site: Path, program: Path, workers: int, offset: int, count: int) -> float:
    """Seconds ``workers`` processes take to deliver ``count`` messages each
    at once (timed from their start signal, once all are ready)."""
    env = {**os.environ, "BENCH": str(ROOT / "benchmarks")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), str(ROOT)]))
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                str(site),
                str(program),
                str(offset + n * count),
                str(count),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in range(workers)
    ]
    for child in children:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("a worker did not start")
    started = time.perf_counter()
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    for child in children:
        child.communicate()
        if child.returncode != 0:
            raise RuntimeError(f"a worker exited {child.returncode}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--messages", type=int, default=40, help="per worker and round")
    parser.add_argument("--delay", type=float, default=10.0, help="sendmail's ms a message")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    order = random.Random(args.seed)
    rates: dict[int, list[float]] = {1: [], args.workers: []}
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as scratch:
        work = Path(scratch)
        program = sendmail(work, args.delay)
        site, offset = work / "site", 0
        deliver(site, program, 1, offset, 2)  # set up, warm up
        offset += 100
        for number in range(args.rounds):
            for workers in order.sample(sorted(rates), len(rates)):
                seconds = deliver(site, program, workers, offset, args.messages)
                offset += workers * args.messages + 100
                rates[workers].append(workers * args.messages / seconds)
            print(f"round {number + 1}/{args.rounds}", file=sys.stderr, flush=True)
    one, many = rates[1], rates[args.workers]
    ratios = sorted(b / a for a, b in zip(one, many, strict=True))
    print("| workers | messages/s (min / median / max) | B/A |\n|---|--:|--:|")
    print(f"| 1 | {spread(one)} | A |")
    print(f"| {args.workers} | {spread(many)} | {spread(ratios, digits=2)} |")
    print(
        f"\n`benchmarks/outbox.py --rounds {args.rounds} --workers {args.workers} "
        f"--messages {args.messages} --delay {args.delay:g}`"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
