"""How many times a message waits on the database, counted, so that the
number cannot grow unnoticed (issue 16 item 5; a count, not a time).

A pipe program connects once per message, and every round trip is a wait
on the server (on a busy machine, most of a statement's cost). The session
sends a transaction's ``BEGIN`` with its first statement and the writes
nobody reads the result of with the next statement, the ``COMMIT`` at the
latest (:meth:`imiptools.backends.postgresql.session.PgSession.write`).
An accepted request for a free slot, in round trips:

- connecting, and the schema version's check: 2;
- the user's lock (with ``BEGIN``): 1;
- the unit's reads (preferences, with the user's row written; the object,
  its overrides and cancellation, free/busy, offers, the queue, its
  cancelled instances as the reply is built): 7 (9 before the unit's view
  listed an event's overridden and cancelled instances once,
  :class:`imiptools.stores.overlay.OverlayStore`, as building the reply
  listed them again; 10 before the free/busy of an object just stored whole
  was derived from it rather than from the store, which read its overrides
  once more);
- the unit's writes with the ``COMMIT``: 1;
- sending: the outbox's lock, its rows, the sent one forgotten, the
  lock released: 4.

If a change needs more, say why here and change the number; if it needs
fewer, the same.
"""

from __future__ import annotations

import email
from datetime import timedelta
from email import policy
from pathlib import Path

import psycopg2
import pytest

from imiptools import agent
from imiptools.backends.postgresql.session import PgSession
from imiptools.dates import FixedClock, parse_datetime
from imiptools.handlers.common import Envelope
from imiptools.handlers.resource import ResourceHandler
from imiptools.mail.send import DirectorySender
from imiptools.periods import Period
from imiptools.site import Site, open_site
from tests.pg import settings_of
from tests.support import calendar_text, imip_message, parse_calendar_part, partstat_of, vevent

ROOM = "mailto:room@example.com"
NOW = parse_datetime("2030-01-01T12:00:00Z")


@pytest.fixture
def site(pg_dsn: str, tmp_path: Path) -> Site:
    return open_site(settings_of(pg_dsn, tmp_path), FixedClock(NOW))


def _session(site: Site) -> PgSession:
    session = site.backend.db  # type: ignore[attr-defined]
    assert isinstance(session, PgSession)
    return session


def test_an_accepted_request_takes_15_round_trips(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "out"
    context = agent.Context(
        settings=site.settings,
        store=site.store,
        preferences=site.preferences,
        clock=site.clock,
        sender=DirectorySender(out),
        spool=site.outbox,
        ledger=site.ledger,
    )
    message = imip_message(calendar_text(vevent("a")))
    result = agent.run(message, [Envelope(ROOM, "alice@example.com")], context, ResourceHandler)
    assert result.code == 0, result
    [reply] = out.iterdir()
    sent = email.message_from_bytes(reply.read_bytes(), policy=policy.default)
    assert partstat_of(parse_calendar_part(sent)) == "ACCEPTED"  # type: ignore[arg-type]
    assert _session(site).round_trips == 15


def test_writes_wait_for_the_commit(site: Site) -> None:
    session = _session(site)
    with site.store.lock(ROOM, 5):
        before = session.round_trips
        site.store.set_object(ROOM, "a", "text")
        site.store.log_decision(ROOM, "booked")
        site.preferences.set(ROOM, "CN", "Room")
        assert session.round_trips == before
    assert session.round_trips == before + 1
    assert open_site(site.settings).store.get_object(ROOM, "a") == "text"


def test_a_transaction_of_writes_only_is_one_round_trip(site: Site) -> None:
    session = _session(site)
    session.connection()
    before = session.round_trips
    start = NOW + timedelta(days=1)
    site.store.set_offers(ROOM, "a", [Period(start, start + timedelta(hours=1), "a")], start)
    assert session.round_trips == before + 1
    assert [p.uid for _, p in open_site(site.settings).store.all_offers(ROOM)] == ["a"]
    with session.transaction():
        pass
    assert session.round_trips == before + 1


def test_a_failing_write_fails_the_unit_at_its_next_statement(site: Site) -> None:
    with pytest.raises(psycopg2.errors.ForeignKeyViolation), site.store.lock(ROOM, 5):
        site.store.set_object(ROOM, "a", "text")
        _session(site).write("INSERT INTO quota_lists (quota, name, body) VALUES ('none', 'x', '')")
        site.store.get_object(ROOM, "b")
    assert open_site(site.settings).store.get_object(ROOM, "a") is None
    with site.store.lock(ROOM, 5):  # the session goes on
        site.store.set_object(ROOM, "a", "text")
    assert open_site(site.settings).store.get_object(ROOM, "a") == "text"


def test_a_failing_write_fails_the_unit_at_its_commit(site: Site) -> None:
    with pytest.raises(psycopg2.errors.ForeignKeyViolation), site.store.lock(ROOM, 5):
        site.store.set_object(ROOM, "a", "text")
        _session(site).write("INSERT INTO quota_lists (quota, name, body) VALUES ('none', 'x', '')")
    assert open_site(site.settings).store.get_object(ROOM, "a") is None
    assert not _session(site).in_transaction()


def test_the_session_lock_deadline_ends_with_its_statement(site: Site) -> None:
    with site.outbox.locked(5):
        assert _session(site).value("SHOW lock_timeout") == "0"
