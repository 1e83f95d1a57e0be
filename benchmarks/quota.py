"""Quota benchmark: a resource with ``check_quota`` answers a request while
its quota journal records 0 or 20,000 bookings of 200 users.

Measures ``imiptools.agent.run`` in process (parse, lock the resource, lock
the quota, read the quota's files, check every limit, decide, write the
store, record the booking in the quota, spool) for a request for a free
slot by a user with room left in a weekly and an outstanding limit. The
resource's own store is empty, so the figure is the quota's cost. Prints
medians as a Markdown table; docs/development/performance.md records them. Usage::

    .venv/bin/python benchmarks/quota.py [--bookings 20000] [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import NOW, ROOM, context, request, site_at

from imiptools import agent
from imiptools.handlers.common import Envelope
from imiptools.handlers.resource import ResourceHandler
from imiptools.quota.base import QuotaLedger
from imiptools.quota.limits import QuotaBooking

USERS = 200


def populate(journal: QuotaLedger, count: int) -> None:
    """``count`` one-hour bookings by ``USERS`` users (alice, who books in the
    benchmark, among them) across two years."""
    journal.write_admin_file("rooms", "limits", ["* time week PT40H", "* count outstanding 500"])
    items = []
    for index in range(count):
        start = NOW + timedelta(hours=index % (2 * 365 * 24))
        number = index % USERS
        user = f"mailto:user{number}@example.com" if number else "mailto:alice@example.com"
        items.append(
            QuotaBooking(
                user, "mailto:other@example.com", f"q{index}", "", start, start + timedelta(hours=1)
            )
        )
    journal.add_bookings("rooms", items)


def in_process(root: Path, runs: int) -> list[float]:
    """Seconds per in-process run."""
    ctx = context(root)
    times = []
    for index in range(runs):
        begin = time.perf_counter()
        result = agent.run(
            request(index), [Envelope(ROOM, "alice@example.com")], ctx, ResourceHandler
        )
        times.append(time.perf_counter() - begin)
        assert result.code == 0, result
    return times


def measure(count: int, runs: int) -> float:
    """The in-process median in milliseconds with ``count`` bookings recorded."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        site = site_at(root)
        site.preferences.set(ROOM, "scheduling_function", "check_quota rooms\nschedule_in_freebusy")
        journal = site.ledger
        populate(journal, count)
        median = statistics.median(in_process(root, runs)) * 1000
        recorded = len(journal.bookings("rooms"))
        assert recorded == count + runs, f"expected {count + runs} records, found {recorded}"
    return median


def main() -> int:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    print("| bookings in the quota | in-process (median) |")
    print("|---:|---:|")
    for count in (0, args.bookings):
        print(f"| {count:,} | {measure(count, args.runs):.1f} ms |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
