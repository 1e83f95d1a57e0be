"""LmtpSender against a real Dovecot LMTP server (RFC 2033).

Dovecot stores messages with LF line endings and prepends Return-Path,
Delivered-To and Received; everything after those must be the message.
"""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest

from imiptools.errors import DeliveryFailed, ExitCode
from imiptools.mail.lmtp import DeliveryRejected, LmtpSender, parse_lmtp_target
from tests.mta.conftest import Dovecot, Mailbox, free_port

MESSAGE = (
    b"From: organizer@example.test\n"
    b"To: imiptest1@example.test\n"
    b"Subject: Invitation\n"
    b"Message-ID: <lmtp-test@example.test>\n"
    b"MIME-Version: 1.0\n"
    b'Content-Type: text/calendar; method=REQUEST; charset="utf-8"\n'
    b"\n"
    b"BEGIN:VCALENDAR\n"
    b"METHOD:REQUEST\n"
    b"END:VCALENDAR\n"
)
ADDED = ["Return-Path", "Delivered-To", "Received"]
_HEADER = re.compile(rb"([A-Za-z-]+): .*\n(?:[ \t].*\n)*")


def split_added_headers(stored: bytes) -> tuple[dict[str, str], bytes]:
    """Dovecot's leading Return-Path/Delivered-To/Received fields, and the rest."""
    added: dict[str, str] = {}
    position = 0
    while (field := _HEADER.match(stored, position)) and field.group(1).decode() in ADDED:
        name, _, value = field.group().decode().partition(": ")
        added[name] = " ".join(value.split())
        position = field.end()
    return added, stored[position:]


def only_message(mailbox: Mailbox) -> tuple[dict[str, str], bytes]:
    messages = mailbox.messages()
    assert len(messages) == 1, messages
    return split_added_headers(messages[0])


# -- delivery ----------------------------------------------------------------


def test_unix_socket_delivers_the_message_unchanged(dovecot: Dovecot, mailbox: Mailbox) -> None:
    LmtpSender(dovecot.socket_target).send("organizer@example.test", [mailbox.address], MESSAGE)
    added, rest = only_message(mailbox)
    assert rest == MESSAGE
    assert list(added) == ADDED
    assert added["Return-Path"] == "<organizer@example.test>"
    assert added["Delivered-To"] == mailbox.address


def test_tcp_delivers_the_message_unchanged(dovecot: Dovecot, mailbox: Mailbox) -> None:
    recipient = f"{mailbox.user}@example.test"
    LmtpSender(dovecot.tcp_target).send("", [recipient], MESSAGE)
    added, rest = only_message(mailbox)
    assert rest == MESSAGE
    assert added["Return-Path"] == "<>"
    assert added["Delivered-To"] == recipient


def test_crlf_dots_and_8bit_survive(dovecot: Dovecot, mailbox: Mailbox) -> None:
    """CRLF is the wire form; leading dots are stuffed; 8-bit goes as 8BITMIME."""
    message = b"Subject: dots\r\n\r\n.\r\n..two\r\n.three\r\ncaf\xc3\xa9\r\nno final newline"
    LmtpSender(dovecot.socket_target).send("organizer@example.test", [mailbox.address], message)
    _, rest = only_message(mailbox)
    assert rest == message.replace(b"\r\n", b"\n") + b"\n"


def test_two_recipients_get_two_transactions(
    dovecot: Dovecot, mailbox: Mailbox, second_mailbox: Mailbox
) -> None:
    sender = LmtpSender(dovecot.socket_target)
    sender.send("organizer@example.test", [mailbox.address, second_mailbox.address], MESSAGE)
    first, first_rest = only_message(mailbox)
    second, second_rest = only_message(second_mailbox)
    assert first_rest == second_rest == MESSAGE
    # Dovecot numbers the transactions of a session ":T2", ":T3"; a second
    # recipient in the same transaction would be ":R<n>" instead.
    assert re.search(r"\bid \S+:T2\b", second["Received"]), second["Received"]
    assert ":R" not in first["Received"] + second["Received"]


def test_delivery_takes_milliseconds(dovecot: Dovecot, mailbox: Mailbox) -> None:
    sender = LmtpSender(dovecot.socket_target)
    started = time.monotonic()
    for _ in range(5):
        sender.send("organizer@example.test", [mailbox.address], MESSAGE)
    assert time.monotonic() - started < 2.0
    assert len(mailbox.messages()) == 5


# -- permanent refusal (5xx): DeliveryRejected, exit 65 ----------------------


def test_unknown_user_is_rejected(dovecot: Dovecot) -> None:
    with pytest.raises(DeliveryRejected) as caught:
        LmtpSender(dovecot.socket_target).send("", ["nosuchuser@example.test"], MESSAGE)
    error = caught.value
    assert error.status == "5.1.1"
    assert error.exit_code == ExitCode.DATAERR
    assert "nosuchuser@example.test at RCPT: 550 5.1.1" in str(error)
    assert error.status_line().startswith("5.1.1 LMTP ")
    assert "\n" not in error.status_line()


def test_rejection_does_not_stop_the_other_recipients(dovecot: Dovecot, mailbox: Mailbox) -> None:
    sender = LmtpSender(dovecot.tcp_target)
    with pytest.raises(DeliveryRejected, match="nosuchuser"):
        sender.send("", ["nosuchuser@example.test", mailbox.address], MESSAGE)
    assert only_message(mailbox)[1] == MESSAGE


# -- temporary failure (4xx, no server): DeliveryFailed, exit 75 -------------


def test_unwritable_maildir_is_a_temporary_failure(
    dovecot: Dovecot, locked_mailbox: Mailbox
) -> None:
    """Dovecot cannot write the Maildir as the user: 451 4.2.0 after DATA."""
    with pytest.raises(DeliveryFailed) as caught:
        LmtpSender(dovecot.socket_target).send("", [locked_mailbox.address], MESSAGE)
    assert f"{locked_mailbox.address} deferred at DATA: 451 4.2.0" in str(caught.value)
    assert caught.value.exit_code == ExitCode.TEMPFAIL
    assert locked_mailbox.messages() == []
    assert dovecot.wait_for_log("Permission denied")


def test_temporary_failure_stops_the_run(
    dovecot: Dovecot, locked_mailbox: Mailbox, mailbox: Mailbox
) -> None:
    """Later recipients are left for the retry, so they get the message once."""
    with pytest.raises(DeliveryFailed):
        LmtpSender(dovecot.socket_target).send(
            "", [locked_mailbox.address, mailbox.address], MESSAGE
        )
    assert mailbox.messages() == []


def test_retry_after_temporary_failure_duplicates_earlier_recipients(
    dovecot: Dovecot, mailbox: Mailbox, locked_mailbox: Mailbox
) -> None:
    """Documented limit: recipients delivered before a 4xx get it again."""
    sender = LmtpSender(dovecot.socket_target)
    recipients = [mailbox.address, locked_mailbox.address]
    with pytest.raises(DeliveryFailed):
        sender.send("", recipients, MESSAGE)
    assert len(mailbox.messages()) == 1
    locked_mailbox.unlock()
    sender.send("", recipients, MESSAGE)  # what the MTA's retry does
    assert len(mailbox.messages()) == 2
    assert len(locked_mailbox.messages()) == 1


def test_missing_socket_is_a_temporary_failure(tmp_path: Path) -> None:
    with pytest.raises(DeliveryFailed, match="No such file"):
        LmtpSender(str(tmp_path / "no-such-socket")).send("", ["someone@example.test"], MESSAGE)


def test_refused_connection_is_a_temporary_failure() -> None:
    with pytest.raises(DeliveryFailed, match="refused"):
        LmtpSender(f"127.0.0.1:{free_port()}").send("", ["someone@example.test"], MESSAGE)


def test_silent_server_times_out(tmp_path: Path) -> None:
    """A listener that never answers (the kernel completes the connect)."""
    path = tmp_path / "silent"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        listener.listen(1)
        started = time.monotonic()
        with pytest.raises(DeliveryFailed, match="timed out"):
            LmtpSender(str(path), timeout=0.2).send("", ["someone@example.test"], MESSAGE)
    assert time.monotonic() - started < 2.0


# -- targets and arguments ---------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/run/dovecot/lmtp", ("/run/dovecot/lmtp", 0)),
        ("127.0.0.1:24", ("127.0.0.1", 24)),
        (" mail.example.test:2003 ", ("mail.example.test", 2003)),
        ("[::1]:24", ("::1", 24)),
    ],
)
def test_parse_lmtp_target(target: str, expected: tuple[str, int]) -> None:
    assert parse_lmtp_target(target) == expected


@pytest.mark.parametrize(
    "target",
    ["", "localhost", "[::1]", "::1", "relative/socket", "localhost:25", "host:0", "host:x"],
)
def test_bad_lmtp_target(target: str) -> None:
    with pytest.raises(ValueError):
        LmtpSender(target)


@pytest.mark.parametrize(
    ("envelope_from", "recipients"),
    [("", []), ("", "user"), ("", [""]), ("a\nb", ["user"]), ("", ["us\xe9r"])],
)
def test_bad_envelope(envelope_from: str, recipients: list[str]) -> None:
    with pytest.raises(ValueError):
        LmtpSender("/nonexistent/lmtp").send(envelope_from, recipients, MESSAGE)
