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
from imiptools.handlers.approval import ApprovingResourceHandler

DESCRIPTION = """\
The agent for a resource: a room, a car, a projector. It reads one message on
stdin, as the MTA's pipe delivers it, and answers every invitation in it by the
resource's preferences (imip-admin prefs): it accepts, declines or proposes
another time, always with a reason, and answers free/busy requests. It never
delivers to a mailbox.
"""

EXAMPLE = """\
examples:
  as Postfix's pipe transport runs it (master.cf):
    imip-resource -c /etc/imip-agent/imip-agent.toml --queue-id ${queue_id} \\
        -o ${recipient} -s ${sender}
  by hand, printing the reply instead of sending it:
    imip-resource -o room@example.com -s alice@example.com -d < invitation.eml
"""


def parser() -> Parser:
    """The command line of imip-resource (the manual's reference is made from it)."""
    return build_parser("imip-resource", DESCRIPTION, EXAMPLE)


def run(argv: Sequence[str]) -> ExitCode:
    """Parse options and run the resource agent."""
    return run_agent(argv, parser(), ApprovingResourceHandler)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console entry point ``imip-resource``."""
    run_program(run, argv)
