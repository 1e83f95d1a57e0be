"""The programs' options and help texts, shared by the agents and imip-admin.

Only what a parser is made of lives here: the site options every program
takes (each saying its default), the agents' envelope and sending options,
the help texts every program ends with (formats, environment, exit status),
and the agents' parser. How parsers behave (errors, usage, ``--version``) is
:mod:`imip_agent.parsing`; what the options mean when a program runs is
:mod:`imip_agent.cli`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from imip_agent.parsing import Parser, add_version
from imiptools.config import Settings

#: How dates and times are written on every command line.
DATES = """\
dates and times:
  2030-01-08T10:00:00Z (UTC), 2030-01-08T11:00:00+01:00, 20300108T100000Z, or a
  date alone (2030-01-08); without Z or an offset: UTC
"""

#: How durations are written on imip-admin's command line (and in preferences).
DURATIONS = """\
durations (RFC 5545):
  PT30M, PT4H, P1D, P2W, P1DT12H
"""

#: Where the settings come from, said by every program's --help.
ENVIRONMENT = """\
environment:
  IMIP_AGENT_CONFIG  the configuration file when -c is not given; without
                     either, built-in settings (the directories shown above)
"""


def add_store_options(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    """The site options shared by every program (before or after
    subcommands), ``--version`` among them; each says its default."""
    default = argparse.SUPPRESS if suppress else None
    built_in = Settings()
    group = parser.add_argument_group("site options")
    add = group.add_argument
    add(
        "-c",
        "--config",
        default=default,
        metavar="FILE",
        help="configuration file (TOML); default: $IMIP_AGENT_CONFIG, else none",
    )
    for short, name, what in (
        ("-S", "store", "store directory"),
        ("-p", "preferences", "preferences directory"),
        ("-j", "journal", "quota journal directory"),
        ("-P", "publishing", "published free/busy directory"),
    ):
        add(
            short,
            f"--{name}",
            default=default,
            metavar="DIR",
            help=f"{what} (default: the configuration's {name}, else {getattr(built_in, name)})",
        )
    add(
        "--now",
        default=default,
        metavar="DATE-TIME",
        help="act as if it were this time (for tests and dry runs)",
    )
    add(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if suppress else 0,
        help="log to stderr as well (repeat for debug); never under an MTA",
    )
    add(
        "--log",
        dest="log_file",
        default=default,
        metavar="FILE",
        help="log to FILE (default: the configuration's log_file, else syslog)",
    )
    add_version(parser, parser.prog.split()[0])


def add_agent_options(parser: argparse.ArgumentParser) -> None:
    """Envelope and sending options of the mail agents."""
    group = parser.add_argument_group("mail options")
    add = group.add_argument
    add(
        "-o",
        "--original-recipient",
        dest="recipients",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="the envelope recipient (Postfix ${recipient}); repeatable",
    )
    add(
        "-s",
        "--sender",
        default=None,
        metavar="ADDRESS",
        help="the envelope sender (Postfix ${sender}); '' for the null sender of a bounce",
    )
    add("--output", default=None, metavar="DIR", help="write outgoing mail as files into DIR")
    add(
        "-d",
        "--debug-print",
        dest="print_only",
        action="store_true",
        help="print outgoing mail on stdout instead of sending it",
    )
    add(
        "--sendmail",
        default=None,
        metavar="CMD",
        help=f"send with this command (default: the configuration's, else {Settings().sendmail})",
    )
    add(
        "--smtp",
        default=None,
        metavar="HOST[:PORT]",
        help="send through this SMTP server instead of a sendmail command",
    )
    add(
        "--queue-id",
        default=None,
        metavar="ID",
        help="the MTA's queue id, put on every log line (Postfix ${queue_id})",
    )


#: Options whose value is an envelope address, by every spelling, and the
#: long form it is bound to (see :func:`bind_address_values`).
ADDRESS_OPTIONS = {
    "-o": "--original-recipient",
    "--original-recipient": "--original-recipient",
    "-s": "--sender",
    "--sender": "--sender",
}


def bind_address_values(argv: Sequence[str]) -> list[str]:
    """``-s VALUE`` -> ``--sender=VALUE`` (and so for ``-o``), whatever VALUE is.

    An envelope address may start with ``-`` (``-x@example.com``), and
    argparse takes such a word for an option and fails (Python bpo-9334):
    under an MTA's pipe (``-s ${sender}``, Exim's ``-s "$SENDER"``) the word
    after ``-s`` and ``-o`` is always the value, so it is bound to its
    option before argparse sees it. Words after ``--`` are left alone.
    """
    bound: list[str] = []
    words = iter(argv)
    for word in words:
        option = ADDRESS_OPTIONS.get(word)
        value = next(words, None) if option else None
        if word == "--":
            bound += [word, *words]
        elif option is None or value is None:
            bound.append(word)
        else:
            bound.append(f"{option}={value}")
    return bound


def build_parser(prog: str, description: str, example: str = "") -> Parser:
    """The command line of a mail agent (the contract in the README):
    ``description`` and ``example`` are its --help text."""
    parser = Parser(
        prog=prog,
        usage="%(prog)s [OPTIONS] -o ADDRESS [-s ADDRESS] < MESSAGE",
        description=description,
        epilog=f"{example}\n{DATES}\n{ENVIRONMENT}\n{AGENT_EXIT_CODES}",
    )
    add_store_options(parser)
    add_agent_options(parser)
    return parser


#: What the agents' exit codes mean (README: Exit codes).
AGENT_EXIT_CODES = """\
exit status:
  0   done (also: nothing to do, declined)
  65  the sender gets the message back (unusable data, too big, bad address)
  75  try again later: the MTA keeps the message (lock, store, delivery,
      configuration or command-line trouble); the reason is the one line printed
"""
