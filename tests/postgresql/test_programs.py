"""The agents with the database: its trouble is transient (75, one status
line, no traceback), and a redelivery after it converges."""

from __future__ import annotations

import subprocess
from pathlib import Path

from imiptools.site import open_site
from tests.pg import connected, run, settings_of, write_config
from tests.support import BIN, Agent, calendar_text, imip_message, partstat_of, vevent

ROOM = "mailto:room@example.com"


def test_an_unreachable_database_is_75_with_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path / "site.toml", "host=127.0.0.1 port=1 connect_timeout=2")
    agent = Agent(tmp_path, config=config)
    run = agent.resource(imip_message(calendar_text(vevent())), sender="alice@example.com")
    assert run.code == 75
    assert run.stdout.startswith("4.3.0 cannot connect to the database")
    assert run.stdout.count("\n") <= 1 and "Traceback" not in run.stdout + run.stderr
    assert run.sent == []


def test_a_held_lock_is_75_and_a_retry_converges(pg_dsn: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "site.toml", pg_dsn, "lock_timeout = 0.5\n")
    agent = Agent(tmp_path, config=config)
    message = imip_message(calendar_text(vevent()))
    holder = agent.site()
    with holder.store.lock(ROOM, 5):
        held = agent.resource(message, sender="alice@example.com")
    assert held.code == 75 and held.stdout.startswith("4.")
    assert held.sent == [] and agent.site().store.get_object(ROOM, "event-1@example.com") is None
    retry = agent.resource(message, sender="alice@example.com")
    assert retry.code == 0 and partstat_of(retry.replies()[0]) == "ACCEPTED"
    assert open_site(holder.settings).outbox.pending() == []


def test_init_user_and_prefs_go_to_the_database(pg_dsn: str, tmp_path: Path) -> None:
    agent = Agent(tmp_path, config=write_config(tmp_path / "site.toml", pg_dsn))
    made = agent.admin("init-user", "room@example.com", "--resource", "--pref", "CN=Room 1")
    assert made.returncode == 0, made.stdout + made.stderr
    site = agent.site()
    assert ROOM in set(site.store.users())
    assert site.preferences.get(ROOM, "CN") == "Room 1"
    assert site.preferences.get(ROOM, "scheduling_function") == "schedule_in_freebusy"
    assert not (tmp_path / "store").exists() and not (tmp_path / "prefs").exists()


def test_check_finds_and_repairs_quota_records(pg_dsn: str, tmp_path: Path) -> None:
    """As tests/admin/test_quota_jobs.py does with the journal's files: a
    record lost and a ghost one, found by check and repaired by --repair."""
    agent = Agent(tmp_path, config=write_config(tmp_path / "site.toml", pg_dsn))
    agent.set_pref(
        "room@example.com", "scheduling_function", "check_quota rooms\nschedule_in_freebusy"
    )
    for uid, day in (("one", "08"), ("two", "09")):
        message = imip_message(
            calendar_text(vevent(uid, f"203001{day}T100000Z", f"203001{day}T110000Z"))
        )
        assert agent.resource(message, sender="alice@example.com").code == 0
    with connected(pg_dsn) as connection:
        run(connection, "UPDATE quota_bookings SET uid = 'ghost' WHERE uid = 'two'")
    found = agent.admin("check")
    assert found.returncode == 65, found.stdout
    assert "quota rooms: the records of 'two'" in found.stdout
    assert "quota rooms: the records of 'ghost'" in found.stdout
    repaired = agent.admin("check", "--repair")
    assert repaired.returncode == 0, repaired.stdout
    assert sorted(b.uid for b in agent.site().ledger.bookings("rooms")) == ["one", "two"]
    assert agent.admin("check").returncode == 0


def test_a_bad_quota_list_is_reported(pg_dsn: str, tmp_path: Path) -> None:
    agent = Agent(tmp_path, config=write_config(tmp_path / "site.toml", pg_dsn))
    agent.set_pref(
        "room@example.com", "scheduling_function", "check_quota rooms\nschedule_in_freebusy"
    )
    agent.site().ledger.store_admin_text("rooms", "limits", "* time fortnight PT1H\n")
    result = agent.admin("check")
    assert result.returncode == 65
    assert "quota rooms:" in result.stdout and "fortnight" in result.stdout


def test_check_install_connects_to_the_database(pg_dsn: str, tmp_path: Path) -> None:
    site = open_site(settings_of(pg_dsn, tmp_path))
    ok, text = site.backend.connection_check() or (False, "")
    assert ok and "connected, schema version" in text
    down = open_site(settings_of("host=127.0.0.1 port=1 connect_timeout=2", tmp_path))
    ok, text = down.backend.connection_check() or (True, "")
    assert not ok and "cannot connect to the database" in text


def test_whatif_changes_nothing_in_the_database(pg_dsn: str, tmp_path: Path) -> None:
    agent = Agent(tmp_path, config=write_config(tmp_path / "site.toml", pg_dsn))
    agent.set_pref(
        "room@example.com", "scheduling_function", "check_quota rooms\nschedule_in_freebusy"
    )
    assert agent.admin("quota", "set-limit", "rooms", "*", "1").returncode == 0
    message = imip_message(calendar_text(vevent("a")))
    assert agent.resource(message, sender="alice@example.com").code == 0

    def everything() -> list[object]:
        with connected(pg_dsn) as connection:
            tables = [row[0] for row in run(connection, "SELECT tablename FROM pg_tables"
                      " WHERE schemaname = current_schema() ORDER BY tablename")]  # fmt: skip
            return [run(connection, f"SELECT * FROM {t} ORDER BY 1") for t in tables]

    before = everything()
    other = imip_message(calendar_text(vevent("b", "20300109T100000Z", "20300109T110000Z")))
    argv = [*agent.store_options, "--now", agent.now, "whatif", "room@example.com"]
    result = subprocess.run(
        [str(BIN / "imip-admin"), *argv], input=other, capture_output=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert b"DECLINED" in result.stdout and b"allowed for you in rooms" in result.stdout
    assert everything() == before


def test_the_users_with_preferences_are_listed(pg_dsn: str, tmp_path: Path) -> None:
    site = open_site(settings_of(pg_dsn, tmp_path))
    site.preferences.set("Room@Example.com", "CN", "Room")
    site.preferences.set("car@example.com", "CN", "Car")
    assert site.backend.preference_users() == ["mailto:car@example.com", ROOM]  # type: ignore[attr-defined]
