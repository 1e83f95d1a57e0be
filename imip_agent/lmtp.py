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
550 5.x.x with the same one-line reason. The process started opens the
listening sockets and forks the workers, two per core by default
(``--workers``), which take the connections and deliver in their own
process (:mod:`imip_agent.lmtp_prefork`); a worker that dies is replaced,
and the MTA delivers again what it was delivering (no reply, no loss).
Every log line carries the MTA's queue id (Postfix sends it by XFORWARD;
otherwise the topmost Received header's id). SIGHUP re-reads the
configuration (new workers; the old ones finish their transactions; log
files are reopened); SIGTERM or SIGINT stops listening, finishes the
transactions under way and exits 0.
"""

from __future__ import annotations

import argparse
import grp
import logging
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
from imip_agent.lmtp_prefork import Supervisor, block_signals
from imip_agent.lmtp_server import (
    Listener,
    listening_socket,
    parse_listener,
    remove_socket,
    worker_count,
)
from imip_agent.lmtp_work import PROGRAM, ROLES
from imip_agent.options import DATES, ENVIRONMENT
from imip_agent.person import add_delivery_options
from imiptools import logcontext
from imiptools.errors import ConfigError, ExitCode

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


def open_sockets(args: argparse.Namespace) -> list[tuple[Listener, socket.socket]]:
    """Each listener's socket, opened before any worker starts; ConfigError
    (the sockets opened so far closed and removed) if one cannot be."""
    mode, group = socket_options(args)
    opened: list[tuple[Listener, socket.socket]] = []
    try:
        for listener in listeners(args):
            opened.append((listener, listening_socket(listener, mode, group)))
            log.info("listening: %s", listener)
    except ConfigError:
        for listener, listening in opened:
            listening.close()
            if listener.path:
                remove_socket(listener.path)
        raise
    return opened


def run(argv: Sequence[str]) -> ExitCode:
    """Parse options, then serve until stopped (0), or a start-up error."""
    args = parser().parse_args(bind_address_values(argv))
    settings = settings_from(args)
    setup_logging(args, settings, PROGRAM)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's chatter
    logcontext.QUEUE_ID.set("")
    unblocked = block_signals()
    Supervisor(args, open_sockets(args), args.workers or worker_count(), unblocked).run()
    return ExitCode.OK


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console entry point ``imip-agent-lmtp``."""
    run_program(run, argv)
