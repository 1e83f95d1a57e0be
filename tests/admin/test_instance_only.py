"""Events held only as overridden instances, seen by every admin tool.

An instance-only REQUEST (RECURRENCE-ID, no master: Thunderbird, Evolution,
Outlook, KOrganizer) is stored under ``recurrences/`` alone. Listing a
user's events used to read ``objects/`` only, so ``check`` called its busy
time "not a stored event", ``check --repair`` and ``make-freebusy --reset``
deleted it (and the slot was given away again), and ``export``, ``show``
and ``copy-store`` left the event out (issue 11 item 2, issue 12 item 2).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.admin.conftest import ROOM, admin_ok, answer, book, busy, vevent
from tests.support import INTEROP, Agent, imip_message

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "peers" / "instance-only-request.eml"
UID = "weekly-review-7f3a@example.com"
DAY = ("20300108T000000Z", "20300109T000000Z")


def _book_one_occurrence(agent: Agent) -> None:
    run = agent.resource(FIXTURE.read_bytes())
    assert answer(run) == "ACCEPTED"
    assert "20300108T100000Z" in busy(agent, *DAY)


def _clash_is_declined(agent: Agent) -> None:
    clash = vevent("clash@example.com", "20300108T103000Z", "20300108T113000Z")
    assert answer(book(agent, clash, sender="bob@example.com")) == "DECLINED"


def test_check_sees_events_held_only_as_overrides(agent: Agent) -> None:
    _book_one_occurrence(agent)
    assert admin_ok(agent, "check") == ""


def test_check_repair_keeps_the_busy_time_of_overrides_only_events(agent: Agent) -> None:
    _book_one_occurrence(agent)
    admin_ok(agent, "check", "--repair")
    assert "20300108T100000Z" in busy(agent, *DAY)
    _clash_is_declined(agent)


def test_make_freebusy_reset_keeps_the_busy_time_of_overrides_only_events(agent: Agent) -> None:
    _book_one_occurrence(agent)
    admin_ok(agent, "make-freebusy", "--all", "--reset")
    assert "20300108T100000Z" in busy(agent, *DAY)
    _clash_is_declined(agent)


def test_export_lists_events_held_only_as_overrides(agent: Agent) -> None:
    _book_one_occurrence(agent)
    events = agent.exported(ROOM).walk("VEVENT")
    assert [(str(e["UID"]), e["RECURRENCE-ID"].dt.isoformat()) for e in events] == [
        (UID, "2030-01-08T10:00:00+00:00")
    ]


def test_show_lists_events_held_only_as_overrides(agent: Agent) -> None:
    _book_one_occurrence(agent)
    shown = admin_ok(agent, "show", ROOM, "--days", "30")
    assert UID in shown and "20300108T100000Z" in shown


def test_copy_store_copies_events_held_only_as_overrides(agent: Agent) -> None:
    _book_one_occurrence(agent)
    copied = Agent(agent.root / "copy", now=agent.now)
    admin_ok(agent, "copy-store", "--all", "--to", str(copied.root / "store"))
    events = copied.exported(ROOM).walk("VEVENT")
    assert [str(e["UID"]) for e in events] == [UID]
    assert admin_ok(copied, "check") == ""


def test_a_person_sees_an_evolution_instance_only_invitation(agent: Agent) -> None:
    """The real Evolution message (``../shared/interop``, referenced in place)."""
    path = INTEROP / "evolution" / "eds__invite-6.ics"
    if not path.exists():
        pytest.skip("shared/interop is not present")
    user, now = "user@no.where", "2018-04-25T00:00:00Z"
    message = imip_message(path.read_text(), sender="organizer@no.where", to=user)
    assert agent.person(message, user, now=now).code == 0
    events = agent.exported(user).walk("VEVENT")
    assert [str(e["UID"]) for e in events] == ["invite-detached"]
    assert admin_ok(agent, "check", now=now) == ""
    assert "invite-detached" in admin_ok(agent, "show", user, "--days", "30", now=now)
