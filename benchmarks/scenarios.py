"""The benchmark scenarios of issue 15: each compares variants interleaved
(see :mod:`harness`) and returns its :class:`~harness.Outcome`.

- ``pipe``: one ``imip-resource`` run against the floor, the interpreter
  importing icalendar and parsing the same invitation;
- ``store``: a request answered in process by a room holding 0 bookings
  and one holding 20,000;
- ``series``: a daily series requested of a room already holding k daily
  series (k = 0, 10, 100), in process;
- ``quota``: a request answered in process under a quota whose journal
  holds 0 and 20,000 bookings;
- ``check``: ``imip-admin check`` on an empty store, on one with N
  objects written straight to the store (no derivation record: an imported
  or older store), on one whose N objects had their free/busy derived as
  the agents do (each with its derivation record) and on the first after a
  make-freebusy run (CPU per object over the empty run);
- ``freebusy``: ``make-freebusy --all`` on an empty store, the first run on
  U users and a re-run an hour later with nothing changed (CPU per user
  over the empty run);
- ``daemon``: daemon against pipe (see :mod:`daemon`, a hook until the LMTP
  service exists).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from harness import Outcome, Sample, Variant, compare, quiet_fsync_child, run_inline, run_program
from sites import (
    BIN,
    NOW,
    NOW_TEXT,
    ORGANISER,
    ROOM,
    BenchSite,
    add_bookings,
    add_bookings_by_agents,
    add_daily_series,
    add_quota,
    add_users,
    calendar_of,
    daily_request,
    deliver,
    invitation,
    request,
)

from imiptools import maintenance
from imiptools.dates import format_utc

#: What Postfix pipe(8) passes to the programs it runs.
MTA_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
#: The floor: what any Python agent pays to read an invitation.
FLOOR = "import sys, icalendar; icalendar.Calendar.from_ical(sys.stdin.buffer.read())"
#: The floor and what any pipe agent for iMIP mail cannot do without, and
#: nothing else: its options read with argparse, a logger (the brief: log
#: through logging), the MIME message parsed as the agents parse it
#: (compat32) and its calendar part found and parsed. No policy, no store, no
#: reply: what is left of the 1.3x goal beyond this is the agent's own budget.
MINIMUM = """
import sys, argparse, logging, email, icalendar
options = argparse.ArgumentParser()
for name in ("-o", "-s", "--now", "--output", "-S", "-p", "-j", "-P", "--log"):
    options.add_argument(name)
options.parse_args()
log = logging.getLogger("imip-agent")
log.addHandler(logging.NullHandler())
message = email.message_from_binary_file(sys.stdin.buffer)
for part in message.walk():
    if part.get_content_type() == "text/calendar":
        icalendar.Calendar.from_ical(part.get_payload(decode=True))
log.info("parsed")
"""


@dataclass(frozen=True)
class Config:
    """Sizes and repetitions (``--quick`` shrinks the slow ones)."""

    work: Path
    rounds: int = 15
    bookings: int = 20_000
    quota_bookings: int = 20_000
    series: tuple[int, ...] = (0, 10, 100)
    check_objects: int = 2_000
    users: int = 100
    user_bookings: int = 5
    seed: int = 0


def _prepare(root: Path, fill: Callable[[BenchSite], None]) -> BenchSite:
    """A new site at ``root`` filled by ``fill`` (in a child without fsync)."""
    site = BenchSite(root)
    root.mkdir(parents=True)
    for name in ("store", "prefs"):  # as imip-admin init makes them
        (root / name).mkdir()
    begin = time.perf_counter()
    quiet_fsync_child(lambda: fill(site))
    seconds = time.perf_counter() - begin
    print(f"prepared {root.name} in {seconds:.1f} s", file=sys.stderr, flush=True)
    return site


def _opened(fill: Callable[..., None], *args: object) -> Callable[[BenchSite], None]:
    """``fill(site, *args)`` on the opened site."""
    return lambda bench: fill(bench.open(), *args)


def _nothing(bench: BenchSite) -> None:
    bench.open()


# -- pipe vs floor -----------------------------------------------------------------


def pipe(config: Config) -> Outcome:
    """One ``imip-resource`` process against the floor, same invitation."""
    site = _prepare(config.work / "pipe", _nothing)
    out = site.root / "out"
    argv = [str(BIN / "imip-resource"), *site.options(), "--now", NOW_TEXT]
    argv += ["-o", "room@example.com", "-s", ORGANISER, "--output", str(out)]

    def floor(number: int) -> Sample:
        data = calendar_of(invitation(number + 1))
        return run_program([sys.executable, "-c", FLOOR], data, MTA_ENV)

    def minimum(number: int) -> Sample:
        return run_program(
            [sys.executable, "-c", MINIMUM, *argv[1:]], invitation(number + 1), MTA_ENV
        )

    def agent(number: int) -> Sample:
        return run_program(argv, invitation(number + 1), MTA_ENV)

    outcome = compare(
        "pipe vs floor",
        [
            Variant("floor: python, import icalendar, parse", floor),
            Variant("floor + argparse, logging, MIME parse (no agent code)", minimum),
            Variant("imip-resource", agent),
        ],
        config.rounds,
        config.seed,
        note="one process per message as the MTA runs it; the floor parses the "
        "invitation's iCalendar text (examples/01-alice-books.eml, moved to a free day "
        "each round); the middle row adds only what any pipe agent must do before its "
        "own work (options, a logger, the MIME parse): a 1.3x goal leaves (1.3 minus "
        "its ratio) times the floor for all of the agent's own imports and work",
    )
    _expect_accepted(out, config.rounds + 1)
    return outcome


def _expect_accepted(out: Path, count: int) -> None:
    """``out`` holds ``count`` replies, all of them acceptances (a declined
    request is not the work being measured)."""
    replies = [path.read_bytes() for path in out.iterdir() if not path.name.startswith(".")]
    accepted = sum(b"\nSubject: Accepted:" in reply for reply in replies)
    assert accepted == len(replies) == count, f"{count} acceptances expected in {out}"


# -- in process: store size, daily series, quota -------------------------------------


def _in_process(bench: BenchSite, message: Callable[[int], bytes]) -> Callable[[int], Sample]:
    """A variant delivering ``message(round)`` to ``bench`` in process."""
    site = bench.open()
    out = bench.root / "out"

    def measure(number: int) -> Sample:
        sample = run_inline(lambda: deliver(site, out, message(number + 1)))
        _expect_accepted(out, number + 2)  # rounds count from -1 (the warm-up)
        return sample

    return measure


def store(config: Config) -> Outcome:
    """A request answered by a room with 0 and with N bookings."""
    empty = _prepare(config.work / "store-0", _nothing)
    full = _prepare(config.work / "store-n", _opened(add_bookings, config.bookings))
    return compare(
        "store size",
        [
            Variant("0 bookings", _in_process(empty, request)),
            Variant(f"{config.bookings:,} bookings", _in_process(full, request)),
        ],
        config.rounds,
        config.seed,
        note="agent.run in process (parse, lock, decide, commit, spool, send to a "
        "directory) on a request for a free slot; bookings six a weekday over ten years",
    )


def series(config: Config) -> Outcome:
    """A daily series requested of a room holding k daily series; each run
    on a fresh copy of the prepared site (the copy is not timed)."""
    variants = []
    for count in config.series:
        template = _prepare(config.work / f"series-{count}", _opened(add_daily_series, count))
        variants.append(Variant(f"k = {count}", _fresh_delivery(template, daily_request)))
    return compare(
        "daily series vs k stored",
        variants,
        config.rounds,
        config.seed,
        note="a daily series without end (10 minutes at 23:00 UTC) requested of a room "
        "holding k daily series without end, in process",
    )


def _fresh_delivery(
    template: BenchSite, message: Callable[[int], bytes]
) -> Callable[[int], Sample]:
    """A variant delivering ``message(round)`` in process to a fresh copy of
    ``template`` each time (the copy is not timed)."""
    scratch = template.root.with_name(template.root.name + "-run")

    def measure(number: int) -> Sample:
        bench = template.copy(scratch)
        os.sync()  # the copy's writeback (and the old one's removal) not in what is timed
        site = bench.open()
        sample = run_inline(lambda: deliver(site, bench.root / "out", message(number + 1)))
        _expect_accepted(bench.root / "out", 1)
        return sample

    return measure


def quota(config: Config) -> Outcome:
    """A request under a quota whose journal holds 0 and N bookings."""
    empty = _prepare(config.work / "quota-0", _opened(add_quota, 0))
    full = _prepare(config.work / "quota-n", _opened(add_quota, config.quota_bookings))
    return compare(
        "quota journal",
        [
            Variant("0 bookings", _in_process(empty, request)),
            Variant(f"{config.quota_bookings:,} bookings", _in_process(full, request)),
        ],
        config.rounds,
        config.seed,
        note="check_quota (40 hours a week, 500 outstanding) then schedule_in_freebusy, "
        "in process; the journal's bookings by 200 organisers over two years",
    )


# -- imip-admin: check, make-freebusy ------------------------------------------------


def _admin(bench: BenchSite, *args: str, now: str = NOW_TEXT) -> list[str]:
    return [str(BIN / "imip-admin"), *bench.options(), "--now", now, *args]


def check(config: Config) -> Outcome:
    """``imip-admin check`` on an empty store, on one with N objects and no
    derivation record, on one whose objects' free/busy the agents' path
    derived (its records vouch for them), and on the second after a
    ``make-freebusy`` run (whose memo vouches for them)."""
    empty = _prepare(config.work / "check-0", _nothing)
    full = _prepare(config.work / "check-n", _opened(add_bookings, config.check_objects))
    agents = _prepare(
        config.work / "check-a", _opened(add_bookings_by_agents, config.check_objects)
    )
    kept = _prepare(config.work / "check-m", _maintained(config.check_objects))
    objects = f"{config.check_objects:,} objects"
    return compare(
        "imip-admin check",
        [
            Variant("empty store", lambda _: run_program(_admin(empty, "check"), env=MTA_ENV)),
            Variant(
                objects,
                lambda _: run_program(_admin(full, "check"), env=MTA_ENV),
                units=config.check_objects,
            ),
            Variant(
                f"{objects}, derived by the agents",
                lambda _: run_program(_admin(agents, "check"), env=MTA_ENV),
                units=config.check_objects,
            ),
            Variant(
                f"{objects}, after make-freebusy",
                lambda _: run_program(_admin(kept, "check"), env=MTA_ENV),
                units=config.check_objects,
            ),
        ],
        config.rounds,
        config.seed,
        unit_name="object",
        note="one room's bookings; per object: (CPU of the run - CPU of the empty run) / N; "
        "N objects: written straight to the store, no derivation record, so check parses "
        "each; derived by the agents: each stored and its free/busy derived by "
        "`UserRecords.refresh_freebusy` (what every delivery runs), whose derivation record "
        "vouches for it; after make-freebusy: the first store once `make-freebusy --all` "
        "has run (as from cron), so its memo vouches for each unchanged event",
    )


def _maintained(count: int) -> Callable[[BenchSite], None]:
    """Fill with ``count`` bookings, then run make-freebusy's refresh at NOW."""

    def fill(bench: BenchSite) -> None:
        site = bench.open()
        add_bookings(site, count)
        with maintenance.locked_records(site, ROOM, NOW) as records:
            maintenance.refresh_window(records)

    return fill


def freebusy(config: Config) -> Outcome:
    """``make-freebusy --all``: empty store, first run, unchanged re-run."""
    empty = _prepare(config.work / "freebusy-0", _nothing)
    template = _prepare(
        config.work / "freebusy-n", _opened(add_users, config.users, config.user_bookings)
    )
    scratch = config.work / "freebusy-run"
    later = format_utc(NOW + timedelta(hours=1))

    def first(_: int) -> Sample:
        bench = template.copy(scratch)
        return run_program(_admin(bench, "make-freebusy", "--all"), env=MTA_ENV)

    def rerun(_: int) -> Sample:
        bench = template.copy(scratch)
        run_program(_admin(bench, "make-freebusy", "--all"), env=MTA_ENV)
        return run_program(_admin(bench, "make-freebusy", "--all", now=later), env=MTA_ENV)

    users = config.users
    return compare(
        "make-freebusy --all",
        [
            Variant(
                "empty store",
                lambda _: run_program(_admin(empty, "make-freebusy", "--all"), env=MTA_ENV),
            ),
            Variant(f"first run, {users:,} users", first, units=users),
            Variant("re-run an hour later, nothing changed", rerun, units=users),
        ],
        config.rounds,
        config.seed,
        unit_name="user",
        note=f"each user a room with {config.user_bookings} bookings and a weekly series "
        "without end; each run on a fresh copy (not timed; the re-run's first run neither)",
    )


SCENARIOS: dict[str, Callable[[Config], Outcome]] = {
    "pipe": pipe,
    "store": store,
    "series": series,
    "quota": quota,
    "check": check,
    "freebusy": freebusy,
}


def scratch_directory(parent: str | None) -> Path:
    """A new directory for the sites (removed by the caller)."""
    return Path(tempfile.mkdtemp(prefix="imip-bench-", dir=parent))


def remove(path: Path) -> None:
    """Remove the sites."""
    shutil.rmtree(path, ignore_errors=True)
