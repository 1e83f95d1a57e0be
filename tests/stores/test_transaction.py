"""Transactions: recorded writes, committed by the file store, replayed after a crash.

The whole store contract runs against a recording store that commits after
every write, so every write method goes through recording, JSON and the
file store's commit and must still behave as the contract says. Then the
file store's commit protocol: a committed but unapplied transaction is
completed by the next lock; an uncommitted one leaves nothing; pending
records in another lock domain follow their commit file.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from imiptools.pending import committed_id, resolve_all, sealed, unsealed, write_record
from imiptools.spool import Spool
from imiptools.stores.base import Store
from imiptools.stores.file import STAGED, TXN, FileStore
from imiptools.stores.recording import RecordingStore
from imiptools.stores.transaction import (
    WRITES,
    OutgoingMessage,
    Transaction,
    decode_call,
    encode_call,
)
from tests.stores.contract import USER, StoreContract, event, period
from tests.stores.test_file_store import lock_held_by_child

#: Every other public method of the interface only reads (or locks, commits).
READS = {
    "lock",
    "commit",
    "users",
    "get_object",
    "object_uids",
    "get_recurrence",
    "recurrence_ids",
    "get_cancelled_object",
    "get_cancelled_recurrence",
    "cancelled_recurrence_ids",
    "cancelled_object_uids",
    "get_freebusy",
    "freebusy_uids",
    "all_freebusy",
    "replace_freebusy",  # written through set_freebusy_for_uid
    "get_freebusy_other",
    "freebusy_other_users",
    "get_offers",
    "all_offers",
    "expire_offers",  # written through remove_offers
    "get_counters",
    "decisions",
    "get_requests",
    "get_memo",
    "get_derivation",
    "keeps_derivations",
    "set_derivation",  # derived data: carried beside the calls (Transaction.derivations)
    "event_reader",  # the getters' texts, read in one pass (imip-admin check)
}


def test_every_store_method_is_a_recorded_write_or_a_read() -> None:
    public = {name for name, _ in inspect.getmembers(Store) if not name.startswith("_")}
    assert public == set(WRITES) | READS, "classify a new Store method in WRITES or READS"
    assert not set(WRITES) & READS


class Committing(RecordingStore):
    """Commits after every write: each goes through JSON and FileStore.commit."""


def _committing(name: str) -> Any:
    def write(self: Committing, *args: Any) -> None:
        getattr(RecordingStore, name)(self, *args)
        self.commit()

    return write


for _name in WRITES:
    setattr(Committing, _name, _committing(_name))


class TestCommittedWritesKeepTheContract(StoreContract):
    """The store contract when every write is recorded and committed."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Store:
        return Committing(FileStore(tmp_path / "store"), Transaction(USER))

    def held_elsewhere(self, store: Store, user: str) -> AbstractContextManager[None]:
        assert isinstance(store, Committing) and isinstance(store.base, FileStore)
        return lock_held_by_child(store.base.root, user)


def test_calls_survive_json() -> None:
    call = ("set_freebusy_for_uid", (USER, "a/b", [period("a/b", 1), period("a/b", 3)]))
    assert decode_call(json.loads(json.dumps(encode_call(call)))) == call


def test_a_recorded_call_must_be_a_store_write() -> None:
    with pytest.raises(ValueError, match="not a recorded store write"):
        decode_call(["remove_directory", ["/"]])


# -- the file store's commit protocol -------------------------------------------------


class Crash(BaseException):
    """The process 'dies' here."""


def _transaction(tmp_path: Path) -> Transaction:
    transaction = Transaction(USER, Spool(tmp_path / "store" / ".outbox"))
    transaction.calls.append(("set_object", (USER, "a", event("a"))))
    transaction.calls.append(("set_freebusy_for_uid", (USER, "a", [period("a", 1)])))
    transaction.calls.append(("log_decision", (USER, '{"uid": "a"}')))
    transaction.send(OutgoingMessage("room@example.com", ["alice@example.com"], b"Subject: x\r\n"))
    return transaction


def test_a_transaction_committed_but_not_applied_is_completed_by_the_next_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStore(tmp_path / "store")

    def crash(*args: object) -> None:
        raise Crash

    with store.lock(USER, 5):
        monkeypatch.setattr(store, "set_freebusy_for_uid", crash)
        with pytest.raises(Crash):
            store.commit(_transaction(tmp_path))
    monkeypatch.undo()
    directory = store.user_directory(USER)
    assert _held(directory) and store.get_object(USER, "a") is not None
    assert store.all_freebusy(USER) == []  # not yet
    with store.lock(USER, 5):
        pass
    assert [p.uid for p in store.all_freebusy(USER)] == ["a"]
    assert list(store.decisions(USER)) == ['{"uid": "a"}']  # appended once
    assert len(Spool(tmp_path / "store" / ".outbox").pending()) == 1
    assert not _held(directory) and not list((directory / STAGED).glob("*"))


def _held(directory: Path) -> bytes:
    """What the user's ``.txn`` holds (empty: no transaction pending)."""
    path = directory / TXN
    return path.read_bytes() if path.exists() else b""


def _torn_cut_in_the_digest(data: bytes) -> bytes:
    return data[:-10]


def _torn_cut_in_the_record(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _torn_a_byte_of_the_record(data: bytes) -> bytes:
    return data[:20] + bytes([data[20] ^ 1]) + data[21:]


def _torn_over_a_longer_record(data: bytes) -> bytes:
    """The new record written whole over a longer one, its cut lost."""
    longer = sealed(json.dumps({"id": "older", "calls": [], "padding": "x" * len(data)}))
    assert len(longer) > len(data)
    return data + longer[len(data) :]


TORN = [
    _torn_cut_in_the_digest,
    _torn_cut_in_the_record,
    _torn_a_byte_of_the_record,
    _torn_over_a_longer_record,
]


@pytest.mark.parametrize("tear", TORN, ids=[t.__name__.removeprefix("_torn_") for t in TORN])
def test_a_torn_commit_file_never_committed(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tear: Callable[[bytes], bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``.txn`` is written in place (no new file a commit): a power failure
    before its fsync returned may leave it torn. Nothing was applied or
    sent then, so the next lock drops it, as it drops any uncommitted
    transaction, and empties it."""
    store = FileStore(tmp_path / "store")

    def crash(*args: object) -> None:
        raise Crash

    with store.lock(USER, 5):
        monkeypatch.setattr(store, "set_object", crash)  # the first call of the apply
        with pytest.raises(Crash):
            store.commit(_transaction(tmp_path))
    monkeypatch.undo()
    directory = store.user_directory(USER)
    (directory / TXN).write_bytes(tear(_held(directory)))
    with store.lock(USER, 5):
        pass
    assert store.get_object(USER, "a") is None and list(store.decisions(USER)) == []
    assert Spool(tmp_path / "store" / ".outbox").pending() == []
    assert not _held(directory) and not list((directory / STAGED).glob("*"))
    assert "torn, uncommitted transaction" in caplog.text


def test_a_commit_file_is_sealed_with_its_digest() -> None:
    """What :func:`sealed` writes :func:`unsealed` reads back; a record from
    before the seal (JSON written whole, by a rename) is read as it is; an
    empty file, or one not whole, holds none."""
    text = json.dumps({"id": "t1", "calls": [["x", "é\udce9"]]}, ensure_ascii=False)
    assert unsealed(sealed(text)) == text
    assert unsealed(b'{"id": "t0"}') == '{"id": "t0"}'
    assert unsealed(b"") is None and unsealed(b'{"id": "t0", "cal') is None
    assert committed_id(Path("/nonexistent/.txn")) is None


def test_an_uncommitted_transaction_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileStore(tmp_path / "store")

    def crash(*args: object) -> None:
        raise Crash

    monkeypatch.setattr("imiptools.stores.file.rewrite_in_place", crash)  # the .txn write
    with store.lock(USER, 5), pytest.raises(Crash):
        store.commit(_transaction(tmp_path))
    monkeypatch.undo()
    directory = store.user_directory(USER)
    assert (directory / STAGED).exists()  # the staged reply, uncommitted
    with store.lock(USER, 5):
        pass
    assert not list((directory / STAGED).glob("*"))
    assert store.get_object(USER, "a") is None
    assert Spool(tmp_path / "store" / ".outbox").pending() == []


def test_a_pending_record_follows_its_commit_file(tmp_path: Path) -> None:
    domain, target = tmp_path / "quota", tmp_path / "quota" / "bookings" / "alice"
    commit = tmp_path / "user" / TXN
    write_record(domain, "t1", commit, {target: "booked\n"})
    assert resolve_all(domain) == 0 and not target.exists()  # never committed: dropped
    write_record(domain, "t2", commit, {target: "booked\n"})
    commit.parent.mkdir()
    commit.write_text(json.dumps({"id": "t2"}))
    assert resolve_all(domain) == 1 and target.read_text() == "booked\n"
    assert list((domain / "pending").iterdir()) == []


def test_a_record_of_the_earlier_staging_layout_is_completed(tmp_path: Path) -> None:
    """A .txn left by a crash before the upgrade staged its messages in a
    directory of its own (``.staged/ID/MESSAGE``): the next lock spools them."""
    store = FileStore(tmp_path / "store")
    with store.lock(USER, 5):
        pass
    directory = store.user_directory(USER)
    message = "00000000000000000001-1-0"
    staged = directory / STAGED / "t1"
    staged.mkdir(parents=True)
    (staged / message).write_bytes(
        b"X-Imip-Envelope-From: room@example.com\nX-Imip-Envelope-To: alice@example.com\n\nx"
    )
    outbox = tmp_path / "store" / ".outbox"
    record = {"id": "t1", "calls": [], "pending": [], "outbox": str(outbox), "messages": [message]}
    (directory / TXN).write_text(json.dumps(record))
    (directory / STAGED / "t0").mkdir()  # uncommitted, of the earlier layout too
    with store.lock(USER, 5):
        pass
    assert [m.id for m in Spool(outbox).pending()] == [message]
    assert not _held(directory) and list((directory / STAGED).iterdir()) == []
