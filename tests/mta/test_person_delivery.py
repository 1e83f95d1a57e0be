"""imip-person end to end: record the calendar data, then deliver over LMTP.

The real program runs as Postfix pipe(8) runs it (message on stdin,
``PATH=/usr/bin:/bin``, cwd ``/``, no ``--output``) with ``-l`` naming the
real Dovecot of ``conftest.py``. Dovecot strips the domain of a recipient
(``auth_username_format = %Ln``), so ``imiptest1@example.test`` reaches the
unix user ``imiptest1``.

Exit codes: 0 delivered; 75 when delivery fails for now (the MTA keeps the
message and retries; the retry changes nothing in the store); 65 only when
the mailbox server rejects the recipient for good.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from tests.mta.conftest import Dovecot, Mailbox
from tests.mta.test_lmtp import ADDED, split_added_headers
from tests.support import BIN, Agent, calendar_text, imip_message, vevent

DOMAIN = "example.test"
ALICE = "alice@example.com"
UID = "delivery-1@example.com"


@dataclass(frozen=True)
class Outcome:
    """One run of imip-person."""

    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"exit {self.code}\nstdout: {self.stdout!r}\nstderr: {self.stderr!r}"


def address(mailbox: Mailbox) -> str:
    return f"{mailbox.user}@{DOMAIN}"


def invitation(recipient: str) -> bytes:
    """Alice's iMIP REQUEST to ``recipient``."""
    event = vevent(UID, organiser=ALICE, attendees=(ALICE, recipient))
    return imip_message(calendar_text(event), sender=ALICE, to=recipient)


def person(agent: Agent, message: bytes, recipient: str, target: str) -> Outcome:
    """Pipe ``message`` through imip-person as Postfix does, delivering by ``-l target``."""
    argv = [
        str(BIN / "imip-person"),
        *agent.store_options,
        "--now",
        agent.now,
        "-o",
        recipient,
        "-s",
        ALICE,
        "-l",
        target,
    ]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}  # what Postfix pipe(8) passes
    if "IMIP_AGENT_CONFIG" in os.environ:
        env["IMIP_AGENT_CONFIG"] = os.environ["IMIP_AGENT_CONFIG"]
    done = subprocess.run(
        argv, input=message, capture_output=True, timeout=60, env=env, check=False, cwd="/"
    )
    return Outcome(
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )


def stored(message: bytes) -> bytes:
    """How Dovecot stores ``message`` after its own fields: LF line endings."""
    return message.replace(b"\r\n", b"\n")


def assert_delivered_once(mailbox: Mailbox, message: bytes) -> None:
    """Exactly one message in ``new/``: ``message`` after Dovecot's fields."""
    messages = mailbox.messages()
    assert len(messages) == 1, messages
    added, rest = split_added_headers(messages[0])
    assert list(added) == ADDED
    assert added["Delivered-To"] == address(mailbox)
    assert rest == stored(message)


def exported_uids(agent: Agent, user: str) -> list[str]:
    return [str(event["UID"]) for event in agent.exported(user).walk("VEVENT")]


@pytest.fixture
def agent(tmp_path: Path) -> Agent:
    """A fresh store, preferences and journal under tmp_path."""
    return Agent(tmp_path)


# -- delivery ----------------------------------------------------------------


@pytest.mark.parametrize("over", ["socket", "tcp"])
def test_invitation_is_recorded_and_delivered(
    dovecot: Dovecot, mailbox: Mailbox, agent: Agent, over: str
) -> None:
    target = dovecot.socket_target if over == "socket" else dovecot.tcp_target
    recipient = address(mailbox)
    message = invitation(recipient)
    run = person(agent, message, recipient, target)
    assert run.code == 0, run
    assert run.stdout == ""
    assert_delivered_once(mailbox, message)
    assert exported_uids(agent, recipient) == [UID]
    assert agent.requests(recipient) == [(UID, "", "REQUEST")]


def test_message_without_calendar_data_is_delivered(
    dovecot: Dovecot, mailbox: Mailbox, agent: Agent
) -> None:
    recipient = address(mailbox)
    plain = EmailMessage()
    plain["From"] = ALICE
    plain["To"] = recipient
    plain["Subject"] = "Lunch?"
    plain["Message-ID"] = "<plain@example.com>"
    plain.set_content("No calendar here.\n")
    message = plain.as_bytes(policy=SMTP)
    run = person(agent, message, recipient, dovecot.socket_target)
    assert run.code == 0, run
    assert_delivered_once(mailbox, message)
    assert agent.requests(recipient) == []


def test_message_with_broken_calendar_is_delivered(
    dovecot: Dovecot, mailbox: Mailbox, agent: Agent
) -> None:
    """A person's mail never bounces for its calendar data."""
    recipient = address(mailbox)
    broken = "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nthis is not iCalendar\r\n"
    message = imip_message(broken, sender=ALICE, to=recipient, message_id="<broken@example.com>")
    run = person(agent, message, recipient, dovecot.socket_target)
    assert run.code == 0, run
    assert_delivered_once(mailbox, message)
    assert agent.requests(recipient) == []


# -- temporary failure: 75, and the retry records nothing twice --------------


def test_unwritable_maildir_defers_and_the_retry_delivers_once(
    dovecot: Dovecot, locked_mailbox: Mailbox, agent: Agent
) -> None:
    recipient = address(locked_mailbox)
    message = invitation(recipient)
    run = person(agent, message, recipient, dovecot.socket_target)
    assert run.code == 75, run
    assert run.stdout.startswith("4."), run
    assert "451 4.2.0" in run.stdout
    assert len(run.stdout.splitlines()) == 1
    assert locked_mailbox.messages() == []
    # Recorded before the delivery was tried: the retry must not add it again.
    assert agent.requests(recipient) == [(UID, "", "REQUEST")]

    locked_mailbox.unlock()  # what the MTA's retry then finds
    retry = person(agent, message, recipient, dovecot.socket_target)
    assert retry.code == 0, retry
    assert_delivered_once(locked_mailbox, message)
    assert agent.requests(recipient) == [(UID, "", "REQUEST")]
    assert exported_uids(agent, recipient) == [UID]


def test_missing_socket_defers_and_the_retry_delivers_once(
    dovecot: Dovecot, mailbox: Mailbox, agent: Agent, tmp_path: Path
) -> None:
    recipient = address(mailbox)
    message = invitation(recipient)
    run = person(agent, message, recipient, str(tmp_path / "no-such-socket"))
    assert run.code == 75, run
    assert run.stdout.startswith("4."), run
    assert mailbox.messages() == []
    assert agent.requests(recipient) == [(UID, "", "REQUEST")]

    retry = person(agent, message, recipient, dovecot.socket_target)
    assert retry.code == 0, retry
    assert_delivered_once(mailbox, message)
    assert agent.requests(recipient) == [(UID, "", "REQUEST")]


# -- permanent refusal: 65 ---------------------------------------------------


def test_unknown_mailbox_user_is_rejected(dovecot: Dovecot, agent: Agent) -> None:
    recipient = f"nosuchuser@{DOMAIN}"
    run = person(agent, invitation(recipient), recipient, dovecot.socket_target)
    assert run.code == 65, run
    assert run.stdout.startswith("5."), run
    assert "nosuchuser" in run.stdout
    assert len(run.stdout.splitlines()) == 1
