"""File locks: flock on a lock file that is never deleted, with a deadline."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from imiptools.errors import LockTimeout, StoreUnavailable
from imiptools.lock import FIRST_PAUSE, LONGEST_PAUSE, _pause, file_lock, gated_lock

HOLDER = """
import sys
from pathlib import Path
from imiptools.lock import FIRST_PAUSE, LONGEST_PAUSE, _pause, file_lock
with file_lock(Path(sys.argv[1]), 10):
    print("locked", flush=True)
    sys.stdin.read()
"""


@contextmanager
def held_by_child(path: Path) -> Iterator[subprocess.Popen[str]]:
    """A child process holding ``path`` until its stdin is closed."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "locked"
        yield child
    finally:
        child.stdin.close()
        child.wait(timeout=30)


def test_lock_creates_the_file_and_its_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / ".lock"
    with file_lock(path, 1):
        assert path.is_file()


def test_lock_file_is_never_deleted(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    with file_lock(path, 1):
        pass
    assert path.is_file()
    inode = path.stat().st_ino
    with file_lock(path, 1):
        assert path.stat().st_ino == inode


def test_lock_held_by_another_process_times_out(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    with held_by_child(path), pytest.raises(LockTimeout), file_lock(path, 0.2):
        pass  # pragma: no cover - never reached


def test_zero_timeout_tries_once(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    with file_lock(path, 0):
        pass
    with held_by_child(path), pytest.raises(LockTimeout), file_lock(path, 0):
        pass  # pragma: no cover - never reached


def test_lock_is_free_after_the_holder_exits(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    with held_by_child(path):
        pass
    with file_lock(path, 5):
        pass


def test_lock_of_a_killed_holder_is_not_stale(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    with held_by_child(path) as child:
        child.kill()
        child.wait(timeout=30)
        with file_lock(path, 5):
            pass


def test_waiter_gets_the_lock_when_it_is_released(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    taken = threading.Event()
    events: list[str] = []

    def holder() -> None:
        with file_lock(path, 5):
            taken.set()
            time.sleep(0.2)  # we are waiting meanwhile
            events.append("holder done")

    thread = threading.Thread(target=holder)
    thread.start()
    taken.wait(30)
    with file_lock(path, 30):
        assert events == ["holder done"]
    thread.join(30)


def test_a_pause_is_a_tenth_of_the_wait_within_bounds() -> None:
    """A lock let go is found at most about 10% of the wait late (a
    delivery holds a user's lock milliseconds); a long wait polls at most
    ten times a second."""
    assert _pause(0.0) == FIRST_PAUSE == 0.0005
    assert _pause(0.02) == pytest.approx(0.002)
    assert _pause(0.5) == pytest.approx(0.05)
    assert _pause(3600.0) == LONGEST_PAUSE == 0.1


def test_not_reentrant(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    with file_lock(path, 1), pytest.raises(LockTimeout), file_lock(path, 0.05):
        pass  # pragma: no cover - never reached


def test_lock_released_after_an_exception(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    with pytest.raises(RuntimeError), file_lock(path, 1):
        raise RuntimeError("boom")
    with file_lock(path, 0):
        pass


def test_different_files_are_independent(tmp_path: Path) -> None:
    with file_lock(tmp_path / "a.lock", 0), file_lock(tmp_path / "b.lock", 0):
        pass


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions")
def test_unwritable_directory_is_store_unavailable(tmp_path: Path) -> None:
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o500)
    with pytest.raises(StoreUnavailable), file_lock(locked / ".lock", 0):
        pass  # pragma: no cover - never reached


def test_parent_that_is_a_file_is_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreUnavailable), file_lock(tmp_path / "file" / ".lock", 0):
        pass  # pragma: no cover - never reached


# -- through a gate: a writer among readers that keep overlapping -------------------

READER = """
import sys, time
from pathlib import Path
from imiptools.lock import gated_lock
lock, gate, stop, writing = (Path(a) for a in sys.argv[1:5])
turns = beside_the_writer = 0
while not stop.exists():
    with gated_lock(lock, gate, 60, shared=True):
        if turns == 0:
            print("reading", flush=True)
        turns += 1
        beside_the_writer += writing.exists()
        time.sleep(0.04)
        beside_the_writer += writing.exists()
print(turns, beside_the_writer, flush=True)
"""


def test_a_writer_gets_a_gated_lock_that_readers_never_leave_free(tmp_path: Path) -> None:
    """Three readers take the lock shared again as soon as they let it go, so
    it is never free (``flock`` alone keeps a writer waiting until its
    deadline); through the gate, the writer stops new readers and gets it
    once those reading finish, no reader holds it beside the writer, and
    the readers go on after it."""
    lock, gate, stop, writing = (tmp_path / name for name in (".lock", ".gate", "stop", "w"))
    readers = []
    try:
        for _ in range(3):
            reader = subprocess.Popen(
                [sys.executable, "-c", READER, *map(str, (lock, gate, stop, writing))],
                stdout=subprocess.PIPE,
                text=True,
            )
            readers.append(reader)
            assert reader.stdout is not None and reader.stdout.readline().strip() == "reading"
        with gated_lock(lock, gate, 60):
            writing.touch()
            time.sleep(0.1)  # long enough for a reader beside it to see the file
            writing.unlink()
        time.sleep(0.2)  # the readers take turns again
    finally:
        stop.touch()
        results = [reader.communicate(timeout=60)[0].split() for reader in readers]
    assert all(int(turns) >= 2 and beside == "0" for turns, beside in results), results


def test_a_gated_lock_times_out_at_the_gate_too(tmp_path: Path) -> None:
    """A writer holding the gate keeps a reader out, even with the lock free."""
    gate = tmp_path / ".gate"
    with (
        held_by_child(gate),
        pytest.raises(LockTimeout),
        gated_lock(tmp_path / ".lock", gate, 0.2, shared=True),
    ):
        pass
