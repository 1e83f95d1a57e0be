"""The outbox spool: Maildir protocol, envelope, keys, strays."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imiptools.backends.file import outbox_of
from imiptools.spool import Spool, SpooledMessage, key_of, new_id

MESSAGE = b"From: room@example.com\r\nTo: alice@example.com\r\n\r\nbody\r\n"


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    return Spool(tmp_path / "outbox")


def test_empty_spool_has_nothing_pending(spool: Spool) -> None:
    assert spool.pending() == []


def test_put_then_pending(spool: Spool) -> None:
    identifier = spool.put(MESSAGE, "room@example.com", ["alice@example.com", "bob@example.com"])
    assert spool.pending() == [
        SpooledMessage(
            identifier, "room@example.com", ["alice@example.com", "bob@example.com"], MESSAGE
        )
    ]


def test_file_is_in_new_and_readable(spool: Spool) -> None:
    identifier = spool.put(MESSAGE, "room@example.com", ["alice@example.com"])
    assert os.listdir(spool.directory / "tmp") == []
    assert (spool.directory / "new" / identifier).read_bytes() == (
        b"X-Imip-Envelope-From: room@example.com\n"
        b"X-Imip-Envelope-To: alice@example.com\n\n" + MESSAGE
    )


def test_done_removes(spool: Spool) -> None:
    first = spool.put(MESSAGE, "room@example.com", ["a@example.com"])
    second = spool.put(MESSAGE, "room@example.com", ["b@example.com"])
    spool.done(first)
    spool.done(first)
    assert [item.id for item in spool.pending()] == [second]


def test_pending_is_in_spool_order(spool: Spool) -> None:
    ids = [spool.put(MESSAGE, "room@example.com", [f"{n}@example.com"]) for n in range(20)]
    assert [item.id for item in spool.pending()] == ids
    assert [item.recipients for item in spool.pending()] == [
        [f"{n}@example.com"] for n in range(20)
    ]


def test_ids_are_unique_and_sortable() -> None:
    ids = [new_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(key_of(identifier) == "" for identifier in ids)


def test_message_bytes_are_kept_exactly(spool: Spool) -> None:
    tricky = b"X-Imip-Envelope-From: evil@example.com\n\n\n\x00\xff\r\n"
    spool.put(tricky, "", ["alice@example.com"])
    (item,) = spool.pending()
    assert item.message == tricky
    assert item.envelope_from == ""
    assert item.recipients == ["alice@example.com"]


def test_key_replaces_pending_message(spool: Spool) -> None:
    spool.put(b"first", "room@example.com", ["alice@example.com"], key="abc123")
    other = spool.put(b"other", "room@example.com", ["alice@example.com"], key="def456")
    newer = spool.put(b"second", "room@example.com", ["alice@example.com"], key="abc123")
    pending = spool.pending()
    assert [item.id for item in pending] == [other, newer]
    assert [item.message for item in pending] == [b"other", b"second"]
    assert pending[1].key == "abc123"


def test_key_after_sending_spools_again(spool: Spool) -> None:
    first = spool.put(b"first", "room@example.com", ["alice@example.com"], key="abc")
    spool.done(first)
    spool.put(b"again", "room@example.com", ["alice@example.com"], key="abc")
    assert [item.message for item in spool.pending()] == [b"again"]


@pytest.mark.parametrize("key", ["../x", "a-b", "a b", "x" * 101, "é"])
def test_unusable_key_is_refused(spool: Spool, key: str) -> None:
    with pytest.raises(ValueError):
        spool.put(MESSAGE, "room@example.com", ["alice@example.com"], key=key)


@pytest.mark.parametrize(
    ("sender", "recipients"),
    [
        ("room@example.com", []),
        ("room@example.com\r\nBcc: x", ["alice@example.com"]),
        ("room@example.com", ["alice@example.com\n"]),
        ("room@example.com", ["a\x00@example.com"]),
    ],
)
def test_unusable_envelope_is_refused(spool: Spool, sender: str, recipients: list[str]) -> None:
    with pytest.raises(ValueError):
        spool.put(MESSAGE, sender, recipients)
    assert spool.pending() == []


def test_stray_files_are_ignored(spool: Spool) -> None:
    identifier = spool.put(MESSAGE, "room@example.com", ["alice@example.com"])
    (spool.directory / "tmp" / new_id()).write_bytes(b"half written")
    (spool.directory / "new" / ".hidden").write_bytes(b"x")
    (spool.directory / "new" / "README").write_bytes(b"x")
    (spool.directory / ".lock").write_bytes(b"")
    assert [item.id for item in spool.pending()] == [identifier]


def test_unreadable_file_is_skipped_and_kept(spool: Spool) -> None:
    broken = new_id()
    (spool.directory / "new").mkdir(parents=True)
    (spool.directory / "new" / broken).write_bytes(b"no envelope at all")
    good = spool.put(MESSAGE, "room@example.com", ["alice@example.com"])
    assert [item.id for item in spool.pending()] == [good]
    assert (spool.directory / "new" / broken).exists()


@pytest.mark.parametrize("identifier", ["../../etc/passwd", "", ".lock", "123"])
def test_done_refuses_what_is_not_an_id(spool: Spool, identifier: str) -> None:
    with pytest.raises(ValueError):
        spool.done(identifier)


def test_unicode_addresses(spool: Spool) -> None:
    spool.put(MESSAGE, "röom@exämple.org", ["jöran@exämple.org"])
    (item,) = spool.pending()
    assert (item.envelope_from, item.recipients) == ("röom@exämple.org", ["jöran@exämple.org"])


# -- messages set aside (held/) --------------------------------------------------


def test_hold_moves_the_message_aside_with_its_reason(spool: Spool) -> None:
    first = spool.put(MESSAGE, "room@example.com", ["alice@example.com"])
    second = spool.put(MESSAGE, "room@example.com", ["bob@example.com"])
    spool.hold(first, "permanent SMTP failure 550\r\nBcc: x")
    assert [item.id for item in spool.pending()] == [second]
    (held,) = spool.held()
    assert held.id == first and held.reason == "permanent SMTP failure 550 Bcc: x"
    assert held.message is not None and held.message.recipients == ["alice@example.com"]
    assert held.held_at > 0
    assert (spool.directory / "held" / first).read_bytes() == (
        b"X-Imip-Envelope-From: room@example.com\n"
        b"X-Imip-Envelope-To: alice@example.com\n\n" + MESSAGE
    )


def test_release_puts_a_held_message_back_in_line(spool: Spool) -> None:
    identifier = spool.put(MESSAGE, "room@example.com", ["alice@example.com"])
    spool.hold(identifier, "refused")
    assert spool.release(identifier) is True
    assert spool.release(identifier) is False
    assert [item.id for item in spool.pending()] == [identifier]
    assert spool.held() == []
    assert os.listdir(spool.directory / "held") == []


def test_drop_removes_a_held_message(spool: Spool) -> None:
    identifier = spool.put(MESSAGE, "room@example.com", ["alice@example.com"])
    spool.hold(identifier, "refused")
    assert spool.drop(identifier) is True
    assert spool.drop(identifier) is False
    assert spool.held() == [] and spool.pending() == []
    assert os.listdir(spool.directory / "held") == []


def test_hold_of_a_message_already_gone_is_fine(spool: Spool) -> None:
    spool.hold(new_id(), "sent meanwhile")
    assert spool.held() == []
    assert os.listdir(spool.directory / "held") == []


def test_scan_names_unreadable_files(spool: Spool) -> None:
    broken = new_id()
    (spool.directory / "new").mkdir(parents=True)
    (spool.directory / "new" / broken).write_bytes(b"no envelope at all")
    good = spool.put(MESSAGE, "room@example.com", ["alice@example.com"])
    messages, unreadable = spool.scan()
    assert [item.id for item in messages] == [good]
    assert [identifier for identifier, _ in unreadable] == [broken]
    spool.hold(broken, unreadable[0][1])
    (held,) = spool.held()
    assert held.message is None and "has no envelope" in held.reason


@pytest.mark.parametrize("identifier", ["../../etc/passwd", "", ".lock", "123"])
def test_held_operations_refuse_what_is_not_an_id(spool: Spool, identifier: str) -> None:
    for operation in (spool.release, spool.drop, lambda i: spool.hold(i, "x")):
        with pytest.raises(ValueError):
            operation(identifier)


def test_outbox_of_a_store(tmp_path: Path) -> None:
    spool = outbox_of(tmp_path)
    assert spool.directory == tmp_path / ".outbox"
    assert spool.lock_path == tmp_path / ".outbox" / ".lock"
