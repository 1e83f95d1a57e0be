"""End to end with Exim: the scenarios of ``scenarios.py`` through Exim 4.96.

A private Exim (``exim -C FILE``: its own spool, log, pid file and port;
see ``mailsystem.configure_exim``) runs from our ``conf/exim`` files,
wrapped in a small base configuration (loopback only, quick retries), with
the same site, agents and Dovecot as the Postfix tests.

Exim and Postfix cannot be installed together, so these tests run only when
asked: ``IMIP_TEST_EXIM=1 tools/ci-services`` installs Exim (removing
Postfix; it refuses while a mail system is running), then
``IMIP_TEST_EXIM=1 pytest tests/mta``; ``tools/ci-services`` without the
variable brings Postfix back. Without the variable they skip.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mta import mailsystem as ms
from tests.mta.conftest import (
    AGENT_USER,
    EXIM,
    Dovecot,
    _accepts,
    _stop,
    _unavailable,
    free_port,
    start_reaped,
)
from tests.mta.scenarios import ORGANISER, ROOM, Delivery, MailSystem, Scenarios

pytestmark = pytest.mark.skipif(
    os.environ.get("IMIP_TEST_EXIM") != "1",
    reason="Exim tests run only with IMIP_TEST_EXIM=1 (after IMIP_TEST_EXIM=1 tools/ci-services)",
)

#: Exim's log line of a delivery through one of our transports:
#: ``1xX66a-0008Sg-1U => imiptest2 <imiptest2@example.test> R=imip_person T=imip_person``
#: (``=>`` starts a pipe run, ``->`` is a further address of the same batched run).
DELIVERED = (
    r"([0-9A-Za-z]+-[0-9A-Za-z]+-[0-9A-Za-z]+) ([=-])> (\S+) (?:<([^>]+)> )?R=\S+ T=(imip_[a-z_]+)"
)


@pytest.fixture(scope="session")
def mta(site: ms.Site, dovecot: Dovecot, private_root: Path) -> Iterator[ms.PrivateExim]:
    """A private Exim from conf/exim, on a free port of 127.0.0.1, for the session."""
    if not EXIM.exists():
        _unavailable(f"{EXIM} is not installed (run IMIP_TEST_EXIM=1 tools/ci-services)")
    exim = ms.configure_exim(site, dovecot, private_root / "exim", free_port())
    process = start_reaped(exim.command("-bdf", "-q2s"))
    try:
        ms.wait_for(
            lambda: _accepts(socket.AF_INET, ("127.0.0.1", exim.port)),
            f"Exim did not listen on 127.0.0.1:{exim.port}",
            lambda: exim.log.text()[-3000:],
        )
        ms.write_config(site, f"127.0.0.1:{exim.port}")
        yield exim
    finally:
        ms.write_config(site, ms.NOWHERE)
        _stop(process)
        exim.clear_queue()


class EximSystem(MailSystem):
    """Exim's queue (``exim4 -bp``) and main log."""

    name = "Exim"
    # Exim's own status and diagnostic; our status line is in the quoted output.
    bounce_logged = "T=imip_resource: Child process of imip_resource transport returned 65"
    bounce_says = ("Status: 5.0.0", "5.6.0 REQUEST without ORGANIZER")
    resource_tables = ("imip-resources",)

    def _delivered(self, runs_only: bool) -> list[Delivery]:
        return [
            (m.group(1), m.group(4) or m.group(3), m.group(5).replace("_", "-"))
            for m in ms.each_line(self.log.text(), DELIVERED)
            if not runs_only or m.group(2) == "="
        ]

    def runs(self) -> list[Delivery]:
        """The runs that delivered (``=>``): Exim logs a deferral per address and retry."""
        return self._delivered(runs_only=True)

    def deliveries(self) -> list[Delivery]:
        return self._delivered(runs_only=False)

    def deferred(self, queue_id: str, recipient: str) -> bool:
        pattern = rf"{queue_id} == {re.escape(recipient)} .*defer"
        return re.search(pattern, self.log.text()) is not None

    def bounce_lines(self, queue_id: str, recipient: str) -> list[str]:
        """The ``**`` lines (failed) of ``queue_id`` to ``recipient``."""
        start = f"{queue_id} ** {recipient} "
        return [line for line in self.log.text().splitlines() if start in line]

    def received_from(self, sender: str) -> bool:
        return f"<= {sender}" in self.log.text()


class TestExim(Scenarios):
    """The scenarios through Exim."""

    mail_system = EximSystem

    # -- imip-admin check-install: the Exim side --------------------------------

    def check_install(self, system: MailSystem) -> tuple[int, list[str]]:
        done = system.imip_admin("check-install", "--user", AGENT_USER, *system.mta.options())
        assert done.stderr == "", done.stderr
        return done.returncode, done.stdout.splitlines()

    def test_check_install_passes_for_the_routed_users(self, system: MailSystem) -> None:
        ms.admin(system.site, "init-user", ROOM, "--resource")
        ms.admin(system.site, "init-user", ORGANISER)
        code, lines = self.check_install(system)
        assert code == 0, "\n".join(lines)
        for expected in (
            f"ok   Exim transport imip-resource: runs {system.site.program('imip-resource')}"
            f" as {AGENT_USER}",
            f"ok   {ROOM} (resource): Exim routes it to imip_resource",
            f"ok   {ORGANISER} (person): Exim routes it to imip_person",
        ):
            assert expected in lines, "\n".join(lines)

    def test_check_install_finds_unrouted_users(self, system: MailSystem) -> None:
        unlisted, stranger = f"room9@{ms.RESOURCES}", f"carol@{ms.DOMAIN}"
        ms.admin(system.site, "init-user", unlisted, "--resource")
        ms.admin(system.site, "init-user", stranger)
        code, lines = self.check_install(system)
        assert code == 75, "\n".join(lines)
        assert [line for line in lines if line.startswith("FAIL")] == [
            f"FAIL {stranger} (person): Exim routes it to nothing, not imip_person"
            f" (imip-admin add-person {stranger} --mta exim --apply)",
            f"FAIL {unlisted} (resource): Exim routes it to nothing, not imip_resource"
            f" (imip-admin add-resource {unlisted} --mta exim --apply)",
        ], "\n".join(lines)
