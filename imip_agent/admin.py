"""imip-admin: look at and adjust a store (export, free/busy, preferences).

Store options may stand before or after the subcommand. USER is an address
or a ``mailto:`` URI. Exit codes: 0 done, 64 usage, 65 bad value, 75 store
trouble (see ``imiptools.errors``).
"""

from __future__ import annotations

import argparse
import email
import io
import sys
from collections.abc import Sequence
from datetime import datetime
from email import policy
from email.message import Message
from types import ModuleType
from typing import NoReturn, TextIO

from imip_agent import (
    admin_approval,
    admin_install,
    admin_keys,
    admin_mta,
    admin_outbox,
    admin_quota,
    admin_store,
    admin_web,
)
from imip_agent.admin_parser import AdminParser, Command, add_command
from imip_agent.admin_support import known_user, require_site
from imip_agent.cli import (
    add_store_options,
    run_program,
    settings_from,
    setup_logging,
    site_from,
)
from imip_agent.options import DATES, DURATIONS, ENVIRONMENT
from imiptools.config import Settings
from imiptools.dates import parse_datetime
from imiptools.errors import ExitCode, UsageError
from imiptools.itip.objects import to_text
from imiptools.mail.parse import read_message
from imiptools.mail.send import SEPARATOR, PrintSender, Sender
from imiptools.preferences import DEFINITIONS, Preferences, set_validated
from imiptools.records import UserRecords
from imiptools.stores.names import normalise_user
from imiptools.transfer import export_calendar
from imiptools.views import decisions as views_decisions
from imiptools.views import whatif as views_whatif
from imiptools.views.freebusy import freebusy_calendar, freebusy_span, freebusy_table

DESCRIPTION = """\
Set up, look at and look after an imip-agent site: its calendar users and
their mail routing, preferences, quotas, the store and the outbox. The site
options may stand before or after the command. USER is a mail address or a
mailto: URI. 'imip-admin COMMAND --help' shows a command's options and
examples.
"""

EXAMPLES = """\
examples:
  imip-admin -c /etc/imip-agent/imip-agent.toml init --user imip-agent --group imip-agent
  imip-admin add-resource room@example.com --name "Room 1" --tz Europe/Berlin
  imip-admin prefs set room@example.com scheduling_function "schedule_in_freebusy 2"
  imip-admin show room@example.com
  imip-admin check
"""

EXIT_STATUS = """\
exit status:
  0   done
  64  wrong command line
  65  a bad value, or problems found (check)
  67  no such calendar user (or no store where one was given)
  75  store trouble (locked, unreadable): try again
"""

EXPORT = """\
Print a calendar user's events (every stored event, with its overridden
instances) as one iCalendar file on stdout.

example:
  imip-admin export room@example.com > room.ics
"""

FREEBUSY = """\
Print a calendar user's free/busy as an iCalendar VFREEBUSY (METHOD:PUBLISH)
from --start to --end: by default from now over the user's free/busy window.
A --start or --end without Z or an offset is read in the user's TZID.
--format table prints the same periods for people: one booking a line, in
the user's TZID, with the event's name and organiser.

examples:
  imip-admin freebusy room@example.com --start 2030-01-07 --end 2030-01-14
  imip-admin freebusy room@example.com --start 2030-01-07T08:00:00Z --end 2030-01-07T18:00:00Z
  imip-admin freebusy room@example.com --format table
"""

LOG = """\
Show the decisions a resource made, one a line: when, the answer, its code,
the event's UID (and instance), the organiser and the reason given. --json
prints the log's lines as stored (JSON objects).

example:
  imip-admin log room@example.com
  imip-admin log room@example.com --json | jq -r .reason
"""

PREFS = """\
Get, set, unset or list a calendar user's preferences. set checks the value
first (a scheduling function must exist and accept its arguments; a time zone
must be known; a duration must be one) and refuses a bad one; list shows every
preference with its effective value. Each preference is described in the
manual (Preferences).

examples:
  imip-admin prefs list room@example.com
  imip-admin prefs get room@example.com TZID
  imip-admin prefs set room@example.com TZID Europe/Berlin
  imip-admin prefs set room@example.com max_duration PT4H
  imip-admin prefs set room@example.com scheduling_function "schedule_in_freebusy 2"
  imip-admin prefs set room@example.com scheduling_function \\
      $'check_quota rooms\\nschedule_in_freebusy'            (two lines)
  imip-admin prefs unset room@example.com max_duration
"""

WHATIF = """\
Show what imip-resource would answer to the message on stdin, as the resource
stands now, without changing or sending anything: the decision as 'log' shows
it, then each message that would be sent.

example:
  imip-admin whatif room@example.com < invitation.eml
  imip-admin --now 2030-01-07T09:00:00Z whatif room@example.com --raw < invitation.eml
"""

#: The modules that add subcommands: each has ``add_commands(commands)``,
#: which adds subparsers (:func:`~imip_agent.admin_parser.add_command`) and
#: sets their ``command_function`` default (a Command). Keeps this module
#: small; every group of subcommands lives in its own.
COMMAND_MODULES: tuple[ModuleType, ...] = (
    admin_quota,
    admin_store,
    admin_install,
    admin_outbox,
    admin_mta,
    admin_approval,
    admin_keys,
    admin_web,
)
#: The help of a USER argument.
USER_HELP = "a calendar user: mail address or mailto: URI"


def build_parser() -> AdminParser:
    """The imip-admin command line."""
    parser = AdminParser(
        prog="imip-admin",
        usage="%(prog)s [OPTIONS] COMMAND [ARGUMENTS]",
        description=DESCRIPTION,
        epilog="\n".join((EXAMPLES, DATES, DURATIONS, ENVIRONMENT, EXIT_STATUS)),
    )
    add_store_options(parser)
    commands = parser.add_subparsers(dest="command", title="commands")
    add_commands(commands)
    for module in COMMAND_MODULES:
        module.add_commands(commands)
    return parser


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The subcommands of this module: export, freebusy, log, prefs, whatif."""
    export = add_command(
        commands, "export", _export, "print a user's calendar as iCalendar", EXPORT
    )
    export.add_argument("user", help=USER_HELP)
    freebusy = add_command(
        commands, "freebusy", _freebusy, "print a user's free/busy (VFREEBUSY)", FREEBUSY
    )
    freebusy.add_argument("user", help=USER_HELP)
    freebusy.add_argument("--start", metavar="DATE-TIME", help="start (default: now)")
    freebusy.add_argument(
        "--end", metavar="DATE-TIME", help="end (default: the end of the user's window)"
    )
    freebusy.add_argument(
        "--format",
        choices=["ical", "table"],
        default="ical",
        help="ical: a VFREEBUSY (the default); table: for people to read",
    )
    log = add_command(commands, "log", _log, "show a resource's decisions", LOG)
    log.add_argument("user", metavar="RESOURCE", help=USER_HELP)
    log.add_argument("--json", action="store_true", help="print the JSON lines as stored")
    prefs_ = add_command(commands, "prefs", _prefs, "get, set, unset or list preferences", PREFS)
    prefs_.add_argument("action", choices=["get", "set", "list", "unset"], help="what to do")
    prefs_.add_argument("user", help=USER_HELP)
    prefs_.add_argument("name", nargs="?", help="the preference (get, set, unset)")
    prefs_.add_argument("value", nargs="?", help="its new value (set)")
    whatif = add_command(
        commands,
        "whatif",
        _what_if,
        "show what imip-resource would answer to the message on stdin",
        WHATIF,
    )
    whatif.add_argument("user", metavar="RESOURCE", help=USER_HELP)
    whatif.add_argument(
        "--sender", metavar="ADDRESS", help="envelope sender (default: the message's From)"
    )
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
    """The user's free/busy as a VFREEBUSY (RFC 5546 §3.3.1 PUBLISH), or with
    ``--format table`` as a table for people."""
    start = _when(args.start, records) if args.start else None
    end = _when(args.end, records) if args.end else None
    start, end = freebusy_span(records, start, end)
    if end <= start:
        raise UsageError("--end must be after --start")
    if args.format == "table":
        return freebusy_table(records, start, end)
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
    site = site_from(args, settings)
    if args.action in ("set", "unset"):
        require_site(site, "preferences")  # never a new directory where a path is mistyped
    files = site.preferences
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
        set_validated(files, user, args.name, args.value)
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
