"""Every file of the interop corpus fed to imip-person.

The recipient is the file's first attendee (as for the resource). The
message is always delivered (to ``--output``), the program exits 0 without a
traceback, and the store stays consistent: the export parses with icalendar
and vobject, and every free/busy period belongs to a stored event.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import vobject

from tests.scenarios.test_interop_resource import (
    FILES,
    calendars_of,
    expectation,
    message_for,
)
from tests.support import INTEROP, Agent


def vobject_reads(path: Path) -> bool:
    """Whether vobject reads the file's own calendars (else we cannot ask it of ours)."""
    try:
        for _, text in calendars_of(path):
            for _ in vobject.readComponents(text):
                pass
    except Exception:  # vobject raises many kinds on broken input
        return False
    return True


@pytest.mark.skipif(not FILES, reason="shared/interop is not present")
@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(INTEROP)) for p in FILES])
def test_interop_file_through_person(agent: Agent, path: Path) -> None:
    expect = expectation(path)
    message = message_for(path, expect)
    run = agent.person(
        message,
        expect.room,
        sender=expect.organiser or "someone@example.com",
        now="2026-11-27T12:00:00Z",
    )
    assert run.code == 0, run.stdout
    assert "Traceback" not in run.stdout + run.stderr
    assert run.files.count(message) == 1, "the message is delivered exactly as it came"
    agent.exported(expect.room, check_vobject=vobject_reads(path))
    store = agent.site().store
    user = f"mailto:{expect.room}"
    assert set(store.freebusy_uids(user)) <= set(store.object_uids(user))
