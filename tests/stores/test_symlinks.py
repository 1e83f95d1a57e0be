"""The file store, the outbox, the preferences and the quota journal refuse a
symlink planted below their root instead of following it (issue 11, item 7);
their roots themselves may be symlinks (an admin's choice)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imiptools.errors import LockTimeout, SymlinkRefused
from imiptools.preferences_store import PreferenceFiles
from imiptools.quota.journal import QuotaJournal
from imiptools.spool import Spool
from imiptools.stores.file import FileStore
from tests.stores.contract import USER, event
from tests.support import open_descriptors

USER_DIR = "mailto:room@example.com"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside every root: nothing may ever appear in it."""
    directory = tmp_path / "outside"
    directory.mkdir()
    return directory


def test_store_listing_names_a_symlinked_user_but_never_reads_through_it(
    tmp_path: Path, outside: Path
) -> None:
    store = FileStore(tmp_path / "store")
    store.set_object(USER, "a", event("a"))
    os.symlink(outside, tmp_path / "store" / "mailto:car@example.com")
    os.symlink(outside, tmp_path / "store" / ("_h_" + "0" * 64))
    assert sorted(store.users()) == ["mailto:car@example.com", USER]
    with pytest.raises(SymlinkRefused):
        store.set_object("mailto:car@example.com", "b", event("b"))
    assert os.listdir(outside) == []


def test_decision_log_symlink_is_not_appended_through(tmp_path: Path, outside: Path) -> None:
    store = FileStore(tmp_path / "store")
    store.log_decision(USER, "{}")
    log = tmp_path / "store" / USER_DIR / "decisions.log"
    log.unlink()
    os.symlink(outside / "log", log)
    with pytest.raises(SymlinkRefused):
        store.log_decision(USER, "{}")
    assert os.listdir(outside) == []


def test_a_subdirectory_swapped_for_a_symlink_under_the_lock_is_refused(
    tmp_path: Path, outside: Path
) -> None:
    store = FileStore(tmp_path / "store")
    objects = tmp_path / "store" / USER_DIR / "objects"
    with store.lock(USER, 1):
        store.set_object(USER, "a", event("a"))
        os.rename(objects, outside / "objects")
        os.symlink(outside / "objects", objects)
        with pytest.raises(SymlinkRefused):
            store.set_object(USER, "b", event("b"))
        with pytest.raises(SymlinkRefused):
            store.get_object(USER, "a")
    assert os.listdir(outside / "objects") == ["a"]


def test_the_user_directory_is_held_only_while_locked(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    store.set_object(USER, "a", event("a"))
    user_directory = str(tmp_path / "store" / USER_DIR)
    before = open_descriptors()
    with store.lock(USER, 1):
        assert user_directory in open_descriptors()
        store.set_object(USER, "b", event("b"))
    assert open_descriptors() == before
    with pytest.raises(RuntimeError), store.lock(USER, 1):
        raise RuntimeError("the work fails")
    assert open_descriptors() == before
    with store.lock(USER, 1), pytest.raises(LockTimeout), store.lock(USER, 0):
        pass  # not re-entrant: the inner one times out, and lets go of its hold
    assert open_descriptors() == before


def test_locks_of_two_users_hold_their_own_directories(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    other = "mailto:car@example.com"
    with store.lock(USER, 1), store.lock(other, 1):
        store.set_object(USER, "a", event("a"))
        store.set_object(other, "b", event("b"))
    assert list(store.object_uids(USER)) == ["a"]
    assert list(store.object_uids(other)) == ["b"]


def test_store_root_through_a_symlink_works(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "store")
    store = FileStore(tmp_path / "store")
    store.set_object(USER, "a", event("a"))
    with store.lock(USER, 1):
        assert store.get_object(USER, "a") == event("a")
    assert list(store.users()) == [USER]


@pytest.mark.parametrize("where", ["", "new", "tmp"], ids=["outbox", "new", "tmp"])
def test_outbox_symlink_is_refused(tmp_path: Path, outside: Path, where: str) -> None:
    spool = Spool(tmp_path / "store" / ".outbox")
    spool.put(b"message", "room@example.com", ["alice@example.com"])
    link = spool.directory / where if where else spool.directory
    os.rename(link, outside / "moved")
    os.symlink(outside / "moved", link)
    before = sorted(os.listdir(outside / "moved"))
    with pytest.raises(SymlinkRefused):
        spool.put(b"message", "room@example.com", ["alice@example.com"])
    assert sorted(os.listdir(outside / "moved")) == before


def test_preference_directory_symlink_is_refused(tmp_path: Path, outside: Path) -> None:
    files = PreferenceFiles(tmp_path / "prefs")
    (tmp_path / "prefs").mkdir()
    os.symlink(outside, tmp_path / "prefs" / USER_DIR)
    with pytest.raises(SymlinkRefused):
        files.set(USER, "LANG", "de")
    with pytest.raises(SymlinkRefused):
        files.get(USER, "LANG")
    assert os.listdir(outside) == []


def test_quota_journal_skips_and_refuses_symlinks(tmp_path: Path, outside: Path) -> None:
    journal = QuotaJournal(tmp_path / "journal", timeout=1)
    journal.write_admin_file("rooms", "exempt", ["alice@example.com"])
    os.symlink(outside, tmp_path / "journal" / "cars")
    assert journal.quotas() == ["rooms"]
    with pytest.raises(SymlinkRefused):
        journal.write_admin_file("cars", "exempt", ["alice@example.com"])
    os.symlink(outside / "lock", tmp_path / "journal" / "rooms" / ".lock.new")
    os.replace(
        tmp_path / "journal" / "rooms" / ".lock.new", tmp_path / "journal" / "rooms" / ".lock"
    )
    with pytest.raises(SymlinkRefused):
        journal.write_admin_file("rooms", "exempt", [])
    assert os.listdir(outside) == []
