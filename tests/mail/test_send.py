"""Tests for imiptools.mail.send: the senders, with real processes and sockets."""

from __future__ import annotations

import io
import logging
import os
import socketserver
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from imiptools.errors import DeliveryFailed, DeliveryRefused, ExitCode, UnusableAddress
from imiptools.mail.send import (
    SEPARATOR,
    SEQUENCE_ATTRIBUTE,
    DirectorySender,
    PrintSender,
    Sender,
    SendmailSender,
    SmtpSender,
    _link_next,  # the path no local file system takes
    parse_smtp_target,
)

MESSAGE = (
    b"From: room@example.com\r\n"
    b"To: alice@example.org\r\n"
    b"Subject: Accepted\r\n"
    b"\r\n"
    b"Body line\r\n"
    b".leading dot\r\n"
)


# -- DirectorySender ----------------------------------------------------------------


def test_directory_sender_writes_numbered_files(tmp_path: Path) -> None:
    outbox = tmp_path / "spool" / "outgoing"
    sender: Sender = DirectorySender(outbox)
    sender.send("room@example.com", ["Alice@Example.org"], MESSAGE)
    sender.send("", ["bob@example.org", "carol@example.org"], MESSAGE + b"2")
    names = sorted(p.name for p in outbox.iterdir())
    assert names == ["0001-alice@example.org.eml", "0002-bob@example.org.eml"]
    assert (outbox / names[0]).read_bytes() == MESSAGE
    assert (outbox / names[1]).read_bytes() == MESSAGE + b"2"


def test_directory_sender_continues_after_existing_files(tmp_path: Path) -> None:
    (tmp_path / "0007-old.eml").write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("not a message")
    sender = DirectorySender(tmp_path)
    sender.send("room@example.com", ["alice@example.org"], MESSAGE)
    assert [p.name for p in sender.files()] == ["0007-old.eml", "0008-alice@example.org.eml"]


def test_directory_sender_slug_is_safe(tmp_path: Path) -> None:
    sender = DirectorySender(tmp_path)
    with pytest.raises(UnusableAddress):  # no sender takes what is not an address
        sender.send("room@example.com", ["../../etc/passwd@x"], MESSAGE)
    sender.send("room@example.com", ["/etc/passwd@x"], MESSAGE)  # "/" is atext
    [path] = sender.files()
    assert path.parent == tmp_path
    assert path.name == "0001-etc_passwd@x.eml"


def _send_from_new_process(directory: Path, recipient: str) -> None:
    """One message sent by another process (one that has never listed ``directory``)."""
    code = (
        "import sys; from pathlib import Path; from imiptools.mail.send import DirectorySender;"
        " DirectorySender(Path(sys.argv[1])).send('room@example.com', [sys.argv[2]], b'x')"
    )
    subprocess.run([sys.executable, "-c", code, str(directory), recipient], check=True)


def test_directory_sender_lists_the_directory_once_a_process(tmp_path: Path) -> None:
    """The last number is kept in the directory's attribute: after its first
    message a process no longer lists the directory (a file put there by
    hand is not seen), while a new process lists it once (issue 15: a
    listing a message made a long run quadratic)."""
    sender = DirectorySender(tmp_path)
    sender.send("room@example.com", ["alice@example.org"], MESSAGE)
    assert os.getxattr(tmp_path, SEQUENCE_ATTRIBUTE) == b"1"
    (tmp_path / "0100-by-hand.eml").write_bytes(b"x")
    sender.send("room@example.com", ["bob@example.org"], MESSAGE)
    _send_from_new_process(tmp_path, "carol@example.org")
    sender.send("room@example.com", ["dave@example.org"], MESSAGE)  # reads what the other wrote
    names = [p.name for p in sender.files()]
    assert names == [
        "0001-alice@example.org.eml",
        "0002-bob@example.org.eml",
        "0100-by-hand.eml",
        "0101-carol@example.org.eml",
        "0102-dave@example.org.eml",
    ]


def test_directory_sender_lists_again_when_the_attribute_is_unreadable(tmp_path: Path) -> None:
    sender = DirectorySender(tmp_path)
    sender.send("room@example.com", ["alice@example.org"], MESSAGE)
    (tmp_path / "0007-by-hand.eml").write_bytes(b"x")
    for garbage in (b"seven", b"9" * 40, b""):
        os.setxattr(tmp_path, SEQUENCE_ATTRIBUTE, garbage)
        sender.send("room@example.com", ["bob@example.org"], MESSAGE)
    assert [p.name[:4] for p in sender.files()] == ["0001", "0007", "0008", "0009", "0010"]


def test_directory_sender_without_lock_or_attribute_lists_every_time(tmp_path: Path) -> None:
    """Where the file system refuses the flock and the attribute (a network
    file system; here a descriptor opened with O_PATH, which both refuse),
    the number comes from a listing for every message, as it always did."""
    handle = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        for name, by_hand in (("a", "0007"), ("b", "0011")):
            temporary = tmp_path / f".tmp-{name}"
            temporary.write_bytes(name.encode())
            _link_next(temporary, tmp_path, handle, f"{name}@example.org")
            temporary.unlink()
            (tmp_path / f"{by_hand}-by-hand.eml").write_bytes(b"x")
    finally:
        os.close(handle)
    assert [p.name[:4] for p in DirectorySender(tmp_path).files()] == [
        "0001",
        "0007",
        "0008",
        "0011",
    ]


def test_directory_sender_processes_share_the_numbers(tmp_path: Path) -> None:
    """Processes sending at once into one directory: every message kept,
    each under a number of its own, as if one had sent them all."""
    DirectorySender(tmp_path).send("room@example.com", ["first@example.org"], MESSAGE)
    code = (
        "import sys; from pathlib import Path; from imiptools.mail.send import DirectorySender\n"
        "sender = DirectorySender(Path(sys.argv[1]))\n"
        "for n in range(15): sender.send('room@example.com', [sys.argv[2]], b'%d' % n)"
    )
    senders = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path), f"p{n}@example.org"])
        for n in range(3)
    ]
    assert [process.wait(timeout=120) for process in senders] == [0, 0, 0]
    files = DirectorySender(tmp_path).files()
    assert [int(p.name[:4]) for p in files] == list(range(1, 47))
    for n in range(3):  # each process's messages in the order it sent them
        bodies = [p.read_bytes() for p in files if f"-p{n}@" in p.name]
        assert bodies == [b"%d" % i for i in range(15)]


def test_directory_sender_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    sender = DirectorySender(tmp_path)
    bodies = [MESSAGE + str(i).encode() for i in range(40)]

    def send(body: bytes) -> None:
        sender.send("room@example.com", ["alice@example.org"], body)

    threads = [threading.Thread(target=send, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    files = sender.files()
    assert sorted(p.read_bytes() for p in files) == sorted(bodies)
    assert [p.name[:4] for p in files] == [f"{n:04d}" for n in range(1, 41)]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_directory_sender_failure_is_delivery_failed(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DeliveryFailed) as caught:
        DirectorySender(blocker / "outgoing").send("a@x", ["b@x"], MESSAGE)
    assert caught.value.exit_code == ExitCode.TEMPFAIL


# -- PrintSender ---------------------------------------------------------------------


def test_print_sender() -> None:
    stream = io.StringIO()
    sender: Sender = PrintSender(stream)
    sender.send("room@example.com", ["alice@example.org"], MESSAGE)
    sender.send("room@example.com", ["alice@example.org"], b"Subject: two\r\n\r\nno newline")
    first, second, rest = stream.getvalue().split(SEPARATOR + "\n")
    assert first == MESSAGE.decode().replace("\r\n", "\n")
    assert second == "Subject: two\n\nno newline\n"
    assert rest == ""


# -- SendmailSender ---------------------------------------------------------------------


def fake_sendmail(directory: Path, exit_code: int = 0, body: str = "") -> Path:
    """A real executable that records argv and stdin, then exits as told."""
    script = directory / "sendmail"
    script.write_text(
        "#!/bin/sh\n"
        f'for arg in "$@"; do printf "%s\\n" "$arg"; done > "{directory}/argv"\n'
        f'cat > "{directory}/stdin"\n'
        f"{body}\n"
        f"exit {exit_code}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_sendmail_exit_0(tmp_path: Path) -> None:
    script = fake_sendmail(tmp_path)
    sender: Sender = SendmailSender(f"{script} -i")
    sender.send("room@example.com", ["alice@example.org", "bob@example.org"], MESSAGE)
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv == ["-i", "-f", "room@example.com", "--", "alice@example.org", "bob@example.org"]
    assert (tmp_path / "stdin").read_bytes() == MESSAGE


def test_sendmail_null_envelope_sender(tmp_path: Path) -> None:
    script = fake_sendmail(tmp_path)
    SendmailSender(str(script)).send("", ["alice@example.org"], MESSAGE)
    assert (tmp_path / "argv").read_text().splitlines() == ["-f", "", "--", "alice@example.org"]


def test_sendmail_exit_75(tmp_path: Path) -> None:
    script = fake_sendmail(tmp_path, 75, body='echo "queue file write error" >&2')
    with pytest.raises(DeliveryFailed) as caught:
        SendmailSender(str(script)).send("room@example.com", ["alice@example.org"], MESSAGE)
    assert "exited with 75: queue file write error" in str(caught.value)
    assert caught.value.exit_code == ExitCode.TEMPFAIL


def test_sendmail_other_exit_is_also_retried(tmp_path: Path) -> None:
    script = fake_sendmail(tmp_path, 67, body="printf '\\n  user unknown\\nsecond line\\n'")
    with pytest.raises(DeliveryFailed, match=r"exited with 67: user unknown$"):
        SendmailSender(str(script)).send("room@example.com", ["alice@example.org"], MESSAGE)


@pytest.mark.parametrize("code", [65, 67, 68])
def test_sendmail_refusal_for_good_is_delivery_refused(tmp_path: Path, code: int) -> None:
    script = fake_sendmail(tmp_path, code, body="echo 'user unknown'")
    with pytest.raises(DeliveryRefused, match=f"exited with {code}: user unknown"):
        SendmailSender(str(script)).send("room@example.com", ["alice@example.org"], MESSAGE)


@pytest.mark.parametrize("code", [1, 64, 69, 70, 71, 75, 78])
def test_sendmail_other_failures_are_transient(tmp_path: Path, code: int) -> None:
    script = fake_sendmail(tmp_path, code)
    with pytest.raises(DeliveryFailed) as caught:
        SendmailSender(str(script)).send("room@example.com", ["alice@example.org"], MESSAGE)
    assert not isinstance(caught.value, DeliveryRefused)


def test_sendmail_timeout(tmp_path: Path) -> None:
    script = fake_sendmail(tmp_path, body="exec sleep 30")
    with pytest.raises(DeliveryFailed, match="timed out"):
        SendmailSender(str(script), timeout=0.5).send("a@example.com", ["b@example.org"], MESSAGE)


def test_sendmail_missing_command(tmp_path: Path) -> None:
    with pytest.raises(DeliveryFailed, match="cannot run"):
        SendmailSender(str(tmp_path / "absent")).send("a@example.com", ["b@example.org"], MESSAGE)


@pytest.mark.parametrize(
    ("envelope_from", "recipients"),
    [
        ("a@example.com", []),
        ("a@example.com", "b@example.org"),
        ("a@example.com", [""]),
        ("a@example.com", ["b@example.org\n"]),
        ("a@example.com", ["-oQ/tmp"]),
        ("-bs", ["b@example.org"]),
        ("a b@example.com", ["b@example.org"]),
        ("a@example.com", ["-oQevil@example.com"]),
        ("a@example.com", ["röom@example.com"]),
        ("a@example.com", ["room@."]),
        ("a@example.com", ["x@.."]),
        ("a@example.com", ["jane%2edoe@example.net?subject=x"]),
    ],
)
def test_bad_envelopes_are_refused(
    tmp_path: Path, envelope_from: str, recipients: list[str]
) -> None:
    script = fake_sendmail(tmp_path)
    with pytest.raises(ValueError):
        SendmailSender(str(script)).send(envelope_from, recipients, MESSAGE)
    assert not (tmp_path / "argv").exists()


def test_empty_sendmail_command() -> None:
    with pytest.raises(ValueError):
        SendmailSender("  ")


# -- SmtpSender against a small scripted SMTP server --------------------------------


class ScriptedSmtp(socketserver.StreamRequestHandler):
    """Just enough RFC 5321 server: replies come from ``server.replies``."""

    server: SmtpServer

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        replies = self.server.replies
        self.reply("220 test ESMTP")
        while line := self.rfile.readline().decode().strip():
            verb = line.split(":")[0].split(" ")[0].upper()
            if verb == "DATA":
                self.reply("354 go on")
                self.server.received.append(self.read_data())
                self.reply(replies.get("DOT", "250 queued"))
            elif verb == "RCPT":
                address = line.partition(":")[2].strip("<> ")
                self.reply(replies.get(address, "250 ok"))
            else:
                self.reply(replies.get(verb, "221 bye" if verb == "QUIT" else "250 ok"))
                if verb == "QUIT":
                    return

    def read_data(self) -> bytes:
        lines = []
        while (line := self.rfile.readline()) not in (b".\r\n", b""):
            lines.append(line[1:] if line.startswith(b"..") else line)
        return b"".join(lines)


class SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ScriptedSmtp)
        self.replies: dict[str, str] = {}
        self.received: list[bytes] = []


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def smtp_sender(server: SmtpServer) -> SmtpSender:
    return SmtpSender("127.0.0.1", server.server_address[1], timeout=5)


def test_smtp_accepted(smtp_server: SmtpServer) -> None:
    smtp_sender(smtp_server).send("room@example.com", ["alice@example.org"], MESSAGE)
    assert smtp_server.received == [MESSAGE]


def test_smtp_temporary_failure(smtp_server: SmtpServer) -> None:
    smtp_server.replies["MAIL"] = "451 try again later"
    with pytest.raises(DeliveryFailed, match="temporary SMTP failure 451 try again later"):
        smtp_sender(smtp_server).send("room@example.com", ["alice@example.org"], MESSAGE)


def test_smtp_all_recipients_refused_is_permanent(smtp_server: SmtpServer) -> None:
    smtp_server.replies["alice@example.org"] = "550 no such user"
    with pytest.raises(DeliveryRefused, match="all recipients refused: permanent SMTP failure 550"):
        smtp_sender(smtp_server).send("room@example.com", ["alice@example.org"], MESSAGE)
    assert smtp_server.received == []


def test_smtp_some_recipients_refused_is_logged(
    smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    smtp_server.replies["bob@example.org"] = "550 no such user"
    with caplog.at_level(logging.WARNING, logger="imiptools.mail.send"):
        smtp_sender(smtp_server).send("", ["alice@example.org", "bob@example.org"], MESSAGE)
    assert smtp_server.received == [MESSAGE]
    assert "bob@example.org" in caplog.text


def test_smtp_data_refused(smtp_server: SmtpServer) -> None:
    smtp_server.replies["DOT"] = "554 content rejected"
    with pytest.raises(DeliveryRefused, match="permanent SMTP failure 554"):
        smtp_sender(smtp_server).send("room@example.com", ["alice@example.org"], MESSAGE)


def test_smtp_recipients_refused_partly_for_now_is_transient(smtp_server: SmtpServer) -> None:
    smtp_server.replies["alice@example.org"] = "550 no such user"
    smtp_server.replies["bob@example.org"] = "451 try later"
    with pytest.raises(DeliveryFailed) as caught:
        smtp_sender(smtp_server).send(
            "room@example.com", ["alice@example.org", "bob@example.org"], MESSAGE
        )
    assert not isinstance(caught.value, DeliveryRefused)


@pytest.mark.parametrize("verb", ["MAIL", "EHLO"])
def test_smtp_relay_refusing_us_is_not_a_refusal_of_the_message(
    smtp_server: SmtpServer, verb: str
) -> None:
    """A 5xx to MAIL FROM or to our greeting refuses the client (configuration):
    every message would fail alike, so none is set aside for it."""
    smtp_server.replies[verb] = "550 relay denied"
    smtp_server.replies["HELO"] = "550 relay denied"
    with pytest.raises(DeliveryFailed) as caught:
        smtp_sender(smtp_server).send("room@example.com", ["alice@example.org"], MESSAGE)
    assert not isinstance(caught.value, DeliveryRefused)


def test_smtp_connection_refused() -> None:
    with socketserver.TCPServer(("127.0.0.1", 0), socketserver.BaseRequestHandler) as unused:
        port = unused.server_address[1]
    with pytest.raises(DeliveryFailed, match=r"SMTP to 127\.0\.0\.1"):
        SmtpSender("127.0.0.1", port, timeout=5).send("a@example.com", ["b@example.org"], MESSAGE)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("localhost", ("localhost", 25)),
        ("mail.example.com:2525", ("mail.example.com", 2525)),
        (" 127.0.0.1:587 ", ("127.0.0.1", 587)),
        ("[::1]:2525", ("::1", 2525)),
        ("[::1]", ("::1", 25)),
        ("::1", ("::1", 25)),
    ],
)
def test_parse_smtp_target(target: str, expected: tuple[str, int]) -> None:
    assert parse_smtp_target(target) == expected


@pytest.mark.parametrize(
    "target", ["", ":25", "host:", "host:port", "host:0", "host:70000", "[::1]x"]
)
def test_parse_smtp_target_refuses(target: str) -> None:
    with pytest.raises(ValueError):
        parse_smtp_target(target)


def test_no_temporary_files_after_many_sends(tmp_path: Path) -> None:
    sender = DirectorySender(tmp_path)
    for _ in range(5):
        sender.send("a@example.com", ["b@example.org"], MESSAGE)
    assert sorted(os.listdir(tmp_path)) == [f"000{n}-b@example.org.eml" for n in range(1, 6)]
