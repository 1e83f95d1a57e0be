"""End to end through Postfix and imip-agent-lmtp: the scenarios of ``scenarios.py``.

The same scenarios as ``test_postfix.py``, with Postfix delivering over
LMTP to one running ``imip-agent-lmtp`` instead of running a pipe program
per message: a private Postfix from ``conf/postfix/main.cf`` with the
services and transport map of ``conf/postfix/lmtp/``, and the daemon
started with the command line of ``conf/systemd/imip-agent-lmtp.service``,
as the agents' user with the supplementary group Postfix's lmtp client
connects as. Its own site (store, configuration, log), so that it never
shares a configuration with the pipe programs' Postfix of the same session.
Needs root and Postfix, like ``test_postfix.py``.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shlex
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.lmtp_support import connected_workers
from tests.mta import mailsystem as ms
from tests.mta.conftest import (
    AGENT_GROUP,
    AGENT_USER,
    POSTFIX,
    Dovecot,
    Mailbox,
    _accepts,
    _stop,
    _unavailable,
    free_port,
    start_reaped,
)
from tests.mta.scenarios import (
    ORGANISER,
    ROOM,
    Delivery,
    MailSystem,
    Scenarios,
    request,
    room_locked,
    uids,
)
from tests.mta.test_postfix import PostfixSystem

pytestmark = pytest.mark.skipif(
    os.environ.get("IMIP_TEST_EXIM") == "1" and not POSTFIX.exists(),
    reason="IMIP_TEST_EXIM=1 and Exim is the installed MTA (see test_postfix.py)",
)

UNIT = ms.CONF / "systemd" / "imip-agent-lmtp.service"
#: The role of each socket of the unit, named as the pipe services are.
SERVICE_OF_SOCKET = {
    "resource.lmtp": "imip-resource",
    "person.lmtp": "imip-person",
    "outgoing.lmtp": "imip-person-outgoing",
}
#: Postfix's line for an LMTP delivery to one of the daemon's sockets:
#: ``4F2A1234: to=<room@...>, relay=HOST[/run/imip-agent/resource.lmtp], ..., status=sent``
#: (HOST: the name the daemon greets with).
LMTP_RUN = (
    r": ([0-9A-F]+): to=<([^>]*)>, (?:orig_to=<[^>]*>, )?relay=[^\[\s]*\[\S*/([a-z]+\.lmtp)\],"
    r" .*, status=(\w+)"
)


def daemon_command(site: ms.Site, dovecot: Dovecot) -> list[str]:
    """The unit's ExecStart, with the test site's paths (``site_text``)."""
    text = ms.site_text(UNIT.read_text(), site, dovecot)
    line = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart="))


def socket_group(command: list[str]) -> str:
    return command[command.index("--socket-group") + 1]


def own_site(private_root: Path, name: str) -> ms.Site:
    """A site of its own (configuration, stores, log) for a daemon's module."""
    return ms.make_site(private_root / name, ms.install_agent(private_root))


@contextmanager
def daemon_running(
    site: ms.Site, dovecot: Dovecot, group: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """:func:`start_daemon`; at the end SIGTERM, and it must exit 0 (drained)."""
    daemon = start_daemon(site, dovecot, group)
    try:
        yield daemon
    finally:
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=60)
    assert code == 0, site.log_text()[-3000:]


@pytest.fixture(scope="module")
def site(private_root: Path) -> ms.Site:
    return own_site(private_root, "site-lmtp")


@dataclass(frozen=True)
class Service:
    """The private Postfix and the daemon it delivers to."""

    postfix: ms.PrivatePostfix
    daemon: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def service(site: ms.Site, dovecot: Dovecot, private_root: Path) -> Iterator[Service]:
    """imip-agent-lmtp, then a private Postfix delivering to it, for this module."""
    if not POSTFIX.exists():
        _unavailable(f"{POSTFIX} is not installed (run tools/ci-services as root)")
    postfix = ms.configure_postfix(
        site, dovecot, private_root / "postfix-lmtp", free_port(), lmtp=True
    )
    ms.write_config(site, f"127.0.0.1:{postfix.port}")
    with daemon_running(site, dovecot) as daemon:
        process = start_reaped(ms.start_postfix(postfix))
        try:
            ms.wait_for(
                lambda: (
                    _accepts(socket.AF_INET, ("127.0.0.1", postfix.port))
                    and postfix.logging_ready()
                ),
                f"Postfix did not listen on 127.0.0.1:{postfix.port}",
                lambda: postfix.log.text()[-3000:],
            )
            yield Service(postfix, daemon)
        finally:
            ms.stop_postfix(postfix)
            _stop(process)
            ms.write_config(site, ms.NOWHERE)


@pytest.fixture(scope="module")
def mta(service: Service) -> ms.PrivatePostfix:
    return service.postfix


def start_daemon(
    site: ms.Site, dovecot: Dovecot, group: str | None = None
) -> subprocess.Popen[bytes]:
    """The unit's command as the agents' user, with the socket group (the
    unit's SupplementaryGroups; ``group`` instead of the unit's, as an
    Exim site sets it); returns once every socket answers."""
    command = daemon_command(site, dovecot)
    if group is not None:
        command[command.index("--socket-group") + 1] = group
    run = site.root / "run"
    run.mkdir(mode=0o755, exist_ok=True)  # systemd's RuntimeDirectory
    os.chown(run, *_ids(AGENT_USER, AGENT_GROUP))
    daemon = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        user=AGENT_USER,
        group=AGENT_GROUP,
        extra_groups=[socket_group(command)],
        umask=0o007,
        cwd="/",
        start_new_session=True,
    )
    sockets = [run / name for name in SERVICE_OF_SOCKET]
    ms.wait_for(
        lambda: all(_accepts(socket.AF_UNIX, str(path)) for path in sockets),
        "imip-agent-lmtp did not listen",
        lambda: site.log_text()[-3000:],
    )
    return daemon


def _ids(user: str, group: str) -> tuple[int, int]:
    return pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid


class PostfixLmtpSystem(PostfixSystem):
    """Postfix's LMTP deliveries to imip-agent-lmtp, named as the pipe services."""

    name = "Postfix (LMTP)"
    # Postfix quotes the daemon's reply: the same status and reason as the pipe's.
    bounce_logged = "dsn=5.6.0, status=bounced"
    bounce_says = (
        "Status: 5.6.0",
        "Diagnostic-Code: smtp; 550 5.6.0 REQUEST without ORGANIZER",
    )

    def _pipe_runs(self) -> list[tuple[str, str, str, str]]:
        found = []
        for line in self.log.text().splitlines():
            if match := re.search(LMTP_RUN, line):
                service = SERVICE_OF_SOCKET[match.group(3)]
                found.append((match.group(1), match.group(2), service, match.group(4)))
        return found

    def runs(self) -> list[Delivery]:
        return [(q, r, t) for q, r, t, _ in self._pipe_runs()]

    def deliveries(self) -> list[Delivery]:
        return [(q, r, t) for q, r, t, status in self._pipe_runs() if status == "sent"]

    def bounce_lines(self, queue_id: str, recipient: str) -> list[str]:
        """Each LMTP line of delivering ``queue_id`` to ``recipient``."""
        return [
            line
            for line in self.log.text().splitlines()
            if f"{queue_id}: to=<{recipient}>" in line and re.search(LMTP_RUN, line)
        ]


class TestPostfixLmtp(Scenarios):
    """The scenarios through Postfix and imip-agent-lmtp."""

    mail_system = PostfixLmtpSystem

    @pytest.fixture
    def system(
        self,
        service: Service,
        site: ms.Site,
        mailbox: Mailbox,
        second_mailbox: Mailbox,
    ) -> Iterator[MailSystem]:
        """As for the pipes; after emptying the site, the daemon reopens its log
        (SIGHUP, as logrotate has it do)."""
        system = self.mail_system(site, service.postfix, mailbox, second_mailbox)
        system.clear_queue()
        ms.reset_site(site)
        service.daemon.send_signal(signal.SIGHUP)
        ms.wait_for(lambda: "reloaded" in site.log_text(), "no reload", site.log_text)
        service.postfix.log.skip()
        yield system
        system.clear_queue()

    def test_the_reply_of_a_bounce_is_the_pipes_status_line(
        self, system: PostfixLmtpSystem
    ) -> None:
        """The bounce scenario's log line carries our reason as LMTP's reply."""
        self.test_unusable_message_bounces_with_our_reason(system)
        (line,) = [ln for ln in system.log.text().splitlines() if "status=bounced" in ln]
        assert "said: 550 5.6.0 REQUEST without ORGANIZER" in line, line

    def test_check_install_passes_with_the_lmtp_services(self, system: MailSystem) -> None:
        """imip-admin check-install knows the LMTP layout: services, routes."""
        for user in (ROOM, ORGANISER):
            ms.admin(system.site, "init-user", user, *(["--resource"] if user == ROOM else []))
        done = system.imip_admin("check-install", "--user", AGENT_USER, *system.mta.options())
        lines = done.stdout.splitlines()
        assert (done.returncode, done.stderr) == (0, ""), done.stdout
        for expected in (
            "ok   Postfix service imip-resource: delivers over LMTP to imip-agent-lmtp",
            "ok   Postfix service imip-person: delivers over LMTP to imip-agent-lmtp",
            f"ok   {ROOM} (resource): Postfix routes it to imip-resource",
        ):
            assert expected in lines, done.stdout

    def test_a_worker_killed_mid_delivery_loses_nothing(
        self, system: PostfixLmtpSystem, service: Service, site: ms.Site
    ) -> None:
        """The worker dies waiting for the room's lock, its connection with
        it: Postfix defers the message ("lost connection"), the supervisor
        starts another worker, and the retry delivers it once."""
        smtp = f"127.0.0.1:{service.postfix.port}"
        ms.write_config(site, smtp, lock_timeout=60.0)  # the worker waits for the lock
        reloads = site.log_text().count("reloaded")
        service.daemon.send_signal(signal.SIGHUP)
        ms.wait_for(lambda: site.log_text().count("reloaded") > reloads, "no reload", site.log_text)
        # The resource socket only: the organiser's copy goes to outgoing.lmtp.
        sockets = {site.root / "run" / "resource.lmtp"}
        try:
            with room_locked(site):
                queue_id = system.send(request("meeting-1", ROOM), ORGANISER, ROOM)
                ms.wait_for(
                    lambda: len(connected_workers(service.daemon.pid, sockets)) == 1,
                    "no worker took the message",
                    system.explain,
                )
                (busy,) = connected_workers(service.daemon.pid, sockets)
                os.kill(busy, signal.SIGKILL)
                ms.wait_for(
                    lambda: system.deferred(queue_id, ROOM), "Postfix did not defer", system.explain
                )
                assert system.replies(system.organiser) == []
        finally:
            ms.write_config(site, smtp)
        ms.wait_for(
            lambda: "a worker stopped (signal 9); starting another" in site.log_text(),
            "the worker was not replaced",
            site.log_text,
        )
        system.flush()
        system.settle()
        assert system.replies(system.organiser) == [("meeting-1", "ACCEPTED")]
        assert uids(ms.exported(system.site, ROOM)) == ["meeting-1"]
        assert ms.admin(system.site, "log", ROOM).count("meeting-1") == 1
        delivered = [d for d in system.deliveries() if d == (queue_id, ROOM, "imip-resource")]
        assert len(delivered) == 1, system.explain()
