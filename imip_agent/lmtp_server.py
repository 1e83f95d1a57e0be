"""The LMTP side of ``imip-agent-lmtp`` (RFC 2033, with aiosmtpd).

- :class:`Listener`: where a role listens, a UNIX socket or a loopback port.
- :class:`Session`: aiosmtpd's LMTP with Postfix's ``XFORWARD`` (the
  client's queue id, ``IDENT``), which refuses new transactions while the
  daemon drains.
- :class:`Delivery`: the aiosmtpd handler of one listener: at the end of
  DATA it hands the message to the workers, one job per recipient (or one
  for all, by the role), and answers one reply per recipient
  (RFC 2033 §4.2) with :func:`lmtp_reply`.
- :class:`Workers`: the process pool; a worker that dies answers 4.x.x for
  its recipients (the MTA keeps the message) and the pool is replaced.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import multiprocessing
import os
import re
import socket
import stat
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from aiosmtpd.smtp import Session as SmtpSession
from aiosmtpd.smtp import syntax

from imip_agent.lmtp_work import ROLES, Job, Outcome, run_job, start_worker
from imiptools.errors import ConfigError, ExitCode

log = logging.getLogger("imip_agent")

#: The largest message taken (aiosmtpd answers 552 above it). Postfix's own
#: default ``message_size_limit`` is 10 MB.
DATA_LIMIT = 64 * 1024 * 1024
#: What the workers' fork server imports once, so that each worker starts
#: with every module of a delivery loaded.
PRELOAD = ["imip_agent.lmtp_work"]
#: The answer for a recipient whose worker died (the MTA retries).
WORKER_DIED = Outcome(int(ExitCode.TEMPFAIL), "4.3.0 imip-agent worker stopped; try again")
#: The answer to a new transaction while the daemon stops.
SHUTTING_DOWN = "421 4.3.2 imip-agent-lmtp is shutting down"


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
    (``127.0.0.1``, ``[::1]``, ``localhost``); ConfigError otherwise: the
    agent must never be reachable from other machines."""
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
        listening.listen(128)
    except OSError as exc:
        listening.close()
        raise ConfigError(f"cannot listen on {path}: {exc.strerror}") from exc
    return listening


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


# -- the workers ------------------------------------------------------------------


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


class Workers:
    """A pool of worker processes, replaced on reload and when one dies."""

    def __init__(self, args: argparse.Namespace, count: int) -> None:
        self.args = args
        self.count = count
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload(PRELOAD)
        self.pool = self._new_pool()

    def _new_pool(self) -> Executor:
        return ProcessPoolExecutor(
            self.count, self.context, initializer=start_worker, initargs=(self.args,)
        )

    async def run(self, job: Job) -> Outcome:
        """``job``'s outcome; WORKER_DIED if its worker (or the pool) died."""
        pool = self.pool
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, run_job, job)
        except BrokenProcessPool:
            log.error("a worker stopped; %s deferred, workers restarted", ",".join(job.recipients))
            self._replace(pool)
            return WORKER_DIED

    def _replace(self, broken: Executor) -> None:
        if self.pool is broken:
            self.pool = self._new_pool()
            broken.shutdown(wait=False, cancel_futures=True)

    def reload(self, args: argparse.Namespace) -> None:
        """New workers with ``args`` (their configuration read anew); jobs
        already handed to the old ones finish there."""
        old, self.args = self.pool, args
        self.pool = self._new_pool()
        old.shutdown(wait=False)

    def shutdown(self) -> None:
        """Wait for every job handed over, then stop the workers."""
        self.pool.shutdown(wait=True)


# -- LMTP -----------------------------------------------------------------------


class Session(LMTP):
    """aiosmtpd's LMTP, with XFORWARD and a refusal while draining."""

    #: Set by the daemon when it stops: new transactions are refused.
    draining = False

    def __init__(self, handler: Delivery, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.xforward: dict[str, str] = {}
        self.busy = False
        handler.sessions.add(self)

    def __dir__(self) -> list[str]:
        """The session's commands and AUTH mechanisms (``smtp_*``,
        ``auth_*``) only: aiosmtpd's ``SMTP.__init__`` builds its tables of
        them from ``dir()`` and ``inspect.getmembers()``, which otherwise
        read every attribute of each new session (about half a millisecond
        of CPU a connection; issue 15)."""
        return _protocol_names(type(self))

    @syntax("XFORWARD attribute=value ...")
    async def smtp_XFORWARD(self, arg: str) -> None:
        """Postfix's XFORWARD (its XFORWARD_README): remember the attributes
        (``IDENT`` is the client's queue id) until the transaction ends."""
        for item in (arg or "").split():
            name, equals, value = item.partition("=")
            if equals:
                self.xforward[name.upper()] = _xtext(value)
        await self.push("250 2.0.0 Ok")

    async def smtp_MAIL(self, arg: str | None) -> None:
        if self.draining:
            await self.push(SHUTTING_DOWN)
            if self.transport is not None:
                self.transport.close()
            return
        await super().smtp_MAIL(arg)

    async def smtp_DATA(self, arg: str) -> None:
        """DATA, busy until every reply is sent (the daemon drains those)."""
        self.busy = True
        try:
            await super().smtp_DATA(arg)
        finally:
            self.busy = False
            self.xforward.clear()

    async def smtp_RSET(self, arg: str) -> None:
        self.xforward.clear()
        await super().smtp_RSET(arg)

    def connection_lost(self, error: Exception | None) -> None:
        handler = self.event_handler
        if isinstance(handler, Delivery):
            handler.sessions.discard(self)
        super().connection_lost(error)


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

    def __init__(self, role: str, workers: Workers) -> None:
        self.role = ROLES[role]
        self.workers = workers
        self.sessions: set[Session] = set()

    async def handle_EHLO(
        self,
        server: Session,
        session: SmtpSession,
        envelope: SmtpEnvelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """The LHLO answer, offering XFORWARD (Postfix then sends its queue id)."""
        session.host_name = hostname
        return [*responses[:-1], "250-XFORWARD NAME ADDR PROTO HELO IDENT SOURCE", responses[-1]]

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
        outcomes = await self.deliver(message, sender, recipients, queue_id)
        return "\r\n".join(lmtp_reply(outcome) for outcome in outcomes)

    async def deliver(
        self, message: bytes, sender: str, recipients: Sequence[str], queue_id: str
    ) -> list[Outcome]:
        """The outcome for each recipient: one job each, run side by side,
        or one job for all (by the role)."""
        if not self.role.per_recipient:
            job = Job(self.role.name, message, sender, tuple(recipients), queue_id)
            return [await self.workers.run(job)] * len(recipients)
        jobs = [Job(self.role.name, message, sender, (r,), queue_id) for r in recipients]
        return list(await asyncio.gather(*(self.workers.run(job) for job in jobs)))


def _sender(mail_from: str | None) -> str:
    """The envelope sender as a pipe program gets it: '' for the null
    sender, which aiosmtpd gives as ``<>`` (RFC 5321 §4.5.5)."""
    return "" if mail_from in (None, "", "<>") else str(mail_from)


def _unix_lines(message: bytes) -> bytes:
    """The message with LF line ends, as a pipe program reads it from the MTA."""
    return message.replace(b"\r\n", b"\n")
