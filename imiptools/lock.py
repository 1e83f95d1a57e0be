"""Exclusive locks with a deadline: ``flock`` on a lock file never deleted.

As in Radicale's ``storage/multifilesystem/lock.py``: the lock is an
advisory ``fcntl.flock`` on a file that is created if missing and never
removed (removing it would let two processes lock two different files of
the same name). The kernel drops the lock when its holder exits or
crashes, so there is no stale lock to clean up, unlike the original
imip-agent's lock directories.

Contracts of :func:`file_lock`:

* Waits by polling ``flock`` with ``LOCK_NB`` until a deadline on
  :func:`time.monotonic`; then raises :class:`~imiptools.errors.LockTimeout`
  (exit 75: the MTA retries later). ``timeout=0`` tries exactly once. Each
  pause is a tenth of the time waited so far, between :data:`FIRST_PAUSE`
  and :data:`LONGEST_PAUSE`: a waiter finds a lock let go at most about 10%
  of its wait late (a delivery holds a user's lock a few milliseconds, so
  fixed pauses of 5 ms and more left it idle about as long as it was held,
  issue 15), and a long wait still wakes at most ten times a second.
* Not re-entrant: ``flock`` locks belong to an open file description, so
  taking the same lock again while holding it (same process, even the same
  thread) waits for itself and times out. Threads of one process exclude
  each other like processes do.
* The lock file's parent directories are created when missing; an
  :class:`OSError` leaves as :class:`~imiptools.errors.StoreUnavailable`.
* The lock file is opened with :func:`~imiptools.fileutil.open_file`: a
  symlink at it or on the way raises
  :class:`~imiptools.errors.SymlinkRefused` instead of being followed.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from imiptools.errors import LockTimeout, StoreUnavailable
from imiptools.fileutil import open_file

#: Shortest and longest pause between two attempts, in seconds.
FIRST_PAUSE = 0.0005
LONGEST_PAUSE = 0.1
#: Each pause is this share of the time waited so far (within those bounds).
PAUSE_SHARE = 0.1


def file_lock(path: Path, timeout: float, shared: bool = False) -> AbstractContextManager[None]:
    """Hold an exclusive ``flock`` on ``path`` for the ``with`` block; with
    ``shared``, a shared one (any number of holders at once, never beside an
    exclusive one).

    Raises :class:`LockTimeout` if it cannot be taken within ``timeout`` s.
    """
    return _held(path, None, timeout, shared)


def gated_lock(
    path: Path, gate: Path, timeout: float, shared: bool = False
) -> AbstractContextManager[None]:
    """:func:`file_lock` on ``path``, passed through ``gate`` first, so that
    an exclusive taker is not starved by shared holders that overlap
    (``flock`` does not queue its waiters: a lock some reader always holds
    is never free for a writer).

    Every taker takes ``gate`` in its own mode, then ``path``, then lets
    ``gate`` go: a shared taker holds ``gate`` only for that moment, while
    an exclusive one holds it while it waits for ``path``; no shared taker
    arrives meanwhile, and those holding ``path`` finish and let it go.
    Both waits together end by one deadline (LockTimeout after
    ``timeout`` s); the other contracts are :func:`file_lock`'s.
    """
    return _held(path, gate, timeout, shared)


@contextmanager
def _held(path: Path, gate: Path | None, timeout: float, shared: bool) -> Iterator[None]:
    """``path`` locked (through ``gate`` if given) for the ``with`` block."""
    deadline = time.monotonic() + max(timeout, 0.0)
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    descriptor = _open_lock_file(path)
    try:
        with _passing(gate, deadline, mode):
            _acquire(descriptor, path, deadline, mode)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


@contextmanager
def _passing(gate: Path | None, deadline: float, mode: int) -> Iterator[None]:
    """Hold ``gate`` in ``mode`` (by ``deadline``) for the block; no gate: nothing."""
    if gate is None:
        yield
        return
    passage = _open_lock_file(gate)
    try:
        _acquire(passage, gate, deadline, mode)
        yield
    finally:
        os.close(passage)  # lets the gate go


def _open_lock_file(path: Path) -> int:
    return open_file(path, os.O_RDWR | os.O_CREAT, 0o666, "open lock file")


def try_flock(descriptor: int, path: Path, mode: int = fcntl.LOCK_EX) -> bool:
    """Take the ``flock`` ``mode`` on the open ``descriptor`` if it is free
    now; False while another open file holds it. Raises StoreUnavailable."""
    try:
        fcntl.flock(descriptor, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        raise StoreUnavailable(f"cannot lock {path}: {exc.strerror}") from exc
    return True


def _acquire(descriptor: int, path: Path, deadline: float, mode: int) -> None:
    started = time.monotonic()
    while not try_flock(descriptor, path, mode):
        now = time.monotonic()
        if now >= deadline:
            raise LockTimeout(f"lock {path} is held by another process")
        time.sleep(min(_pause(now - started), deadline - now))


def _pause(waited: float) -> float:
    """The pause after ``waited`` seconds of waiting (see the module docstring)."""
    return min(max(waited * PAUSE_SHARE, FIRST_PAUSE), LONGEST_PAUSE)
