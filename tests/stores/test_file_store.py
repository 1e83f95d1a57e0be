"""The file store: the contract, plus what only a file store can get wrong.

Hostile names must never create anything outside the user's directory,
writes must leave no temporary files, an interrupted free/busy update must
converge when rerun, locks must exclude other processes, and a free/busy
query must read only the buckets of its span.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from imiptools.errors import StoreUnavailable
from imiptools.periods import Period
from imiptools.stores.base import Store
from imiptools.stores.file import FileStore, period_buckets
from imiptools.stores.names import safe_component
from tests.stores.contract import ALICE, HOUR, T0, USER, StoreContract, all_periods, event, period

USER_DIR = "mailto:room@example.com"
DAY = timedelta(days=1)

HOSTILE_UIDS = [
    "../../etc/passwd",
    "a/b",
    "..",
    ".",
    "",
    ".lock",
    "_h_" + "0" * 64,
    "nul\x00inside",
    "u" * 10_000,
    "ünïcödé/日本語",
    "new\nline",
    "\\windows\\path",
    "/absolute",
    "mailto:room@example.com/../../x",
]

HOLDER = """
import sys
from pathlib import Path
from imiptools.stores.file import FileStore
with FileStore(Path(sys.argv[1])).lock(sys.argv[2], 10):
    print("locked", flush=True)
    sys.stdin.read()
"""


@contextmanager
def lock_held_by_child(root: Path, user: str) -> Iterator[None]:
    """Run a child process that holds ``user``'s lock until we close its stdin."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root), user],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "locked"
        yield
    finally:
        child.stdin.close()
        child.wait(timeout=30)


class TestFileStoreContract(StoreContract):
    """The whole store contract, against a FileStore in a temporary directory."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Store:
        return FileStore(tmp_path / "store")

    def held_elsewhere(self, store: Store, user: str) -> AbstractContextManager[None]:
        assert isinstance(store, FileStore)
        return lock_held_by_child(store.root, user)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(root: Path) -> FileStore:
    return FileStore(root)


def all_files(top: Path) -> list[Path]:
    return [Path(d) / name for d, _, names in os.walk(top) for name in names]


def all_entries(top: Path) -> list[Path]:
    return [Path(d) / name for d, dirs, names in os.walk(top) for name in dirs + names]


def touch_everything(store: FileStore, uid: str) -> None:
    """Use ``uid`` in every kind of record of the file store."""
    store.set_object(USER, uid, event("x"))
    store.set_recurrence(USER, uid, "20300115T100000Z", event("x"))
    store.set_recurrence(USER, "normal", uid, event("x"))
    store.cancel_recurrence(USER, uid, uid, event("x"))
    store.set_counter(USER, uid, uid, event("x"))
    store.set_freebusy_other(USER, uid, [period("x")])
    store.queue_request(USER, uid, uid, "REQUEST")
    store.set_freebusy_for_uid(USER, uid, [period(uid)])


# -- hostile names ------------------------------------------------------------


@pytest.mark.parametrize("uid", HOSTILE_UIDS)
def test_hostile_uid_stays_inside_the_user_directory(
    tmp_path: Path, store: FileStore, uid: str
) -> None:
    touch_everything(store, uid)
    user_dir = (store.root / USER_DIR).resolve()
    for path in all_entries(tmp_path):
        resolved = path.resolve()
        assert resolved == store.root.resolve() or resolved.is_relative_to(user_dir), path
        assert len(path.name.encode()) <= 255


@pytest.mark.parametrize("uid", HOSTILE_UIDS)
def test_hostile_uid_round_trips(store: FileStore, uid: str) -> None:
    touch_everything(store, uid)
    # "normal" is held only as an overridden instance: an event too.
    assert list(store.object_uids(USER)) == [uid, "normal"]
    assert store.get_object(USER, uid) == event("x")
    assert store.recurrence_ids(USER, uid) == ["20300115T100000Z"]
    assert store.recurrence_ids(USER, "normal") == [uid]
    assert store.cancelled_recurrence_ids(USER, uid) == [uid]
    assert store.get_counters(USER, uid) == {uid: event("x")}
    assert store.get_freebusy_other(USER, uid, T0, T0 + HOUR) == [period("x")]
    assert store.get_requests(USER) == [(uid, uid, "REQUEST")]
    assert list(store.freebusy_uids(USER)) == [uid]
    assert store.get_freebusy(USER, T0, T0 + HOUR) == [period(uid)]


def test_lone_surrogate_uid_round_trips(store: FileStore) -> None:
    uid = "bad\udcffbytes"
    store.set_object(USER, uid, event("x") + "\udcfe")
    assert list(store.object_uids(USER)) == [uid]
    assert store.get_object(USER, uid) == event("x") + "\udcfe"


@pytest.mark.parametrize("uid", HOSTILE_UIDS)
def test_hostile_uid_removal_leaves_nothing(store: FileStore, uid: str) -> None:
    touch_everything(store, uid)
    store.remove_object(USER, uid)
    store.remove_recurrence(USER, "normal", uid)
    store.uncancel_recurrence(USER, uid, uid)
    store.remove_counters(USER, uid, uid)
    store.set_freebusy_other(USER, uid, [])
    store.dequeue_request(USER, uid, uid)
    store.set_freebusy_for_uid(USER, uid, [])
    user_dir = store.root / USER_DIR
    assert sorted(p.name for p in all_files(user_dir)) == [".lock"] or all_files(user_dir) == []


def test_readable_names_are_kept_verbatim(store: FileStore) -> None:
    uid = "040000008200E00074C5B7101A82E008@example.com"
    store.set_object(USER, uid, event(uid))
    store.set_recurrence(USER, uid, "20300115T100000Z", event(uid))
    store.set_counter(USER, uid, ALICE, event(uid))
    store.set_freebusy_for_uid(USER, uid, [period(uid)])
    base = store.root / USER_DIR
    assert (base / "objects" / uid).read_bytes() == event(uid).encode()
    assert (base / "recurrences" / uid / "20300115T100000Z").is_file()
    assert (base / "counters" / "objects" / uid / ALICE).is_file()
    assert (base / "freebusy" / "2030-01").read_text() == period(uid).to_line() + "\n"
    assert (base / "freebusy-index" / uid).read_text() == f"uid {uid}\n2030-01\n"


def test_hashed_names_have_sidecars(store: FileStore) -> None:
    store.set_object(USER, "a/b", event("a/b"))
    name = safe_component("a/b")
    objects = store.root / USER_DIR / "objects"
    assert sorted(os.listdir(objects)) == [name, name + ".name"]
    assert (objects / (name + ".name")).read_text() == "a/b"
    store.remove_object(USER, "a/b")
    assert os.listdir(objects) == []


def test_strays_are_ignored_by_listings(store: FileStore) -> None:
    store.set_object(USER, "a", event("a"))
    objects = store.root / USER_DIR / "objects"
    (objects / ".a.123.tmp").write_text("partial")
    (objects / ("_h_" + "f" * 64)).write_text("no sidecar")
    (objects / "has space").write_text("admin's note")
    assert list(store.object_uids(USER)) == ["a"]


def test_normalised_recurrence_ids_are_verbatim() -> None:
    for rid in ("20300108T100000Z", "20300108", "99991231T235959Z"):
        assert safe_component(rid) == rid


# -- users --------------------------------------------------------------------


def test_user_directory_is_named_by_uri(store: FileStore) -> None:
    store.set_object("Room@Example.com", "a", event("a"))
    assert os.listdir(store.root) == [USER_DIR]


def test_hashed_user_is_listed_by_its_marker(store: FileStore) -> None:
    long_user = "mailto:" + "r" * 200 + "@example.com"
    store.set_object(long_user, "a", event("a"))
    (name,) = os.listdir(store.root)
    assert name.startswith("_h_")
    assert (store.root / name / ".user").read_text() == long_user + "\n"
    assert list(store.users()) == [long_user]


def test_locking_creates_the_user(store: FileStore) -> None:
    with store.lock(USER, 1):
        assert list(store.users()) == [USER]
    assert (store.root / USER_DIR / ".lock").exists()


def test_stray_directories_are_not_users(store: FileStore, root: Path) -> None:
    store.set_object(USER, "a", event("a"))
    for stray in ("lost+found", "MAILTO:X@Y", "_h_" + "0" * 64, ".outbox"):
        (root / stray).mkdir()
    (root / "mailto:file@example.com").write_text("not a directory")
    assert list(store.users()) == [USER]


# -- durability ---------------------------------------------------------------


def test_writes_leave_no_temporary_files(tmp_path: Path, store: FileStore) -> None:
    for uid in ("a", "a/b", "c"):
        touch_everything(store, uid)
    store.cancel_object(USER, "a", event("a"))
    names = [path.name for path in all_files(tmp_path)]
    assert not [name for name in names if name.endswith(".tmp")]


class CrashingStore(FileStore):
    """Stops (raises) after ``budget`` bucket rewrites of set_freebusy_for_uid."""

    def __init__(self, root: Path, budget: int) -> None:
        super().__init__(root)
        self.budget = budget

    def _rewrite_bucket(self, directory: Path, name: str, marker: str, lines: set[str]) -> None:
        if self.budget == 0:
            raise KeyboardInterrupt("simulated crash")
        self.budget -= 1
        super()._rewrite_bucket(directory, name, marker, lines)


def monthly(uid: str, months: Iterable[int]) -> list[Period]:
    return [
        Period(datetime(2030, m, 3, 9, tzinfo=UTC), datetime(2030, m, 3, 10, tzinfo=UTC), uid)
        for m in months
    ]


@pytest.mark.parametrize("budget", [0, 1, 2, 3, 4])
def test_interrupted_freebusy_update_converges(root: Path, budget: int) -> None:
    clean = FileStore(root.parent / "clean")
    for each in (clean, FileStore(root)):
        each.set_freebusy_for_uid(USER, "a", monthly("a", [1, 2, 3]))
        each.set_freebusy_for_uid(USER, "b", monthly("b", [2, 5]))
    with pytest.raises(KeyboardInterrupt):
        CrashingStore(root, budget).set_freebusy_for_uid(USER, "a", monthly("a", [3, 4, 5]))
    FileStore(root).set_freebusy_for_uid(USER, "a", monthly("a", [3, 4, 5]))
    clean.set_freebusy_for_uid(USER, "a", monthly("a", [3, 4, 5]))
    assert snapshot(root / USER_DIR) == snapshot(clean.root / USER_DIR)
    assert list(all_periods(FileStore(root), USER)) == sorted(
        monthly("a", [3, 4, 5]) + monthly("b", [2, 5])
    )


@pytest.mark.parametrize("budget", [0, 2])
def test_interrupted_update_is_repaired_by_any_later_update(root: Path, budget: int) -> None:
    store = FileStore(root)
    store.set_freebusy_for_uid(USER, "a", monthly("a", [1, 2]))
    with pytest.raises(KeyboardInterrupt):
        CrashingStore(root, budget).set_freebusy_for_uid(USER, "a", monthly("a", [7, 8]))
    store.set_freebusy_for_uid(USER, "a", [])
    assert list(all_periods(store, USER)) == []
    assert list(store.freebusy_uids(USER)) == []
    assert sorted(os.listdir(root / USER_DIR / "freebusy")) == []


def test_interrupted_cancel_converges(store: FileStore) -> None:
    store.set_object(USER, "a", event("a"))
    store.set_recurrence(USER, "a", "20300115T100000Z", event("a"))
    store._write_keyed(store.root / USER_DIR / "cancellations/objects", "a", event("a", "c"))
    # crash here: cancelled and still current; rerunning completes it
    store.cancel_object(USER, "a", event("a", "c"))
    assert list(store.object_uids(USER)) == []
    assert store.recurrence_ids(USER, "a") == []
    assert store.get_cancelled_object(USER, "a") == event("a", "c")


def snapshot(top: Path) -> dict[str, bytes]:
    files = all_files(top)
    return {str(p.relative_to(top)): p.read_bytes() for p in files if p.name != ".lock"}


# -- locking ------------------------------------------------------------------


def test_lock_is_released_when_holder_exits(store: FileStore) -> None:
    with lock_held_by_child(store.root, USER):
        pass
    with store.lock(USER, 5):
        pass


# -- free/busy buckets ---------------------------------------------------------


class SpyStore(FileStore):
    """Records the bucket names read."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reads: list[str] = []

    def _read_bucket(self, directory: Path, name: str) -> bytes:
        self.reads.append(name)
        return super()._read_bucket(directory, name)


def month_start(year: int, month: int) -> datetime:
    return datetime(year, month, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def big_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A resource with 20,000 periods over 20 years (2030-2049).

    One uid per month with 83 one-hour bookings, plus a weekly-ish series
    of 80 instances (one each quarter) under a single uid.
    """
    root = tmp_path_factory.mktemp("big") / "store"
    store = FileStore(root)
    for year in range(2030, 2050):
        for month in range(1, 13):
            base = month_start(year, month) + timedelta(hours=8)
            uid = f"booking-{year}-{month:02d}"
            store.set_freebusy_for_uid(USER, uid, [booking(uid, base, i) for i in range(83)])
    series = [
        Period(month_start(y, m) + 14 * DAY, month_start(y, m) + 14 * DAY + HOUR, "series", "x")
        for y in range(2030, 2050)
        for m in (1, 4, 7, 10)
    ]
    store.set_freebusy_for_uid(USER, "series", series)
    return root


def booking(uid: str, base: datetime, number: int) -> Period:
    start = base + timedelta(hours=number % 9, days=number // 9)
    return Period(start, start + HOUR, uid, summary=f"booking {number}")


def test_big_store_holds_twenty_thousand_periods(big_root: Path) -> None:
    assert len(list(all_periods(FileStore(big_root), USER))) == 20 * 12 * 83 + 80


def test_query_reads_only_the_buckets_of_its_span(big_root: Path) -> None:
    spy = SpyStore(big_root)
    start, end = datetime(2041, 4, 5, tzinfo=UTC), datetime(2041, 4, 17, tzinfo=UTC)
    found = spy.get_freebusy(USER, start, end)
    assert set(spy.reads) == {"2041-04", "long"}
    assert found == [p for p in all_periods(FileStore(big_root), USER) if p.overlaps(start, end)]
    assert [p.uid for p in found] == ["booking-2041-04"] * 47 + ["series"]


def test_query_across_a_month_boundary(big_root: Path) -> None:
    spy = SpyStore(big_root)
    start = datetime(2035, 6, 30, tzinfo=UTC)
    found = spy.get_freebusy(USER, start, start + 2 * DAY)
    assert set(spy.reads) == {"2035-06", "2035-07", "long"}
    assert {p.uid for p in found} == {"booking-2035-07"}


def test_long_query_lists_the_directory(big_root: Path) -> None:
    spy = SpyStore(big_root)
    found = spy.get_freebusy(
        USER, datetime(2040, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)
    )
    assert len(spy.reads) == 10 * 12 + 1
    assert len(found) == 10 * 12 * 83 + 40


def test_update_reads_only_the_uids_buckets(big_root: Path, tmp_path: Path) -> None:
    spy = SpyStore(big_root)
    uid = "booking-2044-02"
    before = spy.get_freebusy(USER, month_start(2044, 2), month_start(2044, 3))
    spy.reads.clear()
    moved = [booking(uid, month_start(2044, 3), 0)]
    spy.set_freebusy_for_uid(USER, uid, moved)
    assert set(spy.reads) == {"2044-02", "2044-03"}
    assert spy.get_freebusy(USER, month_start(2044, 2), month_start(2044, 3)) == []
    spy.set_freebusy_for_uid(USER, uid, before)
    assert spy.get_freebusy(USER, month_start(2044, 2), month_start(2044, 3)) == before


def test_bucket_of_a_period(store: FileStore) -> None:
    jan = Period(datetime(2030, 1, 31, 23, tzinfo=UTC), datetime(2030, 2, 1, tzinfo=UTC))
    assert period_buckets(jan) == ["2030-01"]
    across = Period(datetime(2030, 12, 31, 23, tzinfo=UTC), datetime(2031, 1, 1, 1, tzinfo=UTC))
    assert period_buckets(across) == ["2030-12", "2031-01"]
    year = Period(datetime(2030, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC))
    assert len(period_buckets(year)) == 12
    assert period_buckets(Period(year.start, year.end + HOUR)) == ["long"]


def test_centuries_long_period_costs_one_bucket(store: FileStore) -> None:
    huge = Period(datetime(1000, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC), "huge")
    store.set_freebusy_for_uid(USER, "huge", [huge])
    assert os.listdir(store.root / USER_DIR / "freebusy") == ["long"]
    stored = store.get_freebusy(USER, T0, T0 + HOUR)
    assert [(p.uid, p.start, p.end) for p in stored] == [
        ("huge", datetime(1900, 1, 1, tzinfo=UTC), huge.end)
    ]


def test_absurd_years_are_clamped(store: FileStore) -> None:
    early = Period(datetime(1, 1, 1, tzinfo=UTC), datetime(1900, 1, 2, tzinfo=UTC), "early")
    gone = Period(datetime(1, 1, 1, tzinfo=UTC), datetime(1899, 1, 2, tzinfo=UTC), "early")
    late = Period(datetime(9999, 12, 31, tzinfo=UTC), datetime(9999, 12, 31, 1, tzinfo=UTC), "late")
    store.set_freebusy_for_uid(USER, "early", [early, gone])
    store.set_freebusy_for_uid(USER, "late", [late])
    assert sorted(os.listdir(store.root / USER_DIR / "freebusy")) == ["1900-01", "9999-12"]
    found = store.get_freebusy(
        USER, datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    )
    assert [p.uid for p in found] == ["early", "late"]


def test_periods_are_stored_under_their_uid(store: FileStore) -> None:
    store.set_freebusy_for_uid(USER, "a", [period("someone else")])
    assert [p.uid for p in store.get_freebusy(USER, T0, T0 + HOUR)] == ["a"]
    store.set_freebusy_for_uid(USER, "a", [])
    assert store.get_freebusy(USER, T0, T0 + HOUR) == []


def test_naive_datetimes_are_refused(store: FileStore) -> None:
    with pytest.raises(ValueError, match="naive"):
        store.get_freebusy(USER, datetime(2030, 1, 1), datetime(2030, 2, 1))


def test_queue_request_keeps_place_and_takes_new_kind(store: FileStore) -> None:
    store.queue_request(USER, "a")
    store.queue_request(USER, "b")
    store.queue_request(USER, "a", "", "COUNTER")
    assert store.get_requests(USER) == [("a", "", "COUNTER"), ("b", "", "REQUEST")]


def test_others_freebusy_is_clamped_too(store: FileStore) -> None:
    ancient = Period(datetime(5, 1, 1, tzinfo=UTC), datetime(1900, 1, 2, tzinfo=UTC), "x")
    store.set_freebusy_other(USER, ALICE, [ancient, period("y")])
    found = store.get_freebusy_other(USER, ALICE, datetime(1899, 1, 1, tzinfo=UTC), T0 + HOUR)
    assert [(p.uid, p.start) for p in found] == [("x", datetime(1900, 1, 1, tzinfo=UTC)), ("y", T0)]


def test_memos_are_kept_in_their_directory(store: FileStore) -> None:
    store.set_memo(USER, "freebusy", "Ünïcödé memo")
    assert store.get_memo(USER, "freebusy") == "Ünïcödé memo"
    assert (store.user_directory(USER) / "memos" / "freebusy").is_file()
    store.set_memo(USER, "freebusy", None)
    assert store.get_memo(USER, "freebusy") is None
    store.set_memo(USER, "freebusy", None)  # nothing to drop: fine
    for name in ("../objects", "Upper", "", ".hidden", "a/b"):
        with pytest.raises(ValueError, match="memo name"):
            store.get_memo(USER, name)


# -- buckets read once under the lock --------------------------------------------


def test_narrow_queries_under_the_lock_read_each_bucket_once(big_root: Path) -> None:
    """A series' clash checks (a query per instance) read each bucket once
    while the user's lock is held, and answer as fresh reads do."""
    spy, fresh = SpyStore(big_root), FileStore(big_root)
    days = [datetime(2036, 1, 1, 9, tzinfo=UTC) + n * DAY for n in range(90)]
    with spy.lock(USER, 5):
        found = [spy.get_freebusy(USER, day, day + HOUR) for day in days]
    assert found == [fresh.get_freebusy(USER, day, day + HOUR) for day in days]
    assert sorted(spy.reads) == sorted({"2036-01", "2036-02", "2036-03", "long"})
    spy.reads.clear()
    spy.get_freebusy(USER, days[0], days[0] + HOUR)  # the lock released: read again
    assert set(spy.reads) == {"2036-01", "long"}


def test_a_bucket_rewritten_under_the_lock_is_read_again(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    start = datetime(2031, 5, 6, 10, tzinfo=UTC)
    with store.lock(USER, 5):
        assert store.get_freebusy(USER, start, start + HOUR) == []
        store.set_freebusy_for_uid(USER, "a", [Period(start, start + HOUR, "a")])
        assert [p.uid for p in store.get_freebusy(USER, start, start + HOUR)] == ["a"]
        store.replace_freebusy(USER, [Period(start, start + HOUR, "b")])
        assert [p.uid for p in store.get_freebusy(USER, start, start + HOUR)] == ["b"]
        store.set_offers(USER, "c", [Period(start, start + HOUR, "c")], start + DAY)
        assert [p.uid for p in store.get_offers(USER, start)] == ["c"]
        store.remove_offers(USER, "c")
        assert store.get_offers(USER, start) == []


def test_rewriting_a_bucket_keeps_other_uids_whose_fields_name_the_uid(tmp_path: Path) -> None:
    """A rewrite for ``uid`` searches the bucket's text before filtering its
    lines: a line of another uid naming ``uid`` in another field (a false
    hit) is kept, and the uid's own lines are replaced, not duplicated."""
    store = FileStore(tmp_path / "store")
    start = datetime(2031, 5, 6, 10, tzinfo=UTC)
    other = Period(start, start + HOUR, "a", summary="b")
    with store.lock(USER, 5):
        store.set_freebusy_for_uid(USER, "a", [other])
        store.get_freebusy(USER, start, start + DAY)  # the bucket read and indexed
        for hours in (2, 4):
            moved = start + hours * HOUR
            store.set_freebusy_for_uid(USER, "b", [Period(moved, moved + HOUR, "b")])
        held = store.get_freebusy(USER, start, start + DAY)
        store.set_freebusy_for_uid(USER, "b", [])
        left = store.get_freebusy(USER, start, start + DAY)
    assert [(p.uid, p.summary, p.start) for p in held] == [
        ("a", "b", start),
        ("b", "", start + 4 * HOUR),
    ]
    assert [(p.uid, p.summary) for p in left] == [("a", "b")]


def test_a_bucket_not_as_written_is_answered_and_reported_under_the_lock(
    tmp_path: Path,
) -> None:
    """Lines out of order are still found; a line of another shape still
    raises as it does without the lock."""
    store = FileStore(tmp_path / "store")
    first = datetime(2031, 5, 6, 10, tzinfo=UTC)
    periods = [Period(first + n * DAY, first + n * DAY + HOUR, f"u{n}") for n in range(5)]
    store.set_freebusy_for_uid(USER, "x", periods)
    bucket = store.user_directory(USER) / "freebusy" / "2031-05"
    lines = bucket.read_text().splitlines()
    bucket.write_text("\n".join(reversed(lines)) + "\n")
    day = first + 3 * DAY
    with store.lock(USER, 5):
        assert [(p.start, p.end) for p in store.get_freebusy(USER, day, day + HOUR)] == [
            (day, day + HOUR)
        ]
    bucket.write_text(bucket.read_text() + "not a period\n")
    with store.lock(USER, 5), pytest.raises(StoreUnavailable):
        store.get_freebusy(USER, day, day + HOUR)
