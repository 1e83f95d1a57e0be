"""imip-admin check-install against the end-to-end tests' installation.

The site of ``conftest.py`` is installed as the README says (a venv the
agents' user can read, directories owned by that user), so the check
passes; breaking one permission makes it fail with a line naming the path.
These run without an MTA (``--mta none``); the MTA's side is checked in
``test_postfix.py`` and ``test_exim.py``.
"""

from __future__ import annotations

import subprocess

from tests.mta import mailsystem as ms
from tests.mta.conftest import AGENT_USER, Dovecot


def check_install(site: ms.Site, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [str(site.program("imip-admin")), "-c", str(site.config)]
    argv += ["check-install", "--user", AGENT_USER, "--mta", "none", *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def test_the_installation_passes(site: ms.Site) -> None:
    done = check_install(site)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAIL" not in done.stdout
    assert f"imip-resource starts as {AGENT_USER}" in done.stdout
    assert done.stderr == ""


def test_a_store_the_user_cannot_write_fails(site: ms.Site) -> None:
    store = site.directory("store")
    store.chmod(0o550)
    try:
        done = check_install(site)
    finally:
        store.chmod(0o750)
    assert done.returncode == 75, done.stdout
    assert f"FAIL store {store}: {AGENT_USER} cannot read/write/run it" in done.stdout
    assert done.stdout.splitlines()[-1].startswith("4.3.5 check-install: 1 problem(s)")


def test_the_lmtp_socket_is_checked_when_named(site: ms.Site, dovecot: Dovecot) -> None:
    done = check_install(site, "--lmtp", dovecot.socket_target)
    assert done.returncode == 0, done.stdout
    assert f"LMTP socket {dovecot.socket_target}: usable by {AGENT_USER}" in done.stdout
    missing = check_install(site, "--lmtp", "/nonexistent/lmtp")
    assert missing.returncode == 75
    assert "FAIL LMTP socket /nonexistent/lmtp: not a socket" in missing.stdout
