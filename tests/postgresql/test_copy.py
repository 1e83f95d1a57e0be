"""A site moves from files to PostgreSQL and back, exactly: copy-store
--to-config, then check --compare finds no difference (issue 16 item 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from imiptools.periods import Period
from tests.pg import connected, run, write_config
from tests.scenarios.test_quota import ROOM1, admin, book, cancel, hour, setup
from tests.support import Agent

ROOM = f"mailto:{ROOM1}"
T0 = datetime(2030, 1, 8, 10, tzinfo=UTC)


def _file_config(path: Path, root: Path) -> Path:
    path.write_text(
        f'[agent]\nstore = "{root / "store"}"\npreferences = "{root / "prefs"}"\n'
        f'journal = "{root / "journal"}"\n',
        encoding="utf-8",
    )
    return path


def _a_site_with_everything(agent: Agent) -> None:
    """Bookings, a cancellation, quotas with comments, decisions through the
    programs; hostile text, an instance-only event, counters, others'
    free/busy, offers and queued requests through the store."""
    setup(agent)
    admin(agent, "quota", "set-limit", "rooms", "*", "2", "--per", "week")
    for uid, day in (("a", 8), ("b", 9), ("c", 10)):
        book(agent, uid, *hour(day, 9))
    cancel(agent, "a", *hour(8, 9))
    site = agent.site()
    store = site.store
    with store.lock(ROOM, 5):
        store.set_object(ROOM, "nul\x00and \udcff%00", "BEGIN:VCALENDAR\r\nX:\x00\r\n")
        store.set_recurrence(ROOM, "only-instance", "20300115T100000Z", "BEGIN:VCALENDAR\r\n")
        store.cancel_recurrence(ROOM, "b", "20300116T090000Z", "cancelled instance")
        store.set_counter(ROOM, "b", "mailto:bob@example.com", "a counter")
        other = [Period(T0, T0 + timedelta(hours=1), "x", summary="Tab\there")]
        store.set_freebusy_other(ROOM, "mailto:dave@example.com", other)
        store.set_offers(ROOM, "held", other, T0 + timedelta(days=1))
        store.queue_request(ROOM, "b", "", "COUNTER")
    site.ledger.write_admin_file("rooms", "exempt", ["# nobody yet"])


def test_files_to_postgresql_and_back(pg_dsn: str, tmp_path: Path) -> None:
    files = Agent(tmp_path / "files")
    _a_site_with_everything(files)
    database = write_config(tmp_path / "pg.toml", pg_dsn)

    copied = files.admin("copy-store", "--to-config", str(database), "--all")
    assert copied.returncode == 0, copied.stdout + copied.stderr
    assert "copied 1 quota group(s)" in copied.stdout
    compared = files.admin("check", "--compare", str(database))
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert "no difference" in compared.stdout

    back = _file_config(tmp_path / "back.toml", tmp_path / "back")
    in_database = Agent(tmp_path / "unused", config=database)
    returned = in_database.admin("copy-store", "--to-config", str(back), "--all")
    assert returned.returncode == 0, returned.stdout + returned.stderr
    again = files.admin("check", "--compare", str(back))
    assert again.returncode == 0 and "no difference" in again.stdout, again.stdout


def test_check_compare_names_each_difference(pg_dsn: str, tmp_path: Path) -> None:
    files = Agent(tmp_path / "files")
    _a_site_with_everything(files)
    database = write_config(tmp_path / "pg.toml", pg_dsn)
    assert files.admin("copy-store", "--to-config", str(database), "--all").returncode == 0
    with connected(pg_dsn) as connection:
        run(connection, "UPDATE objects SET body = 'changed' WHERE uid = 'b'")
        run(connection, "DELETE FROM quota_bookings")
        run(connection, "UPDATE preferences SET value = 'x' WHERE name = 'scheduling_function'")
    compared = files.admin("check", "--compare", str(database))
    assert compared.returncode == 65
    lines = compared.stdout.splitlines()
    assert f"{ROOM}: event 'b' differs" in lines
    assert f"{ROOM}: preference scheduling_function differs" in lines
    assert "quota rooms: the records of mailto:alice@example.com differ" in lines
