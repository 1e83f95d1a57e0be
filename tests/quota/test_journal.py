"""The quota journal: admin files, idempotent booking records, locks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from imiptools.errors import LockTimeout, UnsafeName
from imiptools.quota.journal import QuotaJournal
from imiptools.quota.limits import QuotaBooking, QuotaLimit
from imiptools.quota.model import LockOrderError, booking_line, parse_booking

ALICE = "mailto:alice@example.com"
ROOM = "mailto:room1@example.com"
T0 = datetime(2030, 1, 7, 10, tzinfo=UTC)


def booking(uid: str = "uid-1", rid: str = "", hours: int = 0, user: str = ALICE) -> QuotaBooking:
    start = T0 + timedelta(hours=hours)
    return QuotaBooking(user, ROOM, uid, rid, start, start + timedelta(hours=1))


def write(root: Path, name: str, text: str, quota: str = "rooms") -> None:
    (root / quota / name).parent.mkdir(parents=True, exist_ok=True)
    (root / quota / name).write_text(text, encoding="utf-8")


@pytest.fixture
def journal(tmp_path: Path) -> QuotaJournal:
    return QuotaJournal(tmp_path, timeout=5)


def test_missing_quota_has_nothing(journal: QuotaJournal) -> None:
    assert journal.limits("rooms") == []
    assert journal.bookings("rooms") == []
    assert journal.group_of("rooms", "alice@example.com") is None
    assert not journal.is_exempt("rooms", "alice@example.com")


def test_limits_parsed(journal: QuotaJournal, tmp_path: Path) -> None:
    write(
        tmp_path,
        "limits",
        "# who measure period value\n"
        "* time week PT10H\n"
        "\n"
        "Alice@Example.com count month 4\n"
        "@staff time outstanding PT20H\n"
        "* time rolling:P7D P1D\n",
    )
    assert journal.limits("rooms") == [
        QuotaLimit("*", "time", "week", timedelta(hours=10)),
        QuotaLimit(ALICE, "count", "month", 4),
        QuotaLimit("@staff", "time", "outstanding", timedelta(hours=20)),
        QuotaLimit("*", "time", "rolling:P7D", timedelta(days=1)),
    ]


@pytest.mark.parametrize(
    "bad",
    [
        "* time week",
        "* size week 4",
        "* time fortnight PT1H",
        "* count week PT1H",
        "* time week 4",
        "* time rolling:PT0S PT1H",
        "not-an-address time week PT1H",
        "@../x count day 1",
    ],
)
def test_bad_limit_line_names_file_and_line(
    journal: QuotaJournal, tmp_path: Path, bad: str
) -> None:
    write(tmp_path, "limits", f"# header\n* count day 1\n{bad}\n")
    with pytest.raises(ValueError, match=r"rooms/limits:3: "):
        journal.limits("rooms")


def test_groups_exempt_delegates(journal: QuotaJournal, tmp_path: Path) -> None:
    write(tmp_path, "groups", "alice@example.com staff\nbob@example.com staff\n")
    write(tmp_path, "exempt", "# admins\nADMIN@example.com\n")
    write(tmp_path, "delegates", "room1@example.com\nmailto:room2@example.com\n")
    assert journal.group_of("rooms", "Alice@example.com") == "staff"
    assert journal.members("rooms", "staff") == {ALICE, "mailto:bob@example.com"}
    assert journal.is_exempt("rooms", "admin@example.com")
    assert not journal.is_exempt("rooms", "alice@example.com")
    assert journal.delegates("rooms") == [ROOM, "mailto:room2@example.com"]


def test_bad_groups_line(journal: QuotaJournal, tmp_path: Path) -> None:
    write(tmp_path, "groups", "alice@example.com staff\n\nbob@example.com\n")
    with pytest.raises(ValueError, match=r"rooms/groups:3: "):
        journal.groups("rooms")


def test_bad_bookings_line(journal: QuotaJournal, tmp_path: Path) -> None:
    write(tmp_path, f"bookings/{ALICE}", booking_line(booking()) + "\nbroken\n")
    with pytest.raises(ValueError, match=r"rooms/bookings/mailto:alice@example.com:2: "):
        journal.bookings("rooms")


def test_bookings_are_kept_per_user(journal: QuotaJournal, tmp_path: Path) -> None:
    bob = "mailto:bob@example.com"
    theirs = QuotaBooking(bob, ROOM, "uid-2", "", T0, T0 + timedelta(hours=1))
    journal.add_bookings("rooms", [booking(), theirs])
    assert sorted(p.name for p in (tmp_path / "rooms" / "bookings").iterdir()) == [ALICE, bob]
    assert journal.bookings("rooms", [bob]) == [theirs]
    assert journal.booking_users("rooms") == [ALICE, bob]
    # A hostile address gets a hashed file name; its records still say who.
    long = "mailto:" + "j" * 160 + "@example.com"
    odd = QuotaBooking(long, ROOM, "u", "", T0, T0 + timedelta(hours=1))
    journal.add_bookings("rooms", [odd])
    assert odd in journal.bookings("rooms") and long in journal.booking_users("rooms")
    assert any(p.name.startswith("_h_") for p in (tmp_path / "rooms" / "bookings").iterdir())


def test_unsafe_quota_name(journal: QuotaJournal) -> None:
    with pytest.raises(UnsafeName):
        journal.limits("../etc")


def test_booking_line_round_trip_escapes() -> None:
    hostile = QuotaBooking(ALICE, ROOM, "a\tb\nc%", "", T0, T0 + timedelta(hours=1))
    line = booking_line(hostile)
    assert "\n" not in line and line.count("\t") == 5
    assert parse_booking(line) == hostile


def test_add_is_idempotent(journal: QuotaJournal) -> None:
    journal.add_bookings("rooms", [booking(rid="r1"), booking(rid="r2", hours=24)])
    journal.add_bookings("rooms", [booking(rid="r1")])
    longer = QuotaBooking(ALICE, ROOM, "uid-1", "r2", T0, T0 + timedelta(hours=3))
    journal.add_bookings("rooms", [longer])
    assert journal.bookings("rooms") == [booking(rid="r1"), longer]


def test_remove_some_then_all(journal: QuotaJournal) -> None:
    journal.add_bookings("rooms", [booking(rid="r1"), booking(rid="r2", hours=1)])
    journal.add_bookings("rooms", [booking(uid="other")])
    assert journal.remove_bookings("rooms", ALICE, ROOM, "uid-1", ["r2"]) == 1
    assert journal.remove_bookings("rooms", ALICE, ROOM, "uid-1", ["r2"]) == 0
    assert journal.remove_bookings("rooms", ALICE, ROOM, "uid-1") == 1
    assert journal.bookings("rooms") == [booking(uid="other")]


def test_writes_leave_no_temporary_files(journal: QuotaJournal, tmp_path: Path) -> None:
    journal.add_bookings("rooms", [booking()])
    journal.remove_bookings("rooms", ALICE, ROOM, "uid-1")
    assert sorted(p.name for p in (tmp_path / "rooms").iterdir()) == [".lock", "bookings"]
    assert list((tmp_path / "rooms" / "bookings").iterdir()) == []  # empty files go


def test_expire(journal: QuotaJournal) -> None:
    journal.add_bookings("rooms", [booking(uid="a"), booking(uid="b", hours=5)])
    assert journal.expire("rooms", T0 + timedelta(hours=2)) == 1
    assert [b.uid for b in journal.bookings("rooms")] == ["b"]
    assert journal.expire("rooms", T0) == 0


class RecordingJournal(QuotaJournal):
    """Records the order in which quota locks are requested."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, timeout=5)
        self.order: list[str] = []

    def lock(self, quota: str, timeout: float):  # type: ignore[no-untyped-def]
        self.order.append(quota)
        return super().lock(quota, timeout)


def test_locked_takes_quotas_in_sorted_order(tmp_path: Path) -> None:
    journal = RecordingJournal(tmp_path)
    with journal.locked(["rooms", "cars", "rooms"], timeout=5):
        assert journal.order == ["cars", "rooms"]
        journal.add_bookings("rooms", [booking()])  # uses the held lock
    assert journal.bookings("rooms") == [booking()]


def test_locked_excludes_another_holder(tmp_path: Path) -> None:
    first, second = QuotaJournal(tmp_path), QuotaJournal(tmp_path, timeout=0)
    with first.locked(["rooms", "cars"], timeout=5):
        with pytest.raises(LockTimeout):
            second.add_bookings("cars", [booking()])
        with pytest.raises(LockTimeout), second.lock("rooms", 0):
            pass
    second.add_bookings("cars", [booking()])


def test_out_of_order_lock_refused(journal: QuotaJournal) -> None:
    with journal.lock("rooms", 5):
        with pytest.raises(LockOrderError), journal.lock("cars", 5):
            pass
        with pytest.raises(LockOrderError):
            journal.add_bookings("cars", [booking()])
