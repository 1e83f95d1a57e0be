"""Daemon against pipe: ``imip-agent-lmtp`` against ``imip-resource`` (issue 15).

For 1, 2 and 8 concurrent clients, each round delivers the same number of
invitations (requests for free hours of 16 rooms, see :mod:`lmtp`) over LMTP
to one running ``imip-agent-lmtp`` (its default workers) and through
``imip-resource``, one process per message as Postfix's pipe(8) runs it, in
the harness's shuffled order. The figures are per message: wall time is what
the senders wait (so B/A wall, the pipe over the daemon, is how many times
more messages per second the daemon delivers), CPU time is that of the pipe
processes or of the daemon's whole process tree (its supervisor and workers,
read from ``/proc``).

How the daemon is fed. The baseline (A, ``imip-agent-lmtp``) is fed as
Postfix's lmtp(8) feeds it under load: Postfix caches LMTP connections while
a destination has mail waiting (``lmtp_connection_cache_on_demand``, on by
default, postconf(5); CONNECTION_CACHE_README) and sends ``RSET`` on a cached
session before its next transaction; its client is C. So ``clients``
connections stay open for the whole comparison, each delivering one message
after another (``RSET``, ``MAIL``, ``RCPT``, ``DATA``), from a lean client
(:mod:`lmtp_load`: raw sockets, messages built before the clock starts,
replies read as far as their code) in a process of its own, so that neither
its CPU nor its GIL is the harness's. The first (warm-up) round opens the
connections. Every run of this benchmark before that change fed the daemon
a new connection a message from ``clients`` threads of smtplib in the
harness's own process (``LHLO`` each time, about 0.6 ms of the harness's CPU a
message on the same two cores); that way is still measured, as the second row
(``imip-agent-lmtp, a connection a message``), so that both can be read side
by side. The pipe side is as before: the MTA forks and execs one process a
message whatever its client does.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import count
from pathlib import Path

from harness import Outcome, Sample, Variant, compare
from lmtp import CachedClients, through_lmtp, through_pipe
from scenarios import Config
from sites import BIN

from imip_agent.lmtp_server import worker_count
from tests.lmtp_support import Daemon
from tests.support import Agent

PROGRAM = "imip-agent-lmtp"
#: The variants' labels: the daemon fed as Postfix's lmtp(8) feeds it (the
#: baseline), and as every earlier run of this benchmark fed it.
CACHED = "imip-agent-lmtp"
PER_MESSAGE = "imip-agent-lmtp, a connection a message"
CLIENTS = (1, 2, 8)
#: Messages per variant and round.
MESSAGES = 16


class NotAvailable(Exception):
    """The scenario cannot be measured here (the reason is its text)."""


def daemon(config: Config) -> list[Outcome]:
    """Per message: the daemon (A) against the pipe (B), at each client count."""
    root = config.work / "daemon"
    return at_each_count(config, root, Agent(root / "pipe"), Agent(root / "lmtp"))


def at_each_count(
    config: Config, root: Path, piped: Agent, served: Agent, backend: str = ""
) -> list[Outcome]:
    """The comparison at each of :data:`CLIENTS`: ``served``'s site behind
    the daemon, ``piped``'s through the pipe program (``backend``: named in
    the scenario's title, when not the file store)."""
    if not (BIN / PROGRAM).exists():
        raise NotAvailable(f"{PROGRAM} is not installed in this venv")
    workers = ("--workers", str(worker_count()))  # the daemon's default
    service = Daemon(served, root / "service", workers).start()
    counter = count()
    try:
        pipe = through_pipe(piped, root / "pipe-out")
        lmtp = through_lmtp(service)
        assert service.process is not None
        tree = _tree(service.process.pid)
        return [
            _compared(config, service, clients, counter, tree, lmtp, pipe, backend)
            for clients in CLIENTS
        ]
    finally:
        service.stop()
        service.kill()


def _compared(
    config: Config,
    service: Daemon,
    clients: int,
    counter: Iterator[int],
    tree: Callable[[], float],
    lmtp: Callable[[int], None],
    pipe: Callable[[int], None],
    backend: str = "",
) -> Outcome:
    """One client count: cached connections (A), a connection a message, the pipe."""
    cached = CachedClients(service, clients)
    on = f" on {backend}" if backend else ""
    try:
        return compare(
            f"daemon vs pipe{on}, {clients} client{'s' if clients > 1 else ''}",
            [
                Variant(CACHED, _batched(cached, counter, tree)),
                Variant(PER_MESSAGE, _measured(lmtp, clients, counter, tree)),
                Variant("imip-resource", _measured(pipe, clients, counter, _children)),
            ],
            config.rounds,
            config.seed,
            note=f"per message, {MESSAGES} messages a round; B/A wall: how many times"
            " the daemon's messages per second (A: cached connections, a lean client"
            " in a process of its own; the second row the older way, a new connection"
            " a message from smtplib threads in the harness)",
        )
    finally:
        cached.close()


def _batched(
    clients: CachedClients, counter: Iterator[int], cpu: Callable[[], float]
) -> Callable[[int], Sample]:
    """A variant delivering :data:`MESSAGES` new messages over ``clients``'
    cached connections."""

    def measure(_: int) -> Sample:
        numbers = [next(counter) for _ in range(MESSAGES)]
        used = cpu()
        wall = clients.deliver(numbers)
        return Sample(wall / MESSAGES, (cpu() - used) / MESSAGES)

    return measure


def _measured(
    deliver: Callable[[int], None],
    clients: int,
    counter: Iterator[int],
    cpu: Callable[[], float],
) -> Callable[[int], Sample]:
    """A variant delivering :data:`MESSAGES` new messages, ``clients`` at a time."""

    def measure(_: int) -> Sample:
        numbers = [next(counter) for _ in range(MESSAGES)]
        used, begin = cpu(), time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(deliver, numbers))
        wall = time.perf_counter() - begin
        return Sample(wall / MESSAGES, (cpu() - used) / MESSAGES)

    return measure


def _children() -> float:
    """CPU seconds of this process's reaped children (the pipe programs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tree(root: int) -> Callable[[], float]:
    """CPU seconds so far of process ``root`` and its live descendants."""
    tick = os.sysconf("SC_CLK_TCK")

    def used() -> float:
        parents: dict[int, int] = {}
        cpu: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
            cpu[int(entry.name)] = int(fields[11]) + int(fields[12])
        tree, grew = {root}, True
        while grew:
            found = {pid for pid, parent in parents.items() if parent in tree} - tree
            tree |= found
            grew = bool(found)
        return sum(cpu.get(pid, 0) for pid in tree) / tick

    return used
