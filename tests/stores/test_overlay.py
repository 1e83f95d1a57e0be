"""The overlay store: the contract, fidelity to its base, and a base left alone.

The whole store contract runs against an overlay over an empty file store
(and over another overlay, since any store may be a base). Then each
script of writes runs twice, on a file store and on an overlay over a copy
of it, both seeded alike: every read must agree, and the overlay's base
must be byte for byte (and inode and mtime) what it was.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from imiptools.stores.base import Store
from imiptools.stores.file import FileStore
from imiptools.stores.overlay import OverlayStore
from imiptools.stores.recording import RecordingStore
from imiptools.stores.transaction import Transaction
from tests.stores.contract import (
    ALICE,
    BOB,
    HOUR,
    OTHER_USER,
    T0,
    USER,
    StoreContract,
    all_periods,
    event,
    period,
)
from tests.stores.test_file_store import lock_held_by_child

UIDS = ["a", "b", "c", "x/y"]
RIDS = ["20300115T100000Z", "20300122T100000Z", "20300129T100000Z"]
FAR_PAST = datetime(1900, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)

Script = Callable[[Store], None]


def base_root(store: Store) -> Path:
    """The directory of the file store at the bottom of ``store``."""
    while isinstance(store, OverlayStore):
        store = store.base
    assert isinstance(store, FileStore)
    return store.root


class TestOverlayStoreContract(StoreContract):
    """The store contract against an overlay over an empty file store."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Store:
        return OverlayStore(FileStore(tmp_path / "store"))

    def held_elsewhere(self, store: Store, user: str) -> AbstractContextManager[None]:
        return lock_held_by_child(base_root(store), user)

    def test_lock_held_elsewhere_times_out(self, store: Store) -> None:
        pytest.skip("by design an overlay's lock is a no-op: it never writes its base")


class TestStackedOverlayContract(TestOverlayStoreContract):
    """The contract against an overlay whose base is itself an overlay."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Store:
        return OverlayStore(OverlayStore(FileStore(tmp_path / "store")))


# -- fidelity to the base ------------------------------------------------------


def seed(store: Store) -> None:
    """Records of every kind, for two users, that the scripts then change."""
    for user in (USER, OTHER_USER):
        for uid in ("a", "x/y"):
            store.set_object(user, uid, event(uid))
            store.set_recurrence(user, uid, RIDS[0], event(uid, "moved"))
            store.set_recurrence(user, uid, RIDS[1], event(uid, "moved again"))
            store.set_freebusy_for_uid(user, uid, [period(uid, 0), period(uid, 24)])
            store.set_counter(user, uid, ALICE, event(uid, "alice"))
            store.set_counter(user, uid, BOB, event(uid, "bob"))
        store.cancel_object(user, "b", event("b", "cancelled"))
        store.cancel_recurrence(user, "a", RIDS[2], event("a", "cancelled instance"))
        store.set_freebusy_other(user, ALICE, [period("", 0), period("", 3)])
        store.set_offers(user, "a", [period("a", 5)], T0 + 2 * HOUR)
        store.set_offers(user, "c", [period("c", 6)], T0 + 20 * HOUR)
        store.log_decision(user, '{"n": 0}')
        store.queue_request(user, "a")
        store.queue_request(user, "b", RIDS[0], "COUNTER")
        store.queue_request(user, "c")


def observe(store: Store) -> dict[str, Any]:
    """Everything the interface shows of the seeded users and keys."""
    view: dict[str, Any] = {"users": sorted(store.users())}
    for user in (USER, OTHER_USER):
        view[user] = observe_user(store, user)
    return view


def observe_user(store: Store, user: str) -> dict[str, Any]:
    return {
        "uids": sorted(store.object_uids(user)),
        "objects": {u: store.get_object(user, u) for u in UIDS},
        "rids": {u: store.recurrence_ids(user, u) for u in UIDS},
        "recurrences": {(u, r): store.get_recurrence(user, u, r) for u in UIDS for r in RIDS},
        "cancelled": {u: store.get_cancelled_object(user, u) for u in UIDS},
        "cancelled_rids": {u: store.cancelled_recurrence_ids(user, u) for u in UIDS},
        "cancelled_recurrences": {
            (u, r): store.get_cancelled_recurrence(user, u, r) for u in UIDS for r in RIDS
        },
        "freebusy": list(all_periods(store, user)),
        "freebusy_span": store.get_freebusy(user, T0 + HOUR / 2, T0 + 25 * HOUR),
        "freebusy_uids": sorted(store.freebusy_uids(user)),
        "other": {o: store.get_freebusy_other(user, o, FAR_PAST, FAR_FUTURE) for o in (ALICE, BOB)},
        "offers": [store.get_offers(user, T0 + k * HOUR) for k in (0, 3, 30)],
        "counters": {u: store.get_counters(user, u) for u in UIDS},
        "decisions": list(store.decisions(user)),
        "requests": store.get_requests(user),
    }


SCRIPTS: dict[str, Script] = {}


def script(function: Script) -> Script:
    """Register ``function`` as a script of writes, named after it."""
    SCRIPTS[function.__name__] = function
    return function


@script
def nothing(s: Store) -> None:
    pass


@script
def cancel(s: Store) -> None:
    s.cancel_object(USER, "a", event("a", "cancelled now"))


@script
def remove(s: Store) -> None:
    s.remove_object(USER, "x/y")


@script
def set_new_and_replace(s: Store) -> None:
    s.set_object(USER, "c", event("c"))
    s.set_object(USER, "a", event("a", "new"))


@script
def remove_then_set_again(s: Store) -> None:
    s.remove_object(USER, "a")
    s.set_object(USER, "a", event("a", "back"))
    s.set_recurrence(USER, "a", RIDS[2], event("a", "new instance"))


@script
def recurrences(s: Store) -> None:
    s.remove_recurrence(USER, "a", RIDS[0])
    s.set_recurrence(USER, "a", RIDS[2], event("a", "third"))
    s.cancel_recurrence(USER, "x/y", RIDS[1], event("x/y", "gone"))


@script
def uncancel(s: Store) -> None:
    s.uncancel_object(USER, "b")
    s.uncancel_recurrence(USER, "a", RIDS[2])


@script
def cancel_again(s: Store) -> None:
    s.uncancel_object(USER, "b")
    s.cancel_object(USER, "b", event("b", "again"))


@script
def freebusy_replaced(s: Store) -> None:
    s.set_freebusy_for_uid(USER, "a", [period("a", 48), period("not its uid", 72)])


@script
def freebusy_forgotten(s: Store) -> None:
    s.set_freebusy_for_uid(USER, "x/y", [])


@script
def freebusy_added(s: Store) -> None:
    s.set_freebusy_for_uid(USER, "c", [period("c", 1)])


@script
def others_freebusy(s: Store) -> None:
    s.set_freebusy_other(USER, ALICE, [period("", 9)])
    s.set_freebusy_other(OTHER_USER, ALICE, [])
    s.set_freebusy_other(USER, BOB, [period("", 1)])


@script
def offers(s: Store) -> None:
    s.set_offers(USER, "a", [period("a", 7)], T0 + 40 * HOUR)
    s.remove_offers(USER, "c")
    s.set_offers(OTHER_USER, "b", [period("x", 8)], T0 + HOUR)


@script
def offers_removed_then_set(s: Store) -> None:
    s.remove_offers(USER, "a")
    s.set_offers(USER, "a", [period("a", 4)], T0 + 4 * HOUR)


@script
def counters(s: Store) -> None:
    s.remove_counters(USER, "a", ALICE)
    s.set_counter(USER, "a", BOB, event("a", "bob again"))
    s.remove_counters(USER, "x/y")
    s.set_counter(USER, "x/y", ALICE, event("x/y", "after all"))


@script
def decisions(s: Store) -> None:
    s.log_decision(USER, '{"n": 1}')
    s.log_decision(USER, "Ünïcödé")


@script
def requests(s: Store) -> None:
    s.queue_request(USER, "a", "", "CANCEL")
    s.dequeue_request(USER, "b", RIDS[0])
    s.queue_request(USER, "d")
    s.dequeue_request(OTHER_USER, "c")


@script
def new_user(s: Store) -> None:
    s.set_object("new@example.com", "a", event("a"))


@script
def new_user_by_decision(s: Store) -> None:
    s.log_decision("<log@example.com>", "{}")


ALL = list(SCRIPTS.values())


@script
def everything(s: Store) -> None:
    for each in ALL:
        each(s)


def snapshot(top: Path) -> dict[str, tuple[bytes | None, int, int]]:
    """Every entry under ``top``: content (None for directories), inode, mtime."""
    entries: dict[str, tuple[bytes | None, int, int]] = {}
    for path in [top, *sorted(top.rglob("*"))]:
        info = path.lstat()
        content = None if path.is_dir() else path.read_bytes()
        entries[str(path.relative_to(top))] = (content, info.st_ino, info.st_mtime_ns)
    return entries


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[FileStore, FileStore]:
    """Two file stores seeded alike: one to write directly, one as a base."""
    direct = FileStore(tmp_path / "direct")
    seed(direct)
    shutil.copytree(direct.root, tmp_path / "base")
    return direct, FileStore(tmp_path / "base")


@pytest.mark.parametrize("name", SCRIPTS)
def test_overlay_reads_as_the_store_would(seeded: tuple[FileStore, FileStore], name: str) -> None:
    direct, base = seeded
    before = snapshot(base.root)
    overlay = OverlayStore(base)
    assert observe(overlay) == observe(direct)
    SCRIPTS[name](direct)
    SCRIPTS[name](overlay)
    assert observe(overlay) == observe(direct)
    assert snapshot(base.root) == before


@pytest.mark.parametrize("name", SCRIPTS)
def test_base_alone_still_reads_as_seeded(seeded: tuple[FileStore, FileStore], name: str) -> None:
    base = seeded[1]
    untouched = observe(base)
    overlay = OverlayStore(base)
    with overlay.lock(USER, 1):
        SCRIPTS[name](overlay)
    assert observe(base) == untouched


# -- the base is left alone --------------------------------------------------------


def test_writes_to_a_missing_store_create_nothing(tmp_path: Path) -> None:
    overlay = OverlayStore(FileStore(tmp_path / "store"))
    with overlay.lock(USER, 1):
        seed(overlay)
        everything(overlay)
    assert os.listdir(tmp_path) == []
    assert sorted(overlay.users()) == sorted(
        [USER, OTHER_USER, "mailto:new@example.com", "mailto:log@example.com"]
    )


def test_lock_writes_no_lock_file(tmp_path: Path) -> None:
    base = FileStore(tmp_path / "store")
    base.set_object(USER, "a", event("a"))
    before = snapshot(base.root)
    with OverlayStore(base).lock(USER, 0), OverlayStore(base).lock(USER, 0):
        pass
    assert snapshot(base.root) == before


def test_lock_does_not_wait_for_a_delivery(tmp_path: Path) -> None:
    base = FileStore(tmp_path / "store")
    with lock_held_by_child(base.root, USER), OverlayStore(base).lock(USER, 0.1):
        pass


def test_added_decisions_are_only_the_overlays(tmp_path: Path) -> None:
    base = FileStore(tmp_path / "store")
    base.log_decision(USER, "old")
    overlay = OverlayStore(base)
    overlay.log_decision("Room@Example.com", "new")
    assert overlay.added_decisions(USER) == ["new"]
    assert list(overlay.decisions(USER)) == ["old", "new"]
    assert overlay.added_decisions(OTHER_USER) == []
    assert list(base.decisions(USER)) == ["old"]


def test_a_change_to_the_base_meanwhile_shows_through(tmp_path: Path) -> None:
    base = FileStore(tmp_path / "store")
    overlay = OverlayStore(base)
    overlay.set_object(USER, "a", event("a", "mine"))
    base.set_object(USER, "a", event("a", "theirs"))
    base.set_object(USER, "b", event("b"))
    assert overlay.get_object(USER, "a") == event("a", "mine")
    assert sorted(overlay.object_uids(USER)) == ["a", "b"]


def test_read_results_are_copies(tmp_path: Path) -> None:
    overlay = OverlayStore(FileStore(tmp_path / "store"))
    overlay.queue_request(USER, "a")
    overlay.get_requests(USER).clear()
    overlay.get_counters(USER, "a")["x"] = "y"
    assert overlay.get_requests(USER) == [("a", "", "REQUEST")]
    assert overlay.get_counters(USER, "a") == {}


class CountingStore(FileStore):
    """A file store that counts how often an event's instances are listed."""

    listed = 0

    def recurrence_ids(self, user: str, uid: str) -> list[str]:
        self.listed += 1
        return super().recurrence_ids(user, uid)

    def cancelled_recurrence_ids(self, user: str, uid: str) -> list[str]:
        self.listed += 1
        return super().cancelled_recurrence_ids(user, uid)


def test_an_events_instances_are_listed_once_a_view(tmp_path: Path) -> None:
    """Building a reply lists an event's instances again (on a database, a
    round trip each): a view asks its base once, and its own changes still
    show; a unit's commit starts a new view, which asks again."""
    base = CountingStore(tmp_path / "store")
    base.set_recurrence(USER, "a", "20300101T100000Z", event("a"))
    unit = RecordingStore(base, Transaction(USER, None))
    for _ in range(3):
        assert unit.recurrence_ids(USER, "a") == ["20300101T100000Z"]
        assert unit.cancelled_recurrence_ids(USER, "a") == []
    assert base.listed == 2
    unit.set_recurrence(USER, "a", "20300102T100000Z", event("a"))
    unit.cancel_recurrence(USER, "a", "20300101T100000Z", event("a"))
    assert unit.recurrence_ids(USER, "a") == ["20300102T100000Z"]
    assert unit.cancelled_recurrence_ids(USER, "a") == ["20300101T100000Z"]
    assert base.listed == 2
    with base.lock(USER, 5):
        unit.commit()
    assert unit.recurrence_ids(USER, "a") == ["20300102T100000Z"]
    assert unit.cancelled_recurrence_ids(USER, "a") == ["20300101T100000Z"]
    assert base.listed == 4
