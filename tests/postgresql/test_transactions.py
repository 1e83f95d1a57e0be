"""The unit of work is one database transaction: all of it or none of it.

A crash, an exception or a lost connection before the user's lock is
released leaves nothing of the unit (records, quota records, replies);
the database being unreachable or the connection dropping is transient
(StoreUnavailable, 75), never a half-written booking.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from imiptools.errors import LockTimeout, StoreUnavailable
from imiptools.periods import Period
from imiptools.quota.limits import QuotaBooking
from imiptools.site import Site, open_site
from imiptools.stores.recording import RecordingStore
from imiptools.stores.transaction import OutgoingMessage, Transaction
from tests.pg import admin_dsn, connected, run, settings_of

ROOM = "mailto:room@example.com"
ALICE = "mailto:alice@example.com"
T0 = datetime(2030, 1, 8, 10, tzinfo=UTC)


@pytest.fixture
def site(pg_dsn: str, tmp_path: Path) -> Site:
    return open_site(settings_of(pg_dsn, tmp_path))


def _unit(site: Site) -> None:
    """One unit of work as the agent runs it: a booking, its free/busy, its
    quota record and its reply, committed through a recording store."""
    store = RecordingStore(site.store, Transaction(ROOM, site.outbox))
    with site.ledger.locked(["rooms"], 5):
        site.ledger.defer(store.transaction)
        try:
            site.ledger.add_bookings(
                "rooms", [QuotaBooking(ALICE, ROOM, "a", "", T0, T0 + timedelta(hours=1))]
            )
            store.set_object(ROOM, "a", "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n")
            store.set_freebusy_for_uid(ROOM, "a", [Period(T0, T0 + timedelta(hours=1), "a")])
            store.transaction.send(OutgoingMessage(ROOM, [ALICE], b"Subject: reply\n\nok\n", "k"))
            store.commit()
        finally:
            site.ledger.defer(None)


def _nothing_of_the_unit(site: Site) -> None:
    other = open_site(site.settings)
    assert other.store.get_object(ROOM, "a") is None
    assert other.store.all_freebusy(ROOM) == []
    assert other.ledger.bookings("rooms") == []
    assert other.outbox.pending() == []


def _all_of_the_unit(site: Site) -> None:
    other = open_site(site.settings)
    assert other.store.get_object(ROOM, "a") is not None
    assert [p.uid for p in other.store.all_freebusy(ROOM)] == ["a"]
    assert [b.uid for b in other.ledger.bookings("rooms")] == ["a"]
    assert [m.key for m in other.outbox.pending()] == ["k"]


def test_the_unit_commits_when_the_lock_is_released(site: Site) -> None:
    with site.store.lock(ROOM, 5):
        _unit(site)
        _nothing_of_the_unit(site)  # committed to the transaction, not yet to the database
    _all_of_the_unit(site)


def test_an_exception_leaves_nothing(site: Site) -> None:
    with pytest.raises(RuntimeError), site.store.lock(ROOM, 5):
        _unit(site)
        raise RuntimeError("crash before the lock is released")
    _nothing_of_the_unit(site)
    with open_site(site.settings).store.lock(ROOM, 0.5):
        pass  # the lock went with the transaction


def _terminate(site: Site) -> None:
    """Drop the site's connection from the server's side (a restart, a
    network failure)."""
    pid = site.backend.db.connection().info.backend_pid  # type: ignore[attr-defined]
    with connected(admin_dsn()) as admin:
        run(admin, "SELECT pg_terminate_backend(%s)", (pid,))


def test_a_lost_connection_leaves_nothing_and_is_transient(site: Site) -> None:
    with pytest.raises(StoreUnavailable), site.store.lock(ROOM, 5):
        _unit(site)
        _terminate(site)
        site.store.get_object(ROOM, "a")
    _nothing_of_the_unit(site)
    with site.store.lock(ROOM, 5):  # the same site connects again for the next unit
        _unit(site)
    _all_of_the_unit(site)


def test_a_lost_connection_at_the_commit_is_transient(site: Site) -> None:
    with pytest.raises(StoreUnavailable), site.store.lock(ROOM, 5):
        _unit(site)
        _terminate(site)
    _nothing_of_the_unit(site)


def test_an_unreachable_database_is_transient(tmp_path: Path) -> None:
    site = open_site(settings_of("host=127.0.0.1 port=1 connect_timeout=2", tmp_path))
    with pytest.raises(StoreUnavailable, match="cannot connect"), site.store.lock(ROOM, 5):
        pass
    with pytest.raises(StoreUnavailable):
        site.preferences.get(ROOM, "TZID")


def test_a_held_user_lock_times_out(site: Site) -> None:
    other = open_site(site.settings)
    with other.store.lock(ROOM, 5):
        with pytest.raises(LockTimeout), site.store.lock(ROOM, 0.3):
            pass
        with site.store.lock(ALICE, 0.3):
            pass


def test_a_held_quota_lock_times_out_inside_a_unit(site: Site) -> None:
    other = open_site(site.settings)
    with other.ledger.locked(["rooms"], 5), pytest.raises(LockTimeout), site.store.lock(ROOM, 5):
        site.store.set_object(ROOM, "a", "text")
        with site.ledger.locked(["rooms"], 0.3):
            pass
    assert other.store.get_object(ROOM, "a") is None


def test_the_outbox_lock_excludes_another_host(site: Site) -> None:
    other = open_site(site.settings)
    with site.outbox.locked(5), pytest.raises(LockTimeout), other.outbox.locked(0.3):
        pass
    with other.outbox.locked(0.3):
        pass


def test_preferences_are_read_once_per_unit(site: Site) -> None:
    """Inside a unit the user's preferences are one consistent read; the
    unit's own writes are seen at once, others' from the next unit on."""
    other = open_site(site.settings)
    other.preferences.set(ROOM, "CN", "Room 1")
    with site.store.lock(ROOM, 5):
        assert site.preferences.get(ROOM, "CN") == "Room 1"
        other.preferences.set(ROOM, "CN", "Room 2")
        assert site.preferences.get(ROOM, "CN") == "Room 1"
        site.preferences.set(ROOM, "TZID", "UTC")
        assert site.preferences.get(ROOM, "TZID") == "UTC"
    with site.store.lock(ROOM, 5):
        assert site.preferences.get(ROOM, "CN") == "Room 2"
    assert site.preferences.get(ROOM, "CN") == "Room 2"


def test_quota_lists_are_read_once_per_unit(site: Site) -> None:
    other = open_site(site.settings)
    other.ledger.write_admin_file("rooms", "limits", ["* count day 1"])
    with site.store.lock(ROOM, 5):
        assert len(site.ledger.limits("rooms")) == 1
        other.ledger.write_admin_file("rooms", "limits", ["* count day 1", "* count week 2"])
        assert len(site.ledger.limits("rooms")) == 1
        site.ledger.write_admin_file("rooms", "exempt", [ALICE])
        assert site.ledger.is_exempt("rooms", ALICE)
    assert len(site.ledger.limits("rooms")) == 2
