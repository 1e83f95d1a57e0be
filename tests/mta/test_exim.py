"""End to end with Exim: the scenarios of ``test_postfix.py`` through Exim 4.96.

Exim runs from our ``conf/exim`` files, wrapped in a small base
configuration (``mailsystem.configure_exim``: loopback only, its own log,
quick retries), with the same site, agents and Dovecot as the Postfix tests.

Exim and Postfix cannot be installed together, so these tests run only when
asked: ``IMIP_TEST_EXIM=1 tools/ci-services`` installs Exim (removing
Postfix), then ``IMIP_TEST_EXIM=1 pytest tests/mta``; ``tools/ci-services``
without the variable brings Postfix back. Without the variable they skip.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.mta import mailsystem as ms
from tests.mta.conftest import (
    AGENT_USER,
    EXIM,
    REAPER,
    Dovecot,
    Mailbox,
    _accepts,
    _stop,
    _unavailable,
)
from tests.mta.test_postfix import (
    END,
    HOLD_LOCK,
    ORGANISER,
    PERSON,
    ROOM,
    ROOM2,
    STAMP,
    START,
    MailSystem,
    busy,
    cancel,
    messages,
    partstats,
    reply,
    request,
    uids,
)
from tests.support import calendar_text, imip_message, vevent

pytestmark = pytest.mark.skipif(
    os.environ.get("IMIP_TEST_EXIM") != "1",
    reason="Exim tests run only with IMIP_TEST_EXIM=1 (after IMIP_TEST_EXIM=1 tools/ci-services)",
)

#: Exim's log line of a delivery through one of our transports:
#: ``1xX66a-0008Sg-1U => imiptest2 <imiptest2@example.test> R=imip_person T=imip_person``
#: (``=>`` starts a pipe run, ``->`` is a further address of the same batched run).
DELIVERED = (
    r"([0-9A-Za-z]+-[0-9A-Za-z]+-[0-9A-Za-z]+) ([=-])> (\S+) (?:<([^>]+)> )?R=\S+ T=(imip_[a-z_]+)"
)


@pytest.fixture(scope="session")
def exim(site: ms.Site, dovecot: Dovecot) -> Iterator[ms.MailLog]:
    """Exim from conf/exim, on 127.0.0.1:25, for the whole session."""
    if not EXIM.exists():
        _unavailable(f"{EXIM} is not installed (run IMIP_TEST_EXIM=1 tools/ci-services)")
    if _accepts(socket.AF_INET, ("127.0.0.1", 25)):
        _unavailable("something else listens on 127.0.0.1:25")
    ms.configure_exim(site, dovecot)
    ms.exim_clear_queue()
    process = subprocess.Popen(
        [sys.executable, "-c", REAPER, str(EXIM), "-bdf", "-q2s"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    log = ms.MailLog(path=ms.EXIM_LOG)
    try:
        ms.wait_for(
            lambda: _accepts(socket.AF_INET, ("127.0.0.1", 25)),
            "Exim did not listen on 127.0.0.1:25",
            lambda: log.text()[-3000:],
        )
        yield log
    finally:
        _stop(process)
        ms.exim_clear_queue()
        ms.unconfigure_exim()


class EximSystem(MailSystem):
    """The Postfix tests' view of the mail system, with Exim's queue and log."""

    def settle(self) -> None:
        ms.wait_for(ms.exim_settled, "the queue did not empty", self.explain)

    def explain(self) -> str:
        return (
            f"queue: {ms.exim_queue()}\n--- exim log:\n{self.log.text()[-4000:]}"
            f"\n--- agent log:\n{self.site.log_text()[-4000:]}"
        )

    def deliveries(self, runs_only: bool = False) -> list[tuple[str, str, str]]:
        """(message id, recipient, transport) of each address delivered by our transports.

        ``runs_only``: only the first address of each pipe run.
        """
        return [
            (m.group(1), m.group(4) or m.group(3), m.group(5))
            for m in ms.each_line(self.log.text(), DELIVERED)
            if not runs_only or m.group(2) == "="
        ]


@pytest.fixture
def system(
    exim: ms.MailLog, site: ms.Site, mailbox: Mailbox, second_mailbox: Mailbox
) -> Iterator[EximSystem]:
    """An empty queue, empty stores, empty Maildirs, and a log read from now."""
    ms.exim_clear_queue()
    ms.reset_site(site)
    exim.skip()
    yield EximSystem(site, exim, mailbox, second_mailbox)
    ms.exim_clear_queue()


def invite(system: EximSystem, uid: str = "meeting-1") -> str:
    queue_id = system.send(request(uid, PERSON, ROOM), ORGANISER, PERSON, ROOM)
    system.settle()
    return queue_id


def test_invitation_reaches_person_room_and_organiser(system: EximSystem) -> None:
    queue_id = invite(system)
    (delivered,) = messages(system.person)
    assert delivered["Message-ID"] == "<meeting-1.0@example.test>"
    assert delivered["Delivered-To"] == PERSON
    assert "LMTP" in delivered["Received"]
    assert system.replies(system.organiser) == [("meeting-1", "ACCEPTED")]
    assert uids(ms.exported(system.site, PERSON)) == ["meeting-1"]
    assert uids(ms.exported(system.site, ROOM)) == ["meeting-1"]
    assert uids(ms.exported(system.site, ORGANISER)) == ["meeting-1"]
    # The invitation: the person's and the room's transports, and the
    # organiser's outgoing copy; the room's REPLY: imip_person to the organiser.
    ours = Counter((r, t) for q, r, t in system.deliveries() if q == queue_id)
    assert ours[(PERSON, "imip_person")] == 1
    assert ours[(ROOM, "imip_resource")] == 1
    # The outgoing copy: one run for both recipients (batch_max), recording once.
    assert ours[(PERSON, "imip_person_outgoing")] == 1
    assert ours[(ROOM, "imip_person_outgoing")] == 1
    runs = Counter(t for _, _, t in system.deliveries(runs_only=True))
    assert runs["imip_person_outgoing"] == 1
    transports = Counter(t for _, _, t in system.deliveries())
    assert transports["imip_person"] == 2  # the person, then the room's REPLY to the organiser


def test_one_log_line_per_delivery_with_the_queue_id(system: EximSystem) -> None:
    """Each pipe run Exim logs has one outcome line, with Exim's message id."""
    invite(system)
    exim_runs = Counter(q for q, _, _ in system.deliveries(runs_only=True))
    agent_runs = Counter(queue_id for queue_id, _ in system.agent_outcomes())
    assert agent_runs == exim_runs
    assert {status for _, status in system.agent_outcomes()} == {"done"}


def test_person_reply_through_exim_updates_the_organiser(system: EximSystem) -> None:
    invite(system)
    system.send(reply("meeting-1", PERSON, "ACCEPTED"), PERSON, ORGANISER)
    system.settle()
    assert partstats(system.site, ORGANISER, "meeting-1")[PERSON] == "ACCEPTED"
    assert sorted(system.replies(system.organiser)) == [("meeting-1", "ACCEPTED")] * 2


def test_clash_is_declined_and_a_cancel_frees_the_room(system: EximSystem) -> None:
    invite(system, "meeting-1")
    system.send(request("meeting-2", ROOM), ORGANISER, ROOM)
    system.settle()
    assert sorted(system.replies(system.organiser)) == [
        ("meeting-1", "ACCEPTED"),
        ("meeting-2", "DECLINED"),
    ]
    assert busy(system.site, ROOM) == [f"{START}/{END}"]
    system.send(cancel("meeting-1", PERSON, ROOM, sequence=1), ORGANISER, PERSON, ROOM)
    system.settle()
    assert busy(system.site, ROOM) == []
    assert uids(ms.exported(system.site, PERSON)) == []
    system.send(request("meeting-2", ROOM, sequence=1), ORGANISER, ROOM)
    system.settle()
    assert ("meeting-2", "ACCEPTED") in system.replies(system.organiser)
    assert busy(system.site, ROOM) == [f"{START}/{END}"]


def test_held_lock_defers_and_exim_delivers_once_free(system: EximSystem) -> None:
    store = str(system.site.directory("store"))
    python = str(ms.VENV / "bin" / "python")
    holder = subprocess.Popen(
        [python, "-c", HOLD_LOCK, store, f"mailto:{ROOM}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        user=AGENT_USER,
        cwd="/",
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline() == b"locked\n"
        queue_id = system.send(request("meeting-1", ROOM), ORGANISER, ROOM)
        ms.wait_for(
            lambda: (queue_id, "deferred") in system.agent_outcomes(),
            "the agent did not defer",
            system.explain,
        )
        ms.wait_for(
            lambda: (
                re.search(rf"{queue_id} == {re.escape(ROOM)} .*defer", system.log.text())
                is not None
            ),
            "Exim did not defer",
            system.explain,
        )
        assert system.replies(system.organiser) == []
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    ms.exim_flush_queue()
    system.settle()
    assert system.replies(system.organiser) == [("meeting-1", "ACCEPTED")]
    assert uids(ms.exported(system.site, ROOM)) == ["meeting-1"]
    assert ms.admin(system.site, "log", ROOM).count("meeting-1") == 1
    outcomes = [status for qid, status in system.agent_outcomes() if qid == queue_id]
    # Deferred first, then done once; the other "done" is the organiser's copy.
    assert sorted(outcomes) == ["deferred", "done", "done"], outcomes
    delivered = [d for d in system.deliveries() if d == (queue_id, ROOM, "imip_resource")]
    assert len(delivered) == 1, system.explain()


def test_unusable_message_bounces_with_our_reason(system: EximSystem) -> None:
    """No ORGANIZER: 65, and the bounce quotes our one status line."""
    event = vevent("broken-1", START, END, organiser="", attendees=(ROOM,), dtstamp=STAMP)
    message = imip_message(calendar_text(event), sender=ORGANISER, to=ROOM)
    queue_id = system.send(message, ORGANISER, ROOM)
    system.settle()
    assert re.search(rf"{queue_id} \*\* {re.escape(ROOM)} .*T=imip_resource", system.log.text())
    (dsn,) = messages(system.organiser)
    assert dsn.get_content_type() == "multipart/report"
    text = dsn.as_string()
    assert "Status: 5.0.0" in text
    assert "5.6.0 REQUEST without ORGANIZER" in text, text
    assert "Traceback" not in text
    assert uids(ms.exported(system.site, ROOM)) == []


def test_null_sender_and_auto_submitted_get_no_reply(system: EximSystem) -> None:
    system.send(request("from-bounce", ROOM), "", ROOM)
    system.send(
        request("automatic", ROOM, headers={"Auto-Submitted": "auto-generated"}), ORGANISER, ROOM
    )
    system.settle()
    assert messages(system.organiser) == []
    assert f"<= {ROOM}" not in system.log.text()  # the room sent nothing
    # Both reached the room (the organiser's message also its outgoing copy).
    assert [r for _, r, t in system.deliveries() if t == "imip_resource"] == [ROOM] * 2


def test_resources_answering_each_other_do_not_loop(system: EximSystem) -> None:
    system.send(request("rooms", ROOM, organiser=ROOM2), ROOM2, ROOM)
    system.send(request("ourselves", ROOM, organiser=ROOM), ROOM, ROOM)
    system.settle()
    runs = Counter(r for _, r, t in system.deliveries() if t == "imip_resource")
    assert runs == {ROOM: 2, ROOM2: 1}
    assert "loop" not in system.log.text().lower()
    assert messages(system.organiser) == []
