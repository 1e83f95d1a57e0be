"""Fixtures for the admin tools' tests: a fresh store, and helpers that book
through imip-resource as Postfix would, so that the tools work on what the
agents really wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import site_agent
from tests.support import ROOM, Agent, Run, calendar_text, imip_message, partstat_of, vevent

#: Every test's clock: agents and tools run "at" this time unless told otherwise.
NOW = "2030-01-01T12:00:00Z"


@pytest.fixture
def agent(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Agent:
    """A fresh site (of either backend in the modules that run on both: see
    tests/conftest.py) and the programs to run against it."""
    return site_agent(request, tmp_path, backend, now=NOW)


def book(agent: Agent, *components: str, sender: str = "alice@example.com", **kw: str) -> Run:
    """Send a REQUEST to the room as ``sender``."""
    message = imip_message(calendar_text(*components), sender=sender)
    return agent.resource(message, sender=sender, **kw)  # type: ignore[arg-type]


def answer(run: Run) -> str:
    """The room's PARTSTAT in the only reply of ``run``."""
    assert run.code == 0, run.stdout + run.stderr
    assert len(run.sent) == 1
    return partstat_of(run.replies()[0])


def admin_ok(agent: Agent, *args: str, now: str | None = None) -> str:
    """Run imip-admin, expect exit 0, return its stdout."""
    result = agent.admin(*args, now=now)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def busy(agent: Agent, start: str, end: str, now: str | None = None) -> str:
    """The room's VFREEBUSY text over [start, end)."""
    return admin_ok(agent, "freebusy", ROOM, "--start", start, "--end", end, now=now)


__all__ = ["NOW", "ROOM", "admin_ok", "answer", "book", "busy", "vevent"]
