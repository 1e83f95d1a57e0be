"""imip-agent-lmtp: the agents as one long-running LMTP service.

The MTA delivers over LMTP (RFC 2033: Postfix's ``lmtp`` client, Exim's
``lmtp`` transport) instead of starting a pipe program per message, so
the interpreter, the imports and the configuration are paid once. Each
role listens on its own UNIX socket or loopback port, and the MTA's
routing chooses the role exactly as it chooses the pipe program today:
``--resource`` does what ``imip-resource`` does, ``--person`` what
``imip-person`` does (delivering with ``-l``/``-L`` as it does),
``--outgoing`` what ``imip-person-outgoing`` does. The store, sending and
logging options are those of the pipe programs.

Each recipient gets one reply (RFC 2033 §4.2), the pipe program's exit
code as a reply: 0 -> 250, 75 -> 451 4.x.x (the MTA retries), 65 ->
550 5.x.x with the same one-line reason. Deliveries run in a pool of
worker processes, two per core by default (``--workers``); a worker that
dies answers 451 for its recipients, never losing mail. Every log line
carries the MTA's queue id (Postfix sends it by XFORWARD; otherwise the
topmost Received header's id). SIGHUP re-reads the configuration (new
workers; jobs under way finish in the old ones; log files are reopened);
SIGTERM or SIGINT stops listening, finishes the transactions under way
and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import grp
import logging
import signal
import socket
from collections.abc import Sequence
from typing import NoReturn

from imip_agent.cli import (
    Parser,
    add_store_options,
    bind_address_values,
    run_program,
    settings_from,
    setup_logging,
)
from imip_agent.lmtp_server import (
    DATA_LIMIT,
    Delivery,
    Listener,
    Session,
    Workers,
    parse_listener,
    remove_socket,
    unix_socket,
    worker_count,
)
from imip_agent.lmtp_work import PROGRAM, ROLES
from imip_agent.options import DATES, ENVIRONMENT
from imip_agent.person import add_delivery_options
from imiptools import logcontext
from imiptools.errors import ConfigError, ExitCode, ImipError

log = logging.getLogger("imip_agent")

DESCRIPTION = """\
The calendar agents as one long-running LMTP service (RFC 2033): the mail
system delivers over LMTP instead of starting a program per message. Each
role listens on its own UNIX socket or loopback port: --resource answers as
imip-resource does, --person as imip-person (delivering as it does),
--outgoing as imip-person-outgoing. Each recipient gets one reply: 250 when
done, 451 (4.x.x, the mail system retries) for trouble that passes, 550
(5.x.x) with the one-line reason for a message that cannot be used. SIGHUP
re-reads the configuration and reopens the log; SIGTERM finishes the
deliveries under way and exits.
"""

EPILOG = """\
examples:
  imip-agent-lmtp --resource unix:/run/imip-agent/resource.sock \\
      --person unix:/run/imip-agent/person.sock --socket-group postfix
  imip-agent-lmtp --resource 127.0.0.1:2403 --workers 2 --log /var/log/imip-agent.log
"""

LMTP_EXIT_CODES = """\
exit status:
  0   stopped by SIGTERM or SIGINT after finishing the deliveries under way
  75  cannot start: configuration, listener or command-line trouble (one line printed)
"""


def parser() -> Parser:
    """The command line of imip-agent-lmtp (the manual's reference is made from it)."""
    lmtp = Parser(
        prog=PROGRAM,
        usage="%(prog)s [OPTIONS] --resource|--person|--outgoing unix:PATH|HOST:PORT ...",
        description=DESCRIPTION,
        epilog=f"{EPILOG}\n{DATES}\n{ENVIRONMENT}\n{LMTP_EXIT_CODES}",
    )
    lmtp.hints = True
    add_store_options(lmtp)
    add = lmtp.add_argument
    for role in ROLES.values():
        add(
            f"--{role.name}",
            metavar="unix:PATH|HOST:PORT",
            help=f"listen here for mail that {role.program} would get",
        )
    add(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="worker processes (default: two per core)",
    )
    add("--socket-mode", default="0660", metavar="OCTAL", help="mode of UNIX sockets (0660)")
    add("--socket-group", default=None, metavar="GROUP", help="group of UNIX sockets")
    add("--output", default=None, metavar="DIR", help="write outgoing mail as files into DIR")
    add("--sendmail", default=None, metavar="CMD", help="sendmail command")
    add("--smtp", default=None, metavar="HOST[:PORT]", help="send through this SMTP server")
    add_delivery_options(lmtp)
    lmtp.set_defaults(print_only=False, recipients=[], sender=None, queue_id=None)
    return lmtp


def listeners(args: argparse.Namespace) -> list[Listener]:
    """Each role's listener given on the command line (at least one)."""
    found = [
        parse_listener(name, getattr(args, name)) for name in ROLES if getattr(args, name, None)
    ]
    if not found:
        raise ConfigError(f"{PROGRAM}: give --resource, --person or --outgoing")
    return found


def socket_options(args: argparse.Namespace) -> tuple[int, int]:
    """``--socket-mode`` and ``--socket-group`` as numbers (-1: no group)."""
    try:
        mode = int(args.socket_mode, 8)
    except ValueError as exc:
        raise ConfigError(f"--socket-mode: not an octal mode: {args.socket_mode!r}") from exc
    if not args.socket_group:
        return mode, -1
    try:
        return mode, grp.getgrnam(args.socket_group).gr_gid
    except KeyError as exc:
        raise ConfigError(f"--socket-group: no such group: {args.socket_group}") from exc


class Daemon:
    """The listeners, the workers, and what the signals do."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.listeners = listeners(args)
        self.mode, self.group = socket_options(args)
        self.workers = Workers(args, args.workers or worker_count())
        self.deliveries: list[Delivery] = []
        self.servers: list[asyncio.Server] = []
        self.stopped = asyncio.Event()

    async def serve(self) -> None:
        """Listen until SIGTERM or SIGINT, then drain."""
        loop = asyncio.get_running_loop()
        # Before the first socket answers: whoever sees it may signal at once.
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stopped.set)
        try:
            for listener in self.listeners:
                self.servers.append(await self._listen(listener))
                log.info("listening: %s", listener)
            await self.stopped.wait()
            log.info("stopping: finishing the deliveries under way")
            await self.drain()
        finally:
            for listener in self.listeners:
                if listener.path:
                    remove_socket(listener.path)
        log.info("stopped")

    async def _listen(self, listener: Listener) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        delivery = Delivery(listener.role, self.workers)
        self.deliveries.append(delivery)
        hostname = socket.getfqdn()  # once, not a resolver query a connection

        def session() -> Session:
            return Session(
                delivery,
                data_size_limit=DATA_LIMIT,
                enable_SMTPUTF8=True,  # the agent itself refuses what it cannot use (5.1.3)
                hostname=hostname,
                loop=loop,
            )

        if listener.path:
            listening = unix_socket(listener.path, self.mode, self.group)
            return await loop.create_unix_server(session, sock=listening)
        try:
            return await loop.create_server(session, listener.host, listener.port)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {listener}: {exc.strerror}") from exc

    def reload(self) -> None:
        """SIGHUP: the configuration read anew (a bad one is refused and the
        old one kept), log files reopened, new workers."""
        try:
            settings = settings_from(self.args)
        except ImipError as exc:
            log.error("reload refused, configuration kept: %s", exc.status_line())
            return
        reset_logging()
        setup_logging(self.args, settings, PROGRAM)
        self.workers.reload(self.args)
        log.info("reloaded: configuration read, new workers")

    async def drain(self) -> None:
        """Stop listening; refuse new transactions; wait for every DATA under
        way to be answered; close the connections; stop the workers."""
        Session.draining = True
        for server in self.servers:
            server.close()
        sessions = [s for delivery in self.deliveries for s in delivery.sessions]
        while any(session.busy for session in sessions):
            await asyncio.sleep(0.05)
        for session in sessions:
            if session.transport is not None:
                session.transport.close()
        await asyncio.get_running_loop().run_in_executor(None, self.workers.shutdown)


def reset_logging() -> None:
    """Close and remove the root logger's handlers (before setting up anew)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()


def run(argv: Sequence[str]) -> ExitCode:
    """Parse options, then serve until stopped (0), or a start-up error."""
    args = parser().parse_args(bind_address_values(argv))
    settings = settings_from(args)
    setup_logging(args, settings, PROGRAM)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's chatter
    logcontext.QUEUE_ID.set("")
    asyncio.run(Daemon(args).serve())
    return ExitCode.OK


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console entry point ``imip-agent-lmtp``."""
    run_program(run, argv)
