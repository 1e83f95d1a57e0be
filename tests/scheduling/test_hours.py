"""Opening hours and permitted times (imiptools.scheduling.hours): parsing, the
local-time grid across DST changes, open intervals, RFC 7953 VAVAILABILITY."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Event

from imiptools.itip.recurrence import Instance
from imiptools.scheduling import STATUS_TEXT, Answer, Request
from imiptools.scheduling.availability import opening_hours_from_vavailability
from imiptools.scheduling.hours import (
    REQUEST_STATUS,
    OpeningHours,
    PermittedTimes,
    Rule,
    opening_hours_limit,
    parse_opening,
    parse_opening_hours,
    parse_permitted_times,
    permitted_times_limit,
)

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
WEEKDAYS = frozenset(range(5))


def berlin(*fields: int, fold: int = 0) -> datetime:
    return datetime(*fields, tzinfo=BERLIN, fold=fold)  # type: ignore[misc]


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)  # type: ignore[misc]


def grid(text: str) -> PermittedTimes:
    times = parse_permitted_times(text)
    assert times is not None
    return times


# -- permitted times ---------------------------------------------------------


def test_minutes_past_every_hour() -> None:
    assert grid("0,15,30,45") == PermittedTimes(None, (0, 15, 30, 45))
    assert grid(" 30,0 ") == PermittedTimes(None, (0, 30))


def test_hours_and_minutes() -> None:
    times = grid("10,12,14,16:0,30")
    assert times == PermittedTimes((10, 12, 14, 16), (0, 30))
    assert times.describe() == "10:00, 10:30, 12:00, 12:30, 14:00, 14:30, 16:00, 16:30"
    assert grid("0,30").describe() == "xx:00, xx:30"


def test_blank_permits_anything() -> None:
    assert parse_permitted_times("") is None
    assert parse_permitted_times("  \n") is None


@pytest.mark.parametrize(
    "text",
    ["60", "24:0", "a", "0,,15", ":30", "10:", "1:2:3", "0, 15", "0,15 10:30", "-5", "100"],
)
def test_bad_permitted_times(text: str) -> None:
    with pytest.raises(ValueError):
        parse_permitted_times(text)


def test_allows() -> None:
    times = grid("10,12:0,30")
    assert times.allows(berlin(2030, 1, 8, 10, 30))
    assert not times.allows(berlin(2030, 1, 8, 11, 0))
    assert not times.allows(berlin(2030, 1, 8, 10, 30, 5))
    with pytest.raises(ValueError):
        times.allows(datetime(2030, 1, 8, 10, 30))


def test_snapping_within_a_day() -> None:
    times = grid("0,15,30,45")
    assert times.next_at_or_after(berlin(2030, 1, 8, 10, 7)) == berlin(2030, 1, 8, 10, 15)
    assert times.previous_at_or_before(berlin(2030, 1, 8, 10, 7)) == berlin(2030, 1, 8, 10, 0)
    assert times.next_at_or_after(berlin(2030, 1, 8, 10, 15)) == berlin(2030, 1, 8, 10, 15)
    assert times.next_at_or_after(berlin(2030, 1, 8, 23, 50)) == berlin(2030, 1, 9, 0, 0)


def test_snapping_across_days() -> None:
    times = grid("10,12,14,16:0,30")
    assert times.next_at_or_after(berlin(2030, 1, 8, 16, 45)) == berlin(2030, 1, 9, 10, 0)
    assert times.previous_at_or_before(berlin(2030, 1, 8, 9, 0)) == berlin(2030, 1, 7, 16, 30)


def test_snapping_skips_the_spring_gap() -> None:
    """02:00 and 02:30 do not exist in Berlin on 2030-03-31."""
    times = grid("0,30")
    found = times.next_at_or_after(berlin(2030, 3, 31, 1, 45))
    assert found.astimezone(UTC) == utc(2030, 3, 31, 1, 0)
    assert (found.hour, found.minute) == (3, 0)
    back = times.previous_at_or_before(berlin(2030, 3, 31, 3, 10))
    assert back.astimezone(UTC) == utc(2030, 3, 31, 1, 0)


def test_snapping_through_the_autumn_repeat() -> None:
    """02:00-03:00 happens twice on 2030-10-27; both are on the grid, in order."""
    times = grid("0,30")
    after_first = times.next_at_or_after(berlin(2030, 10, 27, 2, 40))  # CEST
    assert after_first.astimezone(UTC) == utc(2030, 10, 27, 1, 0)  # 02:00 CET
    before_second = times.previous_at_or_before(berlin(2030, 10, 27, 2, 10, fold=1))
    assert before_second.astimezone(UTC) == utc(2030, 10, 27, 1, 0)


def test_snapping_in_utc() -> None:
    times = grid("0")
    assert times.next_at_or_after(utc(2030, 1, 8, 10, 1)) == utc(2030, 1, 8, 11, 0)


# -- opening hours: parsing --------------------------------------------------


def test_parse_lines() -> None:
    hours = parse_opening_hours(
        "# the office\nMO-FR 08:00-18:00\n\nsa 09:00-13:00  # mornings\n"
        "MO,WE 07:30-12:00,13:00-24:00\n"
    )
    assert hours.rules == (
        Rule(WEEKDAYS, 480, 1080),
        Rule(frozenset({5}), 540, 780),
        Rule(frozenset({0, 2}), 450, 720),
        Rule(frozenset({0, 2}), 780, 1440),
    )
    assert hours.describe() == (
        "MO-FR 08:00-18:00, SA 09:00-13:00, MO,WE 07:30-12:00, MO,WE 13:00-24:00"
    )


def test_day_ranges_wrap_and_combine() -> None:
    assert parse_opening_hours("FR-MO 10:00-11:00").rules[0].days == frozenset({4, 5, 6, 0})
    rule = parse_opening_hours("MO-WE,FR 10:00-11:00").rules[0]
    assert rule.days == frozenset({0, 1, 2, 4})
    assert rule.describe() == "MO-WE,FR 10:00-11:00"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("MO-FR 08:00-18:00\nXX 08:00-10:00", "line 2: unknown days"),
        ("MO 18:00-08:00", "line 1: 18:00-08:00 ends before it starts"),
        ("MO 08:00-08:00", "line 1:"),
        ("MO 24:00-24:00", "line 1: no such time"),
        ("MO 08:00-24:30", "line 1: no such time"),
        ("\n\nMO 8-18", "line 3: expected HH:MM, not '8'"),
        ("MO 08:00", "line 1: expected HH:MM-HH:MM"),
        ("MO", "line 1: expected DAYS"),
        ("MO 08:00-10:00 extra", "line 1: expected DAYS"),
        ("MO-XX 08:00-10:00", "line 1: unknown days"),
        ("MO 8h00-10:00", "line 1: expected HH:MM"),
        ("# only a comment", "no opening hours"),
    ],
)
def test_bad_lines_name_their_number(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_opening_hours(text)


def test_parse_opening_dispatches() -> None:
    assert parse_opening("") is None
    assert parse_opening("MO 08:00-09:00") == OpeningHours((Rule(frozenset({0}), 480, 540),))
    hours = parse_opening(vavailability(available("DTSTART;TZID=Europe/Berlin:20300107T080000")))
    assert hours is not None
    assert hours.describe() == "MO-FR 08:00-18:00"


# -- opening hours: intervals and containment --------------------------------


def test_intervals_follow_the_march_change() -> None:
    """08:00-18:00 in Berlin is 07:00-17:00 UTC before 2030-03-31, 06:00-16:00 after."""
    hours = parse_opening_hours("MO-FR 08:00-18:00")
    found = hours.intervals(utc(2030, 3, 29), utc(2030, 4, 2), BERLIN)
    assert found == [
        (utc(2030, 3, 29, 7), utc(2030, 3, 29, 17)),
        (utc(2030, 4, 1, 6), utc(2030, 4, 1, 16)),
    ]
    assert all(start.tzinfo is UTC and end.tzinfo is UTC for start, end in found)


def test_a_whole_day_of_the_change_is_23_hours() -> None:
    hours = parse_opening_hours("SU 00:00-24:00")
    [(start, end)] = hours.intervals(utc(2030, 3, 30), utc(2030, 4, 2), BERLIN)
    assert (start, end) == (utc(2030, 3, 30, 23), utc(2030, 3, 31, 22))
    assert end - start == timedelta(hours=23)


def test_intervals_are_clipped_and_merged() -> None:
    hours = parse_opening_hours("MO 08:00-12:00\nMO 12:00-18:00\nMO 10:00-11:00")
    found = hours.intervals(utc(2030, 1, 7, 9), utc(2030, 1, 7, 23), BERLIN)
    assert found == [(utc(2030, 1, 7, 9), utc(2030, 1, 7, 17))]
    assert hours.intervals(utc(2030, 1, 8), utc(2030, 1, 13), BERLIN) == []


def test_contains() -> None:
    hours = parse_opening_hours("MO-FR 08:00-18:00")
    assert hours.contains(berlin(2030, 1, 8, 8), berlin(2030, 1, 8, 18), BERLIN)
    assert not hours.contains(berlin(2030, 1, 8, 17), berlin(2030, 1, 8, 18, 30), BERLIN)
    assert not hours.contains(berlin(2030, 1, 8, 7, 59), berlin(2030, 1, 8, 9), BERLIN)
    assert not hours.contains(berlin(2030, 1, 12, 10), berlin(2030, 1, 12, 11), BERLIN)
    assert hours.contains(berlin(2030, 1, 8, 18), berlin(2030, 1, 8, 18), BERLIN)


def test_touching_rules_make_one_interval() -> None:
    split = parse_opening_hours("MO 08:00-12:00\nMO 12:00-18:00")
    assert split.contains(berlin(2030, 1, 7, 11), berlin(2030, 1, 7, 13), BERLIN)


def test_crossing_midnight_needs_both_days_open() -> None:
    start, end = berlin(2030, 1, 11, 23), berlin(2030, 1, 12, 1)  # Friday night
    both = parse_opening_hours("FR 22:00-24:00\nSA 00:00-02:00")
    assert both.contains(start, end, BERLIN)
    friday_only = parse_opening_hours("FR 22:00-24:00")
    assert not friday_only.contains(start, end, BERLIN)


def test_contains_after_the_change() -> None:
    hours = parse_opening_hours("MO-FR 08:00-18:00")
    assert hours.contains(utc(2030, 4, 1, 6), utc(2030, 4, 1, 16), BERLIN)
    assert not hours.contains(utc(2030, 3, 29, 6), utc(2030, 3, 29, 7), BERLIN)


# -- RFC 7953 VAVAILABILITY --------------------------------------------------


def available(
    start: str,
    end: str = "DTEND;TZID=Europe/Berlin:20300107T180000",
    rule: str = "RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR",
) -> str:
    """An AVAILABLE with these DTSTART, end (DTEND or DURATION) and RRULE lines."""
    lines = ["BEGIN:AVAILABLE", "UID:b@example.com", "DTSTAMP:20300101T000000Z", start, end]
    return "\n".join([*lines, rule, "END:AVAILABLE"] if rule else [*lines, "END:AVAILABLE"])


def vavailability(*parts: str, extra: str = "") -> str:
    head = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//EN\nBEGIN:VAVAILABILITY\n"
    head += "UID:a@example.com\nDTSTAMP:20300101T000000Z\n" + (extra + "\n" if extra else "")
    return head + "\n".join(parts) + "\nEND:VAVAILABILITY\nEND:VCALENDAR\n"


def test_weekly_available_becomes_a_rule() -> None:
    text = vavailability(available("DTSTART;TZID=Europe/Berlin:20300107T080000"))
    hours = opening_hours_from_vavailability(text)
    assert hours.rules == (Rule(WEEKDAYS, 480, 1080),)
    assert hours.contains(berlin(2030, 7, 3, 9), berlin(2030, 7, 3, 17), BERLIN)


def test_available_without_byday_uses_its_weekday() -> None:
    text = vavailability(
        available(
            "DTSTART;TZID=Europe/Berlin:20300112T090000",  # a Saturday
            "DURATION:PT4H",
            "RRULE:FREQ=WEEKLY",
        ),
        available("DTSTART;TZID=Europe/Berlin:20300107T080000"),
    )
    hours = opening_hours_from_vavailability(text)
    assert hours.describe() == "SA 09:00-13:00, MO-FR 08:00-18:00"


def test_available_across_midnight_is_split() -> None:
    text = vavailability(
        available(
            "DTSTART;TZID=Europe/Berlin:20300111T220000",
            "DTEND;TZID=Europe/Berlin:20300112T020000",
            "RRULE:FREQ=WEEKLY;BYDAY=FR,SU",
        )
    )
    hours = opening_hours_from_vavailability(text)
    assert hours.rules == (
        Rule(frozenset({4, 6}), 1320, 1440),
        Rule(frozenset({5, 0}), 0, 120),
    )


def test_utc_values_are_converted_to_the_zone() -> None:
    text = vavailability(
        available("DTSTART:20300107T070000Z", "DTEND:20300107T170000Z", "RRULE:FREQ=WEEKLY")
    )
    assert opening_hours_from_vavailability(text, BERLIN).describe() == "MO 08:00-18:00"
    assert opening_hours_from_vavailability(text).describe() == "MO 07:00-17:00"


def test_whole_day_available() -> None:
    text = vavailability(
        available("DTSTART;VALUE=DATE:20300112", "DTEND;VALUE=DATE:20300113", "RRULE:FREQ=WEEKLY")
    )
    assert opening_hours_from_vavailability(text).describe() == "SA 00:00-24:00"


BERLIN_START = "DTSTART;TZID=Europe/Berlin:20300107T080000"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not a calendar", "iCalendar|VAVAILABILITY"),
        (vavailability(), "no AVAILABLE"),
        (vavailability(available(BERLIN_START), extra="DTEND:20310101T000000Z"), "an end"),
        (vavailability(available(BERLIN_START, rule="RRULE:FREQ=DAILY")), "FREQ=WEEKLY"),
        (vavailability(available(BERLIN_START, rule="RRULE:FREQ=WEEKLY;COUNT=3")), "WEEKLY"),
        (vavailability(available(BERLIN_START, rule="RRULE:FREQ=WEEKLY;INTERVAL=2")), "INTERVAL"),
        (vavailability(available(BERLIN_START, rule="RRULE:FREQ=WEEKLY;BYDAY=1MO")), "BYDAY"),
        (vavailability(available(BERLIN_START, rule="")), "one weekly RRULE"),
        (
            vavailability(
                available(
                    BERLIN_START, "DTEND;TZID=Europe/Berlin:20300109T080000", "RRULE:FREQ=WEEKLY"
                )
            ),
            "one day",
        ),
        (vavailability(available(BERLIN_START, "SUMMARY:x")), "DTEND or DURATION"),
    ],
)
def test_unsupported_vavailability(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        opening_hours_from_vavailability(text)


def test_two_vavailability_components_are_refused() -> None:
    one = vavailability(available(BERLIN_START))
    body = one.split("BEGIN:VAVAILABILITY", 1)[1].split("END:VCALENDAR")[0]
    two = one.replace("END:VCALENDAR", "BEGIN:VAVAILABILITY" + body + "END:VCALENDAR")
    with pytest.raises(ValueError, match="found 2"):
        opening_hours_from_vavailability(two)


# -- the limits --------------------------------------------------------------


def preferences(**values: str) -> Callable[[str], str]:
    return lambda name: values.get(name, "")


def request(start: datetime, end: datetime, **values: str) -> Request:
    return Request(
        resource="room@example.com",
        organiser="alice@example.com",
        uid="e@example.com",
        summary="Meeting",
        instances=[Instance(start.astimezone(UTC), end.astimezone(UTC), "", Event(), False)],
        busy=[],
        now=NOW,
        zone=BERLIN,
        preference=preferences(**values),
    )


def test_opening_hours_limit() -> None:
    inside = request(
        berlin(2030, 1, 8, 9), berlin(2030, 1, 8, 10), opening_hours="MO-FR 08:00-18:00"
    )
    assert opening_hours_limit(inside) is None
    late = request(
        berlin(2030, 1, 8, 17), berlin(2030, 1, 8, 19), opening_hours="MO-FR 08:00-18:00"
    )
    decision = opening_hours_limit(late)
    assert decision is not None
    assert (decision.answer, decision.code, decision.function) == (
        Answer.DECLINED,
        "opening-hours",
        "opening_hours",
    )
    assert decision.text() == ("the resource can only be booked MO-FR 08:00-18:00 (Europe/Berlin)")
    assert decision.params["period"] == "2030-01-08 17:00-19:00 (CET)"
    assert opening_hours_limit(request(berlin(2030, 1, 12, 3), berlin(2030, 1, 12, 4))) is None


def test_permitted_times_limit() -> None:
    on_grid = request(berlin(2030, 1, 8, 9), berlin(2030, 1, 8, 10, 30), permitted_times="0,30")
    assert permitted_times_limit(on_grid) is None
    off = request(berlin(2030, 1, 8, 9), berlin(2030, 1, 8, 10, 10), permitted_times="0,30")
    decision = permitted_times_limit(off)
    assert decision is not None
    assert (decision.code, decision.function) == ("permitted-times", "permitted_times")
    assert decision.text() == "the event must start and end at xx:00, xx:30"
    assert permitted_times_limit(request(berlin(2030, 1, 8, 9, 7), berlin(2030, 1, 8, 10))) is None


def test_request_status_codes_are_rfc_5546() -> None:
    assert REQUEST_STATUS == {"opening-hours": "3.5", "permitted-times": "3.5"}
    assert set(REQUEST_STATUS.values()) <= set(STATUS_TEXT)
