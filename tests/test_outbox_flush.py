"""Sending the outbox (imiptools.agent.flush and send_spooled), in process.

A message that can never be sent is set aside and never stops the others;
a transient failure stops the flush with 75 and keeps the message first.
The sender is a small real Sender that fails as told for some recipients.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from imiptools import agent
from imiptools.config import Settings
from imiptools.dates import FixedClock
from imiptools.errors import DeliveryFailed, DeliveryRefused, StoreUnavailable
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
