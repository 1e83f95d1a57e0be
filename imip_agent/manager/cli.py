"""imip-manager: serve the web interface (development and small sites).

``imip-manager serve --listen 127.0.0.1:8081`` serves the application
(:func:`imip_agent.manager.app.create_app`) with waitress, a production
WSGI server; in front of it a web server authenticates users (see
``conf/`` and the manual's page on the manager). ``--as-user ADDRESS``
stands for that server during development: every request is that user,
and it is refused on any address but loopback. Flask is imported only
when the command runs, so that ``--help`` (and the manual pages, made
from this parser) need nothing more than the agents.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn, cast

from imip_agent.cli import clock_from, run_program, settings_from, setup_logging
from imip_agent.manager.security import SOURCES, AccessConfig
from imip_agent.options import DATES, ENVIRONMENT, add_store_options
from imip_agent.parsing import Parser
from imiptools.config import Settings
from imiptools.errors import ExitCode, UsageError
from imiptools.mail.send import (
    DirectorySender,
    Sender,
    SendmailSender,
    SmtpSender,
    parse_smtp_target,
)

log = logging.getLogger("imip_agent.manager")

#: A WSGI application (PEP 3333).
Application = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

DESCRIPTION = """\
The web interface over the agents' store: a person's calendar (recurring
events expanded, in their time zone) and the requests that need their
attention, answered as the agents answer. Users are authenticated by the
web server in front (REMOTE_USER, or a header from trusted proxies only) or
by the manager itself (--auth password: a login form against the password
file that 'imip-admin web-password' keeps).
"""

EXAMPLE = """\
examples:
  for development, on loopback, every request as alice:
    imip-manager serve --listen 127.0.0.1:8081 --as-user alice@example.com --output /tmp/sent
  its own login (passwords set with imip-admin web-password), behind a TLS proxy:
    imip-manager -c /etc/imip-agent/imip-agent.toml serve --listen 127.0.0.1:8081 \\
        --auth password --secret-key-file /etc/imip-agent/manager.key
  behind nginx, which sets X-Remote-User:
    imip-manager -c /etc/imip-agent/imip-agent.toml serve --listen 127.0.0.1:8081 \\
        --user-header X-Remote-User --trusted-proxy 127.0.0.1
"""

EXIT_CODES = """\
exit status:
  0   stopped
  64  wrong command line
  75  the site cannot be opened (configuration, store)
"""


class ManagerParser(Parser):
    """Usage errors are 64 (not a mail agent: nothing waits on it)."""

    error_class = UsageError
    hints = True


def parser() -> Parser:
    """The command line of imip-manager (the manual's reference is made from it)."""
    top = ManagerParser(
        prog="imip-manager",
        usage="%(prog)s [OPTIONS] serve [--listen HOST:PORT] ...",
        description=DESCRIPTION,
        epilog=f"{EXAMPLE}\n{DATES}\n{ENVIRONMENT}\n{EXIT_CODES}",
    )
    add_store_options(top)
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve the web interface",
        description=DESCRIPTION,
        epilog=EXAMPLE,
    )
    add = serve.add_argument
    add("--listen", default="127.0.0.1:8081", metavar="HOST:PORT", help="where to listen")
    add(
        "--auth",
        choices=SOURCES,
        default="",
        help="where users come from: the server's REMOTE_USER (the default), a header "
        "from trusted proxies (the default with --user-header), or a password and "
        "the login form",
    )
    add("--user-header", default="", metavar="NAME", help="the header naming the user")
    add(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="a proxy (address or network) whose user header is believed; repeatable",
    )
    add(
        "--admin",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="a user who manages every resource of the site; repeatable",
    )
    add("--secret-key-file", default=None, metavar="FILE", help="the key signing sessions")
    add(
        "--as-user",
        default=None,
        metavar="ADDRESS",
        help="development: every request is this user (loopback only)",
    )
    add("--output", default=None, metavar="DIR", help="write outgoing mail as files into DIR")
    add("--insecure-cookies", action="store_true", help="session cookie over plain HTTP too")
    return top


def sender_for(settings: Settings, output: str | None = None) -> Sender:
    """Where mail goes: ``output`` as files, else the agents' SMTP or sendmail."""
    if output:
        return DirectorySender(Path(output))
    if settings.smtp:
        host, port = parse_smtp_target(settings.smtp)
        return SmtpSender(host, port)
    return SendmailSender(settings.sendmail)


def listen_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) -> (host, port); UsageError otherwise."""
    host, _, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen: not HOST:PORT: {text!r}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def as_user(application: Application, user: str) -> Application:
    """``application`` with every request made by ``user`` (development)."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ["REMOTE_USER"] = user
        return application(environ, start_response)

    return wrapped


def serve(args: argparse.Namespace) -> ExitCode:
    """Serve until interrupted."""
    from waitress import create_server  # lazy: start-up (only the server needs it)

    from imip_agent.manager.app import create_app  # lazy: start-up (Flask only when serving)

    host, port = listen_address(args.listen)
    if args.as_user and not is_loopback(host):
        raise UsageError("--as-user is for development on a loopback address only")
    settings = settings_from(args)
    setup_logging(args, settings, "imip-manager")
    try:
        access = AccessConfig(
            args.user_header, tuple(args.trusted_proxy), args.auth, tuple(args.admin)
        )
    except ValueError as exc:
        raise UsageError(f"--auth, --user-header, --trusted-proxy, --admin: {exc}") from exc
    if args.as_user and access.source == "password":
        raise UsageError("--as-user stands for a front server: not with --auth password")
    key = Path(args.secret_key_file).read_bytes().strip() if args.secret_key_file else None
    insecure = args.insecure_cookies or (args.as_user is not None)
    app = create_app(
        settings, clock_from(args), sender_for(settings, args.output), access, key, not insecure
    )
    application = cast(Application, app)
    if args.as_user is not None:
        application = as_user(application, args.as_user)
    server = create_server(application, host=host, port=port, threads=4)
    shown = args.listen.rpartition(":")[0]
    print(f"imip-manager: serving http://{shown}:{server.effective_port}/", file=sys.stderr)
    log.info("serving on %s port %s", host, server.effective_port)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return ExitCode.OK


def run(argv: Sequence[str]) -> ExitCode:
    """Parse the command line and run its command."""
    args = parser().parse_args(list(argv))
    if args.command != "serve":
        raise UsageError("a command is needed: serve (try imip-manager --help)")
    return serve(args)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console entry point ``imip-manager``."""
    run_program(run, argv)
