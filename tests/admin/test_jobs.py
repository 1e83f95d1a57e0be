"""expire-offers and purge: the store stays consistent (check is clean)."""

from __future__ import annotations

from datetime import timedelta

from imiptools.dates import parse_utc
from imiptools.periods import Period
from tests.admin.conftest import ROOM, admin_ok, answer, book, busy, vevent
from tests.support import Agent, calendar_text, imip_message

USER = f"mailto:{ROOM}"


def test_expire_offers_releases_only_expired_offers(agent: Agent) -> None:
    store = agent.site().store
    start = parse_utc("20300110T100000Z")
    period = Period(start, start + timedelta(hours=1), "x")
    store.set_offers(USER, "old", [period], parse_utc("20300101T110000Z"))
    store.set_offers(USER, "live", [period], parse_utc("20300101T130000Z"))
    assert admin_ok(agent, "expire-offers", "--all") == ""
    assert [p.uid for _, p in store.all_offers(USER)] == ["live"]
    out = admin_ok(agent, "expire-offers", ROOM, "-v", now="2030-01-01T14:00:00Z")
    assert out == f"{USER}: released the offers for live\n"
    assert store.all_offers(USER) == []


def test_purge_removes_past_and_cancelled_events_consistently(agent: Agent) -> None:
    assert answer(book(agent, vevent("past", "20300102T100000Z", "20300102T110000Z"))) == "ACCEPTED"
    series = vevent("series", "20300103T100000Z", "20300103T110000Z",
                    extra="RRULE:FREQ=DAILY;COUNT=3")  # fmt: skip
    assert answer(book(agent, series)) == "ACCEPTED"
    assert answer(book(agent, vevent("weekly", extra="RRULE:FREQ=WEEKLY"))) == "ACCEPTED"
    assert (
        answer(book(agent, vevent("future", "20300301T100000Z", "20300301T110000Z"))) == "ACCEPTED"
    )
    gone = vevent("gone", "20300104T140000Z", "20300104T150000Z")
    assert answer(book(agent, gone)) == "ACCEPTED"
    cancel = vevent("gone", "20300104T140000Z", "20300104T150000Z", sequence=1)
    agent.resource(imip_message(calendar_text(cancel, method="CANCEL"), method="CANCEL"))

    later = "2030-02-01T00:00:00Z"
    refused = agent.admin("purge", "--all", "--before", "2030-03-01", now=later)
    assert refused.returncode == 64 and "in the future" in refused.stdout
    out = admin_ok(agent, "purge", "--all", "--before", "P10D", "-v", now=later)
    assert out.splitlines() == [
        f"{USER}: purged past event past",
        f"{USER}: purged past event series",
        f"{USER}: purged cancelled event gone",
    ]
    store = agent.site().store
    assert sorted(store.object_uids(USER)) == ["future", "weekly"]
    assert list(store.cancelled_object_uids(USER)) == []
    assert "20300102T100000Z" not in busy(agent, "20300101T000000Z", "20300401T000000Z", now=later)
    admin_ok(agent, "make-freebusy", "--all", now=later)  # "weekly" moves on
    assert admin_ok(agent, "check", now=later) == ""
    assert admin_ok(agent, "purge", "--all", "--before", "P10D", "-v", now=later) == ""
