"""Three mail hosts share one PostgreSQL database, for real (issue 16 item 4).

Three agent "hosts" (each its own configuration, log, publishing directory
and outgoing mail directory; separate ``imip-resource`` processes) run
against one private PostgreSQL server (:mod:`tests.pgserver`). 300
requests from 12 organisers for overlapping slots (an hour, starting on
the half hour) of 5 rooms, every room in the quota ``rooms`` (each
organiser may book 6 a week), are delivered by all three at once, a few
processes at a time per host. In the middle some agents are killed
(SIGKILL at a random moment) and the database crashes and restarts
(``pg_ctl restart -m immediate``); whatever did not exit 0 (75, or
killed) is delivered again, as an MTA does, until it is. Then:

* no room is double-booked (its busy periods never overlap, and every
  accepted request is stored at its room);
* no quota is overspent (no organiser has more than 6 records; the records
  are exactly the accepted requests);
* every request is answered exactly once: one distinct reply each (an
  answer whose sending was cut short by a kill is sent again by the next
  flush, byte for byte: the same Message-ID, counted once and reported);
* ``imip-admin check`` finds nothing on the database.

The figures are printed at the end of the run (``record_property``, see
tests/conftest.py: also under xdist and ``-q``). It runs once, or three
times (seeds 0, 1, 2) when ``IMIP_TEST_HOSTS`` is set (``./run-tests`` sets
it) or in CI; ``IMIP_TEST_HOSTS_ATTEMPTS`` sets the number of times and
``IMIP_TEST_HOSTS_REQUESTS`` the number of requests.
"""

from __future__ import annotations

import email
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from itertools import pairwise
from pathlib import Path

import pytest

from imiptools import agent
from imiptools.backends.postgresql import schema
from imiptools.config import load_settings
from imiptools.mail.send import DirectorySender
from imiptools.site import Site, open_site
from tests.pg import connected
from tests.pgserver import Server, private_server
from tests.support import BIN, IN_CI, calendar_text, imip_message, parse_calendar_part, vevent

ATTEMPTS = int(
    os.environ.get("IMIP_TEST_HOSTS_ATTEMPTS")
    or (3 if os.environ.get("IMIP_TEST_HOSTS") or IN_CI else 1)
)
REQUESTS = int(os.environ.get("IMIP_TEST_HOSTS_REQUESTS", "300"))
HOSTS = 3
PER_HOST = 3  # processes a host runs at once
ROOMS = [f"room{n}@example.com" for n in range(1, 6)]
ORGANISERS = [f"user{n}@example.com" for n in range(12)]
ALLOWED = 6  # bookings per organiser and week
KILLED = 0.08  # the share of first deliveries killed
NOW = "2030-01-01T12:00:00Z"
FUNCTIONS = "check_quota rooms\nschedule_in_freebusy"


@dataclass(frozen=True)
class Request:
    index: int
    room: str
    organiser: str
    start: datetime

    @property
    def message_id(self) -> str:
        return f"<req-{self.index}@hosts.test>"

    def message(self) -> bytes:
        end = self.start + timedelta(hours=1)
        event = vevent(
            f"req-{self.index}",
            self.start.strftime("%Y%m%dT%H%M%SZ"),
            end.strftime("%Y%m%dT%H%M%SZ"),
            organiser=self.organiser,
            attendees=(self.room,),
        )
        text = calendar_text(event)
        return imip_message(text, sender=self.organiser, to=self.room, message_id=self.message_id)


def requests(count: int, seed: int) -> list[Request]:
    """``count`` requests for slots of an hour starting on the half hour,
    Monday to Friday 9:00-16:30 of the week of 2030-01-07."""
    rng = random.Random(seed)
    made = []
    for index in range(count):
        day = datetime(2030, 1, 7 + rng.randrange(5), 9, tzinfo=UTC)
        start = day + timedelta(minutes=30 * rng.randrange(16))
        made.append(Request(index, rng.choice(ROOMS), rng.choice(ORGANISERS), start))
    return made


@dataclass
class Host:
    """One mail host: its configuration, log and outgoing mail."""

    root: Path
    number: int

    @property
    def config(self) -> Path:
        return self.root / "imip-agent.toml"

    @property
    def out(self) -> Path:
        return self.root / "out"

    def write(self, dsn: str) -> None:
        self.root.mkdir(parents=True)
        self.config.write_text(
            f'[agent]\nbackend = "postgresql"\ndsn = "{dsn}"\nlock_timeout = 60\n'
            f'publishing = "{self.root / "published"}"\nlog_file = "{self.root / "log"}"\n',
            encoding="utf-8",
        )

    def argv(self, request: Request) -> list[str]:
        return [
            str(BIN / "imip-resource"), "-c", str(self.config), "--now", NOW,
            "-o", request.room, "-s", request.organiser, "--output", str(self.out),
        ]  # fmt: skip

    def admin(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [str(BIN / "imip-admin"), "-c", str(self.config), "--now", NOW, *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)


@dataclass
class Figures:
    """What happened, for the printout."""

    runs: int = 0
    exits: Counter[int] = field(default_factory=Counter)
    killed: int = 0
    restarted_after: int = 0
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, code: int, killed: bool) -> None:
        with self.lock:
            self.runs += 1
            self.exits[code] += 1
            self.killed += killed


def deliver(host: Host, request: Request, rng: random.Random, figures: Figures) -> None:
    """Deliver ``request`` on ``host`` until a run exits 0, as an MTA
    retries (a killed run counts as failed)."""
    kill = rng.random() < KILLED
    for _attempt in range(30):
        process = subprocess.Popen(
            host.argv(request),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        killer = _killer(process, rng.uniform(0.05, 1.5)) if kill else None
        output, errors = process.communicate(request.message(), timeout=600)
        if killer is not None:
            killer.cancel()
        was_killed = process.returncode == -signal.SIGKILL
        figures.count(process.returncode, was_killed)
        if process.returncode == 0:
            return
        assert was_killed or process.returncode == 75, (process.returncode, output, errors)
        kill = False
        time.sleep(rng.uniform(0.1, 0.5))
    raise AssertionError(f"request {request.index} never delivered")


def _killer(process: subprocess.Popen[bytes], delay: float) -> threading.Timer:
    timer = threading.Timer(delay, lambda: process.poll() is None and process.kill())
    timer.start()
    return timer


@pytest.fixture
def server() -> Iterator[Server]:
    with private_server() as running:
        with connected(running.dsn) as connection:
            schema.migrate(connection)
        yield running


def _site(host: Host) -> Site:
    return open_site(load_settings(str(host.config)))


def _set_up(host: Host) -> None:
    for room in ROOMS:
        made = host.admin(
            "init-user", room, "--resource", "--pref", f"scheduling_function={FUNCTIONS}"
        )
        assert made.returncode == 0, made.stdout + made.stderr
    limit = host.admin("quota", "set-limit", "rooms", "*", str(ALLOWED), "--per", "week")
    assert limit.returncode == 0, limit.stdout + limit.stderr


def _run_all(hosts: list[Host], server: Server, work: list[Request], seed: int) -> Figures:
    figures = Figures()
    rng = random.Random(seed)
    seeds = [rng.randrange(1 << 30) for _ in work]
    done = [0]
    restart_at = len(work) // 3

    def one(index: int) -> None:
        request = work[index]
        deliver(hosts[index % HOSTS], request, random.Random(seeds[index]), figures)
        with figures.lock:
            done[0] += 1
            restart = done[0] == restart_at
        if restart:
            figures.restarted_after = restart_at
            server.restart("immediate")

    begin = time.monotonic()
    with ThreadPoolExecutor(max_workers=HOSTS * PER_HOST) as pool:
        for future in [pool.submit(one, index) for index in range(len(work))]:
            future.result()
    figures.seconds = time.monotonic() - begin
    return figures


def _flush(host: Host, directory: Path) -> int:
    """Send what the outbox still holds (as the next delivery would)."""
    site = _site(host)
    ctx = agent.Context(
        settings=site.settings,
        store=site.store,
        preferences=site.preferences,
        clock=site.clock,
        sender=DirectorySender(directory),
        spool=site.outbox,
        ledger=site.ledger,
    )
    return agent.flush(ctx)


def _answers(directories: list[Path]) -> tuple[dict[str, set[str]], dict[str, str], int]:
    """Reply Message-IDs by request, PARTSTAT by request, identical re-sends.

    Only the messages the output sink wrote count (its numbered files): a run
    killed while writing one leaves the sink's temporary file (``.tmp-*.eml``,
    cut short, or whole beside the message it became), which was never sent.
    """
    by_request: dict[str, set[str]] = {}
    partstat: dict[str, str] = {}
    seen: Counter[str] = Counter()
    for directory in directories:
        for path in DirectorySender(directory).files():
            mail = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            assert isinstance(mail, EmailMessage)
            answered = str(mail["In-Reply-To"])
            seen[str(mail["Message-ID"])] += 1
            by_request.setdefault(answered, set()).add(str(mail["Message-ID"]))
            event = parse_calendar_part(mail).walk("VEVENT")[0]
            partstat[answered] = str(event["ATTENDEE"].params["PARTSTAT"])
    resent = sum(count - 1 for count in seen.values())
    return by_request, partstat, resent


def _overlaps(site: Site, room: str) -> list[str]:
    periods = sorted(
        (p for p in site.store.all_freebusy(f"mailto:{room}") if p.transp == "OPAQUE"),
        key=lambda p: p.start,
    )
    return [f"{a.uid} / {b.uid}" for a, b in pairwise(periods) if b.start < a.end]


@pytest.mark.parametrize("attempt", range(ATTEMPTS))
def test_three_hosts_one_database(
    server: Server,
    tmp_path: Path,
    attempt: int,
    record_property: Callable[[str, object], None],
) -> None:
    hosts = [Host(tmp_path / f"host{n}", n) for n in range(HOSTS)]
    for host in hosts:
        host.write(server.dsn)
    _set_up(hosts[0])
    work = requests(REQUESTS, seed=attempt)
    figures = _run_all(hosts, server, work, seed=attempt)
    flushed = _flush(hosts[1], tmp_path / "final")

    site = _site(hosts[2])
    by_request, partstat, resent = _answers([h.out for h in hosts] + [tmp_path / "final"])
    missing = [r.message_id for r in work if r.message_id not in by_request]
    twice = [m for m, replies in by_request.items() if len(replies) != 1]
    accepted = [r for r in work if partstat.get(r.message_id) == "ACCEPTED"]
    records = site.ledger.bookings("rooms")
    per_organiser = Counter(b.user for b in records)
    double = {room: _overlaps(site, room) for room in ROOMS}
    checked = hosts[0].admin("check")

    record_property(
        "figures",
        f"three hosts, attempt {attempt}: {len(work)} requests in {figures.seconds:.0f} s;"
        f" {figures.runs} runs (exit codes {dict(sorted(figures.exits.items()))}),"
        f" {figures.killed} killed, database crashed and restarted after"
        f" {figures.restarted_after} requests; {len(accepted)} accepted,"
        f" {len(work) - len(accepted)} declined; records per organiser"
        f" {sorted(per_organiser.values(), reverse=True)} (at most {ALLOWED});"
        f" {flushed} sent by the final flush, {resent} identical re-sends after a kill",
    )
    assert not missing, f"unanswered: {missing[:5]}"
    assert not twice, f"answered twice: {twice[:5]}"
    assert all(not pairs for pairs in double.values()), double
    assert max(per_organiser.values(), default=0) <= ALLOWED
    assert {(b.resource, b.uid) for b in records} == {
        (f"mailto:{r.room}", f"req-{r.index}") for r in accepted
    }
    for request in accepted:
        assert site.store.get_object(f"mailto:{request.room}", f"req-{request.index}")
    assert checked.returncode == 0, checked.stdout + checked.stderr
