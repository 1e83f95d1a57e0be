"""The quota ledger contract: one test class run against every ledger.

Modelled on ``tests/stores/contract.py``: a test module subclasses
:class:`LedgerContract` and provides a ``site`` fixture returning an empty
site (:class:`~imiptools.site.Site`) of its backend, and :meth:`reopen`,
another site over the same data (as another process would open it).
Every :class:`~imiptools.quota.base.QuotaLedger` method is exercised here
through the interface only; the site's store commits the transactions
that deferred writes go into, as a unit of work does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

import pytest

from imiptools.errors import LockTimeout, UnsafeName
from imiptools.quota.base import QuotaLedger
from imiptools.quota.limits import QuotaBooking, QuotaLimit
from imiptools.quota.model import LockOrderError, QuotaState
from imiptools.site import Site
from imiptools.stores.transaction import Transaction

ALICE = "mailto:alice@example.com"
BOB = "mailto:bob@example.com"
CAROL = "mailto:carol@example.com"
ROOM = "mailto:room1@example.com"
ROOM2 = "mailto:room2@example.com"
T0 = datetime(2030, 1, 7, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)

#: Event data a record must keep exactly (tabs, percent signs, '-', unicode).
AWKWARD_UIDS = ["with\ttab", "100%", "-", "Ünïcödé/日本", "{7A6F2E3C-1B9D}", "x" * 300]


def booking(
    uid: str = "uid-1", rid: str = "", hours: float = 0, user: str = ALICE, resource: str = ROOM
) -> QuotaBooking:
    """A one-hour record starting ``hours`` after :data:`T0`."""
    start = T0 + timedelta(hours=hours)
    return QuotaBooking(user, resource, uid, rid, start, start + HOUR)


class LedgerContract:
    """Tests of the :class:`QuotaLedger` interface; subclasses provide ``site``."""

    @pytest.fixture
    def site(self) -> Site:
        raise NotImplementedError("subclasses provide an empty site")

    def reopen(self, site: Site) -> Site:
        """Another site over the same data (another process's view)."""
        raise NotImplementedError

    @pytest.fixture
    def ledger(self, site: Site) -> QuotaLedger:
        return site.ledger

    def commit(self, site: Site, transaction: Transaction) -> None:
        """Commit ``transaction`` through the site's store (the caller holds
        the quota locks, as a unit of work does)."""
        with site.store.lock(transaction.user, 5):
            site.store.commit(transaction)

    # -- an empty ledger ---------------------------------------------------------

    def test_empty_ledger_has_nothing(self, ledger: QuotaLedger) -> None:
        assert ledger.quotas() == []
        assert not ledger.exists("rooms")
        assert ledger.bookings("rooms") == []
        assert ledger.booking_users("rooms") == []
        assert ledger.limits("rooms") == []
        assert ledger.admin_lines("rooms", "limits") == []
        assert ledger.group_of("rooms", "alice@example.com") is None
        assert not ledger.is_exempt("rooms", "alice@example.com")
        assert ledger.zone("rooms") is None
        assert ledger.snapshot("rooms") == QuotaState("rooms")

    def test_location_is_text(self, ledger: QuotaLedger) -> None:
        assert ledger.location() and ledger.location("rooms")
        assert ledger.location("rooms", "limits")

    # -- admin lists ---------------------------------------------------------------

    def test_admin_lists_round_trip(self, ledger: QuotaLedger) -> None:
        ledger.write_admin_file(
            "rooms",
            "limits",
            ["# who measure period value", "* time week PT10H", "", "@staff count month 4"],
        )
        ledger.write_admin_file("rooms", "groups", ["Alice@Example.com staff", f"{BOB} staff"])
        ledger.write_admin_file("rooms", "exempt", ["carol@example.com"])
        ledger.write_admin_file("rooms", "delegates", [ROOM, "room2@example.com"])
        ledger.write_admin_file("rooms", "tzid", ["Europe/Berlin"])
        assert ledger.exists("rooms") and ledger.quotas() == ["rooms"]
        assert ledger.admin_lines("rooms", "limits")[0] == "# who measure period value"
        assert ledger.limits("rooms") == [
            QuotaLimit("*", "time", "week", timedelta(hours=10)),
            QuotaLimit("@staff", "count", "month", 4),
        ]
        assert ledger.groups("rooms") == {ALICE: "staff", BOB: "staff"}
        assert ledger.group_of("rooms", "alice@example.com") == "staff"
        assert ledger.members("rooms", "staff") == {ALICE, BOB}
        assert ledger.exempt("rooms") == {CAROL}
        assert ledger.is_exempt("rooms", "Carol@example.com")
        assert ledger.delegates("rooms") == [ROOM, ROOM2]
        zone = ledger.zone("rooms")
        assert (
            isinstance(zone, tzinfo) and datetime(2030, 7, 1, tzinfo=zone).utcoffset() == 2 * HOUR
        )

    def test_admin_list_is_replaced_whole(self, ledger: QuotaLedger) -> None:
        ledger.write_admin_file("rooms", "exempt", [ALICE, BOB])
        ledger.write_admin_file("rooms", "exempt", [BOB])
        assert ledger.exempt("rooms") == {BOB}
        ledger.write_admin_file("rooms", "exempt", [])
        assert ledger.exempt("rooms") == set()

    @pytest.mark.parametrize(
        ("name", "bad"),
        [
            ("limits", "* time fortnight PT1H"),
            ("groups", "alice@example.com"),
            ("exempt", "not an address"),
            ("delegates", "../x"),
            ("tzid", "Mars/Olympus"),
        ],
    )
    def test_bad_admin_line_is_refused_before_writing(
        self, ledger: QuotaLedger, name: str, bad: str
    ) -> None:
        with pytest.raises(ValueError, match=rf"^{name}:2: "):
            ledger.write_admin_file("rooms", name, ["# a comment", bad])
        assert ledger.admin_lines("rooms", name) == []

    def test_later_group_line_wins(self, ledger: QuotaLedger) -> None:
        ledger.write_admin_file("rooms", "groups", [f"{ALICE} staff", f"{ALICE} guests"])
        assert ledger.group_of("rooms", ALICE) == "guests"

    @pytest.mark.parametrize("quota", ["../etc", "a/b", "", ".hidden", "x y"])
    def test_unsafe_quota_name_is_refused(self, ledger: QuotaLedger, quota: str) -> None:
        with pytest.raises(UnsafeName):
            ledger.write_admin_file(quota, "limits", ["* count day 1"])
        with pytest.raises(UnsafeName):
            ledger.add_bookings(quota, [booking()])
        with pytest.raises(UnsafeName), ledger.locked([quota], 1):
            pass

    # -- booking records -------------------------------------------------------------

    def test_bookings_by_user_in_time_order(self, ledger: QuotaLedger) -> None:
        later, earlier = booking("b", hours=5), booking("a", hours=1)
        bob = booking("c", user=BOB)
        ledger.add_bookings("rooms", [later, bob, earlier])
        assert ledger.booking_users("rooms") == [ALICE, BOB]
        assert ledger.user_bookings("rooms", ALICE) == (earlier, later)
        assert ledger.bookings("rooms") == [earlier, later, bob]
        assert ledger.bookings("rooms", [BOB]) == [bob]
        assert ledger.bookings("cars") == []

    def test_add_with_the_same_key_replaces(self, ledger: QuotaLedger) -> None:
        ledger.add_bookings("rooms", [booking(hours=1)])
        ledger.add_bookings("rooms", [booking(hours=2)])
        ledger.add_bookings("rooms", [booking(hours=2)])
        assert ledger.bookings("rooms") == [booking(hours=2)]

    @pytest.mark.parametrize("uid", AWKWARD_UIDS)
    def test_awkward_fields_are_kept(self, ledger: QuotaLedger, uid: str) -> None:
        record = booking(uid, rid="20300107T100000Z", resource="mailto:r%1@example.com")
        ledger.add_bookings("rooms", [record])
        assert ledger.bookings("rooms") == [record]

    def test_remove_some_then_all(self, ledger: QuotaLedger) -> None:
        one, two = booking(rid="r1"), booking(rid="r2", hours=24)
        other = booking("uid-2", hours=48)
        ledger.add_bookings("rooms", [one, two, other])
        assert ledger.remove_bookings("rooms", ALICE, ROOM, "uid-1", ["r1"]) == 1
        assert ledger.bookings("rooms") == [two, other]
        assert ledger.remove_bookings("rooms", ALICE, ROOM, "uid-1") == 1
        assert ledger.remove_bookings("rooms", ALICE, ROOM, "uid-1") == 0
        assert ledger.bookings("rooms") == [other]
        assert ledger.remove_bookings("rooms", ALICE, ROOM, "uid-2") == 1
        assert ledger.booking_users("rooms") == []

    def test_replace_event_keeps_what_ended(self, ledger: QuotaLedger) -> None:
        past, future = booking(rid="r0", hours=-48), booking(rid="r1", hours=24)
        other = booking("uid-2", hours=24)
        ledger.add_bookings("rooms", [past, future, other])
        moved = booking(rid="r1", hours=30)
        assert ledger.replace_event("rooms", ROOM, "uid-1", [moved], since=T0)
        assert ledger.bookings("rooms") == [past, other, moved]
        assert not ledger.replace_event("rooms", ROOM, "uid-1", [moved], since=T0)

    def test_replace_event_moves_records_between_users(self, ledger: QuotaLedger) -> None:
        ledger.add_bookings("rooms", [booking(hours=24)])
        taken_over = booking(hours=24, user=BOB)
        assert ledger.replace_event("rooms", ROOM, "uid-1", [taken_over], since=T0)
        assert ledger.bookings("rooms") == [taken_over]
        assert ledger.replace_event("rooms", ROOM, "uid-1", [], since=T0)
        assert ledger.bookings("rooms") == []

    def test_replace_event_of_another_resource_is_left(self, ledger: QuotaLedger) -> None:
        theirs = booking(hours=24, resource=ROOM2)
        ledger.add_bookings("rooms", [theirs])
        assert not ledger.replace_event("rooms", ROOM, "uid-1", [], since=T0)
        assert ledger.bookings("rooms") == [theirs]

    def test_expire(self, ledger: QuotaLedger) -> None:
        old, recent, running = booking("a", hours=-72), booking("b", hours=-5), booking("c")
        ledger.add_bookings("rooms", [old, recent, running])
        assert ledger.expire("rooms", T0 - 24 * HOUR, now=T0) == 1
        assert ledger.bookings("rooms") == [recent, running]
        assert ledger.expire("rooms", T0 - 24 * HOUR, now=T0) == 0
        assert ledger.expire("rooms", T0 + HOUR) == 2
        assert ledger.bookings("rooms") == []

    def test_snapshot_for_a_user_holds_their_group(self, ledger: QuotaLedger) -> None:
        ledger.write_admin_file("rooms", "groups", [f"{ALICE} staff", f"{BOB} staff"])
        ledger.write_admin_file("rooms", "limits", ["@staff count month 4"])
        records = [booking("a"), booking("b", user=BOB), booking("c", user=CAROL)]
        ledger.add_bookings("rooms", records)
        state = ledger.snapshot("rooms", ALICE)
        assert state.bookings == tuple(records[:2])
        assert state.limits == (QuotaLimit("@staff", "count", "month", 4),)
        assert state.members("staff") == {ALICE, BOB}
        assert ledger.snapshot("rooms", CAROL).bookings == (records[2],)
        assert ledger.snapshot("rooms").bookings == tuple(records)

    def test_another_instance_sees_the_writes(self, site: Site, ledger: QuotaLedger) -> None:
        ledger.write_admin_file("rooms", "limits", ["* count day 1"])
        ledger.add_bookings("rooms", [booking()])
        other = self.reopen(site).ledger
        assert other.bookings("rooms") == [booking()]
        assert other.limits("rooms") == [QuotaLimit("*", "count", "day", 1)]

    # -- locks -----------------------------------------------------------------------

    def test_locks_can_be_taken_again(self, ledger: QuotaLedger) -> None:
        with ledger.locked(["rooms", "cars", "rooms"], 5):
            ledger.add_bookings("rooms", [booking()])  # uses the held lock
            ledger.add_bookings("cars", [booking()])
        with ledger.locked(["rooms"], 5):
            pass
        assert ledger.bookings("rooms") == ledger.bookings("cars") == [booking()]

    def test_lock_held_elsewhere_times_out(self, site: Site, ledger: QuotaLedger) -> None:
        other = self.reopen(site).ledger
        other.timeout = 0.2
        with ledger.locked(["rooms", "cars"], 5):
            with pytest.raises(LockTimeout), other.locked(["cars"], 0.2):
                pass
            with pytest.raises(LockTimeout):
                other.add_bookings("rooms", [booking()])
        with other.locked(["cars", "rooms"], 0.2):
            other.add_bookings("rooms", [booking()])
        assert ledger.bookings("rooms") == [booking()]

    def test_lock_out_of_order_is_refused(self, ledger: QuotaLedger) -> None:
        with ledger.locked(["rooms"], 5):
            with pytest.raises(LockOrderError), ledger.locked(["cars"], 5):
                pass
            with pytest.raises(LockOrderError):
                ledger.add_bookings("cars", [booking()])

    # -- transactions ------------------------------------------------------------------

    def test_deferred_writes_wait_for_the_commit(self, site: Site, ledger: QuotaLedger) -> None:
        other = self.reopen(site).ledger
        ledger.add_bookings("rooms", [booking("kept", hours=5)])
        transaction = Transaction(ROOM)
        with ledger.locked(["rooms"], 5):
            ledger.defer(transaction)
            try:
                ledger.add_bookings("rooms", [booking("new", user=BOB)])
                ledger.remove_bookings("rooms", ALICE, ROOM, "kept")
                assert ledger.booking_users("rooms") == [BOB]
                assert ledger.bookings("rooms") == [booking("new", user=BOB)]
                assert other.bookings("rooms") == [booking("kept", hours=5)]
                self.commit(site, transaction)
            finally:
                ledger.defer(None)
        assert other.bookings("rooms") == [booking("new", user=BOB)]
        with other.locked(["rooms"], 5):
            assert other.bookings("rooms") == [booking("new", user=BOB)]

    def test_deferred_writes_without_a_commit_are_dropped(
        self, site: Site, ledger: QuotaLedger
    ) -> None:
        other = self.reopen(site).ledger
        with ledger.locked(["rooms"], 5):
            ledger.defer(Transaction(ROOM))
            try:
                ledger.add_bookings("rooms", [booking()])
                assert ledger.bookings("rooms") == [booking()]
            finally:
                ledger.defer(None)
        with other.locked(["rooms"], 5):
            assert other.bookings("rooms") == []
        assert ledger.bookings("rooms") == []

    def test_writes_outside_the_held_quotas_are_not_deferred(
        self, site: Site, ledger: QuotaLedger
    ) -> None:
        ledger.defer(Transaction(ROOM))
        try:
            ledger.add_bookings("rooms", [booking()])
        finally:
            ledger.defer(None)
        assert self.reopen(site).ledger.bookings("rooms") == [booking()]
