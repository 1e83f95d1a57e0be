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
from icalendar import Calendar

from tests.admin.conftest import ROOM, admin_ok, answer, book, busy, vevent
from tests.scenarios.test_interop_resource import calendars_of, expectation, message_for
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


#: Real instance-only invitations (a REQUEST holding only RECURRENCE-IDs of its
#: UID) of ``../shared/interop``, referenced in place: the clients whose
#: messages ``export`` printed as an empty VCALENDAR (issue 12 item 2).
INSTANCE_ONLY_INVITATIONS = (
    "evolution/eds__invite-6.ics",
    "evolution/eds__invite-7.ics",
    "lotus-notes/ical4j__calconnect6.ics",
    "lotus-notes/ical4j__calconnect7.ics",
    "outlook/tine20__exchange_external_reoccuring_onlyone.ics",
    "thunderbird/tb__exception-major.eml",
    "thunderbird/tb__exception-minor.eml",
    "tine20/tine20__invalidimip.eml",
    "tine20/tine20__request_exdate.ics",
)


def _instance_uids(path: Path) -> set[str]:
    """The UIDs the file holds only as overridden instances."""
    found: dict[str, bool] = {}
    for _, text in calendars_of(path):
        for event in Calendar.from_ical(text).walk("VEVENT"):
            uid = str(event["UID"])
            found[uid] = found.get(uid, True) and "RECURRENCE-ID" in event
    return {uid for uid, only_instances in found.items() if only_instances}


@pytest.mark.parametrize("name", INSTANCE_ONLY_INVITATIONS)
def test_export_lists_real_clients_instance_only_invitations(agent: Agent, name: str) -> None:
    path = INTEROP / name
    if not path.exists():
        pytest.skip("shared/interop is not present")
    uids = _instance_uids(path)
    assert uids, f"{name} is not an instance-only invitation"
    expect = expectation(path)
    now = "2026-11-27T12:00:00Z"
    sender = expect.organiser or "someone@example.com"
    run = agent.person(message_for(path, expect), expect.room, sender=sender, now=now)
    assert run.code == 0, run.stdout
    events = agent.exported(expect.room, check_vobject=False).walk("VEVENT")
    assert {str(e["UID"]) for e in events} == uids
    assert all("RECURRENCE-ID" in e for e in events)
    assert admin_ok(agent, "check", now=now) == ""
