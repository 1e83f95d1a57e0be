"""imip-resource: the agent for a resource (room, car, projector).

Reads one message on stdin, as an MTA pipe delivers it, and answers every
invitation by the resource's policies (see ``imiptools.handlers.resource``).
Never delivers to a mailbox. Exit codes: ``imiptools.errors.ExitCode``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

from imip_agent.cli import Parser, build_parser, run_agent, run_program
from imiptools.errors import ExitCode
from imiptools.handlers.resource import ResourceHandler


def parser() -> Parser:
    """The command line of imip-resource (the manual's reference is made from it)."""
    return build_parser("imip-resource", __doc__ or "")


def run(argv: Sequence[str]) -> ExitCode:
    """Parse options and run the resource agent."""
    return run_agent(argv, parser(), ResourceHandler)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console entry point ``imip-resource``."""
    run_program(run, argv)
