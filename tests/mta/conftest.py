"""Fixtures for MTA tests: a real Dovecot LMTP server and test mailboxes.

The ``dovecot`` fixture runs one Dovecot for the whole session from a small
standalone configuration in a temporary directory (its own ``base_dir``,
``state_dir`` and log, a 127.0.0.1 listener on a free port) that includes
our ``conf/dovecot/imip-agent.conf`` (the unix listener ``run/lmtp``, for
root and the ``imip-agent`` group, and the user name format), so it
clashes with nothing on the machine. The directory is reachable by every
user (not under pytest's private temporary directory): the pipe programs
of the end-to-end tests connect to the socket as ``imip-agent``. It runs in the
foreground (``dovecot -F``, not daemonized) under a small subreaper that
is our child: at the end we stop it and every Dovecot process is reaped,
so none is left behind, not even a zombie.

Dovecot delivers as the mailbox's unix user, so the mailboxes belong to
test users (``imiptest1`` ...) that are created when missing; that needs
root. Without ``/usr/sbin/dovecot`` or without root the tests skip, except
with ``CI=true``, where they fail: CI must run them (``tools/ci-services``
installs Dovecot).
"""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.mta.mailsystem import Site

DOVECOT = Path("/usr/sbin/dovecot")
POSTFIX = Path("/usr/sbin/postfix")
EXIM = Path("/usr/sbin/exim4")
#: Held (flock) by a session while it uses the test users, Postfix and port 25.
MACHINE_LOCK = Path(tempfile.gettempdir()) / "imip-agent-mta-tests.lock"
MACHINE_WAIT_SECONDS = 900.0
ROOT = Path(__file__).resolve().parents[2]
#: Our Dovecot settings for LMTP delivery, as an admin installs them.
DOVECOT_CONF = ROOT / "conf" / "dovecot" / "imip-agent.conf"
#: The system user the MTA runs the agents as (README, conf/postfix/master.cf).
AGENT_USER = "imip-agent"
START_SECONDS = 10.0
STOP_SECONDS = 10.0
FIRST, SECOND, LOCKED = "imiptest1", "imiptest2", "imiptest3"

CONFIG = """\
protocols = lmtp
listen = 127.0.0.1
ssl = no
base_dir = {directory}/run
state_dir = {directory}/state
log_path = {directory}/dovecot.log
mail_location = maildir:~/Maildir
userdb {{
  driver = passwd
}}
passdb {{
  driver = passwd
}}
!include {include}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
}}
"""

# Dovecot's master does not wait for all its children (the log process
# outlives it), and where PID 1 reaps no orphans (containers, CI VMs) they
# would stay as zombies. So Dovecot runs under this tiny subreaper: it
# passes SIGTERM on to the master, then reaps every orphan before exiting.
REAPER = """\
import ctypes, os, signal, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
signal.signal(signal.SIGTERM, lambda *_: master.terminate())
master = subprocess.Popen(sys.argv[1:])
code = master.wait()
while True:
    try:
        os.wait()
    except ChildProcessError:
        sys.exit(code)
"""


@dataclass(frozen=True)
class Dovecot:
    """A running Dovecot: where to reach it and where it logs."""

    directory: Path
    port: int

    @property
    def socket_target(self) -> str:
        return str(self.directory / "run" / "lmtp")

    @property
    def tcp_target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return _read(self.directory / "dovecot.log") + _read(self.directory / "stderr")

    def wait_for_log(self, text: str, seconds: float = 5.0) -> bool:
        """Whether ``text`` appears in the log within ``seconds``.

        Dovecot writes some lines after it has answered the client, so a
        test that reads the log right after a reply must wait for them.
        """
        deadline = time.monotonic() + seconds
        while text not in self.log:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True


@dataclass(frozen=True)
class Mailbox:
    """A test user's ``~/Maildir``."""

    user: str
    home: Path

    @property
    def maildir(self) -> Path:
        return self.home / "Maildir"

    def messages(self) -> list[bytes]:
        """The delivered files in ``new/``, as stored."""
        new = self.maildir / "new"
        if not new.is_dir():
            return []
        return sorted(path.read_bytes() for path in new.iterdir())

    def clear(self) -> None:
        shutil.rmtree(self.maildir, ignore_errors=True)

    def lock(self) -> None:
        """An empty Maildir the user cannot enter: root-owned, mode 0500."""
        self.clear()
        self.maildir.mkdir(mode=0o500)
        os.chown(self.maildir, 0, 0)
        self.maildir.chmod(0o500)

    def unlock(self) -> None:
        """Give the Maildir back to its user."""
        entry = pwd.getpwnam(self.user)
        os.chown(self.maildir, entry.pw_uid, entry.pw_gid)
        self.maildir.chmod(0o700)


def _unavailable(reason: str) -> None:
    """Skip, or fail when ``CI=true`` (CI must run the MTA tests)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true requires the MTA tests to run", pytrace=False)
    pytest.skip(reason)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def free_port() -> int:
    """A 127.0.0.1 TCP port that nothing listens on (just now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _accepts(family: socket.AddressFamily, address: str | tuple[str, int]) -> bool:
    with socket.socket(family) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(address)
        except OSError:
            return False
        return True


def _wait_until_up(process: subprocess.Popen[bytes], server: Dovecot) -> None:
    """Return when both listeners accept; fail if Dovecot exits or is slow."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dovecot exited with {process.returncode}:\n{server.log}")
        if _accepts(socket.AF_UNIX, server.socket_target) and _accepts(
            socket.AF_INET, ("127.0.0.1", server.port)
        ):
            return
        time.sleep(0.02)
    pytest.fail(f"dovecot did not start within {START_SECONDS:g} s:\n{server.log}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the master stops its children), wait; SIGKILL all if stuck."""
    process.terminate()
    try:
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="session")
def machine() -> Iterator[None]:
    """This session's hold on the machine-wide parts: test users, Postfix, its port.

    Two test runs on one machine (two checkouts, two engineers) would
    clear each other's Maildirs, queue and stores; the second waits here
    (``flock``) until the first has finished its MTA tests.
    """
    with MACHINE_LOCK.open("a") as lock:
        deadline = time.monotonic() + MACHINE_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"another test run held {MACHINE_LOCK} too long", pytrace=False)
                time.sleep(0.5)
        yield


@pytest.fixture(scope="session")
def dovecot(machine: None) -> Iterator[Dovecot]:
    """A Dovecot LMTP server running for the whole session."""
    if not DOVECOT.exists():
        _unavailable(f"{DOVECOT} is not installed (run tools/ci-services as root)")
    if os.geteuid() != 0:
        _unavailable("the Dovecot tests need root (test users, delivery as them)")
    ensure_agent_user()  # the socket's group
    directory = Path(tempfile.mkdtemp(prefix="imip-dovecot-"))
    directory.chmod(0o755)
    server = Dovecot(directory, free_port())
    config = directory / "dovecot.conf"
    text = CONFIG.format(directory=directory, port=server.port, include=DOVECOT_CONF)
    config.write_text(text)
    for name in ("run", "state"):
        (directory / name).mkdir()
    with (directory / "stderr").open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", REAPER, str(DOVECOT), "-F", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        _wait_until_up(process, server)
        yield server
    finally:
        _stop(process)
        shutil.rmtree(directory, ignore_errors=True)


def ensure_agent_user() -> None:
    """The system user and group ``imip-agent``, created when missing (README)."""
    try:
        pwd.getpwnam(AGENT_USER)
    except KeyError:
        subprocess.run(
            [
                *("useradd", "--system", "--user-group", "--no-create-home"),
                *("--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", AGENT_USER),
            ],
            check=True,
            capture_output=True,
        )


def _ensure_user(name: str) -> Mailbox:
    """The unix user ``name`` with a home under /home, created if missing."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--create-home", "--user-group", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(name)
    home = Path(entry.pw_dir)
    if not home.is_dir():
        home.mkdir(mode=0o755, parents=True)
        os.chown(home, entry.pw_uid, entry.pw_gid)
    return Mailbox(name, home)


@pytest.fixture(scope="session")
def users(dovecot: Dovecot) -> dict[str, Mailbox]:
    """The test users, created once (they stay: creating them is idempotent)."""
    return {name: _ensure_user(name) for name in (FIRST, SECOND, LOCKED)}


def _cleared(mailbox: Mailbox) -> Iterator[Mailbox]:
    mailbox.clear()
    yield mailbox
    mailbox.clear()


@pytest.fixture
def mailbox(users: dict[str, Mailbox]) -> Iterator[Mailbox]:
    """An empty mailbox (``imiptest1``)."""
    yield from _cleared(users[FIRST])


@pytest.fixture
def second_mailbox(users: dict[str, Mailbox]) -> Iterator[Mailbox]:
    """Another empty mailbox (``imiptest2``)."""
    yield from _cleared(users[SECOND])


@pytest.fixture
def locked_mailbox(users: dict[str, Mailbox]) -> Iterator[Mailbox]:
    """``imiptest3``, whose Maildir it cannot write: Dovecot answers 451 4.2.0."""
    mailbox = users[LOCKED]
    mailbox.lock()
    yield mailbox
    mailbox.clear()


@pytest.fixture(scope="session")
def site(dovecot: Dovecot) -> Site:
    """The agent installed and configured as the README says (needs Postfix or Exim)."""
    if not POSTFIX.exists() and not EXIM.exists():
        _unavailable(f"{POSTFIX} is not installed (run tools/ci-services as root)")
    from tests.mta import mailsystem

    mailsystem.install_agent()
    return mailsystem.make_site()
