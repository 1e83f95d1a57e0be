"""The free/busy buckets' arrays and index files (issue 15, daily series).

The arrays of a bucket spliced by a booking must be exactly those of the
spliced text indexed afresh, and an index file is believed only for the
very text it was written for: old, torn, foreign or missing, the bucket is
indexed from its text again and every answer stays the same.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from imiptools.periods import Period
from imiptools.stores.bucketindex import IndexedBucket, index, load, to_bytes
from imiptools.stores.file import FREEBUSY_CACHE, SMALL_BUCKET, FileStore

USER = "mailto:room@example.com"
USER_DIR = "mailto:room@example.com"
BASE = datetime(2030, 3, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def line(uid: str, start_minute: int, minutes: int, summary: str = "s") -> str:
    start = BASE + start_minute * MINUTE
    return Period(start, start + minutes * MINUTE, uid, "", "OPAQUE", summary).to_line()


def text_of(lines: list[str]) -> bytes:
    return "".join(f"{each}\n" for each in sorted(lines)).encode()


def arrays(bucket: IndexedBucket) -> tuple[list[int], ...]:
    parts = (bucket.starts, bucket.ends, bucket.reach, bucket.lengths)
    return tuple(list(part) for part in parts)


def random_lines(rng: random.Random, uids: list[str], count: int) -> list[str]:
    """Lines with shared starts, long and short periods, several uids."""
    return [
        line(rng.choice(uids), rng.randrange(0, 2000, 5), rng.choice([5, 10, 60, 3000]), str(n))
        for n in range(count)
    ]


@pytest.mark.parametrize("seed", range(40))
def test_a_spliced_bucket_is_the_bucket_indexed_afresh(seed: int) -> None:
    """Whatever the uid held before and is given now, the splice gives the
    text the store always wrote (its lines sorted) and that text's arrays."""
    rng = random.Random(seed)
    uids = ["a", "b", "c", "d"]
    before = random_lines(rng, uids, rng.randrange(0, 60))
    bucket = index(text_of(before))
    assert bucket is not None
    uid = rng.choice([*uids, "new"])
    given = list({*random_lines(rng, [uid], rng.randrange(0, 12))})
    spliced = bucket.replaced(f"\t{uid}\t".encode(), given)
    kept = [each for each in before if each.split("\t")[2] != uid]
    expected_text = text_of(kept + given)
    if expected_text == text_of(before):
        assert spliced is None
        return
    assert spliced is not None
    assert spliced.text == expected_text
    fresh = index(expected_text)
    assert fresh is not None
    assert arrays(spliced) == arrays(fresh)


@pytest.mark.parametrize("seed", range(20))
def test_near_holds_every_overlapping_line_and_none_starting_after(seed: int) -> None:
    rng = random.Random(seed)
    lines = random_lines(rng, ["a", "b"], 80)
    bucket = index(text_of(lines))
    assert bucket is not None
    for _ in range(30):
        first = BASE + rng.randrange(-100, 2100) * MINUTE
        last = first + rng.randrange(1, 120) * MINUTE
        periods = [Period.from_line(each) for each in lines]
        overlapping = {p.to_line() for p in periods if p.overlaps(first, last)}
        near = bucket.near(_utc(first), _utc(last))
        assert overlapping <= set(near)
        assert all(Period.from_line(each).start < last for each in near)


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def test_an_index_file_is_believed_for_its_own_text_only() -> None:
    text = text_of([line("a", 0, 10), line("b", 30, 10)])
    bucket = index(text)
    assert bucket is not None
    data = to_bytes(bucket)
    loaded = load(text, data)
    assert loaded is not None and arrays(loaded) == arrays(bucket)
    changed = text.replace(b"\ta\t", b"\tz\t")  # same size, other text
    assert load(changed, data) is None
    assert load(text, data[:-1]) is None  # torn
    assert load(text, b"") is None  # empty after a power failure
    assert load(text, None) is None  # gone
    damaged = bytearray(data)
    damaged[-3] ^= 1
    assert load(text, bytes(damaged)) is None
    assert load(text, b"X" + data[1:]) is None  # another format (or byte order)


def test_a_bucket_not_as_the_store_writes_it_is_not_indexed() -> None:
    lines = [line("a", 0, 10), line("b", 30, 10)]
    assert index(text_of(lines)) is not None
    assert index(("\n".join(reversed(lines)) + "\n").encode()) is None  # out of order
    assert index(text_of(lines)[:-1]) is None  # no last newline
    assert index(text_of(lines) + b"\n") is None  # an empty line
    assert index(text_of(lines) + b"not a period\n") is None


# -- in the file store -------------------------------------------------------


def series(uid: str, minute: int, days: int = 60) -> list[Period]:
    return [
        Period(
            BASE + timedelta(days=d, minutes=minute),
            BASE + timedelta(days=d, minutes=minute + 10),
            uid,
        )
        for d in range(days)
    ]


def cache(root: Path, name: str) -> Path:
    return root / USER_DIR / FREEBUSY_CACHE / name


def answers(store: FileStore) -> list[list[Period]]:
    """What a series' narrow queries get, under the lock and without it."""
    spans = [
        (BASE + timedelta(days=d, minutes=m), 10) for d in range(0, 60, 7) for m in (0, 15, 35)
    ]
    found = []
    with store.lock(USER, 5):
        found += [store.get_freebusy(USER, s, s + n * MINUTE) for s, n in spans]
    found += [store.get_freebusy(USER, s, s + n * MINUTE) for s, n in spans]
    return found


def filler() -> list[Period]:
    """Enough periods that March's and April's buckets are not small."""
    summary = "x" * 150
    return [
        Period(
            BASE + timedelta(days=d, hours=h),
            BASE + timedelta(days=d, hours=h, minutes=5),
            "f",
            "",
            "OPAQUE",
            summary,
        )
        for d in range(61)
        for h in range(2, 10)
    ]


def bucket_and_cache(root: Path, name: str) -> tuple[bytes, bytes | None]:
    path = cache(root, name)
    text = (root / USER_DIR / "freebusy" / name).read_bytes()
    return text, path.read_bytes() if path.exists() else None


def test_a_booking_writes_each_large_buckets_index_file(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = FileStore(root)
    with store.lock(USER, 5):
        store.set_freebusy_for_uid(USER, "a", series("a", 0))
        assert not cache(root, "2030-03").exists()  # small: indexed from its text
        store.set_freebusy_for_uid(USER, "f", filler())
    for name in ("2030-03", "2030-04"):
        text, data = bucket_and_cache(root, name)
        assert len(text) >= SMALL_BUCKET
        assert load(text, data) is not None
    with store.lock(USER, 5):
        store.set_freebusy_for_uid(USER, "a", [])
    text, data = bucket_and_cache(root, "2030-03")
    assert load(text, data) is not None
    with store.lock(USER, 5):
        store.set_freebusy_for_uid(USER, "f", [])
    assert not cache(root, "2030-03").exists()


@pytest.mark.parametrize("spoil", ["remove", "empty", "stale", "garbage", "half"])
def test_a_spoilt_index_file_changes_no_answer_and_is_written_again(
    tmp_path: Path, spoil: str
) -> None:
    """As after a crash or a power failure (the file is never fsynced, and
    written in place: ``half`` is the new file's first half over the old
    one), or for a store written before index files existed (``remove``)."""
    root = tmp_path / "store"
    store = FileStore(root)
    store.set_freebusy_for_uid(USER, "f", filler())
    store.set_freebusy_for_uid(USER, "a", series("a", 0))
    old = cache(root, "2030-03").read_bytes()
    store.set_freebusy_for_uid(USER, "b", series("b", 30))
    expected = answers(store)
    assert any(expected)
    target = cache(root, "2030-03")
    if spoil == "remove":
        target.unlink()
    elif spoil == "half":
        new = target.read_bytes()
        target.write_bytes(new[: len(new) // 2] + old[len(new) // 2 :])
    else:
        target.write_bytes({"empty": b"", "stale": old, "garbage": b"\0" * len(old)}[spoil])
    assert answers(FileStore(root)) == expected
    bucket = (root / USER_DIR / "freebusy" / "2030-03").read_bytes()
    assert load(bucket, target.read_bytes()) is not None  # indexed again under the lock
    store.set_freebusy_for_uid(USER, "c", series("c", 35))
    clean = FileStore(tmp_path / "clean")
    clean.set_freebusy_for_uid(USER, "f", filler())
    for uid, minute in (("a", 0), ("b", 30), ("c", 35)):
        clean.set_freebusy_for_uid(USER, uid, series(uid, minute))
    assert answers(FileStore(root)) == answers(clean)
