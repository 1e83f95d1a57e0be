"""Scale benchmark: a resource with 0 vs 20,000 bookings answers a request.

Measures, for a store holding N existing bookings of ``room@example.com``
(N = 0 and N = 20,000 by default, spread over ten years, six a weekday):

- in-process: ``imiptools.agent.run`` on a new request for a free slot
  (parse, lock, decide, write, spool, "send" to a directory);
- whole-process: ``imip-resource`` as the MTA runs it (interpreter start-up
  and imports included).

Each run books a new, non-clashing slot, so the store barely grows. Print
the medians; docs/development/performance.md records them. Usage::

    .venv/bin/python benchmarks/scale.py [--events 20000] [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from imiptools import agent
from imiptools.config import Settings
from imiptools.dates import FixedClock, format_utc
from imiptools.handlers.common import Envelope
from imiptools.handlers.resource import ResourceHandler
from imiptools.mail.send import DirectorySender
from imiptools.periods import Period
from imiptools.site import Site, open_site
from imiptools.stores.base import Store

ROOM = "mailto:room@example.com"
NOW = datetime(2030, 1, 1, tzinfo=UTC)
BIN = Path(sys.executable).parent


def event_text(uid: str, start: datetime, end: datetime, partstat: str = "ACCEPTED") -> str:
    """A stored booking (what the agent stores after accepting)."""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:{format_utc(start)}\r\n"
        f"DTEND:{format_utc(end)}\r\nSUMMARY:Booking {uid}\r\n"
        "ORGANIZER:mailto:alice@example.com\r\n"
        f"ATTENDEE;PARTSTAT={partstat}:{ROOM}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def booking_slots(count: int) -> list[datetime]:
    """Six one-hour bookings (09:00-15:00) per weekday from NOW onwards."""
    slots: list[datetime] = []
    day = NOW
    while len(slots) < count:
        if day.weekday() < 5:
            slots += [day.replace(hour=h) for h in range(9, 15)]
        day += timedelta(days=1)
    return slots[:count]


def populate(store: Store, count: int) -> None:
    """Write ``count`` bookings through the store interface."""
    for index, start in enumerate(booking_slots(count)):
        uid = f"booking-{index}@example.com"
        end = start + timedelta(hours=1)
        store.set_object(ROOM, uid, event_text(uid, start, end))
        period = Period(
            start, end, uid, "", "OPAQUE", f"Booking {uid}", "alice@example.com", "BUSY"
        )
        store.set_freebusy_for_uid(ROOM, uid, [period])


def request(index: int) -> bytes:
    """A request for a free slot (17:00-18:00 UTC, from 2030-03-04 on: inside
    the window, so that it is checked and booked, not declined as too far)."""
    start = datetime(2030, 3, 4, 17, tzinfo=UTC) + timedelta(days=index)
    uid = f"new-{index}@example.com"
    text = event_text(uid, start, start + timedelta(hours=1), "NEEDS-ACTION")
    text = text.replace("VERSION:2.0\r\n", "VERSION:2.0\r\nMETHOD:REQUEST\r\n")
    return (
        "From: alice@example.com\r\nTo: room@example.com\r\nSubject: Booking\r\n"
        f"Message-ID: <bench-{index}@example.com>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/calendar; method=REQUEST; charset=UTF-8\r\n\r\n" + text
    ).encode()


def site_at(root: Path) -> Site:
    """The site (the file backend) whose directories are under ``root``."""
    settings = Settings(
        store=str(root / "store"), preferences=str(root / "prefs"), journal=str(root / "journal")
    )
    return open_site(settings, FixedClock(NOW))


def context(root: Path) -> agent.Context:
    """An agent context over the site under ``root``."""
    site = site_at(root)
    return agent.Context(
        settings=site.settings,
        store=site.store,
        preferences=site.preferences,
        clock=site.clock,
        sender=DirectorySender(root / "out"),
        spool=site.outbox,
        ledger=site.ledger,
    )


def in_process(root: Path, runs: int, offset: int) -> list[float]:
    """Seconds per in-process run."""
    ctx = context(root)
    times = []
    for index in range(offset, offset + runs):
        message = request(index)
        begin = time.perf_counter()
        result = agent.run(message, [Envelope(ROOM, "alice@example.com")], ctx, ResourceHandler)
        times.append(time.perf_counter() - begin)
        assert result.code == 0, result
    return times


def whole_process(root: Path, runs: int, offset: int) -> list[float]:
    """Seconds per imip-resource process, as an MTA runs it."""
    argv = [
        str(BIN / "imip-resource"),
        "-S",
        str(root / "store"),
        "-p",
        str(root / "prefs"),
        "--now",
        "2030-01-01T00:00:00Z",
        "-o",
        "room@example.com",
        "-s",
        "alice@example.com",
        "--output",
        str(root / "out"),
    ]
    times = []
    for index in range(offset, offset + runs):
        begin = time.perf_counter()
        subprocess.run(argv, input=request(index), check=True, capture_output=True)
        times.append(time.perf_counter() - begin)
    return times


def measure(count: int, runs: int) -> tuple[float, float, float]:
    """(populate seconds, in-process median ms, whole-process median ms)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        begin = time.perf_counter()
        populate(site_at(root).store, count)
        filled = time.perf_counter() - begin
        inside = statistics.median(in_process(root, runs, 0)) * 1000
        outside = statistics.median(whole_process(root, runs, runs)) * 1000
        replies = [p.read_bytes() for p in (root / "out").iterdir()]
        assert len(replies) == 2 * runs, f"expected {2 * runs} replies, found {len(replies)}"
        accepted = sum(b"\nSubject: Accepted:" in reply for reply in replies)
        assert accepted == 2 * runs, f"expected every request accepted, {accepted} were"
    return filled, inside, outside


def main() -> int:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    print("| bookings held | in-process (median) | whole process (median) |")
    print("|---:|---:|---:|")
    for count in (0, args.events):
        filled, inside, outside = measure(count, args.runs)
        print(f"| {count:,} | {inside:.1f} ms | {outside:.0f} ms |", flush=True)
        print(f"<!-- populated {count} bookings in {filled:.1f} s -->", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
