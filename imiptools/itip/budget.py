"""A wall-clock budget for CPU-bound work on untrusted data (recurrence bombs).

:func:`run_within` runs a piece of work with a deadline. The work is handed
a :class:`Deadline` to check between steps, which works in any thread. In
the main thread a one-shot ``SIGALRM`` (``setitimer(ITIMER_REAL)``) also
interrupts work that never returns to such a check, such as a dateutil rule
searching years ahead for a match: the handler raises an internal
exception, which never leaves this module. The previous handler and timer
are restored afterwards; a previous timer that was due earlier wins: the
work stops at its time, and it fires just after.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

_MINIMUM = 0.001  # setitimer(0) would disarm instead of firing at once


class _BudgetExceeded(Exception):
    """Raised by the SIGALRM handler inside the work; caught here."""


@dataclass(frozen=True)
class Deadline:
    """A point on the monotonic clock after which work should stop."""

    at: float

    def expired(self) -> bool:
        """True once the deadline has passed."""
        return time.monotonic() >= self.at


def run_within(seconds: float, work: Callable[[Deadline], None]) -> bool:
    """Run ``work(deadline)``; return False if it was stopped by the alarm.

    Work that notices ``deadline.expired()`` itself returns normally, and
    this returns True: the work records that it stopped. Exceptions other
    than the alarm's propagate.
    """
    deadline = Deadline(time.monotonic() + seconds)
    if not _alarm_available():
        work(deadline)
        return True
    return _run_with_alarm(max(seconds, _MINIMUM), work, deadline)


def _alarm_available() -> bool:
    """Signals can only be handled in the main thread, and not on Windows."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def _run_with_alarm(seconds: float, work: Callable[[Deadline], None], deadline: Deadline) -> bool:
    """Arm a one-shot alarm around ``work``; restore the previous state after.

    The alarm fires at most once and, while armed, only inside the inner
    ``try``: its exception is always caught here. After the work is done the
    handler ignores a late signal.
    """
    armed = [True]

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        if armed[0]:
            raise _BudgetExceeded

    previous_timer = signal.getitimer(signal.ITIMER_REAL)
    previous_handler = signal.signal(signal.SIGALRM, on_alarm)
    started = time.monotonic()
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, _first_due(seconds, previous_timer[0]))
            work(deadline)
            armed[0] = False
        except _BudgetExceeded:
            return False
        finally:
            armed[0] = False
            signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, previous_handler or signal.SIG_DFL)
        _rearm(previous_timer, time.monotonic() - started)
    return True


def _first_due(seconds: float, previous_delay: float) -> float:
    """Our delay, or the previous timer's if that is due first."""
    return min(seconds, previous_delay) if previous_delay > 0 else seconds


def _rearm(previous: tuple[float, float], elapsed: float) -> None:
    """Re-arm a timer that was pending before, minus the time spent."""
    delay, interval = previous
    if delay > 0:
        signal.setitimer(signal.ITIMER_REAL, max(delay - elapsed, _MINIMUM), interval)
