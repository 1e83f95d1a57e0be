"""Sending the outbox (imiptools.agent.flush and send_spooled), in process.

A message that can never be sent is set aside and never stops the others;
a transient failure stops the flush with 75 and keeps the message first.
The sender is a small real Sender that fails as told for some recipients.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from imiptools import agent
from imiptools.config import Settings
from imiptools.dates import FixedClock
from imiptools.errors import DeliveryFailed, DeliveryRefused, LockTimeout, StoreUnavailable
from imiptools.mail.send import DirectorySender
from imiptools.site import open_site
from imiptools.spool import Spool

MESSAGE = b"From: room@example.com\r\nSubject: Accepted\r\n\r\nbody\r\n"


class FailingSender:
    """Writes messages like DirectorySender, but raises ``errors[recipient]``."""

    def __init__(self, directory: Path, errors: dict[str, Exception]) -> None:
        self.files = DirectorySender(directory)
        self.errors = errors

    def send(self, envelope_from: str, recipients: Sequence[str], message: bytes) -> None:
        for recipient in recipients:
            if recipient in self.errors:
                raise self.errors[recipient]
        self.files.send(envelope_from, recipients, message)


def context(root: Path, errors: dict[str, Exception]) -> agent.Context:
    settings = Settings(store=str(root / "store"), preferences=str(root / "prefs"))
    site = open_site(settings)
    return agent.Context(
        settings=settings,
        store=site.store,
        preferences=site.preferences,
        clock=FixedClock(datetime(2030, 1, 1, tzinfo=UTC)),
        sender=FailingSender(root / "out", errors),
        spool=Spool(root / "store" / ".outbox"),
    )


def spool_three(spool: Spool, middle: str) -> list[str]:
    return [
        spool.put(MESSAGE, "room@example.com", [to])
        for to in ("alice@example.org", middle, "bob@example.org")
    ]


@pytest.mark.parametrize(
    ("middle", "error", "reason"),
    [
        ("gone@example.org", DeliveryRefused("permanent SMTP failure 550"), "550"),
        ("-oQevil@example.com", None, "starts with '-'"),  # refused by the sender's check
        ("gone@example.org", RuntimeError("a bug in a sender"), "RuntimeError: a bug"),
    ],
    ids=["refused", "unusable-address", "internal-error"],
)
def test_message_that_cannot_be_sent_is_set_aside_and_the_rest_go(
    tmp_path: Path, middle: str, error: Exception | None, reason: str
) -> None:
    ctx = context(tmp_path, {middle: error} if error else {})
    ids = spool_three(ctx.spool, middle)
    assert agent.flush(ctx) == 2
    assert ctx.spool.pending() == []
    (held,) = ctx.spool.held()
    assert held.id == ids[1] and reason in held.reason
    assert len(list((tmp_path / "out").glob("*.eml"))) == 2


def test_transient_failure_stops_the_flush_and_keeps_the_message(tmp_path: Path) -> None:
    ctx = context(tmp_path, {"later@example.org": DeliveryFailed("temporary SMTP failure 451")})
    ids = spool_three(ctx.spool, "later@example.org")
    with pytest.raises(DeliveryFailed):
        agent.flush(ctx)
    assert [item.id for item in ctx.spool.pending()] == ids[1:]
    assert ctx.spool.held() == []


def test_store_trouble_while_sending_is_transient(tmp_path: Path) -> None:
    ctx = context(tmp_path, {"alice@example.org": StoreUnavailable("disk full")})
    ctx.spool.put(MESSAGE, "room@example.com", ["alice@example.org"])
    with pytest.raises(StoreUnavailable):
        agent.flush(ctx)
    assert len(ctx.spool.pending()) == 1 and ctx.spool.held() == []


def test_unreadable_spool_file_is_set_aside(tmp_path: Path) -> None:
    ctx = context(tmp_path, {})
    good = ctx.spool.put(MESSAGE, "room@example.com", ["alice@example.org"])
    broken = "00000000000000000001-1-0"
    (ctx.spool.new / broken).write_bytes(b"no envelope")
    assert agent.flush(ctx) == 1
    (held,) = ctx.spool.held()
    assert held.id == broken and "unreadable" in held.reason
    assert good not in [entry.id for entry in ctx.spool.held()]


# -- senders side by side (issue 15) ---------------------------------------------

CLAIMER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("claimed", flush=True)
sys.stdin.read()
"""

FLUSHER = """
import sys
from pathlib import Path
from tests.test_outbox_flush import context
from imiptools import agent
ctx = context(Path(sys.argv[1]), {})
print("ready", flush=True)
sys.stdin.readline()
print(agent.flush(ctx), flush=True)
"""

LOCKER = """
import sys
from pathlib import Path
from imiptools.spool import Spool
with Spool(Path(sys.argv[1])).locked(10):
    print("holding", flush=True)
    sys.stdin.read()
"""


def _child(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )


def test_a_message_another_sender_has_claimed_is_left_to_it(tmp_path: Path) -> None:
    """A sender sends what it claims; one being sent by another (its file
    locked) is skipped, not waited for, and sent by a later run."""
    ctx = context(tmp_path, {})
    ids = spool_three(ctx.spool, "carol@example.org")
    claimer = _child(CLAIMER, str(ctx.spool.new / ids[1]))
    assert claimer.stdin is not None and claimer.stdout is not None
    try:
        assert claimer.stdout.readline().strip() == "claimed"
        assert agent.flush(ctx) == 2
        assert [item.id for item in ctx.spool.pending()] == [ids[1]]
    finally:
        claimer.stdin.close()
        claimer.wait(timeout=30)
    assert agent.flush(ctx) == 1
    assert ctx.spool.pending() == [] and len(list((tmp_path / "out").glob("*.eml"))) == 3


def test_two_senders_at_once_send_each_message_once(tmp_path: Path) -> None:
    """Two runs flushing the same outbox side by side: every message is sent
    exactly once, whichever run sends it."""
    ctx = context(tmp_path, {})
    for number in range(40):
        ctx.spool.put(MESSAGE + b"%d\r\n" % number, "room@example.com", ["alice@example.org"])
    flushers = [_child(FLUSHER, str(tmp_path)) for _ in range(2)]
    for flusher in flushers:
        assert flusher.stdout is not None and flusher.stdout.readline().strip() == "ready"
    for flusher in flushers:  # both start as nearly together as they can
        assert flusher.stdin is not None
        flusher.stdin.write("go\n")
        flusher.stdin.flush()
    counts = [int(flusher.communicate(timeout=60)[0]) for flusher in flushers]
    bodies = sorted(path.read_bytes().rsplit(b"\n", 2)[-2] for path in (tmp_path / "out").iterdir())
    assert sum(counts) == 40 and len(bodies) == 40
    assert bodies == sorted(b"%d\r" % number for number in range(40))
    assert ctx.spool.pending() == []


def test_senders_wait_for_whoever_moves_messages(tmp_path: Path) -> None:
    """``imip-admin outbox`` holds the outbox exclusively: no sender runs meanwhile."""
    _no_flush_while(tmp_path, LOCKER)


def _no_flush_while(tmp_path: Path, script: str) -> None:
    """A flush times out while a child running ``script`` on the outbox's
    directory holds what it takes (it prints one line then), and sends the
    three messages spooled once the child has gone."""
    ctx = context(tmp_path, {})
    spool_three(ctx.spool, "carol@example.org")
    holder = _child(script, str(ctx.spool.directory))
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "holding"
        quick = replace(ctx, settings=replace(ctx.settings, lock_timeout=0.2))
        with pytest.raises(LockTimeout):
            agent.flush(quick)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert agent.flush(ctx) == 3


GATEKEEPER = """
import sys
from pathlib import Path
from imiptools.lock import file_lock
from imiptools.spool import Spool
with file_lock(Spool(Path(sys.argv[1])).gate_path, 10):
    print("holding", flush=True)
    sys.stdin.read()
"""


def test_no_sender_starts_while_whoever_moves_messages_waits(tmp_path: Path) -> None:
    """``imip-admin outbox`` waits for the lock holding the outbox's gate
    (:func:`imiptools.lock.gated_lock`): a sender that comes meanwhile waits
    too, so the senders that overlap cannot keep the lock from it."""
    _no_flush_while(tmp_path, GATEKEEPER)


def test_a_claim_is_refused_for_a_message_gone_or_set_aside(tmp_path: Path) -> None:
    """One sender's claim is refused while another holds it, and once the
    message has left ``new/`` (sent, or set aside: a file still existing
    elsewhere is not the message any more)."""
    ctx = context(tmp_path, {})
    spool = ctx.spool
    assert isinstance(spool, Spool)
    ids = spool_three(spool, "carol@example.org")
    with spool.claimed(ids[0]) as ours, spool.claimed(ids[0]) as also:
        assert ours and not also
        spool.hold(ids[0], "set aside meanwhile")
    with spool.claimed(ids[0]) as ours:
        assert not ours
    spool.done(ids[1])
    with spool.claimed(ids[1]) as ours:
        assert not ours
    with spool.claimed(ids[2]) as ours:
        assert ours
