"""A real mail system for the end-to-end tests, private to the test session.

- The agent is installed into a venv made by ``/usr/bin/python3 -m venv``
  that :data:`~tests.mta.conftest.AGENT_USER` can read (the checkout's venv
  may link to a Python under ``/root``, which is 0700 on CI machines). It is
  kept beside the test venv (``.venv/mta-agent``) and rebuilt only when the
  sources change (a digest of them is kept in it); when that place is not
  world-searchable, it is built in the session's temporary directory.
- The site (:class:`Site`): store directories owned by the agents' user, a
  TOML configuration with a short lock timeout and a log file. The agents
  send their answers over SMTP to the private MTA (the ``smtp`` setting): a
  sendmail run by an unprivileged user can only reach the Postfix instance
  that the system's own configuration names.
- Postfix (:class:`PrivatePostfix`) runs as a private instance: its
  configuration directory, queue, data directory and log under the
  temporary directory, listening on a free port of 127.0.0.1, started with
  ``postfix -c DIR start-fg``. Its ``main.cf`` is a small base (loopback
  only, no local delivery, nothing leaves the machine, quick retries)
  followed by ``conf/postfix/main.cf`` itself; ``master.cf`` is Debian's
  stock one with the smtpd moved to the private port, followed by
  ``conf/postfix/master.cf``; the maps are those of ``conf/postfix``, with
  the example names replaced by the test site's (:func:`site_text`). Every
  Postfix command the tests run names the instance (``-c DIR``).
- Exim (:class:`PrivateExim`) likewise: ``exim -C FILE`` with its spool,
  log, pid file and port in the temporary directory, and the lists beside
  the configuration (``CONFDIR``).

Everything here needs root; the fixtures skip (or fail under ``CI=true``)
before calling it otherwise.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pwd
import re
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from icalendar import Calendar

from tests.mta.conftest import (
    AGENT_GROUP,
    AGENT_USER,
    EXIM,
    POSTFIX,
    ROOT,
    Dovecot,
    as_test_account,
)

CONF = ROOT / "conf"
DOMAIN = "example.test"
RESOURCES = f"resources.{DOMAIN}"
#: How long a test waits for the mail system to settle before it fails.
SETTLE_SECONDS = 60.0
#: What the agent's venv is built from (the digest covers these).
SOURCES = ("imip_agent", "imiptools", "pyproject.toml", "README.md")
#: Where the agent's venv is kept between sessions (beside the test venv).
CACHED_VENV = Path(sys.prefix) / "mta-agent"
#: Before an MTA is running, the agents send to a port where nothing listens.
NOWHERE = "127.0.0.1:1"


@dataclass(frozen=True)
class Site:
    """The agent's installation: programs, directories, configuration, log."""

    root: Path
    venv: Path

    @property
    def config(self) -> Path:
        return self.root / "imip-agent.toml"

    @property
    def log(self) -> Path:
        return self.root / "log" / "imip-agent.log"

    def program(self, name: str) -> Path:
        """``imip-admin``, ``imip-resource``, ``python`` ... of the agent's venv."""
        return self.venv / "bin" / name

    def directory(self, name: str) -> Path:
        """``store``, ``preferences``, ``journal`` or ``publishing``."""
        return self.root / name

    def log_text(self) -> str:
        return _read(self.log)


# -- the agent's installation -------------------------------------------------


def source_digest() -> str:
    """A digest of the files the venv is built from."""
    digest = hashlib.sha256()
    for name in SOURCES:
        path = ROOT / name
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in files:
            if file.is_file() and "__pycache__" not in file.parts:
                digest.update(str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def _world_searchable(path: Path) -> bool:
    """Whether every directory down to ``path`` lets any user through."""
    return all(parent.stat().st_mode & 0o001 for parent in [*reversed(path.parents), path])


def install_agent(private_root: Path) -> Path:
    """The checkout installed into a venv the agents' user can run (reused if unchanged).

    About 12 s when built; built from a copy of the sources, so the
    checkout gets no build files.
    """
    usable = sys.prefix != sys.base_prefix and _world_searchable(CACHED_VENV.parent)
    venv = CACHED_VENV if usable else private_root / "venv"
    with (venv.parent / ".mta-agent.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be building it
        stamp = venv / ".imip-agent-source"
        digest = source_digest()
        if _read(stamp) != digest:
            _build_venv(venv)
            stamp.write_text(digest)
    return venv


def _build_venv(venv: Path) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="imip-agent-build-") as build:
        for name in SOURCES:
            source, target = ROOT / name, Path(build) / name
            if source.is_dir():
                shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(source, target)
        # No pip in the new venv (ensurepip alone takes seconds): the test
        # venv's pip installs into it.
        _run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)])
        pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
        _run([*pip, "install", "--disable-pip-version-check", "--quiet", build])


def make_site(root: Path, venv: Path) -> Site:
    """Directories owned by the agents' user (0750) and a root-owned configuration.

    ``root`` itself is 0755 so that the MTA (as the agents' user) and the
    tests reach everything below it. Until an MTA runs, the agents send to
    :data:`NOWHERE`, never to the system's mail system.
    """
    site = Site(root, venv)
    root.mkdir(mode=0o755, parents=True, exist_ok=True)
    root.chmod(0o755)
    write_config(site, NOWHERE)
    reset_site(site)
    return site


def write_config(site: Site, smtp: str, lock_timeout: float = 2.0) -> None:
    """The site's configuration; the agents send through ``smtp`` (HOST:PORT)."""
    lines = ["[agent]"]
    for name in ("store", "preferences", "journal", "publishing"):
        lines.append(f'{name} = "{site.directory(name)}"')
    lines += [f"lock_timeout = {lock_timeout}", f'log_file = "{site.log}"', f'smtp = "{smtp}"', ""]
    site.config.write_text("\n".join(lines))
    site.config.chmod(0o644)


def reset_site(site: Site) -> None:
    """Empty stores and log, owned by the agents' user as the README says."""
    entry = pwd.getpwnam(AGENT_USER)
    for name in ("store", "preferences", "journal", "publishing", "log"):
        path = site.root / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(mode=0o750)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    # The log file exists and is the agents', so that root running
    # imip-admin appends to it instead of creating it root-owned.
    site.log.touch(mode=0o640)
    os.chown(site.log, entry.pw_uid, entry.pw_gid)


def as_agent(argv: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` as the agents' user (only its own group), as cron or an admin would."""
    return subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        user=AGENT_USER,
        group=AGENT_GROUP,
        extra_groups=[],
        cwd="/",
        timeout=120,
        check=False,
    )


def admin(site: Site, *args: str) -> str:
    """``imip-admin -c CONFIG ARGS`` as the agents' user; its output."""
    done = as_agent([str(site.program("imip-admin")), "-c", str(site.config), *args])
    output = done.stdout.decode()
    assert done.returncode == 0, output + done.stderr.decode()
    return output


def exported(site: Site, user: str) -> Calendar:
    """The user's calendar (``imip-admin export``)."""
    return Calendar.from_ical(admin(site, "export", user))


def site_text(text: str, site: Site, dovecot: Dovecot) -> str:
    """A conf/ file with the example names, paths and user replaced by the test site's."""
    replacements = {
        "/opt/imip-agent/venv": str(site.venv),
        "/etc/imip-agent/imip-agent.toml": str(site.config),
        "/run/dovecot/lmtp": dovecot.socket_target,
        "/run/imip-agent": str(site.root / "run"),
        "example.org": DOMAIN,
        "alice@": "imiptest1@",
        "bob@": "imiptest2@",
        "projector@": "room2@",
    }
    for old, new in replacements.items():
        text = text.replace(old, new)
    return as_test_account(text)


# -- the MTA's log and SMTP ------------------------------------------------------


@dataclass
class MailLog:
    """The part of an MTA's log written since ``offset``."""

    path: Path
    offset: int = 0

    def text(self) -> str:
        try:
            with self.path.open("rb") as log:
                log.seek(self.offset)
                return log.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def skip(self) -> None:
        """Start reading from the end (at the start of a test)."""
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def pipe_lines(self) -> list[str]:
        """Postfix's delivery lines of the pipe services (``relay=imip-...``)."""
        return [line for line in self.text().splitlines() if ", relay=imip-" in line]


def submit(port: int, message: bytes, sender: str, recipients: list[str]) -> str:
    """Send ``message`` over SMTP to 127.0.0.1:``port``; the queue id the MTA gave it."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo("client.example.test")
        smtp.mail(sender)
        for recipient in recipients:
            code, reply = smtp.rcpt(recipient)
            assert code == 250, (recipient, code, reply)
        code, reply = smtp.data(message)
    assert code == 250, (code, reply)
    # Postfix: "250 2.0.0 Ok: queued as 4F2A1234"; Exim: "250 OK id=1tAbCd-000123-Ef".
    found = re.search(rb"(?:queued as |id=)([0-9A-Za-z-]+)", reply)
    assert found, reply
    return found.group(1).decode()


def rcpt_reply(port: int, sender: str, recipient: str) -> tuple[int, str]:
    """The MTA's answer to ``RCPT TO:<recipient>`` (then the session is abandoned)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.ehlo("client.example.test")
        smtp.mail(sender)
        code, reply = smtp.rcpt(recipient)
        smtp.rset()
    return code, reply.decode("utf-8", "replace")


# -- a private Postfix, configured from conf/postfix ----------------------------

#: The lookup tables of conf/postfix, installed and postmap'ed as they are.
POSTFIX_MAPS = ("imip-transport", "imip-sender-bcc", "imip-resources")
#: Debian's stock master.cf (the smtpd line is moved to the private port).
STOCK_MASTER_CF = Path("/usr/share/postfix/master.cf.dist")
BASE_MAIN_CF = """\
# imip-agent end-to-end tests: a private Postfix (postfix -c {directory}),
# generated by tests/mta/mailsystem.py; conf/postfix/main.cf follows.
compatibility_level = 3.6
queue_directory = {directory}/queue
data_directory = {directory}/data
maillog_file = {directory}/postfix.log
maillog_file_prefixes = {directory}
myhostname = mail.{domain}
mydomain = {domain}
myorigin = $mydomain
mydestination = $mydomain, localhost
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# People are the private Dovecot's virtual users, reached through imip-person
# (transport_maps): no Unix accounts, and local(8) delivers nothing, so no
# mail reaches the machine's own mailboxes.
local_recipient_maps =
local_transport = error:5.1.1 no local delivery in the tests
alias_maps =
alias_database =
# Nothing leaves the machine.
default_transport = error:5.7.1 no mail leaves the tests
relayhost =
biff = no
append_dot_mydomain = no
readme_directory = no
smtputf8_enable = no
# retry deferred mail within seconds, not minutes
queue_run_delay = 2s
minimal_backoff_time = 2s
maximal_backoff_time = 4s

"""


@dataclass(frozen=True)
class PrivatePostfix:
    """A Postfix instance of our own: ``postfix -c directory``, smtpd on ``port``."""

    directory: Path
    port: int
    log: MailLog = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "log", MailLog(self.directory / "postfix.log"))

    def command(self, program: str, *args: str) -> list[str]:
        """``program -c DIRECTORY ARGS``: every Postfix command names this instance."""
        return [program, "-c", str(self.directory), *args]

    def run(self, program: str, *args: str) -> subprocess.CompletedProcess[bytes]:
        return _run(self.command(program, *args))

    def options(self) -> list[str]:
        """The ``imip-admin`` options naming this instance."""
        return ["--mta", "postfix", "--postfix-config", str(self.directory)]

    def logging_ready(self) -> bool:
        """Whether master(8) has made postlogd's socket.

        master opens its services' sockets in master.cf order, so smtpd's port
        listens before ``public/postlog`` exists; a command run as root in that
        window (``postsuper``) writes the log itself after dropping privileges
        and fails with "open logfile ... Permission denied"."""
        return (self.directory / "queue" / "public" / "postlog").is_socket()

    def queue(self) -> list[dict[str, object]]:
        """The queue as ``postqueue -j`` lists it (maildrop to deferred)."""
        done = self.run("postqueue", "-j")
        return [json.loads(line) for line in done.stdout.decode().splitlines() if line.strip()]

    def clear_queue(self) -> None:
        """Delete every message of this instance's queue (between tests)."""
        self.run("postsuper", "-d", "ALL")

    def flush(self) -> None:
        """Retry deferred mail now (``postqueue -f``)."""
        self.run("postqueue", "-f")

    def table(self, name: str) -> Path:
        return self.directory / name


def configure_postfix(
    site: Site, dovecot: Dovecot, directory: Path, port: int, lmtp: bool = False
) -> PrivatePostfix:
    """Write main.cf, master.cf and the maps from conf/postfix into ``directory``;
    with ``lmtp``, master.cf's services and the transport map of
    conf/postfix/lmtp instead (imip-agent-lmtp)."""
    postfix = PrivatePostfix(directory, port)
    layout = CONF / "postfix" / "lmtp" if lmtp else CONF / "postfix"
    directory.mkdir(mode=0o755)
    (directory / "queue").mkdir(mode=0o755)
    base = BASE_MAIN_CF.format(directory=directory, domain=DOMAIN)
    main = base + site_text((CONF / "postfix" / "main.cf").read_text(), site, dovecot)
    (directory / "main.cf").write_text(main)
    smtpd = f"127.0.0.1:{port} inet n - n - - smtpd"
    stock = re.sub(r"(?m)^smtp\s+inet\s.*$", smtpd, STOCK_MASTER_CF.read_text(), count=1)
    master = stock + "\n" + site_text((layout / "master.cf").read_text(), site, dovecot)
    (directory / "master.cf").write_text(master)
    postfix.run("postconf", "-F", "*/*/chroot = n")  # Debian's chroot jail is empty
    for name in POSTFIX_MAPS:
        source = layout / name if (layout / name).exists() else CONF / "postfix" / name
        text = site_text(source.read_text(), site, dovecot)
        postfix.table(name).write_text(text)
        postfix.run("postmap", str(postfix.table(name)))
    postfix.run("postfix", "check")  # also creates the queue's directories
    return postfix


def start_postfix(postfix: PrivatePostfix) -> list[str]:
    """The command that runs the instance in the foreground (under a subreaper)."""
    return postfix.command(str(POSTFIX), "start-fg")


def stop_postfix(postfix: PrivatePostfix) -> None:
    subprocess.run(postfix.command("postfix", "stop"), capture_output=True, check=False)


# -- a private Exim, configured from conf/exim ----------------------------------

EXIM_CONF = CONF / "exim"
EXIM_USER = "Debian-exim"
#: The lookup files routers.conf names, installed as they are.
EXIM_LISTS = ("imip-people", "imip-resources")
#: The Exim configuration around our three files: its own directories, log,
#: pid file and port, loopback only, quick retries, a recipient ACL
#: accepting the test site's domains. CONFDIR (the lists) is this directory.
BASE_EXIM_CONF = """\
# imip-agent end-to-end tests: a private Exim (exim -C {directory}/exim.conf),
# generated by tests/mta/mailsystem.py around conf/exim's files.
CONFDIR = {directory}
spool_directory = {directory}/spool
log_file_path = {directory}/log/%slog
pid_file_path = {directory}/exim.pid
primary_hostname = mail.{domain}
qualify_domain = {domain}
domainlist local_domains = {domain} : localhost
local_interfaces = 127.0.0.1
daemon_smtp_ports = {port}
host_lookup =
rfc1413_hosts =
rfc1413_query_timeout = 0s
keep_environment =
tls_advertise_hosts =
never_users = root
acl_smtp_rcpt = acl_check_rcpt
# a bounce that cannot be delivered is dropped, not frozen for days
ignore_bounce_errors_after = 0s
timeout_frozen_after = 1m

# -- conf/exim/main.conf
{main}

begin acl

acl_check_rcpt:
  accept domains = +local_domains : +imip_resource_domains
         verify = recipient
  deny   message = relay not permitted

begin routers

# -- conf/exim/routers.conf
{routers}

begin transports

# -- conf/exim/transports.conf
{transports}

begin retry

# retry deferred mail every 2 s (the daemon runs the queue with -q2s)
*   *   F,1h,2s
"""


@dataclass(frozen=True)
class PrivateExim:
    """An Exim instance of our own: ``exim -C directory/exim.conf``, SMTP on ``port``."""

    directory: Path
    port: int
    log: MailLog = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "log", MailLog(self.directory / "log" / "mainlog"))

    @property
    def config(self) -> Path:
        return self.directory / "exim.conf"

    def command(self, *args: str) -> list[str]:
        """``exim -C CONFIG ARGS``: every Exim command names this instance."""
        return [str(EXIM), "-C", str(self.config), *args]

    def options(self) -> list[str]:
        """The ``imip-admin`` options naming this instance."""
        return ["--mta", "exim", "--exim-config", str(self.config)]

    def queue(self) -> list[str]:
        """The ids of the messages in the queue (``-bp``), deferred or in flight."""
        done = _run(self.command("-bp"))
        return re.findall(
            r"\b([0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4})\b", done.stdout.decode()
        )

    def clear_queue(self) -> None:
        """Delete every queued message and the retry hints (between tests)."""
        ids = self.queue()
        if ids:
            subprocess.run(self.command("-Mrm", *ids), capture_output=True, check=False)
        for hints in (self.directory / "spool" / "db").glob("retry*"):
            hints.unlink(missing_ok=True)

    def flush(self) -> None:
        """Retry deferred mail now (``-qff``)."""
        _run(self.command("-qff"))

    def table(self, name: str) -> Path:
        return self.directory / name


def configure_exim(
    site: Site, dovecot: Dovecot, directory: Path, port: int, lmtp: bool = False
) -> PrivateExim:
    """Write the configuration around conf/exim's files and the lists; check it
    (``-bV``). ``lmtp``: the transports of ``transports-lmtp.conf`` (to
    imip-agent-lmtp's sockets) instead of the pipe transports, as its
    comment tells an admin to do."""
    exim = PrivateExim(directory, port)
    directory.mkdir(mode=0o755)
    entry = pwd.getpwnam(EXIM_USER)
    for name in ("spool", "log"):
        (directory / name).mkdir(mode=0o750)
        os.chown(directory / name, entry.pw_uid, entry.pw_gid)
    files = {"main": "main", "routers": "routers"}
    files["transports"] = "transports-lmtp" if lmtp else "transports"
    parts = {
        part: site_text((EXIM_CONF / f"{name}.conf").read_text(), site, dovecot)
        for part, name in files.items()
    }
    text = BASE_EXIM_CONF.format(directory=directory, domain=DOMAIN, port=port, **parts)
    exim.config.write_text(text)
    for name in EXIM_LISTS:
        exim.table(name).write_text(site_text((EXIM_CONF / name).read_text(), site, dovecot))
    _run(exim.command("-bV"))
    return exim


# -- waiting -------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], what: str, explain: Callable[[], str]) -> None:
    """Poll ``condition`` until true; fail saying ``what`` and ``explain()``.

    Only a deadline against a hung mail system: nothing asserts durations.
    """
    deadline = time.monotonic() + SETTLE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {SETTLE_SECONDS:g} s\n{explain()}")
        time.sleep(0.05)


def each_line(text: str, pattern: str) -> Iterator[re.Match[str]]:
    for line in text.splitlines():
        if found := re.search(pattern, line):
            yield found


def _run(argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(argv, capture_output=True, timeout=120, check=False, umask=0o022)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).decode("utf-8", "replace")
        raise RuntimeError(f"{' '.join(argv)} exited with {done.returncode}:\n{output}")
    return done


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
