"""The store contract: one test class run against every store implementation.

Modelled on vdirsyncer's ``StorageTests``: a test module subclasses
:class:`StoreContract` and provides a ``store`` fixture returning an empty
store, and :meth:`StoreContract.held_elsewhere`, a context manager holding
a user's lock from another process. Every :class:`~imiptools.stores.base.Store`
method is exercised here through the interface only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta

import pytest

from imiptools.errors import LockTimeout
from imiptools.periods import Period
from imiptools.stores.base import EventReader, Store

USER = "mailto:room@example.com"
OTHER_USER = "mailto:car@example.com"
ALICE = "mailto:alice@example.com"
BOB = "mailto:bob@example.com"
T0 = datetime(2030, 1, 8, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)

#: UIDs that are awkward for a store but legal in iCalendar.
AWKWARD_UIDS = [
    "040000008200E00074C5B7101A82E0080000000010E4E7FB1F59D201000000000000000010000000",
    "{7A6F2E3C-1B9D-4C8E-9F1A-2B3C4D5E6F70}",
    "uid/with/slashes@example.com",
    "Ünïcödé-ëvent@exämple.org",
    "with space and\ttab",
    "x" * 500,
]


def event(uid: str, summary: str = "Meeting", extra: str = "") -> str:
    """Stored text of an event (content is opaque to stores)."""
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20300101T090000Z\r\n"
        f"DTSTART:20300108T100000Z\r\nDTEND:20300108T110000Z\r\nSUMMARY:{summary}\r\n"
        f"{extra}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def period(uid: str, hours: float = 0, length: float = 1, rid: str = "") -> Period:
    """A busy period of ``uid`` starting ``hours`` after :data:`T0`."""
    start = T0 + timedelta(hours=hours)
    return Period(start, start + timedelta(hours=length), uid, rid, summary="Meeting")


class StoreContract:
    """Tests of the :class:`Store` interface; subclasses provide ``store``."""

    @pytest.fixture
    def store(self) -> Store:
        raise NotImplementedError("subclasses provide an empty store")

    def held_elsewhere(self, store: Store, user: str) -> AbstractContextManager[None]:
        """Hold ``user``'s lock from another process for the ``with`` block."""
        raise NotImplementedError

    # -- locking and users ------------------------------------------------

    def test_lock_can_be_taken_again_after_release(self, store: Store) -> None:
        with store.lock(USER, 1):
            pass
        with store.lock(USER, 1):
            pass

    def test_locks_of_two_users_are_independent(self, store: Store) -> None:
        with store.lock(USER, 1), store.lock(OTHER_USER, 0):
            pass

    def test_lock_held_elsewhere_times_out(self, store: Store) -> None:
        with self.held_elsewhere(store, USER), pytest.raises(LockTimeout), store.lock(USER, 0.2):
            pass  # pragma: no cover - never reached

    def test_lock_is_released_on_error(self, store: Store) -> None:
        with pytest.raises(RuntimeError), store.lock(USER, 1):
            raise RuntimeError("boom")
        with store.lock(USER, 0):
            pass

    def test_no_users_at_first(self, store: Store) -> None:
        assert list(store.users()) == []

    def test_users_are_listed_normalised(self, store: Store) -> None:
        store.set_object("MAILTO:Room@Example.COM", "a", event("a"))
        store.set_object("<car@example.com>", "b", event("b"))
        assert sorted(store.users()) == [OTHER_USER, USER]

    def test_user_spellings_share_records(self, store: Store) -> None:
        store.set_object("room@example.com", "a", event("a"))
        assert store.get_object("MAILTO:ROOM@example.com", "a") == event("a")

    # -- objects ---------------------------------------------------------

    def test_missing_object_is_none(self, store: Store) -> None:
        assert store.get_object(USER, "nothing") is None
        assert list(store.object_uids(USER)) == []

    def test_object_round_trip(self, store: Store) -> None:
        store.set_object(USER, "a", event("a"))
        assert store.get_object(USER, "a") == event("a")
        assert list(store.object_uids(USER)) == ["a"]

    def test_set_object_replaces(self, store: Store) -> None:
        store.set_object(USER, "a", event("a", "old"))
        store.set_object(USER, "a", event("a", "new"))
        assert store.get_object(USER, "a") == event("a", "new")
        assert list(store.object_uids(USER)) == ["a"]

    def test_objects_of_users_are_separate(self, store: Store) -> None:
        store.set_object(USER, "a", event("a"))
        assert store.get_object(OTHER_USER, "a") is None
        assert list(store.object_uids(OTHER_USER)) == []

    def test_object_uids_lists_all(self, store: Store) -> None:
        for uid in ("a", "b", "c"):
            store.set_object(USER, uid, event(uid))
        assert sorted(store.object_uids(USER)) == ["a", "b", "c"]

    @pytest.mark.parametrize("uid", AWKWARD_UIDS)
    def test_awkward_uid_round_trips(self, store: Store, uid: str) -> None:
        store.set_object(USER, uid, event(uid))
        assert store.get_object(USER, uid) == event(uid)
        assert list(store.object_uids(USER)) == [uid]
        store.remove_object(USER, uid)
        assert list(store.object_uids(USER)) == []

    def test_similar_uids_do_not_collide(self, store: Store) -> None:
        uids = ["a/b", "a_b", "a:b", "A/B", "a/b "]
        for uid in uids:
            store.set_object(USER, uid, event(uid))
        assert sorted(store.object_uids(USER)) == sorted(uids)
        assert all(store.get_object(USER, uid) == event(uid) for uid in uids)

    def test_text_is_kept_exactly(self, store: Store) -> None:
        text = event("a", "Ünïcödé \\, \\; line\r\n folded") + "\n\n"
        store.set_object(USER, "a", text)
        assert store.get_object(USER, "a") == text

    def test_remove_object_removes_instances(self, store: Store) -> None:
        store.set_object(USER, "a", event("a"))
        store.set_recurrence(USER, "a", "20300115T100000Z", event("a", "moved"))
        store.remove_object(USER, "a")
        assert store.get_object(USER, "a") is None
        assert store.recurrence_ids(USER, "a") == []
        assert store.get_recurrence(USER, "a", "20300115T100000Z") is None

    def test_remove_missing_object_is_fine(self, store: Store) -> None:
        store.remove_object(USER, "nothing")
        store.remove_object(USER, "nothing")

    # -- overridden instances ------------------------------------------

    def test_recurrence_round_trip(self, store: Store) -> None:
        store.set_recurrence(USER, "a", "20300115T100000Z", event("a", "moved"))
        assert store.get_recurrence(USER, "a", "20300115T100000Z") == event("a", "moved")
        assert store.get_recurrence(USER, "a", "20300122T100000Z") is None
        assert store.get_recurrence(USER, "b", "20300115T100000Z") is None

    def test_recurrence_ids_sorted(self, store: Store) -> None:
        for rid in ("20300122T100000Z", "20300108", "20300115T100000Z"):
            store.set_recurrence(USER, "a", rid, event("a"))
        assert store.recurrence_ids(USER, "a") == [
            "20300108",
            "20300115T100000Z",
            "20300122T100000Z",
        ]
        assert store.recurrence_ids(USER, "b") == []

    def test_remove_recurrence(self, store: Store) -> None:
        store.set_recurrence(USER, "a", "20300115T100000Z", event("a"))
        store.set_recurrence(USER, "a", "20300122T100000Z", event("a"))
        store.remove_recurrence(USER, "a", "20300115T100000Z")
        store.remove_recurrence(USER, "a", "20300101T100000Z")
        assert store.recurrence_ids(USER, "a") == ["20300122T100000Z"]
        store.remove_recurrence(USER, "a", "20300122T100000Z")
        assert store.recurrence_ids(USER, "a") == []

    def test_events_held_only_as_overrides_are_listed(self, store: Store) -> None:
        """An instance-only invitation has no main object but is an event
        (issue 11 item 2, issue 12 item 2: it was missing from every listing)."""
        store.set_recurrence(USER, "a", "20300115T100000Z", event("a"))
        assert list(store.object_uids(USER)) == ["a"]
        assert store.get_object(USER, "a") is None

    def test_event_with_main_object_and_overrides_is_listed_once(self, store: Store) -> None:
        store.set_object(USER, "a", event("a"))
        store.set_recurrence(USER, "a", "20300115T100000Z", event("a"))
        store.set_recurrence(USER, "b", "20300115T100000Z", event("b"))
        assert sorted(store.object_uids(USER)) == ["a", "b"]

    def test_override_only_event_leaves_the_listing_with_its_last_instance(
        self, store: Store
    ) -> None:
        store.set_recurrence(USER, "a", "20300115T100000Z", event("a"))
        store.set_recurrence(USER, "a", "20300122T100000Z", event("a"))
        store.remove_recurrence(USER, "a", "20300115T100000Z")
        assert list(store.object_uids(USER)) == ["a"]
        store.cancel_recurrence(USER, "a", "20300122T100000Z", event("a"))
        assert list(store.object_uids(USER)) == []

    def test_removed_override_only_event_is_not_listed(self, store: Store) -> None:
        store.set_recurrence(USER, "a", "20300115T100000Z", event("a"))
        store.remove_object(USER, "a")
        assert list(store.object_uids(USER)) == []

    @pytest.mark.parametrize("uid", AWKWARD_UIDS)
    def test_override_only_event_with_awkward_uid_is_listed(self, store: Store, uid: str) -> None:
        store.set_recurrence(USER, uid, "20300115T100000Z", event(uid))
        assert list(store.object_uids(USER)) == [uid]
        store.remove_recurrence(USER, uid, "20300115T100000Z")
        assert list(store.object_uids(USER)) == []

    @pytest.mark.parametrize("uid", AWKWARD_UIDS)
    def test_recurrence_of_awkward_uid(self, store: Store, uid: str) -> None:
        store.set_recurrence(USER, uid, "20300115T100000Z", event(uid))
        assert store.recurrence_ids(USER, uid) == ["20300115T100000Z"]
        assert store.get_recurrence(USER, uid, "20300115T100000Z") == event(uid)

    # -- cancellations ---------------------------------------------------

    def test_cancel_object_moves_it(self, store: Store) -> None:
        store.set_object(USER, "a", event("a"))
        store.set_recurrence(USER, "a", "20300115T100000Z", event("a"))
        store.cancel_object(USER, "a", event("a", "cancelled"))
        assert store.get_object(USER, "a") is None
        assert store.recurrence_ids(USER, "a") == []
        assert store.get_cancelled_object(USER, "a") == event("a", "cancelled")
        assert list(store.object_uids(USER)) == []

    def test_cancel_object_twice_converges(self, store: Store) -> None:
        store.set_object(USER, "a", event("a"))
        store.cancel_object(USER, "a", event("a", "cancelled"))
        store.cancel_object(USER, "a", event("a", "cancelled"))
        assert store.get_cancelled_object(USER, "a") == event("a", "cancelled")

    def test_cancel_unknown_object_is_recorded(self, store: Store) -> None:
        store.cancel_object(USER, "a", event("a", "cancelled"))
        assert store.get_cancelled_object(USER, "a") == event("a", "cancelled")

    def test_uncancel_object(self, store: Store) -> None:
        store.cancel_object(USER, "a", event("a"))
        store.uncancel_object(USER, "a")
        store.uncancel_object(USER, "a")
        assert store.get_cancelled_object(USER, "a") is None

    def test_cancel_recurrence(self, store: Store) -> None:
        store.set_object(USER, "a", event("a"))
        store.set_recurrence(USER, "a", "20300115T100000Z", event("a", "moved"))
        store.set_recurrence(USER, "a", "20300122T100000Z", event("a", "moved"))
        store.cancel_recurrence(USER, "a", "20300115T100000Z", event("a", "cancelled"))
        assert store.get_recurrence(USER, "a", "20300115T100000Z") is None
        assert store.recurrence_ids(USER, "a") == ["20300122T100000Z"]
        assert store.get_object(USER, "a") == event("a")
        assert store.get_cancelled_recurrence(USER, "a", "20300115T100000Z") == event(
            "a", "cancelled"
        )

    def test_cancelled_recurrence_ids_sorted(self, store: Store) -> None:
        for rid in ("20300122T100000Z", "20300115T100000Z"):
            store.cancel_recurrence(USER, "a", rid, event("a"))
        assert store.cancelled_recurrence_ids(USER, "a") == [
            "20300115T100000Z",
            "20300122T100000Z",
        ]
        assert store.cancelled_recurrence_ids(USER, "b") == []

    def test_uncancel_recurrence(self, store: Store) -> None:
        store.cancel_recurrence(USER, "a", "20300115T100000Z", event("a"))
        store.uncancel_recurrence(USER, "a", "20300115T100000Z")
        store.uncancel_recurrence(USER, "a", "20300115T100000Z")
        assert store.get_cancelled_recurrence(USER, "a", "20300115T100000Z") is None
        assert store.cancelled_recurrence_ids(USER, "a") == []

    def test_missing_cancellations_are_none(self, store: Store) -> None:
        assert store.get_cancelled_object(USER, "a") is None
        assert store.get_cancelled_recurrence(USER, "a", "20300115T100000Z") is None

    # -- own free/busy ---------------------------------------------------

    def test_no_freebusy_at_first(self, store: Store) -> None:
        assert store.get_freebusy(USER, T0 - HOUR * 1000, T0 + HOUR * 1000) == []
        assert list(store.freebusy_uids(USER)) == []

    def test_freebusy_round_trip(self, store: Store) -> None:
        periods = [period("a", 0), period("a", 24, rid="20300109T100000Z")]
        store.set_freebusy_for_uid(USER, "a", periods)
        assert store.get_freebusy(USER, T0 - HOUR, T0 + 48 * HOUR) == periods
        assert list(store.freebusy_uids(USER)) == ["a"]

    def test_freebusy_is_filtered_by_overlap(self, store: Store) -> None:
        store.set_freebusy_for_uid(USER, "a", [period("a", 0), period("a", 2)])
        assert store.get_freebusy(USER, T0 + HOUR, T0 + 2 * HOUR) == []
        assert store.get_freebusy(USER, T0 + 0.5 * HOUR, T0 + 2.5 * HOUR) == [
            period("a", 0),
            period("a", 2),
        ]
        assert store.get_freebusy(USER, T0 + 2.9 * HOUR, T0 + 9 * HOUR) == [period("a", 2)]

    def test_empty_span_has_no_freebusy(self, store: Store) -> None:
        store.set_freebusy_for_uid(USER, "a", [period("a", 0)])
        assert store.get_freebusy(USER, T0 + HOUR / 2, T0 + HOUR / 2) == []
        assert store.get_freebusy(USER, T0 + HOUR, T0) == []

    def test_freebusy_is_sorted_across_uids(self, store: Store) -> None:
        store.set_freebusy_for_uid(USER, "b", [period("b", 5), period("b", 1)])
        store.set_freebusy_for_uid(USER, "a", [period("a", 3)])
        found = store.get_freebusy(USER, T0, T0 + 10 * HOUR)
        assert found == [period("b", 1), period("a", 3), period("b", 5)]

    def test_set_freebusy_for_uid_replaces_only_that_uid(self, store: Store) -> None:
        store.set_freebusy_for_uid(USER, "a", [period("a", 0)])
        store.set_freebusy_for_uid(USER, "b", [period("b", 0)])
        store.set_freebusy_for_uid(USER, "a", [period("a", 24 * 60)])
        span = (T0 - HOUR, T0 + 24 * 90 * HOUR)
        assert store.get_freebusy(USER, *span) == [period("b", 0), period("a", 24 * 60)]

    def test_no_periods_forgets_the_uid(self, store: Store) -> None:
        store.set_freebusy_for_uid(USER, "a", [period("a", 0)])
        store.set_freebusy_for_uid(USER, "a", [])
        assert store.get_freebusy(USER, T0 - HOUR, T0 + HOUR) == []
        assert list(store.freebusy_uids(USER)) == []

    def test_freebusy_of_users_are_separate(self, store: Store) -> None:
        store.set_freebusy_for_uid(USER, "a", [period("a", 0)])
        assert store.get_freebusy(OTHER_USER, T0 - HOUR, T0 + HOUR) == []

    def test_period_across_months_is_returned_once(self, store: Store) -> None:
        start = datetime(2030, 1, 31, 20, tzinfo=UTC)
        long = Period(start, start + timedelta(days=40), "a")
        store.set_freebusy_for_uid(USER, "a", [long])
        assert store.get_freebusy(USER, start - HOUR, start + timedelta(days=60)) == [long]
        assert store.get_freebusy(USER, start + timedelta(days=20), start + timedelta(days=21)) == [
            long
        ]

    def test_freebusy_keeps_every_field(self, store: Store) -> None:
        full = Period(
            T0,
            T0 + HOUR,
            "a",
            "20300108T100000Z",
            "TRANSPARENT",
            "Tab\tand\nnewline",
            ALICE,
            "BUSY-TENTATIVE",
        )
        store.set_freebusy_for_uid(USER, "a", [full])
        assert store.get_freebusy(USER, T0, T0 + HOUR) == [full]

    @pytest.mark.parametrize("uid", AWKWARD_UIDS)
    def test_freebusy_uids_are_real(self, store: Store, uid: str) -> None:
        store.set_freebusy_for_uid(USER, uid, [period(uid, 0)])
        assert list(store.freebusy_uids(USER)) == [uid]
        assert store.get_freebusy(USER, T0, T0 + HOUR) == [period(uid, 0)]
        store.set_freebusy_for_uid(USER, uid, [])
        assert list(store.freebusy_uids(USER)) == []

    def test_freebusy_is_idempotent(self, store: Store) -> None:
        periods = [period("a", hours) for hours in range(0, 24 * 100, 24)]
        store.set_freebusy_for_uid(USER, "a", periods)
        store.set_freebusy_for_uid(USER, "a", periods)
        assert store.get_freebusy(USER, T0, T0 + 24 * 100 * HOUR) == periods

    # -- others' free/busy ---------------------------------------------

    def test_freebusy_other_round_trip(self, store: Store) -> None:
        periods = [period("", 0), period("", 5)]
        store.set_freebusy_other(USER, ALICE, periods)
        assert store.get_freebusy_other(USER, ALICE, T0 - HOUR, T0 + 9 * HOUR) == periods
        assert store.get_freebusy_other(USER, ALICE, T0 + 2 * HOUR, T0 + 3 * HOUR) == []
        assert store.get_freebusy_other(USER, BOB, T0 - HOUR, T0 + 9 * HOUR) == []

    def test_freebusy_other_is_replaced(self, store: Store) -> None:
        store.set_freebusy_other(USER, ALICE, [period("", 0)])
        store.set_freebusy_other(USER, ALICE, [period("", 5)])
        assert store.get_freebusy_other(USER, ALICE, T0, T0 + 9 * HOUR) == [period("", 5)]
        store.set_freebusy_other(USER, ALICE, [])
        assert store.get_freebusy_other(USER, ALICE, T0, T0 + 9 * HOUR) == []

    def test_freebusy_other_is_not_own_freebusy(self, store: Store) -> None:
        store.set_freebusy_other(USER, ALICE, [period("x", 0)])
        assert store.get_freebusy(USER, T0, T0 + HOUR) == []

    # -- counters --------------------------------------------------------

    def test_counters_round_trip(self, store: Store) -> None:
        assert store.get_counters(USER, "a") == {}
        store.set_counter(USER, "a", ALICE, event("a", "alice"))
        store.set_counter(USER, "a", BOB, event("a", "bob"))
        store.set_counter(USER, "a", BOB, event("a", "bob again"))
        assert store.get_counters(USER, "a") == {
            ALICE: event("a", "alice"),
            BOB: event("a", "bob again"),
        }
        assert store.get_counters(USER, "b") == {}

    def test_remove_one_counter(self, store: Store) -> None:
        store.set_counter(USER, "a", ALICE, event("a"))
        store.set_counter(USER, "a", BOB, event("a"))
        store.remove_counters(USER, "a", ALICE)
        store.remove_counters(USER, "a", ALICE)
        assert list(store.get_counters(USER, "a")) == [BOB]

    def test_remove_all_counters(self, store: Store) -> None:
        store.set_counter(USER, "a", ALICE, event("a"))
        store.set_counter(USER, "a", BOB, event("a"))
        store.set_counter(USER, "b", BOB, event("b"))
        store.remove_counters(USER, "a")
        store.remove_counters(USER, "a")
        assert store.get_counters(USER, "a") == {}
        assert list(store.get_counters(USER, "b")) == [BOB]

    @pytest.mark.parametrize(
        "attendee", ["mailto:" + "long" * 60 + "@example.com", "MAILTO:Odd/Name@example.com"]
    )
    def test_awkward_attendee_is_kept(self, store: Store, attendee: str) -> None:
        store.set_counter(USER, "a", attendee, event("a"))
        assert store.get_counters(USER, "a") == {attendee: event("a")}
        store.remove_counters(USER, "a", attendee)
        assert store.get_counters(USER, "a") == {}

    # -- requests --------------------------------------------------------

    def test_no_requests_at_first(self, store: Store) -> None:
        assert store.get_requests(USER) == []

    def test_requests_keep_arrival_order(self, store: Store) -> None:
        store.queue_request(USER, "b")
        store.queue_request(USER, "a", "20300115T100000Z", "COUNTER")
        store.queue_request(USER, "a")
        assert store.get_requests(USER) == [
            ("b", "", "REQUEST"),
            ("a", "20300115T100000Z", "COUNTER"),
            ("a", "", "REQUEST"),
        ]

    def test_queue_request_is_idempotent(self, store: Store) -> None:
        store.queue_request(USER, "a")
        store.queue_request(USER, "a")
        assert store.get_requests(USER) == [("a", "", "REQUEST")]

    def test_dequeue_request(self, store: Store) -> None:
        store.queue_request(USER, "a")
        store.queue_request(USER, "a", "20300115T100000Z")
        store.dequeue_request(USER, "a")
        store.dequeue_request(USER, "missing")
        assert store.get_requests(USER) == [("a", "20300115T100000Z", "REQUEST")]
        store.dequeue_request(USER, "a", "20300115T100000Z")
        assert store.get_requests(USER) == []

    @pytest.mark.parametrize("uid", [*AWKWARD_UIDS, "tab\tnew\nline", "-", ""])
    def test_requests_with_awkward_uids(self, store: Store, uid: str) -> None:
        store.queue_request(USER, uid, "", "ADD")
        store.queue_request(USER, "after")
        assert store.get_requests(USER) == [(uid, "", "ADD"), ("after", "", "REQUEST")]

    def test_requests_of_users_are_separate(self, store: Store) -> None:
        store.queue_request(USER, "a")
        assert store.get_requests(OTHER_USER) == []

    # -- offers ------------------------------------------------------------

    def test_offers_are_held_until_they_expire(self, store: Store) -> None:
        store.set_offers(USER, "a", [period("a", 1)], T0 + HOUR)
        store.set_offers(USER, "b", [period("b", 2)], T0 + 3 * HOUR)
        assert [p.uid for p in store.get_offers(USER, T0)] == ["a", "b"]
        assert [p.uid for p in store.get_offers(USER, T0 + 2 * HOUR)] == ["b"]
        assert store.get_offers(USER, T0 + 4 * HOUR) == []

    def test_set_offers_replaces_those_of_the_uid(self, store: Store) -> None:
        store.set_offers(USER, "a", [period("a", 1), period("a", 5)], T0 + HOUR)
        store.set_offers(USER, "a", [period("a", 3)], T0 + HOUR)
        assert [p.start for p in store.get_offers(USER, T0)] == [T0 + 3 * HOUR]

    @pytest.mark.parametrize("uid", AWKWARD_UIDS[:4])
    def test_remove_offers(self, store: Store, uid: str) -> None:
        store.set_offers(USER, uid, [period(uid, 1)], T0 + HOUR)
        store.set_offers(USER, "keep", [period("keep", 1)], T0 + HOUR)
        store.remove_offers(USER, uid)
        store.remove_offers(USER, "never-offered")
        assert [p.uid for p in store.get_offers(USER, T0)] == ["keep"]
        assert store.get_offers(OTHER_USER, T0) == []

    def test_all_offers_include_expired_ones(self, store: Store) -> None:
        store.set_offers(USER, "b", [period("b", 2)], T0 + 3 * HOUR)
        store.set_offers(USER, "a", [period("a", 1)], T0 + HOUR)
        assert store.all_offers(USER) == [
            (T0 + HOUR, period("a", 1)),
            (T0 + 3 * HOUR, period("b", 2)),
        ]
        assert store.all_offers(OTHER_USER) == []

    def test_expire_offers_drops_only_expired_ones(self, store: Store) -> None:
        store.set_offers(USER, "a", [period("a", 1)], T0 + HOUR)
        store.set_offers(USER, "b", [period("b", 2)], T0 + 3 * HOUR)
        assert store.expire_offers(USER, T0 + 2 * HOUR) == ["a"]
        assert store.expire_offers(USER, T0 + 2 * HOUR) == []
        assert [p.uid for _, p in store.all_offers(USER)] == ["b"]

    # -- maintenance listings and whole free/busy ------------------------------

    def test_cancelled_object_uids(self, store: Store) -> None:
        assert list(store.cancelled_object_uids(USER)) == []
        store.set_object(USER, "a", event("a"))
        store.cancel_object(USER, "a", event("a"))
        store.cancel_object(USER, AWKWARD_UIDS[2], event(AWKWARD_UIDS[2]))
        assert sorted(store.cancelled_object_uids(USER)) == sorted(["a", AWKWARD_UIDS[2]])
        store.uncancel_object(USER, "a")
        assert list(store.cancelled_object_uids(USER)) == [AWKWARD_UIDS[2]]

    def test_freebusy_other_users(self, store: Store) -> None:
        store.set_freebusy_other(USER, BOB, [period("x", 1)])
        store.set_freebusy_other(USER, ALICE, [period("y", 1)])
        assert store.freebusy_other_users(USER) == [ALICE, BOB]
        store.set_freebusy_other(USER, BOB, [])
        assert store.freebusy_other_users(USER) == [ALICE]
        assert store.freebusy_other_users(OTHER_USER) == []

    def test_all_freebusy_spans_every_year(self, store: Store) -> None:
        far = Period(T0 + timedelta(days=365 * 50), T0 + timedelta(days=365 * 50, hours=1), "b")
        store.set_freebusy_for_uid(USER, "a", [period("a", 0)])
        store.set_freebusy_for_uid(USER, "b", [far])
        assert store.all_freebusy(USER) == [period("a", 0), far]

    def test_replace_freebusy_makes_it_exactly_so(self, store: Store) -> None:
        store.set_freebusy_for_uid(USER, "a", [period("a", 0)])
        store.set_freebusy_for_uid(USER, "gone", [period("gone", 2)])
        wanted = [period("a", 24 * 40), period("b", 1), period("b", 3)]
        store.replace_freebusy(USER, wanted)
        store.replace_freebusy(USER, wanted)
        assert store.all_freebusy(USER) == sorted(wanted)
        assert sorted(store.freebusy_uids(USER)) == ["a", "b"]
        store.set_freebusy_for_uid(USER, "a", [])
        assert store.all_freebusy(USER) == [period("b", 1), period("b", 3)]
        store.replace_freebusy(USER, [])
        assert store.all_freebusy(USER) == []

    # -- decision log --------------------------------------------------------

    def test_decision_log_appends_in_order(self, store: Store) -> None:
        assert list(store.decisions(USER)) == []
        for n in range(3):
            store.log_decision(USER, f'{{"n": {n}, "text": "Ünïcödé"}}')
        assert list(store.decisions(USER)) == [f'{{"n": {n}, "text": "Ünïcödé"}}' for n in range(3)]
        assert list(store.decisions(OTHER_USER)) == []

    def test_decision_log_lines_are_single_lines(self, store: Store) -> None:
        with pytest.raises(ValueError):
            store.log_decision(USER, "two\nlines")

    # -- memos (derived data a store may forget) ------------------------------

    def test_a_memo_is_kept_or_forgotten_never_mixed_up(self, store: Store) -> None:
        with store.lock(USER, 5):
            store.set_memo(USER, "freebusy", '{"a": 1}')
            assert store.get_memo(USER, "freebusy") in ('{"a": 1}', None)
            assert store.get_memo(USER, "other") is None
            assert store.get_memo(OTHER_USER, "freebusy") is None
            store.set_memo(USER, "freebusy", None)
            assert store.get_memo(USER, "freebusy") is None

    # -- reading many events at once (imip-admin check) ---------------------------

    def test_the_event_reader_reads_what_the_getters_read(self, store: Store) -> None:
        """Main objects, instances, cancellations and counter-proposals of
        awkward uids, RECURRENCE-IDs and attendees (hashed names among
        them), derivation records or none: the reader (the file store's
        opens each directory once) gives the getters' texts, in their order."""
        hashed_rid = "not/a plain rid"
        for number, uid in enumerate(["a", "b", *AWKWARD_UIDS]):
            if number % 3 != 2:
                store.set_object(USER, uid, event(uid, f"main {number}"))
            if number % 2:
                store.set_recurrence(USER, uid, "20300115T100000Z", event(uid, "moved"))
                store.set_recurrence(USER, uid, hashed_rid, event(uid, "odd"))
            if number % 3 == 1:
                store.cancel_recurrence(USER, uid, "20300122T100000Z", event(uid, "gone"))
                store.set_counter(USER, uid, "mailto:zed@example.com", event(uid, "zed"))
                store.set_counter(USER, uid, "mailto:Odd One@example.com", event(uid, "odd"))
                store.set_counter(USER, uid, ALICE, event(uid, "alice"))
            if number % 4 == 3:
                store.cancel_object(USER, uid, event(uid, "cancelled"))
            if number % 2 == 0:
                store.set_derivation(USER, uid, f"record of {uid}\n")
        uids = [*store.object_uids(USER), *store.cancelled_object_uids(USER), "missing"]
        with store.lock(USER, 5), store.event_reader(USER) as reader:
            getters = EventReader(store, USER)
            for uid in uids:
                assert reader.texts(uid) == getters.texts(uid), uid
                assert reader.derivation(uid) == store.get_derivation(USER, uid), uid
        assert any(getters.texts(uid).counters for uid in uids)
        assert any(len(getters.texts(uid).recurrences) == 2 for uid in uids)


def all_periods(store: Store, user: str) -> Iterator[Period]:
    """Every period of ``user`` (a span covering the representable years)."""
    yield from store.get_freebusy(
        user, datetime(1900, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC)
    )
