"""Test support for imip-agent-lmtp: the daemon as a real process, and an
LMTP client that reads every recipient's reply (RFC 2033 §4.2).

:class:`Daemon` starts ``imip-agent-lmtp`` with a store of
:class:`tests.support.Agent`, one UNIX socket per role in the test's
directory, and ``--output`` for what it sends; :meth:`Daemon.deliver`
runs one LMTP transaction as Postfix's ``lmtp`` client would (XFORWARD
with the queue id, then MAIL, RCPT, DATA) and returns the replies.
"""

from __future__ import annotations

import contextlib
import os
import signal
import smtplib
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import BIN, Agent, Run, _parse_mail

START_SECONDS = 60.0
ROLES = ("resource", "person", "outgoing")


@dataclass(frozen=True)
class Reply:
    """One LMTP reply: the code and its text."""

    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


def lmtp_transaction(
    path: Path,
    message: bytes,
    sender: str,
    recipients: list[str],
    queue_id: str = "",
    timeout: float = 120.0,
) -> list[Reply]:
    """One transaction over the UNIX socket ``path``: one reply per recipient
    accepted at RCPT, or the refusal of MAIL or DATA as the only one."""
    with smtplib.LMTP(str(path), timeout=timeout) as client:
        client.command_encoding = "utf-8"  # SMTPUTF8 (RFC 6531): the daemon offers it
        code, text = client.docmd("LHLO", "client.example.test")
        assert code == 250, text
        if queue_id and b"XFORWARD" in text:
            client.docmd("XFORWARD", f"IDENT={queue_id}")
        code, text = client.docmd(f"MAIL FROM:<{sender}>")
        if code != 250:
            return [Reply(code, text.decode())]
        accepted = []
        for recipient in recipients:
            code, text = client.docmd(f"RCPT TO:<{recipient}>")
            assert code == 250, (recipient, code, text)
            accepted.append(recipient)
        code, text = client.docmd("DATA")
        if code != 354:
            return [Reply(code, text.decode())]
        data = smtplib.quotedata(message.decode("utf-8", "surrogateescape"))
        data += "" if data.endswith("\r\n") else "\r\n"  # as smtplib's data() does
        client.send(data.encode("utf-8", "surrogateescape") + b".\r\n")
        return [Reply(*_decoded(client.getreply())) for _ in accepted]


def _decoded(reply: tuple[int, bytes]) -> tuple[int, str]:
    return reply[0], reply[1].decode("utf-8", "replace")


@dataclass
class Daemon:
    """A running imip-agent-lmtp for ``agent``'s store."""

    agent: Agent
    directory: Path
    extra: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    deliveries: int = 0
    sockets: dict[str, Path] = field(default_factory=dict)

    @property
    def output(self) -> Path:
        return self.directory / "out"

    @property
    def log(self) -> Path:
        return self.directory / "daemon.log"

    def argv(self) -> list[str]:
        self.sockets = {role: self.directory / f"{role}.lmtp" for role in ROLES}
        listen = [f"--{role}=unix:{path}" for role, path in self.sockets.items()]
        return [
            str(BIN / "imip-agent-lmtp"),
            *self.agent.store_options,
            "--now",
            self.agent.now,
            *listen,
            "--output",
            str(self.output),
            "--log",
            str(self.log),
            "--workers",
            "2",
            *self.extra,
        ]

    def start(self) -> Daemon:
        """Start it and wait until every socket answers (the site set up
        first, as imip-admin init does: the agents never create it)."""
        self.agent.set_up()
        self.directory.mkdir(parents=True, exist_ok=True)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        self.process = subprocess.Popen(
            self.argv(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd="/",
        )
        deadline = time.monotonic() + START_SECONDS
        while not all(_answers(path) for path in self.sockets.values()):
            if self.process.poll() is not None:
                raise AssertionError(f"imip-agent-lmtp exited: {self.console()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"imip-agent-lmtp did not listen: {self.log_text()}")
            time.sleep(0.05)
        return self

    def console(self) -> str:
        assert self.process is not None and self.process.stdout is not None
        return self.process.stdout.read().decode("utf-8", "replace")

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM; the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()

    def kill(self) -> None:
        """SIGKILL the daemon and every process below it (after a failed test).

        The supervisor is stopped (SIGSTOP) first, so that it cannot fork a
        replacement for a worker killed here: such a worker would outlive
        the test, orphaned."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGSTOP)
            for pid in [*descendants(self.process.pid), self.process.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.wait()

    def workers(self) -> list[int]:
        """The worker processes: the daemon's children (it forks them)."""
        assert self.process is not None
        return children(self.process.pid)

    def deliver(
        self, role: str, message: bytes, sender: str, recipients: list[str], queue_id: str = ""
    ) -> tuple[list[Reply], Run]:
        """One transaction to ``role``'s socket: the replies, and a :class:`Run`
        with the messages written to ``--output`` by it."""
        before = set(self.output.glob("*")) if self.output.exists() else set()
        replies = lmtp_transaction(self.sockets[role], message, sender, recipients, queue_id)
        after = sorted(set(self.output.glob("*")) - before) if self.output.exists() else []
        files = [path.read_bytes() for path in after]
        code = replies[0].code if replies else 0
        run = Run(code, "", "", [_parse_mail(data) for data in files], message, files)
        return replies, run


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(str(path))
        except OSError:
            return False
        return True


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        fields = stat.rpartition(")")[2].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``."""
    below = []
    for child in children(pid):
        below += [child, *descendants(child)]
    return below


def connected_workers(pid: int, paths: set[Path]) -> list[int]:
    """The children of daemon ``pid`` (its workers) holding a connection to
    one of the UNIX sockets at ``paths``."""
    connected = _connections(paths)
    return [child for child in children(pid) if _socket_inodes(child) & connected]


def _connections(paths: set[Path]) -> set[str]:
    """The inodes of the connected server ends of UNIX sockets at ``paths``
    (``/proc/net/unix``: state 03, the path of the listener)."""
    found = set()
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[5] == "03" and Path(fields[7]) in paths:
            found.add(fields[6])
    return found


def _socket_inodes(pid: int) -> set[str]:
    """The inodes of the sockets process ``pid`` has open."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            found.add(link.removeprefix("socket:[").removesuffix("]"))
    return found
