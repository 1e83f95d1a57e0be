"""Run one fuzzed message through an agent and check the contract.

Each run gets a fresh directory (:class:`Sandbox`) holding the store, the
preferences, the journal, the publishing folder, ``--output``, the log and
the working directory. After the run, :meth:`Sandbox.written_outside` lists
every file that appeared or changed anywhere in it except under the store,
``--output`` and the log: it must be empty. Generated values name the
sandbox by ``@ROOT@`` (see :mod:`tests.fuzz.mutate`), so a write through a
hostile absolute or relative path lands where this check sees it.

:func:`in_process` runs :func:`imiptools.agent.run` as the programs do
(minus argument parsing and stdin); :func:`as_process` runs the installed
program as Postfix's pipe(8) does and measures its own CPU time and peak
RSS (``wait4``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import resource
import shutil
import signal
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from imiptools import agent
from imiptools.config import Settings
from imiptools.dates import FixedClock, parse_datetime
from imiptools.errors import ImipError
from imiptools.handlers.common import Envelope
from imiptools.handlers.outgoing import OutgoingHandler
from imiptools.handlers.person import PersonHandler
from imiptools.handlers.resource import ResourceHandler
from imiptools.itip import zones
from imiptools.mail.send import DirectorySender
from imiptools.site import open_site
from tests.fuzz.mutate import ROOT_MARK
from tests.measure import measured_run
from tests.support import BIN

NOW = "2026-11-27T12:00:00Z"
#: Exit codes each program may give for any message (a fresh store has no
#: transient trouble, so 75 would be an internal error).
ALLOWED = {"resource": {0, 65}, "person": {0}, "outgoing": {0}, "whatif": {0, 65}}
FACTORIES = {"resource": ResourceHandler, "person": PersonHandler, "outgoing": OutgoingHandler}
CPU_SECONDS = 5.0
WALL_SECONDS = 60.0
PEAK_MB = 200.0
WRITABLE = ("store", "out", "log")


@dataclass
class Sandbox:
    """A directory for one run and what it held before."""

    root: Path
    before: dict[str, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def fresh(cls, parent: Path) -> Sandbox:
        root = Path(tempfile.mkdtemp(prefix="run-", dir=parent))
        for name in ("store", "prefs", "journal", "published", "cwd"):
            (root / name).mkdir()
        sandbox = cls(root)
        sandbox.before = sandbox.files()
        return sandbox

    def files(self) -> dict[str, tuple[int, int]]:
        """Every file under the root (symlinks not followed): size, mtime."""
        found = {}
        for path in self.root.rglob("*"):
            if path.is_file() or path.is_symlink():
                info = path.lstat()
                found[str(path.relative_to(self.root))] = (info.st_size, info.st_mtime_ns)
        return found

    def written_outside(self) -> list[str]:
        """Files new or changed since :meth:`fresh`, outside the writable folders."""
        after = self.files()
        changed = [p for p, stat in after.items() if self.before.get(p) != stat]
        return sorted(p for p in changed if p.split("/", 1)[0] not in WRITABLE)

    def store_options(self) -> list[str]:
        r = self.root
        return ["-S", str(r / "store"), "-p", str(r / "prefs"), "-j", str(r / "journal"),
                "-P", str(r / "published")]  # fmt: skip

    def message(self, raw: bytes) -> bytes:
        return raw.replace(ROOT_MARK.encode(), str(self.root).encode())

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass(frozen=True)
class Outcome:
    """What a run gave: exit code, the status line, its output and cost
    (``peak_mb``: a process's peak RSS; in process, how much the run raised
    the test process's peak)."""

    code: int
    status: str
    output: str
    cpu_seconds: float
    wall_seconds: float
    peak_mb: float


# -- in process ------------------------------------------------------------------------


def in_process(
    kind: str, sandbox: Sandbox, raw: bytes, recipient: str, sender: str | None
) -> Outcome:
    """:func:`imiptools.agent.run` as ``imip-KIND`` runs it (``outgoing``:
    imip-person-outgoing); ImipError is its exit code, any other exception
    an internal error (code -2, its traceback the output), a run still going
    after WALL_SECONDS is stopped (code -1)."""
    zones.install()  # a fresh process as far as icalendar's zone cache goes
    root = sandbox.root
    settings = Settings(
        store=str(root / "store"), preferences=str(root / "prefs"),
        journal=str(root / "journal"), publishing=str(root / "published"),
    )  # fmt: skip
    site = open_site(settings, FixedClock(parse_datetime(NOW)))
    ctx = agent.Context(
        settings=settings,
        store=site.store,
        preferences=site.preferences,
        clock=site.clock,
        sender=DirectorySender(root / "out" / "sent"),
        spool=site.outbox,
        deliverer=DirectorySender(root / "out" / "delivered") if kind == "person" else None,
        ledger=site.ledger,
    )
    factory = FACTORIES[kind]
    cpu, wall, high = _cpu(), time.monotonic(), _high_water_mb()
    try:
        with _tracebacks() as logged, _hard_limit(WALL_SECONDS):
            result = agent.run(sandbox.message(raw), [Envelope(recipient, sender)], ctx, factory)
        code, status = int(result.code), result.status
    except ImipError as exc:
        code, status, logged = int(exc.exit_code), exc.status_line(), []
    except Runaway:
        code, status, logged = -1, f"still running after {WALL_SECONDS:g} s: stopped", []
    except Exception:  # an internal error: what the program would log as a traceback
        code, status, logged = -2, "internal error", [traceback.format_exc()]
    grown = _high_water_mb() - high
    return Outcome(code, status, "\n".join(logged), _cpu() - cpu, time.monotonic() - wall, grown)


def _high_water_mb() -> float:
    """This process's peak RSS so far: a run that raises it by PEAK_MB used
    at least that much (one that stays below an earlier peak is not seen)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Runaway(BaseException):
    """Raised into a run that outlived the hard limit (no ``except Exception``
    in the agent can swallow it)."""


@contextmanager
def _hard_limit(seconds: float) -> Iterator[None]:
    """Stop the run after ``seconds`` with SIGALRM (the agent's own budget,
    :mod:`imiptools.itip.budget`, re-arms an earlier timer it finds)."""

    def stop(signum: int, frame: object) -> None:
        raise Runaway

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def _tracebacks() -> Iterator[list[str]]:
    """Collect log records that carry a traceback."""
    found: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info:
                found.append(self.format(record))

    handler = Catch(logging.WARNING)
    logging.getLogger().addHandler(handler)
    try:
        yield found
    finally:
        logging.getLogger().removeHandler(handler)


# -- as a process ------------------------------------------------------------------------


def as_process(
    kind: str, sandbox: Sandbox, raw: bytes, recipient: str, sender: str | None
) -> Outcome:
    """Run ``imip-KIND`` (or ``imip-admin whatif``) as Postfix pipe(8) does."""
    root = sandbox.root
    common = [*sandbox.store_options(), "--now", NOW, "--log", str(root / "log")]
    if kind == "whatif":
        argv = [str(BIN / "imip-admin"), *common, "whatif", recipient]
    else:
        argv = [str(BIN / f"imip-{kind}"), *common, "-o", recipient, "--output", str(root / "out")]
    if sender is not None:  # one word: a sender starting with "-" is no option
        argv.append(f"--sender={sender}")
    done = measured_run(argv, sandbox.message(raw), timeout=WALL_SECONDS, cwd=str(root / "cwd"))
    log = (root / "log").read_text("utf-8", "replace") if (root / "log").exists() else ""
    status = done.stdout.splitlines()[0] if done.stdout.strip() and kind != "whatif" else ""
    output = done.stderr + (done.stdout if kind != "whatif" else "") + log
    return Outcome(done.code, status, output, done.cpu_seconds, done.seconds, done.peak_rss_mb)


# -- the contract --------------------------------------------------------------------------


def problems(kind: str, outcome: Outcome, sandbox: Sandbox) -> list[str]:
    """Every way ``outcome`` breaks the contract; empty when it keeps it."""
    found = []
    if outcome.code not in ALLOWED[kind]:
        found.append(f"exit {outcome.code} ({outcome.status})")
    if "Traceback" in outcome.output or "internal error" in outcome.output:
        last = [line for line in outcome.output.splitlines() if line.strip()][-1:]
        found.append(f"a traceback or an internal error in the output or the log: {last}")
    if outcome.cpu_seconds >= CPU_SECONDS:
        found.append(f"{outcome.cpu_seconds:.1f} s of CPU")
    if outcome.wall_seconds >= WALL_SECONDS:
        found.append(f"{outcome.wall_seconds:.1f} s")
    if outcome.peak_mb >= PEAK_MB:
        found.append(f"{outcome.peak_mb:.0f} MB peak RSS")
    outside = sandbox.written_outside()
    if outside:
        found.append(f"written outside the store: {outside[:5]}")
    return found


def save(raw: bytes, directory: Path, prefix: str = "fuzz") -> Path:
    """Keep a failing message as a reproducer file; return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{prefix}-{hashlib.sha256(raw).hexdigest()[:16]}.eml"
    path.write_bytes(raw)
    return path


def failures_directory() -> Path:
    """``$IMIP_FUZZ_FAILURES``, else ``imip-fuzz-failures`` in the temporary directory."""
    default = Path(tempfile.gettempdir()) / "imip-fuzz-failures"
    return Path(os.environ.get("IMIP_FUZZ_FAILURES", default))
