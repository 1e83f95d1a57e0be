"""imip-resource: the agent for a resource (room, car, projector).

Reads one message on stdin, as an MTA pipe delivers it, and answers every
invitation by the resource's policies (see ``imiptools.handlers.resource``).
Never delivers to a mailbox. Exit codes: ``imiptools.errors.ExitCode``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from imip_agent.cli import (
    Parser,
    add_agent_options,
    add_store_options,
    clock_from,
    preferences_from,
    run_program,
    sender_from,
    settings_from,
    setup_logging,
    store_from,
)
from imiptools import agent
from imiptools.errors import ExitCode
from imiptools.handlers.common import Envelope
from imiptools.handlers.resource import ResourceHandler
from imiptools.mail.parse import read_message
from imiptools.spool import Spool


def build_parser(prog: str, description: str) -> Parser:
    """The command line of a mail agent (the contract in the README)."""
    parser = Parser(prog=prog, description=description)
    add_store_options(parser)
    add_agent_options(parser)
    return parser


def run_agent(argv: Sequence[str], prog: str, factory: agent.HandlerFactory) -> ExitCode:
    """Parse options, read stdin, run the agent; print a status line on failure."""
    args = build_parser(prog, __doc__ or "").parse_args(argv)
    settings = settings_from(args)
    setup_logging(args, settings)
    raw = read_message(sys.stdin.buffer, settings.max_message_size)
    ctx = agent.Context(
        settings=settings,
        store=store_from(settings),
        preferences=preferences_from(settings),
        clock=clock_from(args),
        sender=sender_from(args, settings),
        spool=Spool(Path(settings.store) / ".outbox"),
    )
    envelope = [Envelope(recipient, args.sender) for recipient in args.recipients]
    result = agent.run(raw, envelope, ctx, factory)
    if result.code is not ExitCode.OK:
        print(result.status, flush=True)
    return result.code


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console entry point ``imip-resource``."""
    run_program(lambda args: run_agent(args, "imip-resource", ResourceHandler), argv)
