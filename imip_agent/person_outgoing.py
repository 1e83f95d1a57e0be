"""imip-person-outgoing: declared here, implemented by the people issue (not yet).

Until then it keeps every message queued at the MTA (exit 75 with a status
line) rather than dropping or mis-handling it: no mail is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

from imip_agent.cli import run_program
from imiptools.errors import ExitCode, TransientError


def run(argv: Sequence[str]) -> ExitCode:
    """Refuse transiently: the MTA keeps the message."""
    raise TransientError("imip-person-outgoing is not implemented yet; message kept for retry")


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console entry point ``imip-person-outgoing``."""
    run_program(run, argv)
