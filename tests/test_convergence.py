"""Crash at any store write, then let the MTA redeliver: the store converges
to the state of an uninterrupted run and each reply is sent exactly once.

Fault injection: a FileStore whose N-th mutating call raises ``Crash``
(as if the process died there), the derivation records' writes among them.
Runs in process (``imiptools.agent.run``). After each crash ``imip-admin
check`` finds what a full check (``--full``: no derivation record believed)
finds, and no fault: a record the crash left behind, old or missing, makes
check parse the event rather than vouch for what is not stored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from imiptools import agent, check
from imiptools.config import Settings
from imiptools.dates import FixedClock
from imiptools.handlers.common import Envelope
from imiptools.handlers.resource import ResourceHandler
from imiptools.mail.send import DirectorySender
from imiptools.preferences_store import PreferenceFiles
from imiptools.site import open_site
from imiptools.spool import Spool
from imiptools.stores.file import FileStore
from tests.support import ROOM, calendar_text, imip_message, vevent

MUTATORS = {
    "set_object",
    "remove_object",
    "set_recurrence",
    "remove_recurrence",
    "cancel_object",
    "uncancel_object",
    "cancel_recurrence",
    "uncancel_recurrence",
    "set_freebusy_for_uid",
    "set_freebusy_other",
    "set_counter",
    "remove_counters",
    "queue_request",
    "dequeue_request",
    "set_derivation",
}


class Crash(BaseException):
    """The process 'dies' here (BaseException: no handler may swallow it)."""


class CrashingStore(FileStore):
    """Raises Crash on the ``crash_at``-th mutating call (1-based); 0: never."""

    def __init__(self, root: Path, crash_at: int) -> None:
        super().__init__(root)
        self.crash_at, self.calls = crash_at, 0

    def __getattribute__(self, name: str) -> Any:
        attribute = super().__getattribute__(name)
        if name not in MUTATORS:
            return attribute

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == self.crash_at:
                raise Crash(name)
            return attribute(*args, **kwargs)

        return wrapped


def context(root: Path, store: FileStore) -> agent.Context:
    return agent.Context(
        settings=Settings(store=str(root / "store"), preferences=str(root / "prefs")),
        store=store,
        preferences=PreferenceFiles(root / "prefs"),
        clock=FixedClock(datetime(2030, 1, 1, tzinfo=UTC)),
        sender=DirectorySender(root / "out"),
        spool=Spool(root / "store" / ".outbox"),
    )


STEPS: list[bytes] = [
    imip_message(calendar_text(vevent("w", extra="RRULE:FREQ=WEEKLY;COUNT=4"))),
    imip_message(
        calendar_text(
            vevent(
                "w",
                "20300115T140000Z",
                "20300115T150000Z",
                sequence=1,
                dtstamp="20300101T100000Z",
                extra="RECURRENCE-ID:20300115T100000Z",
            )
        )
    ),
    imip_message(
        calendar_text(
            vevent(
                "w", sequence=2, dtstamp="20300101T110000Z", extra="RECURRENCE-ID:20300122T100000Z"
            ),
            method="CANCEL",
        ),
        method="CANCEL",
    ),
    imip_message(calendar_text(vevent("x", "20300108T100000Z", "20300108T110000Z"))),
]


def deliver(root: Path, store: FileStore, message: bytes) -> None:
    envelope = [Envelope(ROOM, "alice@example.com")]
    agent.run(message, envelope, context(root, store), ResourceHandler)


def snapshot(root: Path) -> tuple[list[str], list[str], int]:
    store = FileStore(root / "store")
    objects = sorted(
        (store.get_object(f"mailto:{ROOM}", uid) or "")
        for uid in store.object_uids(f"mailto:{ROOM}")
    )
    start, end = datetime(2029, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC)
    periods = [p.to_line() for p in store.get_freebusy(f"mailto:{ROOM}", start, end)]
    return objects, periods, len(list((root / "out").glob("*")))


def run_all(root: Path, crash_step: int, crash_at: int) -> None:
    for index, message in enumerate(STEPS):
        if index == crash_step:
            with pytest.raises(Crash):
                deliver(root, CrashingStore(root / "store", crash_at), message)
            checked, full = checked_lines(root, full=False), checked_lines(root, full=True)
            assert checked == full and not any("note" not in line for line in checked), checked
        deliver(root, FileStore(root / "store"), message)  # the MTA redelivers


def checked_lines(root: Path, full: bool) -> list[str]:
    """What ``imip-admin check`` (``--full``) reports for the room (it
    completes a committed transaction first, under the room's lock)."""
    settings = Settings(store=str(root / "store"), preferences=str(root / "prefs"))
    site = open_site(settings, FixedClock(datetime(2030, 1, 1, tzinfo=UTC)))
    report = check.check_store(site, [f"mailto:{ROOM}"], site.clock.now(), False, full)
    return [finding.line() for finding in report.findings]


def count_writes(root: Path, step: int) -> int:
    for message in STEPS[:step]:
        deliver(root, FileStore(root / "store"), message)
    store = CrashingStore(root / "store", 0)
    deliver(root, store, STEPS[step])
    return store.calls


@pytest.mark.parametrize("step", range(len(STEPS)))
def test_crash_at_every_write_converges(tmp_path: Path, step: int) -> None:
    clean = tmp_path / "clean"
    run_all(clean, -1, 0)
    expected = snapshot(clean)
    writes = count_writes(tmp_path / "count", step)
    assert writes > 0
    for crash_at in range(1, writes + 1):
        root = tmp_path / f"crash-{crash_at}"
        run_all(root, step, crash_at)
        assert snapshot(root) == expected, f"step {step}, crash at write {crash_at}"


def test_delivery_failure_keeps_the_reply_for_the_retry(tmp_path: Path) -> None:
    failing = tmp_path / "sendmail"
    failing.write_text("#!/bin/sh\ncat >/dev/null\nexit 75\n")
    failing.chmod(0o755)
    from imiptools.errors import DeliveryFailed
    from imiptools.mail.send import SendmailSender

    store = FileStore(tmp_path / "store")
    ctx = context(tmp_path, store)
    broken: Callable[[], agent.Context] = lambda: agent.Context(  # noqa: E731
        ctx.settings, store, ctx.preferences, ctx.clock, SendmailSender(str(failing)), ctx.spool
    )
    with pytest.raises(DeliveryFailed):
        agent.run(STEPS[3], [Envelope(ROOM, "alice@example.com")], broken(), ResourceHandler)
    deliver(tmp_path, store, STEPS[3])
    assert len(list((tmp_path / "out").glob("*"))) == 1
