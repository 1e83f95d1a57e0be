"""The LMTP side of ``imip-agent-lmtp`` (RFC 2033, with aiosmtpd): what
each worker process runs.

- :class:`Listener`: where a role listens, a UNIX socket or a loopback port;
  the supervisor (:mod:`imip_agent.lmtp_prefork`) opens the listening
  sockets (:func:`unix_socket`, :func:`tcp_socket`) and its workers inherit
  them.
- :class:`Session`: aiosmtpd's LMTP with Postfix's ``XFORWARD`` (the
  client's queue id, ``IDENT``), which refuses new transactions while the
  worker drains.
- :class:`Delivery`: the aiosmtpd handler of one listener: at the end of
  DATA it runs the delivery in this process, one job per recipient (or one
  for all, by the role), and answers one reply per recipient
  (RFC 2033 §4.2) with :func:`lmtp_reply`.
- :class:`Worker`: one worker's service on the inherited sockets. It takes
  a new connection only while none of its sessions is in a transaction
  (:class:`Intake`), so that a worker busy delivering leaves the waiting
  connections to idle ones; SIGTERM drains it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import re
import signal
import socket
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, AnyStr

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from aiosmtpd.smtp import Session as SmtpSession
from aiosmtpd.smtp import syntax

from imip_agent.lmtp_work import ROLES, Job, Outcome, run_job
from imiptools.deferred import dataclass
from imiptools.errors import ConfigError, ExitCode

log = logging.getLogger("imip_agent")

#: The largest message taken (aiosmtpd answers 552 above it). Postfix's own
#: default ``message_size_limit`` is 10 MB.
DATA_LIMIT = 64 * 1024 * 1024
#: The answer to a new transaction while the worker stops.
SHUTTING_DOWN = "421 4.3.2 imip-agent-lmtp is shutting down"
#: SMTP's port, which LMTP must not use (RFC 2033 §1).
SMTP_PORT = 25
#: The kernel's queue of connections not yet taken by a worker.
BACKLOG = 128


def lmtp_reply(outcome: Outcome) -> str:
    """The LMTP reply for one recipient: the pipe program's exit code and
    status line, as Postfix's pipe(8) and Exim's pipe transport read them.

    0 -> ``250`` with the status; 75 -> ``451`` and a 4.x.x status (the
    MTA keeps the message and retries); any other code -> ``550`` and a
    5.x.x status (a bounce with our one-line reason). The status line's
    RFC 3463 code is kept, its class made to agree with the reply's.
    """
    enhanced, _, text = outcome.status.partition(" ")
    if not re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", enhanced):
        enhanced, text = "", outcome.status
    if outcome.code == ExitCode.OK:
        basic, klass = "250", "2"
    elif outcome.code == ExitCode.TEMPFAIL:
        basic, klass = "451", "4"
    else:
        basic, klass = "550", "5"
    detail = enhanced[1:] if enhanced else ".0.0"
    return f"{basic} {klass}{detail} {' '.join(text.split()) or 'done'}"[:500]


#: An RFC 3463 status code at the start of a reply's text.
_ENHANCED = re.compile(r"[245]\.\d{1,3}\.\d{1,3}(?: |$)")
#: The RFC 3463 code for a reply of aiosmtpd's own that carries none, by its
#: basic code (RFC 5248's registry; as Postfix's smtpd(8) answers the same
#: errors); any other gets its class's ``X.0.0``.
_ENHANCED_BY_BASIC = {
    "421": "4.3.2",  # not accepting messages
    "500": "5.5.2",  # syntax error: bad syntax, line too long, unknown command
    "501": "5.5.4",  # invalid arguments
    "502": "5.5.1",  # not implemented
    "503": "5.5.1",  # bad sequence of commands
    "504": "5.5.4",
    "530": "5.7.0",
    "552": "5.3.4",  # message too big
    "553": "5.1.3",  # bad address syntax
}
#: A 250 answering MAIL or RCPT: the sender's or the recipient's address valid.
_ENHANCED_BY_COMMAND = {"MAIL": "2.1.0", "RCPT": "2.1.5"}


def with_enhanced_code(reply: str, command: str = "") -> str:
    """``reply`` (one or more CRLF-separated lines) with an RFC 3463 code
    after the basic code of each 2xx, 4xx and 5xx line that has none, as
    ENHANCEDSTATUSCODES requires of every such reply but the greeting and
    the answer to LHLO (RFC 2034 §3, which RFC 2033 §5 makes an LMTP
    server's duty). ``command`` is the one answered (``MAIL``, ``RCPT``:
    their 250 says which address is valid). A 3xx line, a line already
    coded and a line that is not a reply are left as they are."""
    return "\r\n".join(_coded(line, command) for line in reply.split("\r\n"))


def _coded(line: str, command: str) -> str:
    basic, separator, text = line[:3], line[3:4], line[4:]
    if not (basic.isdigit() and basic[0] in "245" and separator in (" ", "-", "")):
        return line
    if _ENHANCED.match(text):
        return line
    if basic == "250" and command in _ENHANCED_BY_COMMAND:
        code = _ENHANCED_BY_COMMAND[command]
    else:
        code = _ENHANCED_BY_BASIC.get(basic, f"{basic[0]}.0.0")
    return f"{basic}{separator or ' '}{code} {text}".rstrip()


# -- where a role listens -------------------------------------------------------


@dataclass(frozen=True)
class Listener:
    """A role's listening address: a UNIX socket path, or a loopback host and port."""

    role: str
    path: Path | None = None
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        return f"{self.role} on {self.path or f'{self.host}:{self.port}'}"


def parse_listener(role: str, text: str) -> Listener:
    """``unix:/path``, ``/path`` or ``HOST:PORT`` with a loopback host
    (``127.0.0.1``, ``[::1]``, ``localhost``) and a port other than SMTP's
    25; ConfigError otherwise: the agent must never be reachable from other
    machines."""
    if text.startswith("unix:") or text.startswith("/"):
        path = Path(text.removeprefix("unix:"))
        if not path.is_absolute():
            raise ConfigError(f"--{role}: a socket path must be absolute: {text!r}")
        return Listener(role, path=path)
    host, colon, port = text.rpartition(":")
    host = host.strip("[]")
    if not colon or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--{role}: not unix:/PATH or HOST:PORT: {text!r}")
    if not _loopback(host):
        raise ConfigError(f"--{role}: {host!r} is not a loopback address")
    if int(port) == SMTP_PORT:
        raise ConfigError(f"--{role}: LMTP must not be used on port 25 (RFC 2033 §1)")
    return Listener(role, host=host, port=int(port))


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def unix_socket(path: Path, mode: int, group: int) -> socket.socket:
    """A listening UNIX socket at ``path`` with ``mode`` and ``group`` (-1: as is).

    A socket file left by a daemon that is gone is replaced; one that
    answers is in use (ConfigError), and any other file is never removed.
    """
    if path.is_socket():
        if _answers(path):
            raise ConfigError(f"{path} is in use by another process")
        path.unlink()
    elif path.exists() or path.is_symlink():
        raise ConfigError(f"{path} exists and is not a socket")
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listening.bind(str(path))
        os.chown(path, -1, group)
        os.chmod(path, mode)
        listening.listen(BACKLOG)
    except OSError as exc:
        listening.close()
        raise ConfigError(f"cannot listen on {path}: {exc.strerror}") from exc
    return listening


def tcp_socket(listener: Listener) -> socket.socket:
    """A listening TCP socket on ``listener``'s (loopback) host and port."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            listener.host, listener.port, type=socket.SOCK_STREAM
        )[0]
    except OSError as exc:
        raise ConfigError(f"cannot listen on {listener}: {exc}") from exc
    listening = socket.socket(family, kind, proto)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(address)
        listening.listen(BACKLOG)
    except OSError as exc:
        listening.close()
        raise ConfigError(f"cannot listen on {listener}: {exc.strerror}") from exc
    return listening


def listening_socket(listener: Listener, mode: int, group: int) -> socket.socket:
    """``listener``'s listening socket, UNIX (``mode``, ``group``) or TCP."""
    if listener.path:
        return unix_socket(listener.path, mode, group)
    return tcp_socket(listener)


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
        return True


def remove_socket(path: Path) -> None:
    """Remove our socket file at ``path`` (nothing else)."""
    try:
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()
    except FileNotFoundError:
        pass


# -- how many workers -------------------------------------------------------------


#: Workers per core by default: a delivery waits on fsync about as long as
#: it computes (benchmarks/daemon.py: 13 ms of CPU in 32 ms per message with
#: one worker a core at 8 clients, 17 ms with two), so two a core keep the
#: cores busy.
WORKERS_PER_CORE = 2


def worker_count() -> int:
    """:data:`WORKERS_PER_CORE` for each core this process may run on."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return WORKERS_PER_CORE * cores


# -- LMTP -----------------------------------------------------------------------


class Session(LMTP):
    """aiosmtpd's LMTP, with XFORWARD and a refusal while draining.

    From its connection until its first transaction ends, and from each
    MAIL until that transaction ends, the session holds its worker's
    :class:`Intake`: the worker takes no new connection meanwhile.
    """

    #: Set by the worker when it stops: new transactions are refused.
    draining = False

    def __init__(self, handler: Delivery, intake: Intake, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.xforward: dict[str, str] = {}
        self.busy = False
        self.intake = intake
        #: The command being answered, for :func:`with_enhanced_code`.
        self.answering = ""
        #: Whether the greeting has been sent (it carries no RFC 3463 code).
        self.greeted = False
        handler.sessions.add(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.intake.hold(self)
        super().connection_made(transport)

    async def push(self, status: AnyStr) -> None:
        """Send a reply, each 2xx, 4xx and 5xx line with its RFC 3463 code
        (ENHANCEDSTATUSCODES), but the greeting and the answer to LHLO."""
        if not self.greeted:
            self.greeted = True
        elif isinstance(status, str) and self.answering != "LHLO":
            await super().push(with_enhanced_code(status, self.answering))
            return
        await super().push(status)

    @contextlib.contextmanager
    def _answering(self, command: str) -> Iterator[None]:
        """While ``command`` is answered (its replies' RFC 3463 codes)."""
        self.answering = command
        try:
            yield
        finally:
            self.answering = ""

    @syntax("LHLO hostname")
    async def smtp_LHLO(self, arg: str) -> None:
        with self._answering("LHLO"):
            await super().smtp_LHLO(arg)

    @syntax("RCPT TO: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_RCPT(self, arg: str | None) -> None:
        with self._answering("RCPT"):
            await super().smtp_RCPT(arg)

    def __dir__(self) -> list[str]:
        """The session's commands and AUTH mechanisms (``smtp_*``,
        ``auth_*``) only: aiosmtpd's ``SMTP.__init__`` builds its tables of
        them from ``dir()`` and ``inspect.getmembers()``, which otherwise
        read every attribute of each new session (about half a millisecond
        of CPU a connection; issue 15)."""
        return _protocol_names(type(self))

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """The address of MAIL or RCPT and the text after it: aiosmtpd's
        answer, found without its RFC 5322 parser when ``arg`` is a plain
        ``<local@domain>`` (:data:`_PLAIN_PATH`), which is what an MTA sends
        (that parser costs about a tenth of a millisecond a command). The
        answer is the same as aiosmtpd's for every such ``arg``
        (``tests/test_lmtp_service.py`` compares the two); anything else goes
        to aiosmtpd."""
        plain = _PLAIN_PATH.fullmatch(arg) if arg else None
        if plain is None:
            result: tuple[str | None, str | None] = super()._getaddr(arg)
            return result
        address = plain.group(1)
        if self.local_part_limit and len(address.rpartition("@")[0]) > self.local_part_limit:
            return None, None
        return address, plain.group(2) or ""

    @syntax("XFORWARD attribute=value ...")
    async def smtp_XFORWARD(self, arg: str) -> None:
        """Postfix's XFORWARD (its XFORWARD_README): remember the attributes
        (``IDENT`` is the client's queue id) until the transaction ends."""
        for item in (arg or "").split():
            name, equals, value = item.partition("=")
            if equals:
                self.xforward[name.upper()] = _xtext(value)
        await self.push("250 2.0.0 Ok")

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:
        if self.draining:
            await self.push(SHUTTING_DOWN)
            if self.transport is not None:
                self.transport.close()
            return
        self.intake.hold(self)
        with self._answering("MAIL"):
            await super().smtp_MAIL(arg)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """DATA, busy until every reply is sent (the worker drains those)."""
        self.busy = True
        try:
            await super().smtp_DATA(arg)
        finally:
            self.busy = False
            self.xforward.clear()
            if self.envelope is None or self.envelope.mail_from is None:  # it is over
                self.intake.release(self)

    @syntax("RSET")
    async def smtp_RSET(self, arg: str) -> None:
        self.xforward.clear()
        await super().smtp_RSET(arg)
        self.intake.release(self)

    def connection_lost(self, error: Exception | None) -> None:
        handler = self.event_handler
        if isinstance(handler, Delivery):
            handler.sessions.discard(self)
        self.intake.release(self)
        super().connection_lost(error)


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
#: A reverse or forward path that is a plain ``<dot-atom@host>`` (RFC 5321
#: §4.1.2, ASCII only, no quoting, comments or source route), then the
#: parameters after any spaces: what :meth:`Session._getaddr` answers itself.
_PLAIN_PATH = re.compile(
    rf"<({_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*)>[ \t]*([^ \t\r\n(][^\r\n]*?)?"
)

#: :func:`_protocol_names` of each session class.
_PROTOCOL_NAMES: dict[type, list[str]] = {}


def _protocol_names(cls: type) -> list[str]:
    """The ``smtp_*`` and ``auth_*`` attributes of session class ``cls``."""
    names = _PROTOCOL_NAMES.get(cls)
    if names is None:
        names = sorted(name for name in dir(cls) if name.startswith(("smtp_", "auth_")))
        _PROTOCOL_NAMES[cls] = names
    return names


def _xtext(value: str) -> str:
    """RFC 3461 xtext decoded (``+2B`` is ``+``)."""
    return re.sub(r"\+([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), value)


#: The queue id in the topmost Received header (Postfix ``id 4F2A1234``,
#: Exim ``id 1tAbCd-000123-Ef``): for an MTA that sends no XFORWARD.
_RECEIVED_ID = re.compile(rb"\bid\s+([0-9A-Za-z][0-9A-Za-z.-]{2,63})", re.IGNORECASE)


def received_id(message: bytes) -> str:
    """The queue id the topmost ``Received`` header names ('' if none)."""
    head = message.split(b"\n\n", 1)[0]
    found = re.search(rb"(?im)^received:(.*(?:\n[ \t].*)*)", head)
    if not found:
        return ""
    match = _RECEIVED_ID.search(found.group(1))
    return match.group(1).decode("ascii") if match else ""


class Delivery:
    """The aiosmtpd handler of one listener (one role)."""

    def __init__(self, role: str) -> None:
        self.role = ROLES[role]
        self.sessions: set[Session] = set()

    async def handle_EHLO(
        self,
        server: Session,
        session: SmtpSession,
        envelope: SmtpEnvelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """The LHLO answer, offering PIPELINING and ENHANCEDSTATUSCODES (an
        LMTP server's duty, RFC 2033 §5), and XFORWARD (Postfix then sends
        its queue id)."""
        session.host_name = hostname
        offered = [
            "250-PIPELINING",
            "250-ENHANCEDSTATUSCODES",
            "250-XFORWARD NAME ADDR PROTO HELO IDENT SOURCE",
        ]
        return [*responses[:-1], *offered, responses[-1]]

    async def handle_DATA(
        self, server: Session, session: SmtpSession, envelope: SmtpEnvelope
    ) -> str:
        """One reply per recipient, in RCPT order (RFC 2033 §4.2)."""
        message = _unix_lines(envelope.original_content or b"")
        queue_id = server.xforward.get("IDENT", "") or received_id(message)
        if queue_id == "[UNAVAILABLE]":
            queue_id = received_id(message)
        sender = _sender(envelope.mail_from)
        recipients = tuple(envelope.rcpt_tos)
        outcomes = self.deliver(message, sender, recipients, queue_id)
        return "\r\n".join(lmtp_reply(outcome) for outcome in outcomes)

    def deliver(
        self, message: bytes, sender: str, recipients: Sequence[str], queue_id: str
    ) -> list[Outcome]:
        """The outcome for each recipient: one job each, one after the other,
        or one job for all (by the role). The jobs run here, in the worker's
        only thread: the worker does nothing else meanwhile (its other
        connections wait, new ones go to other workers)."""
        if not self.role.per_recipient:
            job = Job(self.role.name, message, sender, tuple(recipients), queue_id)
            return [run_job(job)] * len(recipients)
        return [run_job(Job(self.role.name, message, sender, (r,), queue_id)) for r in recipients]


def _sender(mail_from: str | None) -> str:
    """The envelope sender as a pipe program gets it: '' for the null
    sender, which aiosmtpd gives as ``<>`` (RFC 5321 §4.5.5)."""
    return "" if mail_from in (None, "", "<>") else str(mail_from)


def _unix_lines(message: bytes) -> bytes:
    """The message with LF line ends, as a pipe program reads it from the MTA."""
    return message.replace(b"\r\n", b"\n")


# -- a worker's service -------------------------------------------------------------


class Intake:
    """When a worker takes new connections from its listening sockets.

    Only while no session holds it (:meth:`hold`: none is new or in a
    transaction) and the worker is not stopping; then one connection per
    readiness of a socket. The kernel wakes every idle worker for a new
    connection; one takes it, the others find none.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.sockets: list[tuple[socket.socket, Callable[[], Session]]] = []
        self.holders: set[object] = set()
        self.stopping = False
        self.reading = False

    def add(self, listening: socket.socket, session: Callable[[], Session]) -> None:
        listening.setblocking(False)
        self.sockets.append((listening, session))

    def hold(self, holder: object) -> None:
        self.holders.add(holder)
        self._pause()

    def release(self, holder: object) -> None:
        self.holders.discard(holder)
        if not self.holders and not self.stopping:
            self._resume()

    def stop(self) -> None:
        """Take no more connections; close this process's listening sockets."""
        self.stopping = True
        self._pause()
        for listening, _ in self.sockets:
            listening.close()

    def _resume(self) -> None:
        if not self.reading:
            self.reading = True
            for listening, session in self.sockets:
                self.loop.add_reader(listening.fileno(), self._take, listening, session)

    def _pause(self) -> None:
        if self.reading:
            self.reading = False
            for listening, _ in self.sockets:
                self.loop.remove_reader(listening.fileno())

    def _take(self, listening: socket.socket, session: Callable[[], Session]) -> None:
        if self.stopping or self.holders:
            return
        try:
            connection, _ = listening.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # another worker took it
        except OSError as exc:  # out of file descriptors, say: try again later
            log.warning("cannot take a connection: %s", exc.strerror)
            self._pause()
            self.loop.call_later(1.0, self.release, None)
            return
        connection.setblocking(False)
        task = self.loop.create_task(self.loop.connect_accepted_socket(session, connection))
        self.hold(task)  # until its session holds
        task.add_done_callback(self._started)

    def _started(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.warning("cannot start a session: %s", task.exception())
        self.release(task)


class Worker:
    """One worker's LMTP service on the listening sockets it inherited, until
    SIGTERM; then it drains: no new connection or transaction (421), every
    DATA under way answered, the connections closed."""

    def __init__(self, sockets: Sequence[tuple[Listener, socket.socket]], hostname: str) -> None:
        self.sockets = sockets
        self.hostname = hostname
        self.deliveries: list[Delivery] = []

    async def serve(self) -> None:
        """Serve until SIGTERM, then drain."""
        loop = asyncio.get_running_loop()
        intake = Intake(loop)
        stopped = asyncio.Event()

        def terminate(signum: int, frame: FrameType | None) -> None:
            # A plain handler, run before any further Python code of this
            # process: no connection is taken after the signal has arrived
            # (the supervisor counts on it when it replaces its workers).
            intake.stopping = True
            loop.call_soon_threadsafe(stopped.set)

        signal.signal(signal.SIGTERM, terminate)
        for listener, listening in self.sockets:
            intake.add(listening, self._sessions(Delivery(listener.role), intake, loop))
        intake.release(None)  # start taking connections
        await stopped.wait()
        intake.stop()
        await self.drain()

    def _sessions(
        self, delivery: Delivery, intake: Intake, loop: asyncio.AbstractEventLoop
    ) -> Callable[[], Session]:
        self.deliveries.append(delivery)

        def session() -> Session:
            return Session(
                delivery,
                intake,
                data_size_limit=DATA_LIMIT,
                enable_SMTPUTF8=True,  # the agent itself refuses what it cannot use (5.1.3)
                hostname=self.hostname,
                loop=loop,
            )

        return session

    async def drain(self) -> None:
        """Refuse new transactions; wait for every DATA under way to be
        answered; close the connections."""
        Session.draining = True
        sessions = [s for delivery in self.deliveries for s in delivery.sessions]
        while any(session.busy for session in sessions):
            await asyncio.sleep(0.05)
        for session in sessions:
            if session.transport is not None:
                session.transport.close()
        await asyncio.sleep(0)  # let the transports close
