"""Finding a free time (imiptools.views.freetime): slots on the step grid,
inside the day's hours in the zone and on the chosen days, overlapping no
busy period; transparent periods do not count."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from imiptools.periods import Period
from imiptools.scheduling.hours import parse_opening_hours
from imiptools.views.freetime import Hours, Search, free_slots, ranked_slots


def busy(start: str, end: str, transp: str = "OPAQUE") -> Period:
    return Period(
        datetime.fromisoformat(start), datetime.fromisoformat(end), "u", "", transp, "", "", "BUSY"
    )


def search(start: str, end: str, minutes: int = 60, **extra: object) -> Search:
    return Search(
        datetime.fromisoformat(start),
        datetime.fromisoformat(end),
        timedelta(minutes=minutes),
        **extra,  # type: ignore[arg-type]
    )


def test_slots_avoid_busy_time_and_keep_to_the_grid() -> None:
    periods = [
        busy("2030-01-08T09:15+00:00", "2030-01-08T10:00+00:00"),
        busy("2030-01-08T10:30+00:00", "2030-01-08T11:00+00:00", "TRANSPARENT"),
    ]
    found = free_slots(periods, search("2030-01-08T08:50+00:00", "2030-01-08T17:00+00:00"), 2)
    assert [(s.hour, s.minute) for s, _ in found] == [(10, 0), (10, 30)]


def test_hours_are_the_user_s_and_weekends_are_skipped() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    found = free_slots(
        [],
        search("2030-01-11T00:00+00:00", "2030-01-15T00:00+00:00", zone=berlin),
        3,
    )
    # Friday 9:00 Berlin is 8:00 UTC; the last slot of a day ends at 17:00.
    assert found[0][0] == datetime(2030, 1, 11, 8, tzinfo=UTC)
    assert all(s.astimezone(berlin).weekday() < 5 for s, _ in found)
    late = free_slots([], search("2030-01-08T15:30+00:00", "2030-01-09T00:00+00:00"), 5)
    assert [s.hour for s, _ in late] == [15, 16]


def test_a_whole_week_of_days_and_other_hours() -> None:
    every_day = frozenset(range(7))
    found = free_slots(
        [],
        search(
            "2030-01-12T00:00+00:00",
            "2030-01-13T00:00+00:00",
            days=every_day,
            hours=(time(20), time(22)),
        ),
        5,
    )
    assert [s.hour for s, _ in found] == [20, 20, 21]


@pytest.mark.parametrize(
    "bad",
    [
        {"minutes": 0},
        {"step": timedelta(minutes=1)},
        {"hours": (time(17), time(9))},
        {"end": "2029-01-01T00:00+00:00"},
        {"end": "2040-01-01T00:00+00:00"},
    ],
)
def test_a_search_that_cannot_end_well_is_refused(bad: dict[str, object]) -> None:
    end = str(bad.pop("end", "2030-01-09T00:00+00:00"))
    minutes = int(bad.pop("minutes", 60))  # type: ignore[call-overload]
    with pytest.raises(ValueError):
        free_slots([], search("2030-01-08T00:00+00:00", end, minutes, **bad), 1)


def test_ranked_slots_put_everyones_working_hours_first() -> None:
    berlin, new_york = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
    start = datetime(2030, 1, 8, 0, 0, tzinfo=berlin)  # a Tuesday
    search = Search(start, start + timedelta(days=1), timedelta(hours=1), zone=berlin)
    ranked = ranked_slots([], search, 3, [Hours(berlin), Hours(new_york)])
    assert [(r.start.astimezone(berlin).strftime("%H:%M"), r.inside) for r in ranked] == [
        ("15:00", 2),
        ("15:30", 2),
        ("16:00", 2),
    ]
    alone = ranked_slots([], search, 1, [Hours(berlin)])
    assert alone[0].start.astimezone(berlin).hour == 9 and alone[0].of == 1


def test_binding_hours_leave_out_what_they_do_not_hold() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2030, 1, 8, 0, 0, tzinfo=berlin)
    search = Search(start, start + timedelta(days=1), timedelta(minutes=30), zone=berlin)
    room = Hours(berlin, parse_opening_hours("TU 12:00-13:00"), binding=True)
    ranked = ranked_slots([], search, 5, [Hours(berlin), room])
    assert [r.start.astimezone(berlin).strftime("%H:%M") for r in ranked] == ["12:00", "12:30"]
