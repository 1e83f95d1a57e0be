"""imip-admin log: a resource's decisions, one a line, whatever the log holds."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.admin.conftest import ROOM, admin_ok
from tests.support import Agent

FIXTURES = Path(__file__).parent.parent / "fixtures" / "decision-log"


def test_log_lines_that_are_not_json_objects_are_shown_as_unreadable(agent: Agent) -> None:
    """A line holding a JSON array, string or number used to stop ``log``
    with an internal error (exit 75): ``entry.get`` was called on it."""
    directory = agent.root / "store" / f"mailto:{ROOM}"
    directory.mkdir(parents=True)
    shutil.copy(FIXTURES / "not-objects.log", directory / "decisions.log")
    lines = admin_ok(agent, "log", ROOM).splitlines()
    assert lines[0].startswith("20300101T120000Z ACCEPTED accepted ")
    assert lines[0].endswith("a@example.com from alice@example.com: no scheduling rules apply")
    assert lines[1:] == [
        '(unreadable log line) ["an", "array", "not", "an", "object"]',
        '(unreadable log line) "a JSON string"',
        "(unreadable log line) 42",
        '(unreadable log line) {"time": "20300101T130000Z", "answer": "DECLINED"}',
        "(unreadable log line) not JSON at all",
    ]
    raw = admin_ok(agent, "log", ROOM, "--json")
    assert raw == (FIXTURES / "not-objects.log").read_text()
