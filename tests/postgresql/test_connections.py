"""Connections to the database: one per LMTP worker, kept clean between messages.

The pipe programs connect once per message (a process each). The LMTP
service's workers open a site per message too, but keep their session
(:func:`imiptools.site.keep_connections`): a worker connects once, and
each message starts with no transaction open and no advisory lock held.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from imiptools.backends import base
from imiptools.backends.postgresql import session
from tests.lmtp_support import Daemon, lmtp_transaction
from tests.pg import connected, run, write_config
from tests.support import ROOM, Agent, calendar_text, imip_message, vevent

ALICE = "alice@example.com"


def _agent_connections(dsn: str) -> set[int]:
    """The server pids of the agents' connections to the test database."""
    with connected(dsn) as admin:
        rows = run(
            admin,
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = %s AND pid <> pg_backend_pid()",
            (session.APPLICATION,),
        )
    return {row[0] for row in rows}


def test_lmtp_workers_connect_once_each(pg_dsn: str, tmp_path: Path) -> None:
    agent = Agent(tmp_path / "site", config=write_config(tmp_path / "backend.toml", pg_dsn))
    daemon = Daemon(agent, tmp_path / "daemon").start()
    try:
        seen: list[set[int]] = []
        for number in range(8):
            message = imip_message(calendar_text(vevent(f"pool-{number}")), sender=ALICE)
            replies = lmtp_transaction(daemon.sockets["resource"], message, ALICE, [ROOM])
            assert [reply.code for reply in replies] == [250], replies
            seen.append(_agent_connections(pg_dsn))
        assert 1 <= len(seen[-1]) <= 2  # --workers 2
        assert set().union(*seen) == seen[-1]  # the same connections throughout
    finally:
        daemon.stop()
        daemon.kill()


@pytest.fixture
def reusing() -> Iterator[None]:
    """This process reuses connections for the test, as a worker does."""
    base.reuse_connections()
    try:
        yield
    finally:
        base._REUSE["connections"] = False
        for kept in session._kept.values():
            kept.close()
        session._kept.clear()


@pytest.mark.usefixtures("reusing")
def test_a_kept_session_is_reset_before_it_is_used_again(pg_dsn: str) -> None:
    first = session.session_for(lambda: pg_dsn)
    first.execute("SELECT pg_advisory_lock(4242)")
    run(first.connection(), "BEGIN")
    run(first.connection(), "SELECT 1")
    again = session.session_for(lambda: pg_dsn)
    assert again is first and not again.in_transaction()
    with connected(pg_dsn) as other:
        assert run(other, "SELECT pg_try_advisory_lock(4242)") == [(True,)]
    assert session.session_for(lambda: pg_dsn + " ") is not first  # another connection string


def test_without_reuse_every_site_has_its_own_session(pg_dsn: str) -> None:
    assert session.session_for(lambda: pg_dsn) is not session.session_for(lambda: pg_dsn)
