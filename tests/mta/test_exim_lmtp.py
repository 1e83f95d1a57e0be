"""End to end through Exim and imip-agent-lmtp: the scenarios of ``scenarios.py``.

The same scenarios as ``test_exim.py``, with Exim's transports replaced by
the LMTP transports of ``conf/exim/transports-lmtp.conf`` (as its comment
tells an admin to do), delivering to one running ``imip-agent-lmtp``
started with the command line of ``conf/systemd/imip-agent-lmtp.service``
and ``--socket-group Debian-exim``. Its own site (store, configuration,
log). Runs only with ``IMIP_TEST_EXIM=1``, like ``test_exim.py``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.mta import mailsystem as ms
from tests.mta.conftest import (
    AGENT_GROUP,
    EXIM,
    Dovecot,
    Mailbox,
    _accepts,
    _stop,
    _unavailable,
    free_port,
    start_reaped,
)
from tests.mta.scenarios import MailSystem, Scenarios
from tests.mta.test_exim import EximSystem
from tests.mta.test_postfix_lmtp import daemon_running, own_site

pytestmark = pytest.mark.skipif(
    os.environ.get("IMIP_TEST_EXIM") != "1",
    reason="Exim tests run only with IMIP_TEST_EXIM=1 (after IMIP_TEST_EXIM=1 tools/ci-services)",
)


@pytest.fixture(scope="module")
def site(private_root: Path) -> ms.Site:
    return own_site(private_root, "site-exim-lmtp")


@dataclass(frozen=True)
class Service:
    """The private Exim and the daemon it delivers to."""

    exim: ms.PrivateExim
    daemon: subprocess.Popen[bytes]


@pytest.fixture(scope="module")
def service(site: ms.Site, dovecot: Dovecot, private_root: Path) -> Iterator[Service]:
    """imip-agent-lmtp, then a private Exim delivering to it, for this module."""
    if not EXIM.exists():
        _unavailable(f"{EXIM} is not installed (run IMIP_TEST_EXIM=1 tools/ci-services)")
    exim = ms.configure_exim(site, dovecot, private_root / "exim-lmtp", free_port(), lmtp=True)
    ms.write_config(site, f"127.0.0.1:{exim.port}")
    # Exim's own group: its lmtp transport connects as Debian-exim (the agents'
    # user of the Exim tests, so AGENT_GROUP).
    with daemon_running(site, dovecot, group=AGENT_GROUP) as daemon:
        process = start_reaped(exim.command("-bdf", "-q2s"))
        try:
            ms.wait_for(
                lambda: _accepts(socket.AF_INET, ("127.0.0.1", exim.port)),
                f"Exim did not listen on 127.0.0.1:{exim.port}",
                lambda: exim.log.text()[-3000:],
            )
            yield Service(exim, daemon)
        finally:
            ms.write_config(site, ms.NOWHERE)
            _stop(process)
            exim.clear_queue()


@pytest.fixture(scope="module")
def mta(service: Service) -> ms.PrivateExim:
    return service.exim


class EximLmtpSystem(EximSystem):
    """Exim's LMTP deliveries to imip-agent-lmtp (logged as its pipe runs are)."""

    name = "Exim (LMTP)"
    # The daemon's reply, quoted by Exim: the same status and reason as the pipe's.
    bounce_logged = "LMTP error after end of data: 550 5.6.0 REQUEST without ORGANIZER"
    bounce_says = ("Status: 5.0.0", "5.6.0 REQUEST without ORGANIZER")


class TestEximLmtp(Scenarios):
    """The scenarios through Exim and imip-agent-lmtp."""

    mail_system = EximLmtpSystem

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
        system = self.mail_system(site, service.exim, mailbox, second_mailbox)
        system.clear_queue()
        ms.reset_site(site)
        service.daemon.send_signal(signal.SIGHUP)
        ms.wait_for(lambda: "reloaded" in site.log_text(), "no reload", site.log_text)
        service.exim.log.skip()
        yield system
        system.clear_queue()
