"""What every program shares: options, settings, logging, the exit boundary.

Only programs touch ``sys.argv``, stdin/stdout and ``sys.exit``. Under an
MTA a program prints at most one line (an RFC 3463 status) and exits with a
code from :class:`imiptools.errors.ExitCode`; it never exits 2 and never
prints a traceback (tracebacks go to the log).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, NoReturn

from imip_agent.options import (
    add_agent_options,
    add_store_options,
    bind_address_values,
    build_parser,
)
from imip_agent.parsing import Parser
from imiptools import agent, logcontext
from imiptools.config import Settings, load_settings
from imiptools.dates import Clock, FixedClock, SystemClock, parse_datetime
from imiptools.errors import ConfigError, ExitCode, ImipError, SiteMissing, UsageError
from imiptools.fileutil import roots_resolved_once
from imiptools.handlers.common import Envelope
from imiptools.mail.parse import read_message, single_line
from imiptools.mail.send import (
    DirectorySender,
    PrintSender,
    Sender,
    SendmailSender,
    SmtpSender,
    parse_smtp_target,
)
from imiptools.site import Site, open_site

#: Names the programs and tests import from here (defined in imip_agent.options).
__all__ = [
    "Parser",
    "add_agent_options",
    "add_store_options",
    "bind_address_values",
    "build_parser",
]

log = logging.getLogger("imip_agent")
#: One line per scheduling object and recipient (:func:`log_objects`).
objects_log = logging.getLogger("imip_agent.objects")


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


def site_from(args: argparse.Namespace, settings: Settings) -> Site:
    """The site the settings describe (see :func:`imiptools.site.open_site`),
    with the clock of ``--now``."""
    return open_site(settings, clock_from(args))


def context_from(
    site: Site, sender: Sender, deliverer: Sender | None = None, settings: Settings | None = None
) -> agent.Context:
    """What an agent run needs of ``site`` (with ``settings`` instead of the
    site's, when given), sending with ``sender``."""
    return site.agent_context(sender, deliverer=deliverer, settings=settings)


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


#: Where syslog lines go: the mail log, beside the MTA's own lines
#: (``SysLogHandler.LOG_MAIL``; logging.handlers is imported only for syslog).
SYSLOG_FACILITY = 2
FILE_FORMAT = (
    "%(asctime)s %(program)s[%(process)d]: %(queue_id)s%(levelname)s %(name)s: %(message)s"
)
SYSLOG_FORMAT = "%(queue_id)s%(levelname)s %(name)s: %(message)s"


class MailLogFilter(logging.Filter):
    """Adds ``program`` and ``queue_id`` (``"4F2A1234: "`` or ``""``) to records.

    Every line a run logs then starts as Postfix's own lines do, so that
    ``grep QUEUEID /var/log/mail.log`` shows the MTA and the agent together.
    The queue id is the context's (:data:`imiptools.logcontext.QUEUE_ID`),
    read for each record: ``imip-agent-lmtp`` serves many at once.
    """

    def __init__(self, program: str) -> None:
        super().__init__()
        self.program = program

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate ``record``; never drops one."""
        record.program = self.program
        record.queue_id = logcontext.prefix()
        return True


def setup_logging(args: argparse.Namespace, settings: Settings, program: str | None = None) -> None:
    """Log to a file, to stderr with -v (never under an MTA), or to syslog.

    The file is ``--log`` or the ``log_file`` setting; without either (and
    without ``-v``) lines go to syslog's mail facility when ``/dev/log``
    exists, else nowhere. A log file that cannot be opened falls back to
    the same (with a warning there): mail is not deferred for a log. Never
    to stderr unless asked: an MTA puts whatever a pipe program writes into
    the bounce. ``program`` names the lines (default: the program's file
    name).
    """
    logging.captureWarnings(True)  # library warnings must not reach stderr
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if getattr(args, "verbose", 0) > 1 else logging.INFO)
    program = program or os.path.basename(sys.argv[0]) or "imip-agent"
    annotate = MailLogFilter(program)
    handlers: list[tuple[logging.Handler, str]] = []
    problem = ""
    if settings.log_file:
        try:
            handlers.append((logging.FileHandler(settings.log_file, encoding="utf-8"), FILE_FORMAT))
        except OSError as exc:  # mail must not wait for a log file: fall back
            problem = f"cannot open log file {settings.log_file}: {exc.strerror}"
    if getattr(args, "verbose", 0):
        handlers.append((logging.StreamHandler(sys.stderr), FILE_FORMAT))
    if not handlers and os.path.exists("/dev/log"):
        handlers.append((_syslog_handler(program), SYSLOG_FORMAT))
    for handler, fmt in handlers or [(logging.NullHandler(), FILE_FORMAT)]:
        handler.setFormatter(logging.Formatter(fmt))
        handler.addFilter(annotate)
        root.addHandler(handler)
    if problem:
        log.warning("%s", problem)


def _syslog_handler(program: str) -> logging.Handler:
    """A handler for ``/dev/log``, facility mail, tagged ``program[pid]: ``."""
    import logging.handlers  # lazy: start-up (not needed when logging to a file)

    handler = logging.handlers.SysLogHandler("/dev/log", facility=SYSLOG_FACILITY)
    handler.ident = f"{program}[{os.getpid()}]: "
    return handler


def log_outcome(args: argparse.Namespace, code: ExitCode, status: str) -> None:
    """The one line per message an admin looks for: recipients, sender, outcome.

    Shaped like Postfix's delivery lines (``to=<...>, from=<...>,
    status=...``); the queue id is added by :class:`MailLogFilter`.
    """
    recipients = ",".join(f"<{single_line(r)[:200]}>" for r in getattr(args, "recipients", []))
    sender = getattr(args, "sender", None)
    log.info(
        "to=%s, from=%s, exit=%d, status=%s (%s)",
        recipients or "-",
        "-" if sender is None else f"<{single_line(sender)[:200]}>",
        int(code),
        OUTCOMES.get(code, "failed"),
        status,
    )


def log_objects(result: agent.Result) -> None:
    """One line per recipient and scheduling object: what the run decided,
    wrote in the store and the quota ledger, and queued to send (see
    :mod:`imiptools.outcomes`), before the message's outcome line. The
    decision lines the library logs as it goes are left as they are."""
    for recipient in result.recipients:
        for outcome in recipient.objects:
            objects_log.info("user=%s %s", recipient.user, outcome.summary())


#: The status line of an internal bug (75: the MTA keeps the message).
INTERNAL_ERROR = "4.3.0 internal error in imip-agent (details in its log)"

#: What the MTA does with each exit code, as the outcome line says it.
OUTCOMES = {ExitCode.OK: "done", ExitCode.TEMPFAIL: "deferred", ExitCode.DATAERR: "bounced"}


def run_program(main: Callable[[Sequence[str]], ExitCode], argv: Sequence[str] | None) -> NoReturn:
    """The exit boundary: exceptions become a status line and an exit code.

    Nothing but that line is printed: until logging is set up, log records
    go nowhere (not to Python's last-resort handler on stderr).
    """
    logging.getLogger().addHandler(logging.NullHandler())
    try:
        code = main(sys.argv[1:] if argv is None else argv)
    except ImipError as exc:
        log.warning("%s", exc.status_line())
        print(exc.status_line(), flush=True)
        if exc.hint:
            print(exc.hint, file=sys.stderr, flush=True)
        code = exc.exit_code
    except KeyboardInterrupt:
        print("4.3.0 interrupted", flush=True)
        code = ExitCode.TEMPFAIL
    except Exception:
        log.exception("internal error")
        print(INTERNAL_ERROR, flush=True)
        code = ExitCode.TEMPFAIL
    sys.exit(int(code))


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
    args = parser.parse_args(bind_address_values(argv))
    logcontext.QUEUE_ID.set(logcontext.clean(args.queue_id))  # the one message of this process
    settings = settings_from(args)
    setup_logging(args, settings)
    result = run_delivery(args, settings, sys.stdin.buffer, factory, deliverer, envelope)
    if result.code is not ExitCode.OK:
        print(result.status, flush=True)
    return result.code


def run_delivery(
    args: argparse.Namespace,
    settings: Settings,
    stream: IO[bytes],
    factory: agent.HandlerFactory,
    deliverer: Callable[[argparse.Namespace, Settings], Sender] | None = None,
    envelope: Callable[[argparse.Namespace, bytes], list[Envelope]] = recipients_envelope,
) -> agent.Result:
    """One delivery as the MTA makes it: the message on ``stream``, the
    envelope in ``args`` (``recipients``, ``sender``); the outcome, logged
    in one line (:func:`log_outcome`).

    The pipe programs and ``imip-agent-lmtp`` both come here, so that
    both answer alike. Each configured directory is resolved once a
    delivery (:func:`~imiptools.fileutil.roots_resolved_once`). An
    :class:`ImipError` is an outcome (its exit code
    and status line); any other exception is an internal bug: logged as a
    deferral, then raised for the caller to log with its traceback and
    answer :data:`INTERNAL_ERROR` (75).
    """
    try:
        with roots_resolved_once():
            result = _run_once(args, settings, stream, factory, deliverer, envelope)
    except ImipError as exc:
        result = agent.Result(exc.exit_code, exc.status_line())
    except Exception:
        log_outcome(args, ExitCode.TEMPFAIL, "4.3.0 internal error")
        raise  # the caller logs the traceback
    log_objects(result)
    log_outcome(args, result.code, result.status)
    return result


def _run_once(
    args: argparse.Namespace,
    settings: Settings,
    stream: IO[bytes],
    factory: agent.HandlerFactory,
    deliverer: Callable[[argparse.Namespace, Settings], Sender] | None,
    envelope: Callable[[argparse.Namespace, bytes], list[Envelope]],
) -> agent.Result:
    """Read the message on ``stream`` and run the agent over it.

    A resource reads at most ``max_message_size`` bytes (a bigger message
    bounces, 5.3.4); a person's agent reads it all, to deliver it unchanged
    with its calendar data ignored (see :func:`imiptools.agent.read`).
    """
    limit = settings.max_message_size if factory.bounce_unusable else None
    raw = read_message(stream, limit)
    site = site_from(args, settings)
    require_site(site)
    delivery = deliverer(args, settings) if deliverer else None
    ctx = context_from(site, sender_from(args, settings), delivery)
    return agent.run(raw, envelope(args, raw), ctx, factory)


def require_site(site: Site) -> None:
    """Refuse to run on a site whose directories do not exist.

    The agents never create the store or the preferences directory: a
    mistyped ``-S`` or ``store`` setting would otherwise start a new, empty
    store that no admin looks at, and a resource there would accept
    everything. Raises :class:`SiteMissing` (75: the MTA keeps the mail),
    logged with how to create what is missing.
    """
    missing = site.backend.missing_locations()
    if not missing:
        return
    what = " and ".join(f"the {name} directory {path}" for name, path in missing.items())
    verb, pronoun = ("do", "them") if len(missing) > 1 else ("does", "it")
    message = (
        f"{what} {verb} not exist: create {pronoun} with 'imip-admin init' (given the "
        f"same -c, -S and -p options) or correct the path; the agents never create {pronoun}"
    )
    log.error("%s", message)
    raise SiteMissing(message)


def require(condition: bool, message: str, error: type[ImipError] = UsageError) -> None:
    """Raise ``error(message)`` unless ``condition``."""
    if not condition:
        raise error(message)
