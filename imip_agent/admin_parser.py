"""The parts of the imip-admin command line that every group of subcommands uses.

:mod:`imip_agent.admin` builds the parser from the groups (its own
subcommands and those of ``admin_quota``, ``admin_store``, ...); each group
adds its subcommands with :func:`add_command`. Kept apart from
:mod:`imip_agent.admin` so that the groups import this module and the
admin module imports the groups, with no cycle.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from imip_agent.cli import Parser, add_store_options
from imiptools.config import Settings
from imiptools.errors import UsageError

__all__ = ["AdminParser", "Command", "add_command"]


class AdminParser(Parser):
    """imip-admin reports usage errors as 64, not as a transient failure,
    with the usage and "try --help" on lines of their own."""

    error_class = UsageError
    hints = True


#: A subcommand: (parsed arguments, settings) -> text to print.
Command = Callable[[argparse.Namespace, Settings], str]


def add_command(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    function: Command,
    help: str,
    description: str | None = None,
) -> AdminParser:
    """Add subcommand ``name`` running ``function``; store options accepted
    after it. ``description`` is its --help text (with its examples)."""
    sub: AdminParser = commands.add_parser(name, help=help, description=description or help)
    sub.set_defaults(command_function=function)
    add_store_options(sub, suppress=True)
    return sub
