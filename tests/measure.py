"""Run a program as the MTA does and measure it: exit code, output, wall and
CPU time and the peak resident memory of that one process.

The peak RSS a process reports (``ru_maxrss``) includes the memory of the
process it was forked from, up to its ``exec``: a program started straight
from a big test process would seem as big. So the program is started by a
small Python launcher (:data:`LAUNCHER`), which runs it, reaps it with
``wait4`` and writes its CPU time and peak RSS to a file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

#: What Postfix pipe(8) passes to the programs it runs.
MTA_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


@dataclass(frozen=True)
class Measured:
    """One finished run: what it said and what it cost."""

    code: int
    stdout: str
    stderr: str
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    timed_out: bool


#: Runs argv[2:] with the launcher's stdin, stdout and stderr, then writes
#: "CPU-SECONDS PEAK-KB" to the file argv[1] and exits with the program's code.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as report:
    report.write(f"{usage.ru_utime + usage.ru_stime} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


def measured_run(argv: list[str], data: bytes, timeout: float = 60.0, cwd: str = "/") -> Measured:
    """Run ``argv`` with ``data`` on stdin; kill it after ``timeout`` seconds."""
    with tempfile.TemporaryDirectory(prefix="measure-") as scratch:
        report = Path(scratch) / "usage"
        done = _run([sys.executable, "-S", "-c", LAUNCHER, str(report), *argv], data, timeout, cwd)
        cpu, peak_kb = map(float, report.read_text().split()) if report.exists() else (0.0, 0.0)
    code, stdout, stderr, seconds, timed_out = done
    return Measured(code, stdout, stderr, seconds, cpu, peak_kb / 1024, timed_out)


def _run(
    argv: list[str], data: bytes, timeout: float, cwd: str
) -> tuple[int, str, str, float, bool]:
    started = time.monotonic()
    process = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(MTA_ENV),
        cwd=cwd,
        start_new_session=True,  # a timeout kills the launcher and the program
    )
    outputs: dict[str, bytes] = {}
    threads = [
        threading.Thread(target=_feed, args=(process.stdin, data)),
        threading.Thread(target=_drain, args=(process.stdout, outputs, "out")),
        threading.Thread(target=_drain, args=(process.stderr, outputs, "err")),
    ]
    for thread in threads:
        thread.start()
    try:
        code = process.wait(timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        code, timed_out = process.wait(), True
    seconds = time.monotonic() - started
    for thread in threads:
        thread.join()
    return (
        code,
        outputs.get("out", b"").decode("utf-8", "replace"),
        outputs.get("err", b"").decode("utf-8", "replace"),
        seconds,
        timed_out,
    )


def _feed(stream: IO[bytes] | None, data: bytes) -> None:
    if stream is None:
        return
    try:
        stream.write(data)
        stream.close()
    except (BrokenPipeError, ValueError):  # the program stopped reading: its right
        pass


def _drain(stream: IO[bytes] | None, into: dict[str, bytes], key: str) -> None:
    if stream is not None:
        into[key] = stream.read()
        stream.close()
