"""make-freebusy skips events whose free/busy cannot have changed since its
last run, says so, derives again what changed or what time brought in, and
stays correct when killed part way (issue 15 item 3)."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import traceback
from pathlib import Path

from imip_agent import admin
from tests.admin.conftest import admin_ok, answer, book, busy, vevent
from tests.support import Agent
from tests.test_crash_points import _install_killer

WEEKLY = "RRULE:FREQ=WEEKLY"
#: Two weeks after NOW.
LATER = "2030-01-15T12:00:00Z"
AN_HOUR_LATER = "2030-01-15T13:00:00Z"
#: The weekly series' next instance (2031-01-21T10:00Z) entered the window.
A_WEEK_LATER = "2030-01-22T12:00:00Z"
FEBRUARY = ("20300206T100000Z", "20300206T110000Z")  # a Wednesday


def _book_two(agent: Agent) -> None:
    assert answer(book(agent, vevent("weekly", extra=WEEKLY))) == "ACCEPTED"
    assert answer(book(agent, vevent("single", *FEBRUARY))) == "ACCEPTED"


def _files(agent: Agent) -> dict[Path, bytes]:
    store = agent.root / "store"
    return {p: p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()}


def _said(agent: Agent, now: str) -> str:
    return admin_ok(agent, "make-freebusy", "--all", "-v", now=now)


def test_unchanged_events_are_skipped_and_said_so(agent: Agent) -> None:
    _book_two(agent)
    first = _said(agent, LATER)
    assert "free/busy refreshed for 1 user(s): 2 event(s) re-derived, 0 unchanged" in first
    before = _files(agent)
    again = _said(agent, AN_HOUR_LATER)
    assert "0 event(s) re-derived, 2 unchanged since the last run (skipped)" in again
    assert _files(agent) == before  # nothing written, not even the memo
    assert admin_ok(agent, "check", now=AN_HOUR_LATER) == ""


def test_a_changed_event_is_derived_again(agent: Agent) -> None:
    _book_two(agent)
    _said(agent, LATER)
    moved = vevent("single", "20300207T100000Z", "20300207T110000Z", sequence=1)
    assert answer(book(agent, moved, now=LATER)) == "ACCEPTED"
    said = _said(agent, LATER)
    assert "1 event(s) re-derived, 1 unchanged" in said
    february = busy(agent, "20300201T000000Z", "20300301T000000Z", now=LATER)
    assert "20300207T100000Z/20300207T110000Z" in february
    assert "20300206T100000Z" not in february
    assert admin_ok(agent, "check", now=LATER) == ""


def test_an_instance_that_time_brings_into_the_window_is_derived(agent: Agent) -> None:
    _book_two(agent)
    _said(agent, LATER)
    span = ("20310120T000000Z", "20310122T000000Z")
    assert "20310121T100000Z" not in busy(agent, *span, now=A_WEEK_LATER)
    said = _said(agent, A_WEEK_LATER)
    assert "1 event(s) re-derived, 1 unchanged" in said  # the series; the single holds
    assert "20310121T100000Z/20310121T110000Z" in busy(agent, *span, now=A_WEEK_LATER)
    assert admin_ok(agent, "check", now=A_WEEK_LATER) == ""


def test_an_earlier_now_and_a_reset_derive_everything(agent: Agent) -> None:
    _book_two(agent)
    _said(agent, AN_HOUR_LATER)
    assert "2 event(s) re-derived" in _said(agent, LATER)  # the clock went back
    admin_ok(agent, "make-freebusy", "--all", "--reset", now=LATER)
    assert "2 event(s) re-derived" in _said(agent, LATER)  # the reset forgot the memo


def test_a_memo_that_cannot_be_read_is_ignored(agent: Agent) -> None:
    _book_two(agent)
    _said(agent, LATER)
    [memo] = (agent.root / "store").rglob("memos/freebusy")
    memo.write_text("{not json", encoding="utf-8")
    assert "2 event(s) re-derived" in _said(agent, AN_HOUR_LATER)
    assert "2 unchanged" in _said(agent, AN_HOUR_LATER)


# -- killed part way ------------------------------------------------------------


def _make_freebusy(root: Path, now: str, kill_at: int | None) -> int | None:
    """make-freebusy --all on the site ``root`` in a forked child; its exit
    code, or None when killed before write ``kill_at`` (0: only trace)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 70
        try:
            if kill_at is not None:
                _install_killer(root, kill_at, root.parent / f"{root.name}.trace")
            code = int(admin.run([*Agent(root).store_options, "--now", now, *MAKE]))
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return None
    return os.WEXITSTATUS(status)


MAKE = ("make-freebusy", "--all")


def _freebusy_files(root: Path) -> dict[str, bytes]:
    """The free/busy buckets and indexes (what make-freebusy derives)."""
    store = root / "store"
    found = {}
    for path in sorted(store.rglob("*")):
        relative = path.relative_to(store)
        derived = relative.parts[1:2] in (("freebusy",), ("freebusy-index",))
        if derived and path.is_file() and not path.name.startswith("."):  # a kill's .tmp
            found[str(relative)] = path.read_bytes()
    return found


def test_killed_before_any_write_a_rerun_converges(agent: Agent, tmp_path: Path) -> None:
    """Kill make-freebusy before each of its writes (a run that has a memo
    to update and events to derive), then run it again: free/busy is what an
    uninterrupted run gives, check is clean, and a third run skips all."""
    _book_two(agent)
    other = vevent("weekly-2", "20300109T140000Z", "20300109T150000Z", extra=WEEKLY)
    assert answer(book(agent, other)) == "ACCEPTED"
    _said(agent, LATER)  # a memo: the kill may come before, during or after its update
    moved = vevent("single", "20300207T100000Z", "20300207T110000Z", sequence=1)
    assert answer(book(agent, moved, now=LATER)) == "ACCEPTED"
    prepared = agent.root
    traced = tmp_path / "traced"
    shutil.copytree(prepared, traced)
    assert _make_freebusy(traced, A_WEEK_LATER, kill_at=0) == 0
    writes = (tmp_path / "traced.trace").read_text(encoding="utf-8").splitlines()
    assert len(writes) >= 4, writes
    expected = _freebusy_files(traced)
    for kill_at in range(1, len(writes) + 1):
        site = tmp_path / f"killed-{kill_at}"
        shutil.copytree(prepared, site)
        assert _make_freebusy(site, A_WEEK_LATER, kill_at) is None, writes[kill_at - 1]
        assert _make_freebusy(site, A_WEEK_LATER, None) == 0
        assert _freebusy_files(site) == expected, f"killed before {writes[kill_at - 1]}"
        killed = Agent(site, now=A_WEEK_LATER)
        admin_ok(killed, "check")  # exit 0: nothing wrong (a kill's .tmp is a note)
        assert "0 event(s) re-derived, 3 unchanged" in _said(killed, A_WEEK_LATER)
        shutil.rmtree(site)
