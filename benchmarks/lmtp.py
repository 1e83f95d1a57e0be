"""imip-agent-lmtp against the pipe program: messages per second, interleaved.

For each number of concurrent clients (1, 2 and 8 by default), each round
delivers the same count of invitations twice, once through ``imip-resource``
(one process per message, as Postfix's pipe(8) runs it, ``clients`` at a
time) and once over LMTP to one running ``imip-agent-lmtp`` (``clients``
connections kept open, one transaction after another on each, as Postfix's
lmtp(8) caches them: :class:`CachedClients`; with
``--connection-per-message``, ``clients`` smtplib threads in this process
opening a connection a message, as earlier runs did), alternating which goes
first. Every message is a request for a free hour of one of 16 rooms, so
both book and answer it. Each round gives the ratio of the daemon's rate to
the pipe's; the ratios of all rounds are printed as min/median/max, with the
rates. The two paths have stores of their own, which grow alike. Usage::

    .venv/bin/python benchmarks/lmtp.py [--messages 40] [--rounds 5] [--clients 1 2 8]
        [--connection-per-message]
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.lmtp_support import Daemon, lmtp_transaction  # noqa: E402
from tests.support import BIN, Agent  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from lmtp_load import wire  # noqa: E402

ROOMS = 16
#: The load generator run by :class:`CachedClients`.
LOAD = Path(__file__).resolve().parent / "lmtp_load.py"


def invitation(index: int) -> tuple[bytes, str]:
    """A request for a free hour of room ``index % ROOMS``, and that room."""
    room = f"room{index % ROOMS}@example.com"
    start = datetime(2030, 2, 1, 8, tzinfo=UTC) + timedelta(hours=index)
    stamp = start.strftime("%Y%m%dT%H%M%SZ")
    end = (start + timedelta(hours=1)).strftime("%Y%m%dT%H%M%SZ")
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\nMETHOD:REQUEST\r\n"
        f"BEGIN:VEVENT\r\nUID:bench-{index}@example.com\r\nDTSTAMP:20300101T000000Z\r\n"
        f"DTSTART:{stamp}\r\nDTEND:{end}\r\nSUMMARY:Bench\r\n"
        "ORGANIZER:mailto:alice@example.com\r\n"
        f"ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{room}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    message = (
        f"From: alice@example.com\r\nTo: {room}\r\nSubject: Booking\r\n"
        f"Message-ID: <bench-{index}@example.com>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/calendar; method=REQUEST; charset=UTF-8\r\n\r\n" + text
    )
    return message.encode(), room


def through_pipe(agent: Agent, out: Path) -> Callable[[int], None]:
    def deliver(index: int) -> None:
        message, room = invitation(index)
        argv = [
            str(BIN / "imip-resource"),
            *agent.store_options,
            "--now",
            agent.now,
            "-o",
            room,
            "-s",
            "alice@example.com",
            "--output",
            str(out),
        ]
        done = subprocess.run(argv, input=message, capture_output=True, check=False)
        assert done.returncode == 0, done.stdout

    return deliver


def through_lmtp(daemon: Daemon) -> Callable[[int], None]:
    def deliver(index: int) -> None:
        message, room = invitation(index)
        replies = lmtp_transaction(daemon.sockets["resource"], message, "alice@example.com", [room])
        assert [r.code for r in replies] == [250], replies

    return deliver


class CachedClients:
    """``clients`` cached LMTP connections to ``daemon``'s resource socket,
    held by :mod:`lmtp_load` in a process of its own (Postfix's lmtp(8)
    with connection caching, see there)."""

    def __init__(self, daemon: Daemon, clients: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-S", str(LOAD), str(daemon.sockets["resource"]), str(clients)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._read() == ("ready",)

    def deliver(self, indices: Sequence[int]) -> float:
        """Deliver the invitations ``indices`` (built and sent to the client
        beforehand); the wall time from the start to the last reply."""
        batch = []
        for index in indices:
            message, room = invitation(index)
            batch.append(("alice@example.com", [room], "", wire(message)))
        self._write(("batch", batch))
        assert self._read() == ("loaded",)
        begin = time.perf_counter()
        self._write(("go",))
        done = self._read()
        wall = time.perf_counter() - begin
        assert done[0] == "done", done
        replies = done[1]
        assert isinstance(replies, list)
        assert all(len(r) == 1 and r[0].startswith("250 ") for r in replies), replies
        return wall

    def close(self) -> None:
        """Quit: the client closes its connections and exits."""
        if self.process.poll() is None:
            self._write(("quit",))
            self.process.wait(timeout=60)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()

    def _write(self, frame: tuple[object, ...]) -> None:
        assert self.process.stdin is not None
        data = pickle.dumps(frame)
        self.process.stdin.write(struct.pack("!I", len(data)) + data)
        self.process.stdin.flush()

    def _read(self) -> tuple[object, ...]:
        assert self.process.stdout is not None
        head = self.process.stdout.read(4)
        if len(head) < 4:
            raise RuntimeError(f"the LMTP load client exited ({self.process.wait()})")
        found = pickle.loads(self.process.stdout.read(struct.unpack("!I", head)[0]))
        assert isinstance(found, tuple)
        return found


def rate(deliver: Callable[[int], None], first: int, count: int, clients: int) -> float:
    """Messages per second delivering ``count`` messages, ``clients`` at a time."""
    begin = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(deliver, range(first, first + count)))
    return count / (time.perf_counter() - begin)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=40, help="per path and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 8])
    parser.add_argument(
        "--connection-per-message",
        action="store_true",
        help="a new LMTP connection a message from smtplib threads (the older way)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-lmtp-") as scratch:
        root = Path(scratch)
        piped, served = Agent(root / "pipe"), Agent(root / "lmtp")
        daemon = Daemon(served, root / "daemon").start()
        try:
            pipe, lmtp = through_pipe(piped, root / "pipe-out"), through_lmtp(daemon)
            next_index = 0
            print("clients  daemon/pipe min  median  max   (pipe msg/s, daemon msg/s, medians)")
            for clients in args.clients:
                cached = None if args.connection_per_message else CachedClients(daemon, clients)

                def piped_rate(first: int, clients: int = clients) -> float:
                    return rate(pipe, first, args.messages, clients)

                def served_rate(
                    first: int, clients: int = clients, cached: CachedClients | None = cached
                ) -> float:
                    if cached is None:
                        return rate(lmtp, first, args.messages, clients)
                    return args.messages / cached.deliver(range(first, first + args.messages))

                ratios: list[float] = []
                pipe_rates: list[float] = []
                lmtp_rates: list[float] = []
                for round_ in range(args.rounds):
                    order = [(piped_rate, pipe_rates), (served_rate, lmtp_rates)]
                    for measure, rates in order if round_ % 2 == 0 else order[::-1]:
                        rates.append(measure(next_index))
                        next_index += args.messages
                    ratios.append(lmtp_rates[-1] / pipe_rates[-1])
                if cached is not None:
                    cached.close()
                print(
                    f"{clients:7d}  {min(ratios):15.1f}  {statistics.median(ratios):6.1f}"
                    f"  {max(ratios):4.1f}   ({statistics.median(pipe_rates):.1f},"
                    f" {statistics.median(lmtp_rates):.1f})"
                )
        finally:
            daemon.stop()
            daemon.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
