"""Fixtures for the MTA tests: private mail servers, virtual mailboxes, no system users.

Everything the MTA tests run lives under one temporary directory
(:func:`private_root`, removed at the end) and leaves the machine's own mail
system alone: Dovecot here, Postfix and Exim in ``mailsystem.py``, each a
private instance with its own configuration, queue or state, log, ports and
sockets (``dovecot -c FILE``, ``postfix -c DIR``, ``exim -C FILE``). Nothing
is written to ``/etc``, no system user is created, the system queue is never
read or cleared; ``untouched.py`` checks that the system's mail
configuration and account files are byte-identical afterwards.

- The MTA runs the agents as :data:`AGENT_USER` where the install guide
  says ``imip-agent``: ``nobody``, which every Debian system has, or under
  Exim, Exim's own user; the conf/ files are templated with it
  (:func:`as_test_account`).
- People's mailboxes are virtual users of the private Dovecot (a
  ``passwd-file`` with the uid of :data:`MAIL_USER` and homes under the
  temporary directory), named ``imiptest1`` ... as before.
- Dovecot runs in the foreground (``dovecot -F``) under a small subreaper
  that is our child: at the end we stop it and every Dovecot process is
  reaped, so none is left behind, not even a zombie.

Starting the servers and delivering as another uid needs root. Without
``/usr/sbin/dovecot`` or without root the tests skip, except with
``CI=true``, where they fail: CI must run them (``tools/ci-services``
installs Dovecot).
"""

from __future__ import annotations

import grp
import os
import pwd
import re
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

from tests.mta.untouched import system_files_untouched

if TYPE_CHECKING:
    from tests.mta.mailsystem import Site

__all__ = ["system_files_untouched"]  # the identity test runs for every MTA test

DOVECOT = Path("/usr/sbin/dovecot")
POSTFIX = Path("/usr/sbin/postfix")
EXIM = Path("/usr/sbin/exim4")
ROOT = Path(__file__).resolve().parents[2]
#: Our Dovecot settings for LMTP delivery, as an admin installs them.
DOVECOT_CONF = ROOT / "conf" / "dovecot" / "imip-agent.conf"
#: The unprivileged user the MTA runs the agents as, in place of the install
#: guide's imip-agent: an existing user, so the tests create none. Under Exim
#: (IMIP_TEST_EXIM=1) it is Exim's own user: a private Exim (``-C`` with a
#: file not in Debian's TRUSTED_CONFIG_LIST, which is in /etc/exim4) gives up
#: root before it delivers, so it can run a pipe only as itself.
AGENT_USER = "Debian-exim" if os.environ.get("IMIP_TEST_EXIM") == "1" else "nobody"
AGENT_GROUP = grp.getgrgid(pwd.getpwnam(AGENT_USER).pw_gid).gr_name
#: Whose uid and gid the virtual mailboxes have (Dovecot refuses uids below
#: its first_valid_uid, 500, such as Exim's).
MAIL_USER = "nobody"
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
# virtual users: no system accounts (name:password:uid:gid::home::)
userdb {{
  driver = passwd-file
  args = {users}
}}
passdb {{
  driver = passwd-file
  args = {users}
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
# would stay as zombies. So each server runs under this tiny subreaper: it
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


def as_test_account(text: str) -> str:
    """A conf/ file with the install guide's ``imip-agent`` user and group
    replaced by :data:`AGENT_USER` and its group (Postfix ``user=``, Exim
    ``user =``/``group =``/``trusted_users =``, Dovecot ``group =``)."""
    text = re.sub(r"\buser=imip-agent\b", f"user={AGENT_USER}", text)
    text = re.sub(
        r"(?m)^(\s*(?:user|trusted_users)\s*=\s*)imip-agent\s*$", rf"\g<1>{AGENT_USER}", text
    )
    return re.sub(r"(?m)^(\s*group\s*=\s*)imip-agent\s*$", rf"\g<1>{AGENT_GROUP}", text)


@dataclass(frozen=True)
class Mailbox:
    """A virtual user's ``~/Maildir`` in the private Dovecot."""

    user: str
    home: Path
    uid: int
    gid: int

    @property
    def maildir(self) -> Path:
        return self.home / "Maildir"

    @property
    def address(self) -> str:
        """The address LMTP delivers to (Dovecot drops the domain: ``%Ln``)."""
        return f"{self.user}@example.test"

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
        os.chown(self.maildir, self.uid, self.gid)
        self.maildir.chmod(0o700)


@dataclass(frozen=True)
class Dovecot:
    """A running private Dovecot: where to reach it, its mailboxes, its log."""

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

    def mailbox(self, user: str) -> Mailbox:
        """The mailbox of the virtual user ``user`` (one of :data:`FIRST` ...)."""
        entry = pwd.getpwnam(MAIL_USER)
        return Mailbox(user, self.directory / "home" / user, entry.pw_uid, entry.pw_gid)

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


def start_reaped(argv: list[str], output: Path | None = None) -> subprocess.Popen[bytes]:
    """Run ``argv`` in the foreground under :data:`REAPER`, in its own session."""
    with output.open("wb") if output else open(os.devnull, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", REAPER, *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )


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
def private_root() -> Iterator[Path]:
    """The session's temporary directory for every private server and the site.

    World-searchable (0755): the agents run as :data:`AGENT_USER` and reach
    the site, the venv and Dovecot's socket below it. Removed at the end,
    after the servers have stopped (their fixtures depend on this one).
    """
    if os.geteuid() != 0:
        _unavailable("the MTA tests need root (private mail servers, delivery as other users)")
    directory = Path(tempfile.mkdtemp(prefix="imip-mta-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot(private_root: Path) -> Iterator[Dovecot]:
    """A private Dovecot LMTP server for the whole session, with its virtual users."""
    if not DOVECOT.exists():
        _unavailable(f"{DOVECOT} is not installed (run tools/ci-services as root)")
    directory = private_root / "dovecot"
    server = Dovecot(directory, free_port())
    for name in ("", "run", "state", "home"):
        (directory / name).mkdir(mode=0o755)
    users = directory / "users"
    lines = []
    for name in (FIRST, SECOND, LOCKED):
        mailbox = server.mailbox(name)
        mailbox.home.mkdir(mode=0o700)
        os.chown(mailbox.home, mailbox.uid, mailbox.gid)
        lines.append(f"{name}::{mailbox.uid}:{mailbox.gid}::{mailbox.home}::\n")
    users.write_text("".join(lines))
    include = directory / "imip-agent.conf"
    include.write_text(as_test_account(DOVECOT_CONF.read_text()))
    config = directory / "dovecot.conf"
    config.write_text(
        CONFIG.format(directory=directory, port=server.port, include=include, users=users)
    )
    process = start_reaped([str(DOVECOT), "-F", "-c", str(config)], directory / "stderr")
    try:
        _wait_until_up(process, server)
        yield server
    finally:
        _stop(process)


def _cleared(mailbox: Mailbox) -> Iterator[Mailbox]:
    mailbox.clear()
    yield mailbox
    mailbox.clear()


@pytest.fixture
def mailbox(dovecot: Dovecot) -> Iterator[Mailbox]:
    """An empty mailbox (``imiptest1``)."""
    yield from _cleared(dovecot.mailbox(FIRST))


@pytest.fixture
def second_mailbox(dovecot: Dovecot) -> Iterator[Mailbox]:
    """Another empty mailbox (``imiptest2``)."""
    yield from _cleared(dovecot.mailbox(SECOND))


@pytest.fixture
def locked_mailbox(dovecot: Dovecot) -> Iterator[Mailbox]:
    """``imiptest3``, whose Maildir it cannot write: Dovecot answers 451 4.2.0."""
    mailbox = dovecot.mailbox(LOCKED)
    mailbox.lock()
    yield mailbox
    mailbox.clear()


@pytest.fixture(scope="session")
def site(private_root: Path) -> Site:
    """The agent installed and configured as the README says, run as :data:`AGENT_USER`."""
    from tests.mta import mailsystem

    venv = mailsystem.install_agent(private_root)
    return mailsystem.make_site(private_root / "site", venv)
