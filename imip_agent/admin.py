"""imip-admin: look at and adjust a store (export, free/busy, preferences).

Store options may stand before or after the subcommand. USER is an address
or a ``mailto:`` URI. Exit codes: 0 done, 64 usage, 65 bad value, 75 store
trouble (see ``imiptools.errors``).
"""

from __future__ import annotations

import argparse
import email
import importlib
import io
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from email import policy
from email.message import Message
from typing import NoReturn, TextIO

from imip_agent.admin_support import known_user
from imip_agent.cli import (
    Parser,
    add_store_options,
    run_program,
    settings_from,
    setup_logging,
    site_from,
)
from imiptools.config import Settings
from imiptools.dates import parse_datetime
from imiptools.errors import ExitCode, UsageError
from imiptools.itip.objects import to_text
from imiptools.mail.parse import read_message
from imiptools.mail.send import SEPARATOR, PrintSender, Sender
from imiptools.preferences import DEFINITIONS, Preferences, validate
from imiptools.records import UserRecords
from imiptools.stores.names import normalise_user
from imiptools.transfer import export_calendar
from imiptools.views import decisions as views_decisions
from imiptools.views import whatif as views_whatif
from imiptools.views.freebusy import freebusy_calendar, freebusy_span


class AdminParser(Parser):
    """imip-admin reports usage errors as 64, not as a transient failure."""

    error_class = UsageError


#: A subcommand: (parsed arguments, settings) -> text to print.
Command = Callable[[argparse.Namespace, Settings], str]
#: Modules that add subcommands: each has ``add_commands(commands)``, which
#: adds subparsers and sets their ``command_function`` default (a Command).
#: Keeps this module small; every group of subcommands lives in its own.
COMMAND_MODULES = (
    "imip_agent.admin_quota",
    "imip_agent.admin_store",
    "imip_agent.admin_install",
    "imip_agent.admin_outbox",
    "imip_agent.admin_mta",
)


def build_parser() -> AdminParser:
    """The imip-admin command line."""
    parser = AdminParser(prog="imip-admin", description=__doc__)
    add_store_options(parser)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=AdminParser)
    add_commands(commands)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.add_commands(commands)
    return parser


def add_command(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    function: Command,
    help: str,
    description: str | None = None,
) -> AdminParser:
    """Add subcommand ``name`` running ``function``; store options accepted after it."""
    sub: AdminParser = commands.add_parser(
        name,
        help=help,
        description=description or help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.set_defaults(command_function=function)
    add_store_options(sub, suppress=True)
    return sub


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The subcommands of this module: export, freebusy, log, prefs, whatif."""
    export = add_command(commands, "export", _export, "print a user's calendar as iCalendar")
    export.add_argument("user")
    freebusy = add_command(commands, "freebusy", _freebusy, "print a user's free/busy (VFREEBUSY)")
    freebusy.add_argument("user")
    freebusy.add_argument("--start", help="start (default: now)")
    freebusy.add_argument("--end", help="end (default: start + the window)")
    log = add_command(commands, "log", _log, "show a resource's decisions")
    log.add_argument("user")
    log.add_argument("--json", action="store_true", help="print the JSON lines as stored")
    prefs_ = add_command(commands, "prefs", _prefs, "get, set or list preferences")
    prefs_.add_argument("action", choices=["get", "set", "list", "unset"])
    prefs_.add_argument("user")
    prefs_.add_argument("name", nargs="?")
    prefs_.add_argument("value", nargs="?")
    whatif = add_command(
        commands, "whatif", _what_if, "show what imip-resource would answer to the message on stdin"
    )
    whatif.add_argument("user", metavar="RESOURCE")
    whatif.add_argument("--sender", help="envelope sender (default: the message's From)")
    whatif.add_argument("--raw", action="store_true", help="print the mail exactly as sent")


def _export(args: argparse.Namespace, settings: Settings) -> str:
    site = site_from(args, settings)
    return to_text(export_calendar(site.records(known_user(site, args.user))))


def _freebusy(args: argparse.Namespace, settings: Settings) -> str:
    site = site_from(args, settings)
    return freebusy(site.records(known_user(site, args.user)), args)


def _log(args: argparse.Namespace, settings: Settings) -> str:
    site = site_from(args, settings)
    return decision_log(known_user(site, args.user), args, settings)


def _prefs(args: argparse.Namespace, settings: Settings) -> str:
    return prefs(normalise_user(args.user), args, settings)


def _what_if(args: argparse.Namespace, settings: Settings) -> str:
    return what_if(normalise_user(args.user), args, settings)


def freebusy(records: UserRecords, args: argparse.Namespace) -> str:
    """The user's free/busy as a VFREEBUSY (RFC 5546 §3.3.1 PUBLISH)."""
    start = _when(args.start, records) if args.start else None
    end = _when(args.end, records) if args.end else None
    start, end = freebusy_span(records, start, end)
    if end <= start:
        raise UsageError("--end must be after --start")
    return to_text(freebusy_calendar(records, start, end))


def _when(text: str, records: UserRecords) -> datetime:
    try:
        return parse_datetime(text, records.zone)
    except ValueError as exc:
        raise UsageError(f"not a date-time: {text!r}") from exc


def decision_log(user: str, args: argparse.Namespace, settings: Settings) -> str:
    """The user's decisions, one a line: time, answer, code, UID, reason."""
    entries = views_decisions.decision_log(site_from(args, settings).store, user)
    if args.json:
        return "".join(entry.line + "\n" for entry in entries)
    return "".join(decision_row(entry) for entry in entries)


def decision_row(entry: views_decisions.Entry) -> str:
    """One decision as a line of ``log`` (and of ``whatif``)."""
    if isinstance(entry, views_decisions.UnreadableLine):
        return f"(unreadable log line) {entry.line[:200]}\n"
    rid = f" [{entry.recurrence_id}]" if entry.recurrence_id else ""
    return (
        f"{entry.time} {entry.answer:<8} {entry.code:<18} "
        f"{entry.uid}{rid} from {entry.organiser}: {entry.reason}\n"
    )


def what_if(user: str, args: argparse.Namespace, settings: Settings) -> str:
    """What imip-resource would decide and send for the message on stdin
    (see :func:`imiptools.views.whatif.what_if`: nothing is changed).

    Returns the decision lines (as ``log`` prints them), a separator, then
    each message that would be sent, each followed by a separator: readable
    (envelope, headers, each part decoded) or, with ``--raw``, as
    :class:`PrintSender` prints it. Unusable calendar data raises as the
    agent does (65).
    """
    raw = read_message(sys.stdin.buffer, settings.max_message_size)
    forecast = views_whatif.what_if(site_from(args, settings), args.user, raw, args.sender)
    printed = io.StringIO()
    printer: Sender = PrintSender(printed) if args.raw else ReadableSender(printed)
    for sent in forecast.messages:
        printer.send(sent.envelope_from, sent.recipients, sent.message)
    decisions = "".join(decision_row(entry) for entry in forecast.decisions)
    return (
        (decisions or f"no decision ({forecast.status})\n")
        + SEPARATOR
        + "\n"
        + (printed.getvalue() or "nothing would be sent\n")
    )


class ReadableSender:
    """A :class:`Sender` that prints each message for a person to read.

    Prints the envelope, the headers (less the MIME ones), then each part
    with its type and its decoded text, then :data:`SEPARATOR`.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def send(self, envelope_from: str, recipients: Sequence[str], message: bytes) -> None:
        """Print ``message``; sends nothing."""
        parsed = email.message_from_bytes(message, policy=policy.default)
        lines = [f"Envelope-From: <{envelope_from}>", f"Envelope-To: {', '.join(recipients)}"]
        lines += [f"{k}: {v}" for k, v in parsed.items() if k.lower() not in _MIME_HEADERS]
        for part in parsed.walk():
            if not part.is_multipart():
                lines += ["", *_part_lines(part)]
        self.stream.write("\n".join(lines) + "\n" + SEPARATOR + "\n")


_MIME_HEADERS = {"mime-version", "content-type", "content-transfer-encoding"}


def _part_lines(part: Message) -> list[str]:
    """``[type; method=...]`` then the part's decoded text (or its size)."""
    method = part.get_param("method")
    label = f"[{part.get_content_type()}{f'; method={method}' if method else ''}]"
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    if part.get_content_maintype() != "text":
        return [label, f"({len(data)} bytes)"]
    text = data.decode(part.get_content_charset() or "utf-8", errors="replace")
    return [label, *text.replace("\r\n", "\n").rstrip("\n").split("\n")]


def prefs(user: str, args: argparse.Namespace, settings: Settings) -> str:
    """get/set/unset/list preferences; values are validated before writing."""
    files = site_from(args, settings).preferences
    effective = Preferences(user, files, settings.preference_defaults)
    if args.action == "list":
        return "".join(
            f"{name} = {effective.get(name)!r}  # {d.help}\n" for name, d in DEFINITIONS.items()
        )
    if not args.name or args.name not in DEFINITIONS:
        raise UsageError(f"unknown preference {args.name!r}; see 'prefs list'")
    if args.action == "get":
        return effective.get(args.name) + "\n"
    if args.action == "unset":
        files.unset(user, args.name)
        return ""
    if args.value is None:
        raise UsageError("prefs set needs a value")
    try:
        files.set(user, args.name, validate(args.name, args.value))
    except ValueError as exc:
        raise UsageError(f"invalid value for {args.name}: {exc}") from exc
    return ""


def run(argv: Sequence[str]) -> ExitCode:
    """Parse the command line, run the subcommand, print its output."""
    args = build_parser().parse_args(argv)
    settings = settings_from(args)
    if args.command != "whatif" or args.verbose:  # a forecast is no decision to log
        setup_logging(args, settings)
    function: Command = args.command_function
    output = function(args, settings)
    sys.stdout.write(output.replace("\r\n", "\n") if sys.stdout.isatty() else output)
    return ExitCode.OK


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console entry point ``imip-admin``."""
    run_program(run, argv)
