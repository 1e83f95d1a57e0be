"""imip-agent-lmtp as a service: listeners, queue ids, a dying worker, reload, drain.

The daemon runs as a real process (``tests/lmtp_support.py``); what it
answers is compared with the pipe programs in
``tests/scenarios/test_pipe_and_lmtp.py``.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import smtplib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.lmtp import LMTP

from imip_agent.lmtp_server import (
    Session,
    parse_listener,
    received_id,
    unix_socket,
    with_enhanced_code,
)
from imiptools.errors import ConfigError
from imiptools.mail.send import DirectorySender
from tests.lmtp_support import Daemon, Reply, connected_workers, lmtp_transaction
from tests.support import ROOM, Agent, calendar_text, imip_message, vevent

ALICE = "alice@example.com"
ACCEPTED = Reply(250, "2.0.0 processed 1 scheduling object(s)")


def request(uid: str) -> bytes:
    return imip_message(calendar_text(vevent(uid)), sender=ALICE)


@pytest.fixture
def agent(tmp_path: Path) -> Agent:
    return Agent(tmp_path / "site")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "imip-agent.toml"
    path.write_text("[agent]\nlock_timeout = 5\n")
    return path


@pytest.fixture
def daemon(agent: Agent, config: Path, tmp_path: Path) -> Iterator[Daemon]:
    running = Daemon(agent, tmp_path / "daemon", ("-c", str(config))).start()
    try:
        yield running
    finally:
        running.kill()


def wait_for(condition: object, what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


# -- listeners ------------------------------------------------------------------------


def test_listeners_are_unix_sockets_or_loopback_ports() -> None:
    assert parse_listener("resource", "unix:/run/imip-agent/resource").path == Path(
        "/run/imip-agent/resource"
    )
    assert parse_listener("person", "/run/x").path == Path("/run/x")
    assert parse_listener("person", "127.0.0.1:8024").port == 8024
    assert parse_listener("person", "[::1]:8024").host == "::1"
    assert parse_listener("person", "localhost:24").host == "localhost"
    bad_ones = ("0.0.0.0:24", "192.0.2.1:24", "mail.example.com:24", "unix:relative", "24")
    for bad in (*bad_ones, "127.0.0.1:25", "[::1]:25"):  # RFC 2033 §1: never SMTP's port
        with pytest.raises(ConfigError):
            parse_listener("resource", bad)


def test_a_socket_in_use_is_not_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "resource.lmtp"
    first = unix_socket(path, 0o660, -1)
    try:
        with pytest.raises(ConfigError, match="in use"):
            unix_socket(path, 0o660, -1)
    finally:
        first.close()
    second = unix_socket(path, 0o600, -1)  # left by a daemon that is gone: replaced
    assert path.stat().st_mode & 0o777 == 0o600
    second.close()
    path.unlink()
    path.write_text("not a socket")
    with pytest.raises(ConfigError, match="not a socket"):
        unix_socket(path, 0o660, -1)


def test_a_bad_listener_stops_the_start_with_one_line(agent: Agent, tmp_path: Path) -> None:
    daemon = Daemon(agent, tmp_path / "daemon", ("--resource", "192.0.2.1:24"))
    daemon.directory.mkdir()
    done = subprocess.run(daemon.argv(), capture_output=True, timeout=120, check=False)
    assert done.returncode == 75
    assert done.stdout.decode() == "4.3.5 --resource: '192.0.2.1' is not a loopback address\n"
    assert done.stderr == b""


# -- queue ids -------------------------------------------------------------------------


def test_the_received_header_names_the_queue_id() -> None:
    postfix = b"Received: from client (localhost [127.0.0.1])\n\tby mail.example.test (Postfix)"
    postfix += b" with ESMTP id 4F2A1234\n\tfor <room@example.com>; Tue, 1 Jan 2030\nTo: x\n\nid 9"
    exim = b"Received: from [127.0.0.1]\n\tby mail.example.test with esmtp (Exim 4.96)\n"
    exim += b"\t(envelope-from <a@example.com>)\n\tid 1tAbCd-000123-Ef\n\tfor room@x;\n\n"
    assert received_id(postfix) == "4F2A1234"
    assert received_id(exim) == "1tAbCd-000123-Ef"
    assert received_id(b"Subject: no Received\n\nReceived: by x id NOTME\n") == ""


def test_every_line_of_a_delivery_carries_its_queue_id(daemon: Daemon) -> None:
    """XFORWARD IDENT (Postfix), else the topmost Received header's id."""
    replies, _ = daemon.deliver("resource", request("a"), ALICE, [ROOM], queue_id="4F2A1234")
    assert replies == [ACCEPTED]
    received = b"Received: by mail.example.test (Postfix) with ESMTP id 5B3C2345;\n"
    replies, _ = daemon.deliver("resource", received + request("b"), ALICE, [ROOM])
    assert replies[0].code == 250
    lines = daemon.log_text().splitlines()
    ours = [line for line in lines if "uid='a'" in line or "to=<room" in line]
    assert any("4F2A1234: INFO imiptools.decisions" in line for line in lines), lines
    for queue_id in ("4F2A1234", "5B3C2345"):
        outcome = [line for line in ours if f"{queue_id}: INFO imip_agent: to=<{ROOM}>" in line]
        assert len(outcome) == 1, lines
    # Lines of the daemon itself belong to no delivery.
    assert all(": INFO imip_agent: listening" in line for line in lines if "listening" in line)
    assert not any(re.search(r"\]: \S+: INFO imip_agent: listening", line) for line in lines)


# -- the protocol: PIPELINING, ENHANCEDSTATUSCODES (RFC 2033 §5) -----------------------


class Wire:
    """A raw LMTP client: what it writes goes out as given (several commands
    in one write, as a pipelining client sends them); replies are read whole."""

    def __init__(self, path: Path) -> None:
        self.socket = socket.socket(socket.AF_UNIX)
        self.socket.settimeout(60)
        self.socket.connect(str(path))
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.socket.sendall(data)

    def reply(self) -> list[str]:
        """The lines of the next reply (up to the one without a ``-``)."""
        lines: list[str] = []
        while not lines or lines[-1][3:4] == "-":
            while b"\r\n" not in self.buffer:
                data = self.socket.recv(65536)
                assert data, f"connection closed after {lines}"
                self.buffer += data
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            lines.append(line.decode())
        return lines

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def wire(daemon: Daemon) -> Iterator[Wire]:
    client = Wire(daemon.sockets["resource"])
    try:
        yield client
    finally:
        client.close()


def test_lhlo_offers_pipelining_and_enhanced_status_codes(wire: Wire) -> None:
    """Both are an LMTP server's duty (RFC 2033 §5); neither the greeting
    nor the LHLO answer carries an RFC 3463 code (RFC 2034 §3)."""
    greeting = wire.reply()
    assert len(greeting) == 1 and re.fullmatch(r"220 \S+ .*", greeting[0])
    assert not re.match(r"220 \d\.", greeting[0])
    wire.send(b"LHLO client.example.test\r\n")
    offered = wire.reply()
    assert {"250-PIPELINING", "250-ENHANCEDSTATUSCODES"} <= set(offered)
    assert all(not re.match(r"250[ -]\d\.\d", line) for line in offered), offered


def test_a_pipelined_transaction_is_answered_in_order(wire: Wire, daemon: Daemon) -> None:
    """MAIL, RCPT and DATA in one write, as Postfix's lmtp(8) sends them to a
    server offering PIPELINING (RFC 2920): one reply each, in order, every
    2xx, 4xx and 5xx one with its RFC 3463 code; then the delivery."""
    wire.reply()
    wire.send(b"LHLO client.example.test\r\n")
    wire.reply()
    wire.send(f"MAIL FROM:<{ALICE}>\r\nRCPT TO:<{ROOM}>\r\nRCPT TO:<nobody>\r\nDATA\r\n".encode())
    assert wire.reply()[0].startswith("250 2.1.0 ")
    assert wire.reply()[0].startswith("250 2.1.5 ")
    assert wire.reply()[0].startswith("250 2.1.5 ")  # refused after DATA, by the agent
    assert wire.reply()[0].startswith("354 ")
    wire.send(request("piped").replace(b"\n", b"\r\n") + b".\r\n")
    assert wire.reply() == [f"{ACCEPTED}"]
    assert wire.reply()[0].startswith("550 5.1.3 not a mail address")
    wire.send(b"RSET\r\nNOOP\r\nRCPT TO:<x@example.com>\r\nBOGUS\r\nQUIT\r\n")
    replies = [wire.reply()[0] for _ in range(5)]
    assert replies[:2] == ["250 2.0.0 OK", "250 2.0.0 OK"]
    assert replies[2].startswith("503 5.5.1 ")  # RCPT before MAIL
    assert replies[3].startswith("500 5.5.2 ")  # not a command
    assert replies[4].startswith("221 2.0.0 ")
    assert len(DirectorySender(daemon.output).files()) == 1  # the room's answer


def test_every_reply_of_aiosmtpd_gets_a_code_of_its_class() -> None:
    """with_enhanced_code: a reply without an RFC 3463 code gets one of its
    own class (the registry's where one fits); a coded one, a 3xx one and
    what is not a reply are left alone; each line of a multi-line reply."""
    assert with_enhanced_code("250 OK", "MAIL") == "250 2.1.0 OK"
    assert with_enhanced_code("250 OK", "RCPT") == "250 2.1.5 OK"
    assert with_enhanced_code("250 OK") == "250 2.0.0 OK"
    assert with_enhanced_code("221 Bye") == "221 2.0.0 Bye"
    assert with_enhanced_code("552 Error: Too much mail data") == (
        "552 5.3.4 Error: Too much mail data"
    )
    assert with_enhanced_code("503 Error: need MAIL command", "RCPT").startswith("503 5.5.1 ")
    assert with_enhanced_code("501 Syntax: RSET") == "501 5.5.4 Syntax: RSET"
    assert with_enhanced_code("554 no") == "554 5.0.0 no"
    assert with_enhanced_code("450 busy") == "450 4.0.0 busy"
    for kept in (
        "553 5.1.3 Error: malformed address",
        "354 End data with <CR><LF>.<CR><LF>",
        "421 4.3.2 shutting down",
        "hello",
        "2500 x",
        "",
    ):
        assert with_enhanced_code(kept) == kept
    several = "250 2.0.0 done\r\n451 4.2.0 busy\r\n550 failed"
    assert with_enhanced_code(several) == "250 2.0.0 done\r\n451 4.2.0 busy\r\n550 5.0.0 failed"
    assert with_enhanced_code("250-first\r\n250 last") == "250-2.0.0 first\r\n250 2.0.0 last"
    assert with_enhanced_code("250") == "250 2.0.0"


# -- workers ---------------------------------------------------------------------------


def test_the_daemon_forks_its_workers(daemon: Daemon) -> None:
    """``--workers 2``: two children, each serving the sockets it inherited."""
    wait_for(lambda: len(daemon.workers()) == 2, "not two workers")
    for _ in range(4):
        replies, _ = daemon.deliver("resource", request("a"), ALICE, [ROOM])
        assert replies[0].code == 250


def test_workers_hold_no_user_directory_between_deliveries(daemon: Daemon) -> None:
    """A user's directory is held open only while their lock is
    (fileutil.held_directory): a worker keeps none once it has answered."""
    wait_for(lambda: len(daemon.workers()) == 2, "not two workers")
    for uid, room in (("a", ROOM), ("b", "car@example.com"), ("c", ROOM)):
        replies, _ = daemon.deliver("resource", request(uid), ALICE, [room])
        assert replies[0].code in (250, 550), replies
    for pid in daemon.workers():
        held = []
        for name in os.listdir(f"/proc/{pid}/fd"):
            try:
                held.append(os.readlink(f"/proc/{pid}/fd/{name}"))
            except FileNotFoundError:
                continue
        assert not [target for target in held if "mailto:" in target], held


def test_a_worker_that_dies_loses_no_mail_and_is_replaced(daemon: Daemon, agent: Agent) -> None:
    """The worker's connection is lost before the reply to DATA, so the MTA
    keeps the message (Postfix and Exim defer it); nothing was done, a new
    worker takes the dead one's place, and the delivery again is done once."""
    wait_for(lambda: len(daemon.workers()) == 2, "not two workers")
    failures: list[BaseException] = []
    store = agent.site().store

    def send() -> None:
        try:
            daemon.deliver("resource", request("a"), ALICE, [ROOM])
        except smtplib.SMTPServerDisconnected as exc:
            failures.append(exc)

    with store.lock(f"mailto:{ROOM}", 30.0):  # the delivery waits in a worker
        sending = threading.Thread(target=send)
        sending.start()
        wait_for(lambda: bool(busy_workers(daemon)), "no worker delivering")
        (dying,) = busy_workers(daemon)
        os.kill(dying, signal.SIGKILL)
        sending.join(timeout=120)
    assert len(failures) == 1  # no reply: the MTA retries
    assert not list(daemon.output.glob("*")), "nothing sent"
    wait_for(lambda: len(daemon.workers()) == 2 and dying not in daemon.workers(), "not replaced")
    again, run = daemon.deliver("resource", request("a"), ALICE, [ROOM])
    assert again == [ACCEPTED]
    assert len(run.sent) == 1
    assert "a worker stopped (signal 9); starting another" in daemon.log_text()


def test_a_worker_delivering_leaves_new_connections_to_the_others(
    daemon: Daemon, agent: Agent
) -> None:
    """A delivery waiting for its room's lock holds one worker; another
    room's delivery meanwhile is done by another worker."""
    wait_for(lambda: len(daemon.workers()) == 2, "not two workers")
    other = "hall@example.com"
    with delivery_waiting_for_the_room(daemon, agent) as replies:
        for uid in ("b", "c", "d"):  # each on a connection of its own
            message = imip_message(calendar_text(vevent(uid, attendees=(other,))), to=other)
            done, _ = daemon.deliver("resource", message, ALICE, [other])
            assert done[0].code == 250, done
        assert replies == []  # still waiting for the lock
    assert replies == [[ACCEPTED]]


@contextlib.contextmanager
def delivery_waiting_for_the_room(daemon: Daemon, agent: Agent) -> Iterator[list[list[Reply]]]:
    """A delivery of request "a" to the room, under way in a worker that
    waits for the room's lock, which this block holds; after the block (the
    lock released) the delivery is done and its replies are in the list.

    The block starts once a worker has the room's lock file open: its DATA
    is in (a worker merely connected may still be before DATA, which a
    drain answers with 421, not a delivery)."""
    replies: list[list[Reply]] = []
    sending = threading.Thread(
        target=lambda: replies.append(daemon.deliver("resource", request("a"), ALICE, [ROOM])[0])
    )
    try:
        with agent.site().store.lock(f"mailto:{ROOM}", 30.0):
            lock_file = agent.root / "store" / f"mailto:{ROOM}" / ".lock"
            assert lock_file.exists()
            sending.start()
            wait_for(lambda: bool(workers_opening(daemon, lock_file)), "no worker delivering")
            yield replies
    finally:
        if sending.ident is not None:
            sending.join(timeout=120)


def workers_opening(daemon: Daemon, path: Path) -> list[int]:
    """The daemon's workers that have file ``path`` open."""
    assert daemon.process is not None
    found = []
    for pid in daemon.workers():
        with contextlib.suppress(OSError):  # a worker gone meanwhile
            links = {os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}
            if str(path) in links:
                found.append(pid)
    return found


def busy_workers(daemon: Daemon) -> list[int]:
    """The daemon's workers holding a connection to one of its sockets."""
    assert daemon.process is not None
    return connected_workers(daemon.process.pid, set(daemon.sockets.values()))


# -- signals ---------------------------------------------------------------------------


def test_sighup_reads_the_configuration_again(daemon: Daemon, config: Path) -> None:
    """A changed setting takes effect; the log file is opened anew (logrotate);
    a broken configuration is refused and the old one kept."""
    config.write_text("[agent]\nlock_timeout = 5\nmax_message_size = 100\n")
    rotated = daemon.log.rename(daemon.log.with_suffix(".1"))
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: "reloaded" in daemon.log_text(), "no reload")
    assert "reloaded" not in rotated.read_text()
    replies, _ = daemon.deliver("resource", request("a"), ALICE, [ROOM])
    assert len(replies) == 1 and replies[0].code == 550, replies
    assert replies[0].text.startswith("5.3.4 message of ")
    assert replies[0].text.endswith(" exceeds the limit of 100 bytes")
    assert f"to=<{ROOM}>" in daemon.log_text()

    config.write_text("[agent]\nlock_timeout = -1\n")
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: "reload refused" in daemon.log_text(), "the bad configuration was taken")
    replies, _ = daemon.deliver("resource", request("b"), ALICE, [ROOM])
    assert replies[0].text.startswith("5.3.4 message of "), replies  # still the old one


def test_sighup_replaces_the_workers_and_the_old_ones_finish(daemon: Daemon, agent: Agent) -> None:
    """New workers take the new connections; an old one answers the delivery
    it has under way, then exits."""
    wait_for(lambda: len(daemon.workers()) == 2, "not two workers")
    old = set(daemon.workers())
    with delivery_waiting_for_the_room(daemon, agent) as replies:
        (busy,) = busy_workers(daemon)
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: "reloaded" in daemon.log_text(), "no reload")
        assert busy in daemon.workers()  # still finishing its delivery
        new = set(daemon.workers()) - old
        assert len(new) == 2
    assert replies == [[ACCEPTED]]
    wait_for(lambda: set(daemon.workers()) == new, "the old workers did not exit")
    again, _ = daemon.deliver("resource", request("b"), ALICE, [ROOM])
    assert again[0].code == 250


def test_sigterm_answers_the_delivery_under_way_then_exits(daemon: Daemon, agent: Agent) -> None:
    with delivery_waiting_for_the_room(daemon, agent) as replies:
        daemon.signal(signal.SIGTERM)
        wait_for(lambda: "stopping" in daemon.log_text(), "SIGTERM not seen")
        with socket.socket(socket.AF_UNIX) as probe, pytest.raises(OSError):
            probe.connect(str(daemon.sockets["resource"]))  # no longer listening
    assert replies == [[ACCEPTED]]  # the lock was released in time: done, not dropped
    assert daemon.stop() == 0
    assert not daemon.sockets["resource"].exists()
    assert daemon.log_text().splitlines()[-1].endswith("INFO imip_agent: stopped")


def test_a_transaction_of_several_recipients_gets_one_reply_each(daemon: Daemon) -> None:
    """RFC 2033 §4.2: in RCPT order; a bad recipient does not spoil the others."""
    replies = lmtp_transaction(
        daemon.sockets["resource"], request("a"), ALICE, [ROOM, "-bad@example.com", ROOM.upper()]
    )
    assert replies[0] == ACCEPTED
    assert replies[1].code == 550 and replies[1].text.startswith("5.1.3 unusable recipient")
    assert replies[2].code == 250


def test_workers_that_cannot_read_the_configuration_answer_as_the_pipe_does(
    daemon: Daemon, agent: Agent, config: Path
) -> None:
    """New workers (here after the old ones died) meet a configuration broken
    since the daemon read it: 451 with the pipe program's status line."""
    config.write_text("[agent]\nlock_timeout = -1\n")
    piped = agent.resource(request("a"), sender=ALICE, args=("-c", str(config)))
    assert piped.code == 75 and piped.stdout.startswith("4.3.5 "), piped.stdout
    for pid in daemon.workers():
        os.kill(pid, signal.SIGKILL)
    for _ in range(3):  # the first may meet the dead pool: "worker stopped"
        replies, _ = daemon.deliver("resource", request("a"), ALICE, [ROOM])
        if "worker stopped" not in replies[0].text:
            break
    assert replies == [Reply(451, piped.stdout.strip())]


def test_plain_paths_are_read_as_aiosmtpd_reads_them() -> None:
    """Session._getaddr's own reading of a plain ``<local@domain>`` gives
    aiosmtpd's answer, for paths it reads and paths it leaves to aiosmtpd."""
    session = object.__new__(Session)
    locals_ = ["alice", "a.b", "a+tag", "o'brien", "x" * 64, "x" * 65, "a..b", ".a", "é", '"q"']
    domains = ["example.com", "ex-1.example.com", "-x.com", "x-.com", "[127.0.0.1]", "a_b.org"]
    rests = ["", " ", "BODY=8BITMIME", " SIZE=12 ", "\tX=1", " (comment) X=1", "  A=1  B=2", "(c)"]
    paths = [f"<{local}@{domain}>" for local in locals_ for domain in domains]
    paths += ["<>", "alice@example.com", " <alice@example.com>", "<alice@example.com", ""]
    for limit in (0, 64):
        session.local_part_limit = limit
        for path in paths:
            for rest in rests:
                arg = path + rest
                assert session._getaddr(arg) == LMTP._getaddr(session, arg), (limit, arg)
