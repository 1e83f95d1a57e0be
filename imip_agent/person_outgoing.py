"""imip-person-outgoing: copies of mail a person *sends*.

The MTA passes a copy of each message a person submits (Postfix
``sender_bcc_maps``); the person is the envelope sender (``-s``, else the
From address). Their own invitations, replies, cancellations and
counter-proposals update their records (``imiptools.handlers.outgoing``).
Nothing is sent and nothing is delivered. Exit codes:
``imiptools.errors.ExitCode``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import NoReturn

from imip_agent.cli import Parser, build_parser, run_agent, run_program
from imiptools.errors import ConfigError, ExitCode
from imiptools.handlers.common import Envelope
from imiptools.handlers.outgoing import OutgoingHandler
from imiptools.mail.parse import parse_message


def sender_envelope(args: argparse.Namespace, raw: bytes) -> list[Envelope]:
    """The person is the sender: ``-s``, else the message's From address."""
    person = args.sender or parse_message(raw).from_address
    if not person:
        raise ConfigError("no sender to record for (use -s ADDRESS)")
    return [Envelope(person, person)]


DESCRIPTION = """\
The agent for copies of mail a person sends (Postfix sender_bcc_maps). The
person is the envelope sender (-s, else the From address); their own
invitations, replies, cancellations and counter-proposals update their
records. It sends and delivers nothing.
"""

EXAMPLE = """\
examples:
  as Postfix's pipe transport runs it (master.cf):
    imip-person-outgoing -c /etc/imip-agent/imip-agent.toml --queue-id ${queue_id} \\
        -s ${sender}
  by hand:
    imip-person-outgoing -s alice@example.com < sent-invitation.eml
"""


def parser() -> Parser:
    """The command line of imip-person-outgoing (the manual's reference is made from it)."""
    return build_parser("imip-person-outgoing", DESCRIPTION, EXAMPLE)


def run(argv: Sequence[str]) -> ExitCode:
    """Parse options and record what the person sent."""
    return run_agent(argv, parser(), OutgoingHandler, envelope=sender_envelope)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console entry point ``imip-person-outgoing``."""
    run_program(run, argv)
