"""Quota records regenerated and verified from a resource's store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from imiptools.config import Settings
from imiptools.preferences import Preferences
from imiptools.quota.sync import recorded_quotas, sync_resource
from imiptools.records import UserRecords, Window
from tests.support import Agent, calendar_text, imip_message, vevent

ROOM = "mailto:room1@example.com"


def records(agent: Agent, now: datetime) -> tuple[UserRecords, Preferences]:
    site = agent.site()
    preferences = Preferences(ROOM, site.preferences, {})
    window = Window.for_user(Settings(), preferences)
    return UserRecords(site.store, ROOM, UTC, window, now), preferences


def book_weekly(agent: Agent) -> None:
    agent.set_pref(ROOM, "scheduling_function", "check_quota rooms\nschedule_in_freebusy")
    event = vevent(
        "weekly",
        "20300108T090000Z",
        "20300108T100000Z",
        attendees=("room1@example.com",),
        extra="RRULE:FREQ=WEEKLY",
    )
    message = imip_message(calendar_text(event), to="room1@example.com")
    assert agent.resource(message, recipient="room1@example.com").code == 0


def test_recorded_quotas_are_those_of_recording_functions() -> None:
    lines = "check_quota b\nschedule_for_delegate c\nschedule_across_quota a\nfoo"
    assert recorded_quotas(lambda name: lines) == ["a", "b"]
    assert recorded_quotas(lambda name: "check_quota 'unclosed") == []


def test_damage_is_found_and_repaired(tmp_path: Path) -> None:
    agent = Agent(tmp_path)
    book_weekly(agent)
    journal = agent.site().ledger
    recorded = len(journal.bookings("rooms"))
    assert recorded == 52  # a year's window of weekly instances
    for path in (tmp_path / "journal" / "rooms" / "bookings").iterdir():
        path.unlink()
    now = datetime(2030, 1, 1, 12, tzinfo=UTC)
    user, preferences = records(agent, now)
    findings = sync_resource(user, preferences.get, journal, repair=False)
    assert findings and "'weekly'" in findings[0] and "0 recorded, 52 booked" in findings[0]
    assert sync_resource(user, preferences.get, journal, repair=True) == findings
    assert len(journal.bookings("rooms")) == recorded
    assert sync_resource(user, preferences.get, journal, repair=False) == []


def test_a_moving_window_records_the_instances_that_enter_it(tmp_path: Path) -> None:
    agent = Agent(tmp_path)
    book_weekly(agent)
    journal = agent.site().ledger
    later = datetime(2030, 7, 1, 12, tzinfo=UTC)
    user, preferences = records(agent, later)
    user.refresh_freebusy("weekly")
    assert sync_resource(user, preferences.get, journal, repair=True)
    ends = [b.end for b in journal.bookings("rooms")]
    assert max(ends) > datetime(2031, 6, 1, tzinfo=UTC)
    # Instances that ended before the run stay (for period limits) until expiry.
    assert min(ends) < later
