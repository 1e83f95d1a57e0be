"""How many fsyncs an accepted request costs, counted, so that the number
cannot grow unnoticed (issue 15 item 4; a count, not a time).

``imip-resource`` runs in a forked child whose ``os.fsync`` records what it
syncs (through ``/proc/self/fd``) before calling the real one. The counts
below are the durability promise's price (see docs/admin/store.md, "Crash
safety", and docs/development/performance.md): per accepted request for a
room whose directories exist,

- commit: the staged reply and ``.staged/``, then ``.txn``, written in
  place (the commit point; the user's directory too when this commit
  creates ``.txn``, the user's first);
- apply: ``decisions.log``, each file written (the event, its free/busy
  index, each monthly free/busy file), then each directory touched once
  (``objects/``, ``freebusy-index/``, ``freebusy/``, the outbox's ``new/``),
  then ``.txn`` again, emptied;
- sending: nothing (forgetting a sent message is not fsynced).

If a change needs more, say why in docs/admin/store.md and change the
numbers here; if it needs fewer, the same.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

from imip_agent import resource
from tests.support import Agent, calendar_text, imip_message, vevent

NOW = "2030-01-01T12:00:00Z"
ROOM = "room@example.com"
USER_DIR = f"store/mailto:{ROOM}"


def _counting(log: list[list[Any]]) -> None:
    """Make ``os.fsync`` note (path, is a directory) before syncing."""
    real = os.fsync

    def fsync(fd: Any) -> None:
        number = fd if isinstance(fd, int) else fd.fileno()
        path = os.readlink(f"/proc/self/fd/{number}")
        log.append([path, stat.S_ISDIR(os.fstat(number).st_mode)])
        real(number)

    os.fsync = fsync


def fsyncs(agent: Agent, message: bytes, sender: str = "alice@example.com") -> Counter[str]:
    """What one imip-resource run on ``message`` fsyncs under the site:
    ``dir PATH`` or ``file DIRECTORY/*`` (relative to the site) -> times."""
    root = agent.root
    source, report = root.parent / "message", root.parent / "fsyncs.json"
    source.write_bytes(message)
    argv = [*agent.store_options, "--now", NOW, "-o", ROOM, "-s", sender]
    argv += ["--output", str(root / "out"), "--log", str(root / "log")]
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 70
        try:
            log: list[list[Any]] = []
            _counting(log)
            sys.stdin = open(source, encoding="utf-8")  # noqa: SIM115 (the child exits)
            code = int(resource.run(argv))
            report.write_text(json.dumps(log), encoding="utf-8")
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    found: Counter[str] = Counter()
    for path, is_directory in json.loads(report.read_text(encoding="utf-8")):
        where = Path(path)
        if not where.is_relative_to(root) or where.is_relative_to(root / "out"):
            continue  # the --output "sender" is not the agent's to count
        relative = where.relative_to(root)
        found[f"dir {relative}" if is_directory else f"file {relative.parent}/*"] += 1
    return found


def _request(agent: Agent, uid: str, start: str, end: str, extra: str = "") -> bytes:
    event = vevent(uid, start, end, attendees=(ROOM,), extra=extra)
    return imip_message(calendar_text(event), to=ROOM, message_id=f"<{uid}@example.com>")


def _prepared(tmp_path: Path) -> Agent:
    """A room that has accepted one booking (its directories and ``.txn`` exist)."""
    agent = Agent(tmp_path / "site", now=NOW)
    agent.set_up()  # the store and preferences, as imip-admin init makes them
    first = fsyncs(agent, _request(agent, "first", "20300107T090000Z", "20300107T100000Z"))
    assert first[f"dir {USER_DIR}"] >= 1  # the directories made and .txn's name
    return agent


#: Commit and the end of apply, for any accepted request.
COMMIT = {
    f"file {USER_DIR}/.staged/*": 1,
    f"dir {USER_DIR}/.staged": 1,
    f"file {USER_DIR}/*": 3,  # .txn (the commit point), decisions.log, .txn emptied
    "dir store/.outbox/new": 1,
}


def test_an_accepted_request_costs_twelve_fsyncs(tmp_path: Path) -> None:
    agent = _prepared(tmp_path)
    found = fsyncs(agent, _request(agent, "b", "20300108T100000Z", "20300108T110000Z"))
    assert found == Counter(
        {
            **COMMIT,
            f"file {USER_DIR}/objects/*": 1,
            f"dir {USER_DIR}/objects": 1,
            f"file {USER_DIR}/freebusy-index/*": 1,
            f"dir {USER_DIR}/freebusy-index": 1,
            f"file {USER_DIR}/freebusy/*": 1,
            f"dir {USER_DIR}/freebusy": 1,
        }
    )
    assert sum(found.values()) == 12


def test_a_series_fsyncs_each_directory_once(tmp_path: Path) -> None:
    """A weekly series touches 12 monthly free/busy files (the window is a
    year): each is fsynced, their directory once."""
    agent = _prepared(tmp_path)
    message = _request(agent, "s", "20300108T140000Z", "20300108T150000Z", "RRULE:FREQ=WEEKLY")
    found = fsyncs(agent, message)
    assert found[f"file {USER_DIR}/freebusy/*"] == 12
    directories = [name for name in found if name.startswith("dir ")]
    assert all(found[name] == 1 for name in directories if name != f"dir {USER_DIR}")
    assert sum(found.values()) == 12 + 11


def test_a_quota_booking_adds_its_pending_record(tmp_path: Path) -> None:
    """With a quota: the pending record (file and directory) before the
    commit point; applied in its own domain (the booking file and its
    directory, the record's removal) before the quota's lock goes."""
    agent = _prepared(tmp_path)
    agent.set_pref(
        f"mailto:{ROOM}", "scheduling_function", "check_quota rooms\nschedule_in_freebusy"
    )
    result = agent.admin("quota", "set-limit", "rooms", "alice@example.com", "5")
    assert result.returncode == 0, result.stdout + result.stderr
    fsyncs(agent, _request(agent, "q1", "20300108T100000Z", "20300108T110000Z"))  # makes dirs
    found = fsyncs(agent, _request(agent, "q2", "20300109T100000Z", "20300109T110000Z"))
    quota = {name: count for name, count in found.items() if name.split()[1].startswith("journal")}
    assert quota == {
        "file journal/rooms/pending/*": 1,
        "dir journal/rooms/pending": 2,  # the record in, then out
        "file journal/rooms/bookings/*": 1,
        "dir journal/rooms/bookings": 1,
    }
    assert sum(found.values()) == 12 + 5


def test_moving_a_booking_to_another_month_syncs_before_the_index_forgets(
    tmp_path: Path,
) -> None:
    """The index that no longer names January is written only once
    January's file without the booking is durable: one more fsync of
    ``freebusy/`` (and of what else waited), nothing more."""
    agent = _prepared(tmp_path)
    fsyncs(agent, _request(agent, "m", "20300108T100000Z", "20300108T110000Z"))
    event = vevent("m", "20300205T100000Z", "20300205T110000Z", attendees=(ROOM,), sequence=1)
    message = imip_message(calendar_text(event), to=ROOM, message_id="<m-1@example.com>")
    found = fsyncs(agent, message)
    assert found[f"file {USER_DIR}/freebusy/*"] == 2  # January without it, February with it
    assert found[f"file {USER_DIR}/freebusy-index/*"] == 2  # both months, then February
    assert found[f"dir {USER_DIR}/freebusy"] == 1
    assert found[f"dir {USER_DIR}/freebusy-index"] == 2  # the union, then the shrink
    assert sum(found.values()) == 15
