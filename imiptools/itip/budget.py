"""A wall-clock budget for CPU-bound work on untrusted data (recurrence bombs).

:func:`run_within` runs a piece of work with a deadline. The work is handed
a :class:`Deadline` to check between steps. Work that never returns to
such a check, such as a dateutil rule searching years ahead for a match,
is interrupted by a watchdog: one daemon thread per process keeps the
armed deadlines and, when one passes, raises an internal exception in the
thread doing that work (CPython's ``PyThreadState_SetAsyncExc``, delivered
at the next bytecode the thread runs). The exception never leaves this
module.

This works in any thread of any process: the pipe programs' main thread,
the worker processes of ``imip-agent-lmtp``, a thread pool. It touches no
signal: a program's own ``SIGALRM`` handler and timer are left alone (the
earlier mechanism, a one-shot ``SIGALRM``, worked in the main thread only).
The watchdog thread is started on first use and again in a forked child.
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
from collections.abc import Callable

from imiptools.deferred import dataclass


class _BudgetExceeded(BaseException):
    """Raised inside the work by the watchdog; caught here. A BaseException,
    so that ``except Exception`` in the work cannot swallow it."""


@dataclass(frozen=True)
class Deadline:
    """A point on the monotonic clock after which work should stop."""

    at: float

    def expired(self) -> bool:
        """True once the deadline has passed."""
        return time.monotonic() >= self.at


def run_within(seconds: float, work: Callable[[Deadline], None]) -> bool:
    """Run ``work(deadline)``; return False if it was stopped by the watchdog.

    Work that notices ``deadline.expired()`` itself returns normally, and
    this returns True: the work records that it stopped. Exceptions other
    than the watchdog's propagate.
    """
    deadline = Deadline(time.monotonic() + seconds)
    alarm = _watchdog().arm(threading.get_ident(), deadline.at)
    try:
        try:
            work(deadline)
        finally:
            alarm.disarm()
    except _BudgetExceeded:
        return False
    return True


class _Alarm:
    """One armed deadline of one thread; fires at most once."""

    def __init__(self, watchdog: _Watchdog, thread: int, at: float) -> None:
        self.watchdog = watchdog
        self.thread = thread
        self.at = at
        self.armed = True
        self.fired = False

    def fire(self) -> None:
        """Called by the watchdog under its lock: interrupt the thread."""
        if self.armed:
            self.fired = _raise_in(self.thread, _BudgetExceeded)
            self.armed = False

    def disarm(self) -> None:
        """Called by the working thread when the work is over.

        Under the watchdog's lock, so that the alarm cannot fire after it:
        an exception the watchdog raised that has not been delivered yet is
        cleared (one delivered while this runs is caught by
        :func:`run_within`, which then reports the budget spent).
        """
        with self.watchdog.lock:
            self.armed = False
            if self.fired:
                _raise_in(self.thread, None)


class _Watchdog:
    """A daemon thread that fires each alarm at its time (a heap of deadlines)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.alarms: list[tuple[float, int, _Alarm]] = []
        self.order = itertools.count()
        self.pid = os.getpid()
        threading.Thread(target=self._run, name="imip-budget-watchdog", daemon=True).start()

    def arm(self, thread: int, at: float) -> _Alarm:
        """An alarm for ``thread`` at ``at`` (monotonic seconds)."""
        alarm = _Alarm(self, thread, at)
        with self.lock:
            heapq.heappush(self.alarms, (at, next(self.order), alarm))
            if self.alarms[0][2] is alarm:
                self.changed.notify()
        return alarm

    def _run(self) -> None:
        with self.lock:
            while True:
                self._drop_disarmed()
                if not self.alarms:
                    self.changed.wait()
                    continue
                due = self.alarms[0][0] - time.monotonic()
                if due > 0:
                    self.changed.wait(due)
                    continue
                heapq.heappop(self.alarms)[2].fire()

    def _drop_disarmed(self) -> None:
        while self.alarms and not self.alarms[0][2].armed:
            heapq.heappop(self.alarms)


_current: _Watchdog | None = None
_starting = threading.Lock()


def _watchdog() -> _Watchdog:
    """This process's watchdog (a forked child starts its own)."""
    global _current
    with _starting:
        if _current is None or _current.pid != os.getpid():
            _current = _Watchdog()
        return _current


def _raise_in(thread: int, exception: type[BaseException] | None) -> bool:
    """Have ``thread`` raise ``exception`` at its next bytecode (None: clear
    a pending one); whether a thread was found."""
    import ctypes  # lazy: start-up (only when an alarm fires)

    found = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread), ctypes.py_object(exception) if exception else None
    )
    return bool(found)
