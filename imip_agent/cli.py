"""What every program shares: options, settings, logging, the exit boundary.

Only programs touch ``sys.argv``, stdin/stdout and ``sys.exit``. Under an
MTA a program prints at most one line (an RFC 3463 status) and exits with a
code from :class:`imiptools.errors.ExitCode`; it never exits 2 and never
prints a traceback (tracebacks go to the log).
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from imiptools import agent
from imiptools.config import Settings, load_settings
from imiptools.dates import Clock, FixedClock, SystemClock, parse_datetime
from imiptools.errors import ConfigError, ExitCode, ImipError, UsageError
from imiptools.handlers.common import Envelope
from imiptools.mail.parse import read_message
from imiptools.mail.send import (
    DirectorySender,
    PrintSender,
    Sender,
    SendmailSender,
    SmtpSender,
    parse_smtp_target,
)
from imiptools.preferences_store import PreferenceFiles
from imiptools.spool import Spool
from imiptools.stores.file import FileStore

log = logging.getLogger("imip_agent")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting 2.

    ``error_class`` is ConfigError for agents (75: the MTA keeps the mail)
    and UsageError for imip-admin (64).
    """

    error_class: type[ImipError] = ConfigError

    def error(self, message: str) -> NoReturn:
        raise self.error_class(f"{self.prog}: {message}")


def add_store_options(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    """The store options shared by every program (before or after subcommands)."""
    default = argparse.SUPPRESS if suppress else None
    add = parser.add_argument
    add("-c", "--config", default=default, help="configuration file (TOML)")
    add("-S", "--store", default=default, help="store directory")
    add("-p", "--preferences", default=default, help="preferences directory")
    add("-j", "--journal", default=default, help="quota journal directory")
    add("-P", "--publishing", default=default, help="free/busy publishing directory")
    add("--now", default=default, help="act as if it were this time (ISO 8601 or iCalendar)")
    add(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if suppress else 0,
        help="log to stderr (repeat for debug)",
    )
    add("--log", dest="log_file", default=default, help="log to this file")


def add_agent_options(parser: argparse.ArgumentParser) -> None:
    """Envelope and sending options of the mail agents."""
    add = parser.add_argument
    add(
        "-o",
        "--original-recipient",
        dest="recipients",
        action="append",
        default=[],
        metavar="ADDR",
        help="envelope recipient (repeatable)",
    )
    add(
        "-s",
        "--sender",
        default=None,
        metavar="ADDR",
        help="envelope sender ('' for the null sender)",
    )
    add("--output", default=None, metavar="DIR", help="write outgoing mail as files into DIR")
    add(
        "-d",
        "--debug-print",
        dest="print_only",
        action="store_true",
        help="print outgoing mail to stdout instead of sending",
    )
    add("--sendmail", default=None, metavar="CMD", help="sendmail command")
    add("--smtp", default=None, metavar="HOST[:PORT]", help="send through this SMTP server")


def settings_from(args: argparse.Namespace) -> Settings:
    """Built-in defaults, then the configuration file, then the command line."""
    settings = load_settings(getattr(args, "config", None))
    return settings.updated(
        store=getattr(args, "store", None),
        preferences=getattr(args, "preferences", None),
        journal=getattr(args, "journal", None),
        publishing=getattr(args, "publishing", None),
        sendmail=getattr(args, "sendmail", None),
        smtp=getattr(args, "smtp", None),
        log_file=getattr(args, "log_file", None),
    )


def clock_from(args: argparse.Namespace) -> Clock:
    """``--now`` as a fixed clock, else the system clock."""
    now = getattr(args, "now", None)
    if not now:
        return SystemClock()
    try:
        return FixedClock(parse_datetime(now))
    except ValueError as exc:
        raise ConfigError(f"--now: not a date-time: {now!r}") from exc


def store_from(settings: Settings) -> FileStore:
    """The store named by the settings (filesystem; created on first use)."""
    return FileStore(Path(settings.store))


def preferences_from(settings: Settings) -> PreferenceFiles:
    """The per-user preference files."""
    return PreferenceFiles(Path(settings.preferences))


def sender_from(args: argparse.Namespace, settings: Settings) -> Sender:
    """Where outgoing mail goes: a directory, stdout, SMTP or sendmail."""
    if getattr(args, "output", None):
        return DirectorySender(Path(args.output))
    if getattr(args, "print_only", False):
        return PrintSender(sys.stdout)
    if settings.smtp:
        host, port = parse_smtp_target(settings.smtp)
        return SmtpSender(host, port)
    return SendmailSender(settings.sendmail)


def setup_logging(args: argparse.Namespace, settings: Settings) -> None:
    """Log to a file, to stderr with -v (never under an MTA), or to syslog."""
    logging.captureWarnings(True)  # library warnings must not reach stderr
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if getattr(args, "verbose", 0) > 1 else logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(name)s[%(process)d] %(levelname)s %(message)s")
    handlers: list[logging.Handler] = []
    if settings.log_file:
        handlers.append(logging.FileHandler(settings.log_file, encoding="utf-8"))
    if getattr(args, "verbose", 0):
        handlers.append(logging.StreamHandler(sys.stderr))
    if not handlers and os.path.exists("/dev/log"):
        handlers.append(logging.handlers.SysLogHandler("/dev/log"))
    for handler in handlers or [logging.NullHandler()]:
        handler.setFormatter(fmt)
        root.addHandler(handler)


def run_program(main: Callable[[Sequence[str]], ExitCode], argv: Sequence[str] | None) -> NoReturn:
    """The exit boundary: exceptions become a status line and an exit code."""
    try:
        code = main(sys.argv[1:] if argv is None else argv)
    except ImipError as exc:
        log.warning("%s", exc.status_line())
        print(exc.status_line(), flush=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        print("4.3.0 interrupted", flush=True)
        code = ExitCode.TEMPFAIL
    except Exception:
        log.exception("internal error")
        print("4.3.0 internal error in imip-agent (details in its log)", flush=True)
        code = ExitCode.TEMPFAIL
    sys.exit(int(code))


def build_parser(prog: str, description: str) -> Parser:
    """The command line of a mail agent (the contract in the README)."""
    parser = Parser(prog=prog, description=description)
    add_store_options(parser)
    add_agent_options(parser)
    return parser


def recipients_envelope(args: argparse.Namespace, raw: bytes) -> list[Envelope]:
    """One unit of work per ``-o`` recipient, with the ``-s`` sender."""
    return [Envelope(recipient, args.sender) for recipient in args.recipients]


def run_agent(
    argv: Sequence[str],
    parser: Parser,
    factory: agent.HandlerFactory,
    deliverer: Callable[[argparse.Namespace, Settings], Sender] | None = None,
    envelope: Callable[[argparse.Namespace, bytes], list[Envelope]] = recipients_envelope,
) -> ExitCode:
    """Parse options, read stdin, run the agent; print a status line on failure."""
    args = parser.parse_args(argv)
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
        deliverer=deliverer(args, settings) if deliverer else None,
    )
    result = agent.run(raw, envelope(args, raw), ctx, factory)
    if result.code is not ExitCode.OK:
        print(result.status, flush=True)
    return result.code


def require(condition: bool, message: str, error: type[ImipError] = UsageError) -> None:
    """Raise ``error(message)`` unless ``condition``."""
    if not condition:
        raise error(message)
