"""The benchmark harness: A against B, interleaved, with the spread shown.

On a shared machine absolute times drift with the load from one minute to
the next, so a figure measured alone means little. Every comparison here
runs its variants in the same rounds: each round runs every variant once,
in an order shuffled per round (a seeded generator, so a run can be
repeated), after one warm-up round that is not counted. A ratio is taken
per round (variant over baseline, both measured seconds apart) and its
min/median/max over the rounds are reported beside those of the absolute
figures.

What one run of a variant costs is a :class:`Sample`:

- a program (:func:`run_program`) is started by a small launcher that
  ``fork``\\s, ``exec``\\s it and reaps it with :func:`os.wait4`, so that the
  CPU time (user + system) and the peak resident memory (``ru_maxrss``) are
  that one process's own, not the harness's (a child forked from a big
  process would report the parent's pages as its peak);
- a function run in this process (:func:`run_inline`) gives wall and CPU
  time (:func:`time.process_time`), no memory figure.

Wall time is what a sender waits; CPU time is what the machine can serve
(two cores: at most 2 / CPU-seconds messages a second).
"""

from __future__ import annotations

import gc
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    """One run: seconds of wall and CPU time, peak memory in MiB (programs)."""

    wall: float
    cpu: float
    rss: float | None = None


@dataclass(frozen=True)
class Variant:
    """One side of a comparison: ``measure(round)`` runs it once.

    The round number (0, 1, ...; -1 for the warm-up) lets a variant vary
    its input per round (a new request each time). ``units``: how many
    objects or users the variant handles, for a per-unit figure over the
    baseline (see :meth:`Outcome.per_unit`).
    """

    label: str
    measure: Callable[[int], Sample]
    units: int = 0


@dataclass
class Outcome:
    """What a comparison measured: per variant, one sample per round (the
    rounds in the same order for every variant)."""

    title: str
    baseline: str
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    units: dict[str, int] = field(default_factory=dict)
    unit_name: str = ""
    note: str = ""

    def ratios(self, label: str, metric: str) -> list[float]:
        """Per round: ``label``'s figure over the baseline's (``metric`` is
        ``wall``, ``cpu`` or ``rss``)."""
        pairs = zip(self.samples[label], self.samples[self.baseline], strict=True)
        found = []
        for sample, base in pairs:
            top, bottom = getattr(sample, metric), getattr(base, metric)
            if top is not None and bottom:
                found.append(top / bottom)
        return found

    def per_unit(self, label: str, metric: str) -> list[float]:
        """Per round: (``label``'s figure - the baseline's) / its units."""
        units = self.units.get(label, 0)
        if not units:
            return []
        pairs = zip(self.samples[label], self.samples[self.baseline], strict=True)
        return [(getattr(s, metric) - getattr(b, metric)) / units for s, b in pairs]


def compare(
    title: str,
    variants: Sequence[Variant],
    rounds: int,
    seed: int = 0,
    warmup: int = 1,
    unit_name: str = "",
    note: str = "",
) -> Outcome:
    """Run ``variants`` (the first is the baseline) for ``rounds`` rounds,
    each round in a shuffled order, after ``warmup`` uncounted rounds."""
    order = random.Random(seed)
    outcome = Outcome(title, variants[0].label, unit_name=unit_name, note=note)
    for variant in variants:
        outcome.samples[variant.label] = []
        outcome.units[variant.label] = variant.units
    for number in range(-warmup, rounds):
        shuffled = list(variants)
        order.shuffle(shuffled)
        for variant in shuffled:
            sample = variant.measure(number)
            if number >= 0:
                outcome.samples[variant.label].append(sample)
        _progress(title, number, rounds)
    return outcome


def _progress(title: str, number: int, rounds: int) -> None:
    if sys.stderr.isatty():
        print(f"\r{title}: round {number + 1}/{rounds}", end="", file=sys.stderr, flush=True)
        if number + 1 == rounds:
            print(file=sys.stderr)


# -- measuring ---------------------------------------------------------------------

#: argv: REPORT PROGRAM ARGS...; runs PROGRAM, then writes "WALL CPU PEAK-KIB"
#: to REPORT and exits with the program's status.
LAUNCHER = """
import os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as report:
    report.write(f"{wall} {usage.ru_utime + usage.ru_stime} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


class RunFailed(RuntimeError):
    """A measured program exited with a code it should not have."""


def run_program(
    argv: Sequence[str],
    stdin: bytes = b"",
    env: Mapping[str, str] | None = None,
    expect: int = 0,
) -> Sample:
    """Run ``argv`` (``argv[0]`` a path) once with ``stdin``; its costs.

    Raises :class:`RunFailed` when it exits with another code than ``expect``.
    """
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        report = Path(scratch) / "usage"
        done = subprocess.run(
            [sys.executable, "-S", "-c", LAUNCHER, str(report), *argv],
            input=stdin,
            capture_output=True,
            env=dict(env) if env is not None else None,
            check=False,
        )
        if done.returncode != expect:
            output = (done.stdout + done.stderr).decode("utf-8", "replace")[-2000:]
            raise RunFailed(f"{argv[0]} exited {done.returncode}: {output}")
        wall, cpu, peak = map(float, report.read_text(encoding="ascii").split())
    return Sample(wall, cpu, peak / 1024)


def run_inline(function: Callable[[], object]) -> Sample:
    """Call ``function`` once in this process; its wall and CPU time."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return Sample(time.perf_counter() - wall, time.process_time() - cpu)


def quiet_fsync_child(work: Callable[[], None]) -> None:
    """Run ``work`` in a forked child whose ``os.fsync`` does nothing, then
    ``os.sync()`` once: for building the data a benchmark starts from.

    Only preparing is sped up (writing 20,000 bookings durably would take
    minutes); everything measured runs the real code in other processes or
    in this one, which never sees the change.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.fsync = lambda fd: None
            work()
            code = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("preparing the benchmark's data failed (see above)")
    os.sync()


# -- reporting ---------------------------------------------------------------------


def spread(values: Sequence[float], scale: float = 1.0, digits: int = 1) -> str:
    """``min / median / max`` of ``values`` times ``scale``."""
    if not values:
        return "-"
    low, mid, high = (v * scale for v in (min(values), statistics.median(values), max(values)))
    return f"{low:.{digits}f} / {mid:.{digits}f} / {high:.{digits}f}"


HEADER = (
    "| scenario | variant | wall ms | CPU ms | peak MiB | B/A wall | B/A CPU | B/A memory |",
    "|---|---|--:|--:|--:|--:|--:|--:|",
)


def rows(outcome: Outcome) -> list[str]:
    """Markdown table rows for ``outcome``: min / median / max of every
    figure, the ratios to the baseline (A) per round, and per unit."""
    lines = []
    for label, samples in outcome.samples.items():
        wall = spread([s.wall for s in samples], 1000)
        cpu = spread([s.cpu for s in samples], 1000)
        memory = [s.rss for s in samples if s.rss is not None]
        peak = spread(memory) if memory else "-"
        if label == outcome.baseline:
            ratios = ["A", "A", "A" if memory else "-"]
        else:
            ratios = [spread(outcome.ratios(label, m), digits=2) for m in ("wall", "cpu")]
            ratios.append(spread(outcome.ratios(label, "rss"), digits=2) if memory else "-")
        lines.append(
            f"| {outcome.title} | {label} | {wall} | {cpu} | {peak} | {' | '.join(ratios)} |"
        )
        per_unit = outcome.per_unit(label, "cpu")
        if per_unit:
            figure = spread(per_unit, 1000, digits=2)
            lines.append(
                f"| {outcome.title} | ↳ CPU ms per {outcome.unit_name} over A "
                f"({outcome.units[label]:,}) | | {figure} | | | | |"
            )
    return lines


def table(outcomes: Sequence[Outcome]) -> str:
    """The whole Markdown table, with the notes of the outcomes below it."""
    lines = list(HEADER)
    for outcome in outcomes:
        lines += rows(outcome)
    notes = [f"- {o.title}: {o.note}" for o in outcomes if o.note]
    return "\n".join(lines) + ("\n\n" + "\n".join(notes) if notes else "") + "\n"
