"""Quota arithmetic: usage per period, applicable limits, the first violation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from imiptools.quota.limits import (
    QuotaBooking,
    QuotaLimit,
    applicable,
    check,
    format_amount,
    usage,
)

ALICE = "mailto:alice@example.com"
BOB = "mailto:bob@example.com"
CAROL = "mailto:carol@example.com"
ROOM = "mailto:room1@example.com"
H = timedelta(hours=1)
# Monday 7 January 2030.
MONDAY = datetime(2030, 1, 7, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def at(day: int, hour: int, hours: int = 1, user: str = ALICE, uid: str = "") -> QuotaBooking:
    start = datetime(2030, 1, day, hour, tzinfo=UTC)
    return QuotaBooking(user, ROOM, uid or f"{user}-{day}-{hour}", "", start, start + hours * H)


def span(day: int, hour: int, hours: int = 1) -> tuple[datetime, datetime]:
    start = datetime(2030, 1, day, hour, tzinfo=UTC)
    return start, start + hours * H


def limit(period: str, value: timedelta | int, who: str = "*") -> QuotaLimit:
    measure = "count" if isinstance(value, int) else "time"
    return QuotaLimit(who, measure, period, value)


BOOKINGS = [at(6, 23), at(7, 9, 2), at(7, 15), at(13, 10, 3), at(14, 0), at(7, 9, user=BOB)]


def test_usage_day_week_month_utc() -> None:
    when = MONDAY + 12 * H
    assert usage(BOOKINGS, {ALICE}, limit("day", H), when, UTC) == 3 * H
    assert usage(BOOKINGS, {ALICE}, limit("day", 1), when, UTC) == 2
    assert usage(BOOKINGS, {ALICE}, limit("week", H), when, UTC) == 6 * H
    assert usage(BOOKINGS, {ALICE}, limit("month", 1), when, UTC) == 5
    assert usage(BOOKINGS, {ALICE, BOB}, limit("day", 1), when, UTC) == 3


def test_week_boundary_in_zone() -> None:
    # Sunday 23:30 UTC is Monday 00:30 in Berlin: a different ISO week.
    late_sunday = QuotaBooking(ALICE, ROOM, "u", "", MONDAY - 30 * timedelta(minutes=1), MONDAY)
    week = limit("week", 5)
    assert usage([late_sunday], {ALICE}, week, MONDAY + H, UTC) == 0
    assert usage([late_sunday], {ALICE}, week, MONDAY + H, BERLIN) == 1
    assert usage([late_sunday], {ALICE}, week, MONDAY - 2 * H, UTC) == 1


def test_booking_counts_wholly_in_period_of_its_start() -> None:
    overnight = at(6, 23, hours=3)  # Sunday 23:00 to Monday 02:00 UTC
    assert usage([overnight], {ALICE}, limit("week", H), MONDAY - H, UTC) == 3 * H
    assert usage([overnight], {ALICE}, limit("week", H), MONDAY + H, UTC) == timedelta(0)


def test_outstanding_counts_what_has_not_ended() -> None:
    now = MONDAY + 10 * H  # during the 09:00-11:00 booking
    assert usage(BOOKINGS, {ALICE}, limit("outstanding", 1), now, UTC) == 4


def test_rolling_window_starts_at_when() -> None:
    rolling = limit("rolling:P7D", 1)
    assert usage(BOOKINGS, {ALICE}, rolling, MONDAY, UTC) == 3
    assert usage(BOOKINGS, {ALICE}, rolling, MONDAY - H, UTC) == 4


def test_precedence_own_group_default() -> None:
    own = limit("week", 1, ALICE)
    pooled = limit("week", 5, "@staff")
    default = limit("week", 2)
    limits = [default, pooled, own]
    assert applicable(limits, ALICE, "staff") == [own, pooled]
    assert applicable(limits, BOB, "staff") == [pooled, default]
    assert applicable(limits, CAROL, None) == [default]


def test_default_applies_to_users_not_named() -> None:
    limits = [limit("week", 2), limit("week", 5, BOB)]
    held = [at(7, 9), at(8, 9), at(7, 9, user=BOB)]
    violation = check(held, limits, ALICE, None, [span(9, 9)], MONDAY, UTC)
    assert violation is not None and violation.limit.who == "*"
    assert (violation.used, violation.requested, violation.allowed) == (2, 1, 2)
    assert check(held, limits, BOB, None, [span(9, 9)], MONDAY, UTC) is None


def test_pooled_group_allowance_is_shared() -> None:
    limits = [limit("week", 3 * H, "@staff")]
    held = [at(7, 9, 2, user=BOB)]
    members = {ALICE, BOB}
    assert check(held, limits, ALICE, "staff", [span(8, 9)], MONDAY, UTC, members) is None
    violation = check(held, limits, ALICE, "staff", [span(8, 9, 2)], MONDAY, UTC, members)
    assert violation is not None
    assert (violation.used, violation.requested) == (2 * H, 2 * H)
    # CAROL is not in the group: the pooled limit does not bind her.
    assert check(held, limits, CAROL, None, [span(8, 9, 2)], MONDAY, UTC) is None


def test_all_limits_must_hold_and_failing_one_is_named() -> None:
    limits = [limit("week", 10 * H, ALICE), limit("day", 2, ALICE), limit("month", 3, ALICE)]
    held = [at(7, 9), at(7, 11)]
    violation = check(held, limits, ALICE, None, [span(7, 15)], MONDAY, UTC)
    assert violation is not None
    assert violation.limit == limits[1]
    assert (violation.used, violation.requested) == (2, 1)
    assert (violation.start, violation.end) == (MONDAY, MONDAY + 24 * H)
    violation = check(held, limits, ALICE, None, [span(8, 9), span(9, 9)], MONDAY, UTC)
    assert violation is not None and violation.limit == limits[2]
    assert check(held, limits, ALICE, None, [span(8, 9)], MONDAY, UTC) is None


def test_new_bookings_checked_in_each_of_their_periods() -> None:
    limits = [limit("day", 1)]
    new = [span(7, 9), span(8, 9), span(8, 12)]
    violation = check([], limits, ALICE, None, new, MONDAY, UTC)
    assert violation is not None and violation.start == MONDAY + 24 * H
    assert (violation.used, violation.requested) == (0, 2)


def test_rolling_check_sees_later_bookings() -> None:
    # At most 2 bookings in any 7 days: Tuesday and Friday held, Monday refused.
    limits = [limit("rolling:P7D", 2)]
    held = [at(8, 9), at(11, 9)]
    violation = check(held, limits, ALICE, None, [span(7, 9)], MONDAY, UTC)
    assert violation is not None and violation.start == MONDAY + 9 * H
    # The Monday after next is 7 days after Monday: the window no longer holds both.
    assert check(held, limits, ALICE, None, [span(15, 9)], MONDAY, UTC) is None
    assert check(held, limits, ALICE, None, [span(14, 9)], MONDAY, UTC) is not None


def test_outstanding_check_and_zero_limit() -> None:
    limits = [limit("outstanding", 2 * H)]
    past = at(1, 9, 5)
    assert check([past], limits, ALICE, None, [span(8, 9, 2)], MONDAY, UTC) is None
    assert check([], [limit("week", 0)], ALICE, None, [span(8, 9)], MONDAY, UTC) is not None


def test_format_amount() -> None:
    assert format_amount(4) == "4"
    assert format_amount(timedelta(days=1, hours=2, minutes=30)) == "P1DT2H30M"
    assert format_amount(timedelta(0)) == "PT0S"
    assert limit("week", 10 * H).to_line() == "* time week PT10H"
