"""imip-client: a mail client's JSON interface to a user's calendar (issue 19).

Reads one message (as the client decrypted it) or a bare calendar part,
from a file or stdin, and answers with one JSON document on stdout
(``format_version``; the schema is
``imiptools/schema/imip-client.schema.json``): what the message is
(``inspect``), what recording it did (``apply``), the REPLY to send
(``respond``), what waits (``pending``), the agenda and free/busy. The
work is :mod:`imiptools.client`'s; outgoing messages are in the output
for the client to sign, encrypt and send, unless ``--send`` hands them to
sendmail. Every error is a JSON document too, with a stable code and its
own exit status (:data:`imiptools.errors.CLIENT_ERRORS`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import secrets
import socket
import sys
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta, tzinfo
from datetime import time as dt_time
from pathlib import Path
from typing import Any, NoReturn

from imip_agent.cli import settings_from
from imip_agent.options import DATES, ENVIRONMENT, add_store_options
from imip_agent.parsing import Parser
from imiptools import addresses
from imiptools.client import (
    Applied,
    Draft,
    Inspection,
    Invitee,
    Message,
    Revision,
    UserCalendar,
    open_calendar,
)
from imiptools.config import ENV_CONFIG, Settings
from imiptools.dates import Clock, FixedClock, SystemClock, parse_datetime, resolve_zone
from imiptools.errors import (
    CLIENT_ERRORS,
    ClientError,
    DeliveryFailed,
    ImipError,
    InputError,
    UsageError,
)
from imiptools.mail.parse import Security
from imiptools.mail.send import SendmailSender
from imiptools.views.freetime import WORKDAYS, Search

log = logging.getLogger("imip_agent.client")

#: The version of the JSON documents (raised when a field changes meaning
#: or goes; new fields keep it).
FORMAT_VERSION = 1
#: The commands (the ``command`` of a document).
COMMANDS = (
    "inspect",
    "apply",
    "respond",
    "counter",
    "decline-counter",
    "create",
    "update",
    "cancel",
    "pending",
    "agenda",
    "freebusy",
    "free-time",
    "export",
)
#: Other names of commands: ``process`` is ``apply`` (the word of the
#: seed's "process-based integration").
ALIASES = {"apply": ["process"]}
#: The commands that read a message and answer with its inspection.
MESSAGE_COMMANDS = ("inspect", "apply", "respond", "counter", "decline-counter")
#: The user's addresses when no --identity is given (commas or spaces
#: between them), and the local calendar when no --calendar is: mail
#: clients set them once (NeoMutt's ``setenv``), not in every command.
ENV_IDENTITY = "IMIP_CLIENT_IDENTITY"
ENV_CALENDAR = "IMIP_CLIENT_CALENDAR"
ENV_POSTPONE = "IMIP_CLIENT_POSTPONE"
#: A header field name (RFC 5322 §3.6.8: printable ASCII but the colon).
HEADER_NAME = re.compile(r"[!-9;-~]{1,76}")
CLIENT_ENVIRONMENT = f"""\
  {ENV_IDENTITY}  the user's addresses when --identity is not given
                        (separated by commas or spaces)
  {ENV_CALENDAR}  the local calendar when --calendar is not given
  {ENV_POSTPONE}  the Maildir of --postpone when it is not given
"""
#: How far ``agenda`` looks without ``--to``.
AGENDA_DAYS = 30

DESCRIPTION = """\
A mail client's interface to a user's calendar. It reads one message (the
whole message as the client decrypted it, or a bare text/calendar part)
from FILE or stdin and prints one JSON document: what the message is
(inspect), what recording it changed (apply), the REPLY to send (respond),
or the user's waiting requests, agenda and free/busy. It never sends mail
unless --send is given: the client signs, encrypts and sends what the
document's "outgoing" holds. The user's calendar is a site's (-c FILE) or a
local one (--calendar DIR, default ~/.local/share/imip-agent, created on
first use); --identity names the user's addresses (repeat it).
"""

EXIT_STATUS = (
    "exit status:\n  0   done\n"
    + "".join(
        f"  {status:<3} {code}\n"
        for code, status in sorted(CLIENT_ERRORS.items(), key=lambda i: i[1])
    )
    + "  (the number is the document's error.exit_status, the word its error.code)\n"
)

EXAMPLE = """\
examples:
  show an invitation (a mailcap entry: text/calendar; imip-client --identity
  bob@example.com inspect --text %s; copiousoutput):
    imip-client --identity bob@example.com inspect --text invitation.eml
  accept it; the JSON holds the REPLY for the client to send:
    imip-client --identity bob@example.com respond --partstat accepted < invitation.eml
  record an attendee's answer in the organiser's calendar:
    imip-client --identity alice@example.com apply reply.eml
  the next week's busy time:
    imip-client --identity bob@example.com freebusy --from 2030-01-07 --to 2030-01-14
"""

#: Each command: its help, its example, whether it reads a message.
COMMAND_HELP = {
    "inspect": (
        "what the message is (changes nothing)",
        "imip-client inspect --identity bob@example.com invitation.eml",
        True,
    ),
    "apply": (
        "record the message (REQUEST, CANCEL, REPLY, COUNTER...) as the agents do",
        "imip-client apply --identity alice@example.com reply.eml",
        True,
    ),
    "respond": (
        "answer an invitation; the document holds the REPLY",
        "imip-client respond --identity bob@example.com --partstat declined \\\n"
        "      --recurrence-id 20300115T100000Z --comment 'Away that day' < invitation.eml",
        True,
    ),
    "counter": (
        "propose another time (COUNTER); the document holds it",
        "imip-client counter --identity bob@example.com \\\n"
        "      --start 2030-01-08T14:00Z --end 2030-01-08T15:00Z < invitation.eml",
        True,
    ),
    "decline-counter": (
        "as the organiser, decline a counter-proposal (DECLINECOUNTER)",
        "imip-client decline-counter --identity alice@example.com --comment 'No' < counter.eml",
        True,
    ),
    "create": (
        "as the organiser, invite people, rooms and resources (REQUEST)",
        "imip-client create --identity alice@example.com --summary Planning \\\n"
        "      --start 2030-01-08T10:00 --end 2030-01-08T11:00 --tzid Europe/Berlin \\\n"
        "      --attendee bob@example.com --room room@example.com --rrule FREQ=WEEKLY;COUNT=4",
        False,
    ),
    "update": (
        "as the organiser, change an event and invite again (REQUEST, SEQUENCE + 1)",
        "imip-client update --identity alice@example.com --uid planning@example.com \\\n"
        "      --start 2030-01-08T11:00 --end 2030-01-08T12:00",
        False,
    ),
    "cancel": (
        "as the organiser, cancel an event or one instance (CANCEL)",
        "imip-client cancel --identity alice@example.com --uid planning@example.com",
        False,
    ),
    "pending": (
        "what waits for the user's answer",
        "imip-client pending --identity bob@example.com",
        False,
    ),
    "agenda": (
        "the user's events (default: the next 30 days)",
        "imip-client agenda --identity bob@example.com --from 2030-01-07 --to 2030-01-14",
        False,
    ),
    "freebusy": (
        "the user's busy periods",
        "imip-client freebusy --identity bob@example.com --from 2030-01-07 --to 2030-01-14",
        False,
    ),
    "free-time": (
        "the first slots in which the user and others are free",
        "imip-client free-time --identity alice@example.com --duration 60 \\\n"
        "      --from 2030-01-07 --to 2030-01-12 --with bob@example.com",
        False,
    ),
    "export": (
        "write the events to a vdir (one .ics file each) for khal and vdirsyncer",
        "imip-client export --identity bob@example.com --vdir ~/.calendars/imip",
        False,
    ),
}


class ClientParser(Parser):
    """A wrong command line is the ``usage`` error (64)."""

    error_class = UsageError


def parser() -> Parser:
    """The command line of imip-client (the manual's reference is made from it)."""
    top = ClientParser(
        prog="imip-client",
        usage="%(prog)s [OPTIONS] --identity ADDRESS COMMAND [ARGUMENTS] [FILE]",
        description=DESCRIPTION,
        epilog=f"{EXAMPLE}\n{DATES}\n{ENVIRONMENT}{CLIENT_ENVIRONMENT}\n{EXIT_STATUS}",
    )
    add_store_options(top)
    _client_options(top)
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    subs = {}
    for name, (text, example, reads) in COMMAND_HELP.items():
        epilog = f"example:\n  {example}\n" if example else None
        aliases = ALIASES.get(name, [])
        sub = commands.add_parser(name, aliases=aliases, help=text, description=text, epilog=epilog)
        add_store_options(sub, suppress=True)
        _client_options(sub, suppress=True)
        if reads:
            sub.add_argument("file", nargs="?", default="-", help="the message (default: stdin)")
        subs[name] = sub
    apply = subs["apply"]
    apply.add_argument(
        "--any-sender", action="store_true", help="accept a sender who is not the participant"
    )
    apply.add_argument(
        "--sent", action="store_true", help="a message the user sent (as imip-person-outgoing)"
    )
    respond = subs["respond"]
    respond.add_argument(
        "--partstat", required=True, choices=("accepted", "tentative", "declined", "delegated")
    )
    respond.add_argument(
        "--delegate-to", default="", metavar="ADDRESS", help="the delegate (with delegated)"
    )
    for name in ("respond", "counter"):
        which = subs[name].add_mutually_exclusive_group()
        which.add_argument("--recurrence-id", metavar="R", help="one instance only")
        which.add_argument("--all", action="store_true", help="the whole event (the default)")
    counter = subs["counter"]
    counter.add_argument("--start", required=True, metavar="DATE-TIME", help="proposed start")
    counter.add_argument("--end", required=True, metavar="DATE-TIME", help="proposed end")
    for name in ("respond", "counter", "decline-counter", "cancel"):
        subs[name].add_argument("--comment", default="", metavar="TEXT", help="a COMMENT")
    _create_options(subs["create"])
    _update_options(subs["update"])
    _free_time_options(subs["free-time"])
    cancel = subs["cancel"]
    cancel.add_argument("--uid", required=True, help="the event's UID")
    cancel.add_argument("--recurrence-id", metavar="R", help="cancel one instance only")
    subs["export"].add_argument("--vdir", required=True, metavar="DIR", help="the vdir")
    _span(subs["agenda"], required=False)
    _span(subs["freebusy"], required=True)
    return top


def _update_options(sub: Parser) -> None:
    """``update``'s changes: only the options given change the event."""
    add = sub.add_argument
    add("--uid", required=True, help="the event's UID")
    add("--summary", metavar="TEXT")
    add("--start", metavar="DATE-TIME")
    add("--end", metavar="DATE-TIME")
    add("--tzid", metavar="ZONE", help="the zone of times without one (default: TZID pref)")
    add("--location", metavar="TEXT", help="'' removes it")
    add("--description", metavar="TEXT", help="'' removes it")
    add("--rrule", metavar="RULE", help="'' removes the recurrence")
    add("--attendee", action="append", default=[], metavar="ADDRESS", help="invite as well")
    add("--room", action="append", default=[], metavar="ADDRESS", help="invite a room as well")


def _free_time_options(sub: Parser) -> None:
    """``free-time``'s search."""
    add = sub.add_argument
    add("--duration", type=int, required=True, metavar="MINUTES")
    add("--from", dest="start", metavar="DATE-TIME", help="default: now")
    add("--to", dest="end", metavar="DATE-TIME", help="default: 14 days later")
    add("--with", dest="others", action="append", default=[], metavar="ADDRESS")
    add("--count", type=int, default=3, metavar="N", help="how many slots (default 3)")
    add("--step", type=int, default=30, metavar="MINUTES", help="default 30")
    add("--hours", default="09:00-17:00", metavar="HH:MM-HH:MM", help="in the user's zone")
    add("--weekends", action="store_true", help="also on Saturdays and Sundays")


def _create_options(sub: Parser) -> None:
    """``create``'s description of the event (RFC 5545 §3.6.1)."""
    add = sub.add_argument
    add("--summary", required=True, metavar="TEXT")
    add("--start", required=True, metavar="DATE-TIME", help="a date for an all-day event")
    add("--end", metavar="DATE-TIME", help="default: an hour, or a day, after the start")
    add("--tzid", metavar="ZONE", help="the zone of times without one (default: TZID pref)")
    add("--attendee", action="append", default=[], metavar="ADDRESS", help="repeat for each")
    add("--optional", action="append", default=[], metavar="ADDRESS", help="OPT-PARTICIPANT")
    add("--room", action="append", default=[], metavar="ADDRESS", help="CUTYPE=ROOM")
    add("--resource", action="append", default=[], metavar="ADDRESS", help="CUTYPE=RESOURCE")
    add("--location", default="", metavar="TEXT")
    add("--description", default="", metavar="TEXT")
    add("--category", action="append", default=[], metavar="TEXT", help="repeat for each")
    add("--rrule", default="", metavar="RULE", help="e.g. FREQ=WEEKLY;BYDAY=TU;COUNT=10")
    add("--uid", default="", help="default: a new unique one")


def _client_options(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    """imip-client's own options, before or after the command."""
    group = parser.add_argument_group("calendar options")
    add = group.add_argument
    flag = argparse.SUPPRESS if suppress else False
    add(
        "--identity",
        action="append",
        default=argparse.SUPPRESS if suppress else [],
        metavar="ADDRESS",
        help="the user's address (repeat for each)",
    )
    add(
        "--calendar",
        default=argparse.SUPPRESS if suppress else None,
        metavar="DIR",
        help="a local calendar, made on first use (default ~/.local/share/imip-agent);"
        " a site's when -c, -S or IMIP_AGENT_CONFIG is given",
    )
    add(
        "--encrypted",
        action="store_true",
        default=flag,
        help="the message came encrypted (the client decrypted it)",
    )
    add(
        "--signed-by",
        action="append",
        default=argparse.SUPPRESS if suppress else [],
        metavar="ADDRESS",
        help="the client verified a valid OpenPGP signature by a key of ADDRESS (repeat"
        " for each of its addresses); require_signature reads it",
    )
    add(
        "--signer-key",
        default=argparse.SUPPRESS if suppress else "",
        metavar="FINGERPRINT",
        help="the fingerprint of that key (kept in the decision log)",
    )
    add("--dry-run", action="store_true", default=flag, help="change nothing")
    add("--text", action="store_true", default=flag, help="lines for people, not JSON")
    add("--send", action="store_true", default=flag, help="hand outgoing mail to sendmail")
    add(
        "--postpone",
        default=argparse.SUPPRESS if suppress else None,
        metavar="MAILDIR",
        help="put outgoing mail in this Maildir (the client's postponed messages) to be"
        " recalled, signed, encrypted and sent by the mail client",
    )
    add(
        "--postpone-header",
        action="append",
        default=argparse.SUPPRESS if suppress else [],
        metavar="'NAME: VALUE'",
        help="a header for the postponed message ('X-Mutt-PGP: ES' has neomutt sign and"
        " encrypt it)",
    )
    add(
        "--sendmail",
        default=argparse.SUPPRESS if suppress else None,
        metavar="CMD",
        help="the sendmail command of --send (default: the configuration's, else"
        f" {Settings().sendmail})",
    )


def _span(sub: Parser, required: bool) -> None:
    sub.add_argument("--from", dest="start", required=required, metavar="DATE-TIME")
    sub.add_argument("--to", dest="end", required=required, metavar="DATE-TIME")


def run(argv: Sequence[str]) -> tuple[int, str]:
    """Run one command: the exit status and what to print."""
    try:
        args = parser().parse_args(argv)
        _setup_logging(args.verbose, args.log_file)
        args.command = next((n for n, a in ALIASES.items() if args.command in a), args.command)
        document = {"format_version": FORMAT_VERSION, "command": args.command, "ok": True}
        text = _dispatch(args, document)
        if text is None and args.text:
            text = document_text(document, getattr(args, "sent_lines", []))
        return 0, text if text is not None else _dump(document)
    except ClientError as exc:
        return _error(exc.code, str(exc), argv)
    except UsageError as exc:
        return _error("usage", str(exc), argv)
    except DeliveryFailed as exc:
        return _error("send_failed", str(exc), argv)
    except InputError as exc:
        return _error("parse_error", str(exc), argv)
    except ImipError as exc:
        return _error("unavailable", str(exc), argv)
    except ValueError as exc:
        return _error("usage", str(exc), argv)
    except OSError as exc:
        return _error("no_input", f"{exc.filename}: {exc.strerror}", argv)


def _dispatch(args: argparse.Namespace, document: dict[str, Any]) -> str | None:
    if not args.identity:
        args.identity = os.environ.get(ENV_IDENTITY, "").replace(",", " ").split()
    if not args.identity:
        raise UsageError(f"imip-client: --identity ADDRESS (or {ENV_IDENTITY}) is required")
    calendar = _calendar(args)
    document["identities"] = [u.removeprefix("mailto:") for u in calendar.identities]
    command = args.command
    if command in ("pending", "agenda", "freebusy", "free-time", "export"):
        _listing(calendar, args, document)
        return None
    if command in ("create", "update", "cancel"):
        document["result"] = _result(_organise(calendar, args), args, calendar)
        return None
    message = calendar.read(_read_input(args.file), _security(args))
    seen = calendar.inspect(message)
    if command == "inspect" and args.text:
        return summary(seen)
    document["inspection"] = seen.as_dict()
    if command == "inspect":
        return None
    document["result"] = _result(_answer(calendar, message, args), args, calendar)
    return None


def _security(args: argparse.Namespace) -> Security | None:
    """What the client says it found (``--encrypted``, ``--signed-by``,
    ``--signer-key``); None when it says nothing."""
    signers = tuple(addresses.normalise(a) for a in args.signed_by)
    if not (args.encrypted or signers or args.signer_key):
        return None
    if args.signer_key and not signers:
        raise UsageError("imip-client: --signer-key needs --signed-by ADDRESS")
    signer = args.signer_key or ("verified by the mail client" if signers else "")
    return Security(
        encrypted=args.encrypted, signed=bool(signers), signer=signer, signer_addresses=signers
    )


def _answer(calendar: UserCalendar, message: Message, args: argparse.Namespace) -> Applied:
    """Run ``apply``, ``respond``, ``counter`` or ``decline-counter``."""
    dry_run = args.dry_run
    if args.command == "apply":
        return calendar.apply(message, dry_run=dry_run, any_sender=args.any_sender, sent=args.sent)
    if args.command == "decline-counter":
        return calendar.decline_counter(message, comment=args.comment, dry_run=dry_run)
    if args.command == "counter":
        return calendar.counter(
            message,
            _when(args.start, "--start"),
            _when(args.end, "--end"),
            recurrence_id=args.recurrence_id,
            comment=args.comment,
            dry_run=dry_run,
        )
    return calendar.respond(
        message,
        args.partstat,
        recurrence_id=args.recurrence_id,
        comment=args.comment,
        delegate_to=args.delegate_to,
        dry_run=dry_run,
    )


def _organise(calendar: UserCalendar, args: argparse.Namespace) -> Applied:
    """Run ``create`` or ``cancel``."""
    if args.command == "cancel":
        return calendar.cancel(
            args.uid, recurrence_id=args.recurrence_id, comment=args.comment, dry_run=args.dry_run
        )
    if args.command == "update":
        return calendar.update(args.uid, _revision(calendar, args), dry_run=args.dry_run)
    return calendar.create(_draft(calendar, args), dry_run=args.dry_run)


def _revision(calendar: UserCalendar, args: argparse.Namespace) -> Revision:
    """The changes ``update``'s options ask for; times without an offset
    are in the event's own zone (its DTSTART's), unless --tzid names one."""
    zone = _zone(calendar, args.tzid)
    stored = calendar.site.records(calendar.user).stored(args.uid)
    first = stored.first.decoded("DTSTART") if stored and "DTSTART" in stored.first else None
    if not args.tzid and isinstance(first, datetime) and first.tzinfo is not None:
        zone = first.tzinfo
    start = _moment(args.start, "--start", zone) if args.start else None
    end = _moment(args.end, "--end", zone) if args.end else None
    invitees = (
        *(Invitee(a) for a in args.attendee),
        *(Invitee(a, role="NON-PARTICIPANT", cutype="ROOM") for a in args.room),
    )
    return Revision(
        summary=args.summary,
        start=start,
        end=end,
        location=args.location,
        description=args.description,
        rrule=args.rrule,
        invitees=invitees,
    )


def _zone(calendar: UserCalendar, tzid: str | None) -> tzinfo:
    """The zone named by --tzid, else the user's (TZID preference)."""
    if not tzid:
        return calendar.site.records(calendar.user).zone
    found = resolve_zone(tzid)
    if found is None:
        raise UsageError(f"imip-client: --tzid: unknown time zone {tzid[:100]!r}")
    return found


def _free_time(calendar: UserCalendar, args: argparse.Namespace) -> dict[str, Any]:
    zone = calendar.site.records(calendar.user).zone
    start = _when(args.start, "--from") if args.start else calendar.site.clock.now()
    end = _when(args.end, "--to") if args.end else start + timedelta(days=14)
    first, _, last = args.hours.partition("-")
    try:
        hours = (dt_time.fromisoformat(first), dt_time.fromisoformat(last))
    except ValueError as exc:
        raise UsageError(f"imip-client: --hours: not HH:MM-HH:MM: {args.hours!r}") from exc
    search = Search(
        start=start,
        end=end,
        duration=timedelta(minutes=args.duration),
        step=timedelta(minutes=args.step),
        hours=hours,
        days=frozenset(range(7)) if args.weekends else WORKDAYS,
        zone=zone,
    )
    return calendar.free_time(search, args.others, max(1, args.count)).as_dict()


def _draft(calendar: UserCalendar, args: argparse.Namespace) -> Draft:
    """The event ``create``'s options describe."""
    zone = _zone(calendar, args.tzid)
    start = _moment(args.start, "--start", zone)
    end = _moment(args.end, "--end", zone) if args.end else _default_end(start)
    invitees = [
        *(Invitee(a) for a in args.attendee),
        *(Invitee(a, role="OPT-PARTICIPANT") for a in args.optional),
        *(Invitee(a, role="NON-PARTICIPANT", cutype="ROOM") for a in args.room),
        *(Invitee(a, role="NON-PARTICIPANT", cutype="RESOURCE") for a in args.resource),
    ]
    return Draft(
        summary=args.summary,
        start=start,
        end=end,
        invitees=tuple(invitees),
        location=args.location,
        description=args.description,
        rrule=args.rrule,
        uid=args.uid,
        categories=tuple(args.category),
    )


def _moment(text: str, option: str, zone: tzinfo) -> date | datetime:
    """A date (``2030-01-08``, ``20300108``: all day) or a date-time, in
    ``zone`` when it gives no offset."""
    bare = text.strip()
    if (len(bare) == 8 and bare.isdigit()) or (len(bare) == 10 and bare[4:5] == "-"):
        try:
            return parse_datetime(bare).date()
        except ValueError as exc:
            raise UsageError(f"imip-client: {option}: not a date: {text!r}") from exc
    try:
        return parse_datetime(bare, zone)
    except ValueError as exc:
        raise UsageError(f"imip-client: {option}: not a date-time: {text!r}") from exc


def _default_end(start: date | datetime) -> date | datetime:
    if isinstance(start, datetime):
        return start + timedelta(hours=1)
    return start + timedelta(days=1)


def _listing(calendar: UserCalendar, args: argparse.Namespace, document: dict[str, Any]) -> None:
    if args.command == "export":
        document["export"] = calendar.export_vdir(Path(args.vdir).expanduser()).as_dict()
        return
    if args.command == "free-time":
        document["free_time"] = _free_time(calendar, args)
        return
    if args.command == "pending":
        document["pending"] = [w.as_dict() for w in calendar.pending()]
        return
    now = calendar.site.clock.now()
    start = _when(args.start, "--from") if args.start else now
    end = _when(args.end, "--to") if args.end else start + timedelta(days=AGENDA_DAYS)
    found = (calendar.agenda if args.command == "agenda" else calendar.freebusy)(start, end)
    document["span"] = {"start": f"{start:%Y%m%dT%H%M%SZ}", "end": f"{end:%Y%m%dT%H%M%SZ}"}
    document[args.command] = [e.as_dict() for e in found]


def _result(done: Applied, args: argparse.Namespace, calendar: UserCalendar) -> dict[str, Any]:
    result = done.as_dict()
    result["sent"] = []
    postpone: str = args.postpone or os.environ.get(ENV_POSTPONE, "")
    if done.dry_run or not (args.send or postpone):
        return result
    args.sent_lines = []
    if args.send:
        sender = SendmailSender(args.sendmail or calendar.site.settings.sendmail)
        for outgoing in done.outgoing:
            sender.send(outgoing.envelope_from, outgoing.recipients, outgoing.message)
            result["sent"].append(outgoing.message_id)
            args.sent_lines.append(f"{outgoing.subject}: sent to {', '.join(outgoing.recipients)}")
    else:
        result["postponed"] = []
        for outgoing in done.outgoing:
            message = _with_headers(outgoing.message, args.postpone_header)
            result["postponed"].append(str(postpone_message(Path(postpone), message)))
            args.sent_lines.append(f"{outgoing.subject}: postponed for {outgoing.to}")
    result["outgoing"] = []
    return result


def _with_headers(message: bytes, headers: Sequence[str]) -> bytes:
    """``message`` with ``headers`` (``Name: value``) put first; UsageError
    for one that is not a header field (RFC 5322 §2.2)."""
    lines = []
    for header in headers:
        name, colon, value = header.partition(":")
        if not colon or not HEADER_NAME.fullmatch(name) or not value.strip().isprintable():
            raise UsageError(f"imip-client: --postpone-header: not a header: {header[:100]!r}")
        lines.append(f"{name}: {value.strip()}\r\n".encode())
    return b"".join(lines) + message


def postpone_message(maildir: Path, message: bytes) -> Path:
    """Deliver ``message`` into the Maildir ``maildir`` (made when missing),
    where a mail client keeps its postponed messages (NeoMutt's
    ``$postponed``): written in ``tmp/``, then renamed into ``new/``, as
    Maildir delivery does. Returns the new file."""
    for name in ("tmp", "new", "cur"):
        (maildir / name).mkdir(parents=True, exist_ok=True)
    unique = f"{time.time_ns()}.P{os.getpid()}R{secrets.token_hex(4)}.{socket.gethostname()}"
    scratch = maildir / "tmp" / unique
    scratch.write_bytes(message.replace(b"\r\n", b"\n"))
    final = maildir / "new" / unique
    os.rename(scratch, final)
    return final


def _calendar(args: argparse.Namespace) -> UserCalendar:
    clock: Clock = SystemClock()
    if args.now:
        clock = FixedClock(_when(args.now, "--now"))
    site = args.config or args.store or os.environ.get(ENV_CONFIG)
    if not args.calendar and site and not os.environ.get(ENV_CALENDAR):
        return open_calendar(settings_from(args), args.identity, clock)
    where = args.calendar or os.environ.get(ENV_CALENDAR)
    location = Path(where).expanduser() if where else None
    return open_calendar(location, args.identity, clock, create=True)


def _when(text: str, option: str) -> datetime:
    try:
        return parse_datetime(text)
    except ValueError as exc:
        raise UsageError(f"imip-client: {option}: not a date-time: {text!r}") from exc


def _read_input(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    return Path(name).read_bytes()


def summary(seen: Inspection) -> str:
    """The inspection for people (``inspect --text``, a mailcap view)."""
    lines = []
    for obj in seen.objects:
        organiser = obj.organiser.address if obj.organiser else "?"
        lines += [
            f"{obj.method} {obj.summary or '(no title)'}",
            f"  when:      {obj.start} - {obj.end}",
            f"  organiser: {organiser}",
        ]
        if obj.location:
            lines.append(f"  where:     {obj.location}")
        for attendee in obj.attendees:
            lines.append(f"  attendee:  {attendee.address} {attendee.partstat}".rstrip())
        lines.append(
            f"  state:     {obj.state}" + (f" ({', '.join(obj.changes)})" if obj.changes else "")
        )
        if obj.user_partstat:
            lines.append(f"  you:       {obj.user} {obj.user_partstat}")
        for clash in obj.clashes:
            lines.append(f"  clashes:   {clash.summary or clash.uid} {clash.start}-{clash.end}")
        if obj.actions:
            lines.append(f"  actions:   {', '.join(obj.actions)}")
    return "\n".join("".join(c if c.isprintable() else " " for c in line) for line in lines) + "\n"


def document_text(document: dict[str, Any], sent: Sequence[str] = ()) -> str:
    """A document for people (``--text``): one line per message (``sent``
    names those --send handed to sendmail), entry or waiting item, so that
    a mail client's key binding can show it."""
    lines = list(sent)
    result = document.get("result")
    if result is not None:
        for item in result["outgoing"]:
            lines.append(f"{item['subject']}: to send to {', '.join(item['recipients'])}")
        if not lines:
            lines.append(f"recorded: {len(result['changes'])} change(s)")
    for item in document.get("pending", []):
        lines.append(f"{item['kind']} {item['summary'] or item['uid']} {item['recurrence_id']}")
    for name in ("agenda", "freebusy"):
        for entry in document.get(name, []):
            lines.append(f"{entry['start']}-{entry['end']} {entry['summary']} {entry['status']}")
    for slot in document.get("free_time", {}).get("slots", []):
        lines.append(f"free {slot['start']}-{slot['end']}")
    for who in document.get("free_time", {}).get("unknown", []):
        lines.append(f"unknown: no free/busy of {who}")
    if "export" in document:
        done = document["export"]
        lines.append(
            f"{done['directory']}: {done['written']} written, {done['unchanged']} unchanged,"
            f" {done['removed']} removed"
        )
    cleaned = ("".join(c if c.isprintable() else " " for c in line).rstrip() for line in lines)
    return "\n".join(cleaned) + "\n" if lines else ""


def _error(code: str, message: str, argv: Sequence[str]) -> tuple[int, str]:
    status = CLIENT_ERRORS[code]
    if "--text" in argv:
        return status, f"imip-client: {code}: {' '.join(message.split())[:500]}\n"
    command = next((word for word in argv if word in COMMANDS), "")
    document = {
        "format_version": FORMAT_VERSION,
        "command": command,
        "ok": False,
        "error": {"code": code, "message": " ".join(message.split())[:500], "exit_status": status},
    }
    return status, _dump(document)


def _dump(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _setup_logging(verbose: int, log_file: str | None) -> None:
    """Log to stderr with -v, to a file with --log; else nowhere (stdout is
    the document, and a mail client shows stderr to its user)."""
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
    if verbose:
        root.addHandler(logging.StreamHandler(sys.stderr))
    if log_file:
        root.addHandler(logging.FileHandler(log_file, encoding="utf-8"))


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console entry point ``imip-client``: internal errors are JSON too (70)."""
    logging.getLogger().addHandler(logging.NullHandler())
    try:
        status, text = run(sys.argv[1:] if argv is None else argv)
    except Exception as exc:  # the boundary: a bug is an error document, logged
        log.exception("internal error")
        status, text = _error("internal_error", f"{type(exc).__name__}: {exc}", [])
    sys.stdout.write(text)
    sys.stdout.flush()
    sys.exit(status)
