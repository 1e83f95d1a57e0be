"""Event limits (imiptools.scheduling.limits): each limit's boundary, the
order of the checks, and the reason texts (RFC 5545 §3.3.10, RFC 5546 §3.6)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar, Event

from imiptools.i18n import translator
from imiptools.itip.recurrence import Instance, Limits, expand
from imiptools.scheduling import Answer, Decision, Request
from imiptools.scheduling.limits import (
    LIMITS,
    REQUEST_STATUS,
    check_limits,
    crowded_start,
    describe_duration,
    series_size,
)

NOW = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
WINDOW = Limits(NOW, NOW + timedelta(days=365))
BERLIN = ZoneInfo("Europe/Berlin")

#: RFC 5546 §3.6 status codes that report an error in the request.
RFC_5546_3X = {f"3.{n}" for n in range(15)}


def event(*lines: str, start: str = "20300108T100000Z", end: str = "20300108T110000Z") -> Event:
    """A VEVENT from content lines (RRULE...)."""
    body = "\n".join(lines)
    text = (
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//EN\nBEGIN:VEVENT\nUID:e@example.com\n"
        f"DTSTART:{start}\nDTEND:{end}\n{body}\nEND:VEVENT\nEND:VCALENDAR\n"
    )
    component = Calendar.from_ical(text).walk("VEVENT")[0]
    assert isinstance(component, Event)
    return component


def at(hours: float, length: timedelta = timedelta(hours=1)) -> Instance:
    """A hand-made instance starting ``hours`` after NOW."""
    start = NOW + timedelta(hours=hours)
    return Instance(start, start + length, "", Event(), False)


def preferences(**values: str) -> Callable[[str], str]:
    return lambda name: values.get(name, "")


def request(
    instances: list[Instance] | None = None,
    component: Event | None = None,
    indefinite: bool = False,
    **values: str,
) -> Request:
    """A Request with the given instances (one hour from tomorrow by default)."""
    return Request(
        resource="room@example.com",
        organiser="alice@example.com",
        uid="e@example.com",
        summary="Meeting",
        instances=[at(24)] if instances is None else instances,
        busy=[],
        now=NOW,
        zone=UTC,
        component=component,
        indefinite=indefinite,
        preference=preferences(**values),
    )


def expanded(component: Event, **values: str) -> Request:
    """A Request for ``component`` expanded over the coming year."""
    expansion = expand(component, [], UTC, WINDOW)
    return request(expansion.instances, component, expansion.indefinite, **values)


def declined(req: Request) -> Decision:
    decision = check_limits(req)
    assert decision is not None
    assert decision.answer is Answer.DECLINED
    return decision


# -- general -----------------------------------------------------------------


def test_nothing_set_accepts_anything() -> None:
    rule = event("RRULE:FREQ=MINUTELY")
    assert check_limits(expanded(rule)) is None
    assert check_limits(request([at(-5, timedelta(0))], indefinite=True)) is None


def test_every_code_has_a_request_status() -> None:
    codes = {
        "max-duration",
        "min-duration",
        "max-instances",
        "indefinite",
        "frequency",
        "periods-per-interval",
        "booking-window",
        "min-notice",
    }
    assert set(REQUEST_STATUS) == codes
    assert set(REQUEST_STATUS.values()) <= RFC_5546_3X


def test_the_function_is_the_preference_name() -> None:
    names = [name for name, _ in LIMITS]
    assert names == [
        "allow_indefinite",
        "permitted_frequencies",
        "max_instances",
        "min_notice",
        "booking_window",
        "max_duration",
        "min_duration",
        "max_periods_per_interval",
    ]
    decision = declined(request([at(1, timedelta(hours=5))], max_duration="PT4H"))
    assert decision.function == "max_duration"


def test_a_bad_value_is_misconfigured_not_an_exception() -> None:
    decision = declined(request(max_duration="four hours"))
    assert (decision.code, decision.function) == ("misconfigured", "max_duration")


# -- durations ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "code"),
    [
        (timedelta(hours=4), None),
        (timedelta(hours=4, seconds=1), "max-duration"),
        (timedelta(minutes=30), None),
        (timedelta(minutes=29), "min-duration"),
        (timedelta(0), "min-duration"),
    ],
)
def test_durations(length: timedelta, code: str | None) -> None:
    req = request([at(24), at(48, length)], max_duration="PT4H", min_duration="PT30M")
    decision = check_limits(req)
    assert (decision and decision.code) == code


def test_a_zero_length_instance_keeps_within_max_duration() -> None:
    assert check_limits(request([at(24, timedelta(0))], max_duration="PT0S")) is None


def test_duration_reason() -> None:
    decision = declined(request([at(24, timedelta(hours=5))], max_duration="pt4h"))
    assert decision.text() == "the event is longer than the 4 hours the resource can be booked for"
    assert decision.params["limit_iso"] == "PT4H"
    assert decision.params["limit_seconds"] == 4 * 3600
    assert decision.params["period"] == "2030-01-02 09:00-14:00 (UTC)"
    decision = declined(request([at(24, timedelta(minutes=10))], min_duration="PT30M"))
    assert decision.text() == (
        "the event is shorter than the 30 minutes the resource must be booked for"
    )


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(hours=4), "4 hours"),
        (timedelta(minutes=30), "30 minutes"),
        (timedelta(days=2), "2 days"),
        (timedelta(days=1, hours=1, minutes=1, seconds=1), "1 day 1 hour 1 minute 1 second"),
        (timedelta(days=180), "180 days"),
        (timedelta(0), "0 seconds"),
        (timedelta(hours=-1), "minus 1 hour"),
    ],
)
def test_describe_duration(duration: timedelta, text: str) -> None:
    assert describe_duration(duration) == text


# -- max_instances -----------------------------------------------------------


def test_count_counts_the_whole_series() -> None:
    # COUNT=10 from 2029: only the later instances are in the window.
    series = event("RRULE:FREQ=WEEKLY;COUNT=10", start="20291201T100000Z", end="20291201T110000Z")
    req = expanded(series)
    assert len(req.instances) < 10
    assert series_size(req) == 10
    assert check_limits(expanded(series, max_instances="10")) is None
    assert declined(expanded(series, max_instances="9")).code == "max-instances"


def test_several_rules_add_their_counts() -> None:
    series = event("RRULE:FREQ=DAILY;COUNT=3", "RRULE:FREQ=WEEKLY;COUNT=4")
    assert series_size(expanded(series)) == 7


def test_an_indefinite_series_always_exceeds() -> None:
    req = expanded(event("RRULE:FREQ=YEARLY"), max_instances="1000")
    assert req.indefinite
    decision = declined(req)
    assert decision.code == "max-instances"
    assert decision.params["instances"] == ""


def test_until_is_counted_within_the_window() -> None:
    series = event("RRULE:FREQ=DAILY;UNTIL=20300112T100000Z")  # 8 to 12 January
    assert check_limits(expanded(series, max_instances="5")) is None
    assert declined(expanded(series, max_instances="4")).code == "max-instances"


def test_a_single_event_is_one_instance() -> None:
    assert check_limits(expanded(event(), max_instances="1")) is None


def test_max_instances_reason_is_plural() -> None:
    # Decision.text() without a translator always uses the singular msgid,
    # so plural reasons are rendered with the English (null) translator.
    english = translator("en")
    decision = declined(expanded(event("RRULE:FREQ=DAILY;COUNT=3"), max_instances="2"))
    assert decision.text(english) == (
        "the resource can be booked for at most 2 instances of a series"
    )
    assert decision.params["instances"] == 3
    decision = declined(expanded(event("RRULE:FREQ=DAILY;COUNT=3"), max_instances="1"))
    assert decision.text(english) == (
        "the resource can be booked for at most 1 instance of a series"
    )


# -- allow_indefinite and permitted_frequencies -------------------------------


def test_indefinite_declined_when_not_allowed() -> None:
    req = expanded(event("RRULE:FREQ=MINUTELY"), allow_indefinite="no")
    decision = declined(req)
    assert decision.code == "indefinite"
    assert decision.text() == "the resource cannot be booked for a series that repeats without end"


def test_indefinite_minutely_declines_without_looking_at_instances() -> None:
    class Exploding(list[Instance]):
        def __iter__(self) -> Iterator[Instance]:
            raise AssertionError("instances were looked at")

        def __len__(self) -> int:
            raise AssertionError("instances were looked at")

    rule = event("RRULE:FREQ=MINUTELY", start="19900101T000000Z", end="19900101T000100Z")
    req = request(Exploding(), rule, True, allow_indefinite="no", max_duration="PT1H")
    assert declined(req).code == "indefinite"


@pytest.mark.parametrize("value", ["yes", ""])
def test_indefinite_allowed(value: str) -> None:
    assert check_limits(expanded(event("RRULE:FREQ=DAILY"), allow_indefinite=value)) is None


def test_bounded_series_allowed_when_indefinite_is_not() -> None:
    for rule in ("RRULE:FREQ=DAILY;COUNT=2", "RRULE:FREQ=DAILY;UNTIL=20300110T100000Z"):
        assert check_limits(expanded(event(rule), allow_indefinite="no")) is None


def test_frequencies() -> None:
    allowed = "DAILY WEEKLY"
    assert (
        check_limits(
            expanded(event("RRULE:FREQ=WEEKLY;COUNT=2"), **{"permitted_frequencies": allowed})
        )
        is None
    )
    assert check_limits(expanded(event(), permitted_frequencies=allowed)) is None
    decision = declined(expanded(event("RRULE:FREQ=HOURLY;COUNT=2"), permitted_frequencies=allowed))
    assert (decision.code, decision.params["freq"]) == ("frequency", "HOURLY")
    assert decision.text() == "the resource cannot be booked for an event that repeats every hour"


def test_every_rule_must_have_a_permitted_frequency() -> None:
    series = event("RRULE:FREQ=DAILY;COUNT=2", "RRULE:FREQ=MONTHLY;COUNT=2")
    decision = declined(expanded(series, permitted_frequencies="DAILY"))
    assert decision.params["freq"] == "MONTHLY"


# -- booking_window and min_notice --------------------------------------------


def test_booking_window_boundary() -> None:
    window = timedelta(days=180)
    edge = window / timedelta(hours=1)
    assert check_limits(request([at(1), at(edge)], booking_window="P180D")) is None
    decision = declined(request([at(1), at(edge + 1 / 3600)], booking_window="P180D"))
    assert decision.code == "booking-window"
    assert decision.text() == "the resource can be booked at most 180 days in advance"
    assert decision.params["start"] == "2030-06-30 09:00 (UTC)"


def test_min_notice_boundary() -> None:
    assert check_limits(request([at(1), at(0.5)], min_notice="PT30M")) is None
    decision = declined(request([at(1), at(0.5 - 1 / 3600)], min_notice="PT30M"))
    assert decision.code == "min-notice"
    assert decision.text() == "the resource must be booked at least 30 minutes in advance"


def test_no_instances_left_is_not_a_timing_matter() -> None:
    assert check_limits(request([], min_notice="PT1H", booking_window="P1D")) is None


# -- max_periods_per_interval ---------------------------------------------------


def test_daily_keeps_within_one_a_day() -> None:
    series = event("RRULE:FREQ=DAILY;COUNT=5")
    assert check_limits(expanded(series, max_periods_per_interval="1 P1D")) is None


def test_periods_per_interval_boundary() -> None:
    two = "RRULE:FREQ=HOURLY;INTERVAL=12;COUNT=6"  # twice a day
    assert check_limits(expanded(event(two), max_periods_per_interval="2 P1D")) is None
    decision = declined(expanded(event(two), max_periods_per_interval="1 P1D"))
    assert decision.code == "periods-per-interval"
    assert decision.text(translator("en")) == (
        "the event starts more than 1 time within 1 day from 2030-01-08 10:00 (UTC)"
    )
    three = "RRULE:FREQ=HOURLY;INTERVAL=8;COUNT=6"
    decision = declined(expanded(event(three), max_periods_per_interval="2 P1D"))
    assert decision.text(translator("en")) == (
        "the event starts more than 2 times within 1 day from 2030-01-08 10:00 (UTC)"
    )


def test_periods_per_interval_counts_only_the_request() -> None:
    req = request([at(24), at(30), at(50)], max_periods_per_interval="2 P1D")
    assert check_limits(req) is None


def test_crowded_start() -> None:
    starts = [NOW + timedelta(hours=h) for h in (0, 10, 30, 40, 50)]
    assert crowded_start(starts, 2, timedelta(days=1)) == 2  # 30, 40, 50
    assert crowded_start(starts, 3, timedelta(days=1)) is None
    assert crowded_start(starts, 1, timedelta(0)) is None
    assert crowded_start([], 1, timedelta(days=1)) is None


# -- order ----------------------------------------------------------------------


def test_order_of_checks() -> None:
    every = {
        "allow_indefinite": "no",
        "permitted_frequencies": "WEEKLY",
        "max_instances": "1",
        "min_notice": "P10D",
        "booking_window": "P1D",
        "max_duration": "PT1M",
        "min_duration": "PT2H",
        "max_periods_per_interval": "1 P60D",
    }
    instances = [at(1, timedelta(minutes=90)), at(24 * 30, timedelta(minutes=90))]
    component = event("RRULE:FREQ=HOURLY")
    seen = []
    for name, _ in LIMITS:
        decision = declined(request(instances, component, True, **every))
        assert decision.function == name
        seen.append(decision.code)
        every.pop(name)
    assert check_limits(request(instances, component, True, **every)) is None
    assert seen == [
        "indefinite",
        "frequency",
        "max-instances",
        "min-notice",
        "booking-window",
        "max-duration",
        "min-duration",
        "periods-per-interval",
    ]


def test_zone_of_the_reason_is_the_resources() -> None:
    req = Request(
        resource="room@example.com",
        organiser="alice@example.com",
        uid="e@example.com",
        summary="Meeting",
        instances=[at(24, timedelta(hours=5))],
        busy=[],
        now=NOW,
        zone=BERLIN,
        preference=preferences(max_duration="PT4H"),
    )
    assert declined(req).params["period"] == "2030-01-02 10:00-15:00 (CET)"
