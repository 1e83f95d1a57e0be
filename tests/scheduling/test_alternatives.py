"""Compliant alternatives (imiptools.scheduling.alternatives): the COUNTER
(RFC 5546 §3.2.7) proposed instead of declining a request that breaks an
event limit, for each limit, and the cases that get no alternative."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Event, vRecur

from imiptools.itip.recurrence import Instance, Limits, expand
from imiptools.periods import Period
from imiptools.scheduling import Answer, Decision, Request
from imiptools.scheduling.alternatives import (
    INDEFINITE_COUNT,
    alternative,
    capacity,
    search_span,
)
from imiptools.scheduling.limits import check_limits

#: A Tuesday.
NOW = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
WINDOW = Limits(NOW, NOW + timedelta(days=365))
HOUR = timedelta(hours=1)


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in January 2030, UTC."""
    return datetime(2030, 1, day, hour, minute, tzinfo=UTC)


def preferences(**values: str) -> Callable[[str], str]:
    return lambda name: values.get(name, "")


def single(
    start: datetime, end: datetime, busy: list[Period] | None = None, **values: str
) -> Request:
    """A Request for one instance, no RRULE."""
    return Request(
        resource="room@example.com",
        organiser="alice@example.com",
        uid="e@example.com",
        summary="Meeting",
        instances=[Instance(start, end, "", Event(), False)],
        busy=busy or [],
        now=NOW,
        zone=UTC,
        component=Event(),
        preference=preferences(**values),
    )


def series(
    rrule: str, start: str = "20300108T100000Z", busy: list[Period] | None = None, **values: str
) -> Request:
    """A Request for a series from ``start`` (one hour each), expanded over a year."""
    text = (
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//t//EN\nBEGIN:VEVENT\nUID:e@example.com\n"
        f"DTSTART:{start}\nDURATION:PT1H\nRRULE:{rrule}\nEND:VEVENT\nEND:VCALENDAR\n"
    )
    component = Calendar.from_ical(text).walk("VEVENT")[0]
    assert isinstance(component, Event)
    expansion = expand(component, [], UTC, WINDOW)
    future = [instance for instance in expansion.instances if instance.end > NOW]
    return Request(
        resource="room@example.com",
        organiser="alice@example.com",
        uid="e@example.com",
        summary="Meeting",
        instances=future,
        busy=busy or [],
        now=NOW,
        zone=UTC,
        component=component,
        indefinite=expansion.indefinite,
        preference=preferences(**values),
    )


def declined(request: Request) -> Decision:
    """The limit's decline for ``request`` (it must break one)."""
    decision = check_limits(request)
    assert decision is not None and decision.answer is Answer.DECLINED
    return decision


def proposed(request: Request) -> tuple[datetime, datetime]:
    """(start, end) of the COUNTER for ``request``, checked to keep every limit."""
    decision = alternative(request, declined(request))
    assert decision is not None and decision.answer is Answer.COUNTER
    assert decision.code == "counter"
    start, end = decision.params["start"], decision.params["end"]
    assert isinstance(start, datetime) and isinstance(end, datetime)
    instance = Instance(start, end, "", Event(), False)
    assert check_limits(replace(request, instances=[instance])) is None
    return start, end


def busy(start: datetime, end: datetime) -> Period:
    return Period(start, end, "other@example.com")


# -- single events -----------------------------------------------------------


def test_too_long_is_shortened_from_the_same_start() -> None:
    request = single(utc(2, 10), utc(2, 13), max_duration="PT2H")
    assert proposed(request) == (utc(2, 10), utc(2, 12))
    decision = alternative(request, declined(request))
    assert decision is not None and decision.function == "max_duration"
    assert decision.text() == (
        "the event is longer than the 2 hours the resource can be booked for; "
        "it offers 2030-01-02 10:00-12:00 (UTC)"
    )


def test_shortened_end_moves_back_to_the_permitted_times() -> None:
    request = single(utc(2, 10), utc(2, 13), max_duration="PT1H45M", permitted_times="0,30")
    assert proposed(request) == (utc(2, 10), utc(2, 11, 30))


def test_too_short_is_lengthened() -> None:
    request = single(utc(2, 10), utc(2, 10, 30), min_duration="PT1H")
    assert proposed(request) == (utc(2, 10), utc(2, 11))


def test_too_soon_starts_when_the_notice_is_met() -> None:
    request = single(utc(2, 10), utc(2, 11), min_notice="P2D")
    assert proposed(request) == (utc(3, 9), utc(3, 10))


def test_too_soon_start_is_snapped_to_the_permitted_times() -> None:
    request = single(utc(2, 10), utc(2, 11), min_notice="PT47H50M", permitted_times="0,30")
    assert proposed(request) == (utc(3, 9), utc(3, 10))


def test_closed_hours_move_to_the_next_opening() -> None:
    saturday = single(utc(5, 10), utc(5, 12), opening_hours="MO-FR 08:00-18:00")
    assert proposed(saturday) == (utc(7, 8), utc(7, 10))


def test_off_the_grid_moves_to_the_next_permitted_start() -> None:
    request = single(utc(2, 10, 20), utc(2, 11, 20), permitted_times="0")
    assert proposed(request) == (utc(2, 11), utc(2, 12))


def test_shortened_period_outside_opening_hours_moves_to_the_next_opening() -> None:
    request = single(utc(2, 17), utc(2, 21), max_duration="PT2H", opening_hours="MO-FR 08:00-18:00")
    assert proposed(request) == (utc(3, 8), utc(3, 10))


def test_busy_proposal_moves_past_the_booking() -> None:
    taken = [busy(utc(3, 8), utc(3, 11))]
    request = single(utc(2, 10), utc(2, 11), taken, min_notice="P2D")
    assert proposed(request) == (utc(3, 11), utc(3, 12))


def test_transparent_periods_do_not_block_a_proposal() -> None:
    free = Period(utc(3, 8), utc(3, 11), "other@example.com", transp="TRANSPARENT")
    request = single(utc(2, 10), utc(2, 11), [free], min_notice="P2D")
    assert proposed(request) == (utc(3, 9), utc(3, 10))


def test_no_free_period_within_the_booking_window_gives_none() -> None:
    taken = [busy(NOW, NOW + timedelta(days=10))]
    request = single(utc(2, 10), utc(2, 11), taken, min_notice="P2D", booking_window="P5D")
    assert alternative(request, declined(request)) is None


def test_proposal_breaking_another_limit_gives_none() -> None:
    request = single(utc(2, 10), utc(2, 14), max_duration="PT2H", min_duration="PT3H")
    assert alternative(request, declined(request)) is None


def test_too_late_single_event_gets_no_alternative() -> None:
    request = single(utc(20, 10), utc(20, 11), booking_window="P7D")
    assert declined(request).function == "booking_window"
    assert alternative(request, declined(request)) is None


def test_search_span_covers_every_proposal() -> None:
    request = single(utc(2, 10), utc(2, 11), min_notice="P2D", booking_window="P5D")
    start, end = search_span(request)
    assert start <= utc(2, 10) and end >= NOW + timedelta(days=5) + HOUR


# -- series ------------------------------------------------------------------


def truncated(request: Request) -> Decision:
    decision = alternative(request, declined(request))
    assert decision is not None and decision.answer is Answer.COUNTER
    return decision


def test_too_many_instances_keep_the_first_max_instances() -> None:
    request = series("FREQ=WEEKLY;BYDAY=TU;COUNT=20", max_instances="10")
    decision = truncated(request)
    rule = vRecur.from_ical(str(decision.params["rrule"]))
    assert rule["COUNT"] == [10] and rule["FREQ"] == ["WEEKLY"] and rule["BYDAY"] == ["TU"]
    assert (decision.params["start"], decision.params["end"]) == (utc(8, 10), utc(8, 11))
    assert decision.text() == "the series is too long; the resource offers its first 10 instances"


def test_a_series_limited_to_one_instance_says_so_in_the_singular() -> None:
    decision = truncated(series("FREQ=DAILY;COUNT=3", max_instances="1"))
    assert decision.text() == "the series is too long; the resource offers its first 1 instance"


def test_series_past_the_booking_window_keeps_the_instances_inside_it() -> None:
    request = series("FREQ=WEEKLY;BYDAY=TU;COUNT=20", booking_window="P30D")
    decision = truncated(request)  # Jan 8, 15, 22 and 29 start within 30 days
    assert vRecur.from_ical(str(decision.params["rrule"]))["COUNT"] == [4]


def test_until_is_replaced_by_count() -> None:
    request = series("FREQ=DAILY;UNTIL=20300301T000000Z", max_instances="5")
    rule = vRecur.from_ical(str(truncated(request).params["rrule"]))
    assert rule["COUNT"] == [5] and "UNTIL" not in rule


def test_indefinite_series_takes_max_instances() -> None:
    request = series("FREQ=WEEKLY", allow_indefinite="no", max_instances="6")
    assert declined(request).function == "allow_indefinite"
    assert vRecur.from_ical(str(truncated(request).params["rrule"]))["COUNT"] == [6]


def test_indefinite_series_takes_the_booking_window() -> None:
    request = series("FREQ=WEEKLY", allow_indefinite="no", booking_window="P15D")
    assert vRecur.from_ical(str(truncated(request).params["rrule"]))["COUNT"] == [2]


def test_indefinite_series_without_other_limits_gets_the_default_count() -> None:
    request = series("FREQ=DAILY", allow_indefinite="no")
    rule = vRecur.from_ical(str(truncated(request).params["rrule"]))
    assert rule["COUNT"] == [INDEFINITE_COUNT]


def test_truncated_series_breaking_another_limit_gives_none() -> None:
    request = series("FREQ=DAILY;COUNT=10", max_instances="5", max_periods_per_interval="1 P2D")
    assert declined(request).function == "max_instances"
    assert alternative(request, declined(request)) is None


def test_truncated_series_with_a_busy_instance_gives_none() -> None:
    taken = [busy(utc(9, 10), utc(9, 11))]
    request = series("FREQ=DAILY;COUNT=10", busy=taken, max_instances="5")
    assert alternative(request, declined(request)) is None


def test_series_already_under_way_gets_no_alternative() -> None:
    request = series("FREQ=DAILY;COUNT=30", start="20291220T100000Z", max_instances="10")
    assert alternative(request, declined(request)) is None


def test_a_series_too_long_per_instance_gets_every_instance_shortened() -> None:
    request = series("FREQ=DAILY;COUNT=3", max_duration="PT30M")
    offer = alternative(request, declined(request))
    assert offer is not None and offer.answer is Answer.COUNTER
    assert offer.params["end"] - offer.params["start"] == timedelta(minutes=30)
    assert offer.params["rrule"] == "FREQ=DAILY;COUNT=3"


def test_other_limits_of_a_series_get_no_alternative() -> None:
    request = series("FREQ=DAILY;COUNT=3", permitted_frequencies="WEEKLY")
    assert alternative(request, declined(request)) is None
    entirely_too_soon = series("FREQ=DAILY;COUNT=3", min_notice="P30D")
    assert alternative(entirely_too_soon, declined(entirely_too_soon)) is None


def test_a_decision_that_is_no_decline_gets_no_alternative() -> None:
    request = single(utc(2, 10), utc(2, 13), max_duration="PT2H")
    accepted = Decision(Answer.ACCEPTED, "free", "free", "max_duration")
    assert alternative(request, accepted) is None


def test_proposals_respect_the_configured_capacity() -> None:
    taken = [busy(utc(2, 10), utc(2, 11))]
    alone = single(utc(2, 10), utc(2, 13), taken, max_duration="PT1H")
    assert proposed(alone)[0] == utc(2, 11)  # capacity 1: after the booking
    shared = single(
        utc(2, 10),
        utc(2, 13),
        taken,
        max_duration="PT1H",
        scheduling_function="schedule_in_freebusy 2",
    )
    assert proposed(shared) == (utc(2, 10), utc(2, 11))  # room for a second
    assert capacity(shared) == 2
    odd = single(utc(2, 10), utc(2, 11), scheduling_function="schedule_in_freebusy x")
    assert capacity(odd) == 1


def test_a_series_too_soon_is_offered_from_its_first_timely_instance() -> None:
    request = series("FREQ=DAILY;COUNT=5", "20300101T100000Z", min_notice="P2D")
    offer = alternative(request, declined(request))
    assert offer is not None and offer.answer is Answer.COUNTER
    assert offer.params["start"] == utc(3, 10)
    assert offer.params["rrule"] == "FREQ=DAILY;COUNT=3"


def test_a_series_outside_opening_hours_is_moved_later_that_day() -> None:
    request = series("FREQ=WEEKLY;COUNT=4", "20300108T070000Z", opening_hours="MO-FR 09:00-17:00")
    offer = alternative(request, declined(request))
    assert offer is not None and offer.answer is Answer.COUNTER
    assert (offer.params["start"], offer.params["end"]) == (utc(8, 9), utc(8, 10))
    assert offer.params["rrule"] == "FREQ=WEEKLY;COUNT=4"


def test_a_moved_series_avoids_a_busy_week() -> None:
    taken = [busy(utc(15, 9), utc(15, 10))]
    request = series(
        "FREQ=WEEKLY;COUNT=4", "20300108T070000Z", taken, opening_hours="MO-FR 09:00-17:00"
    )
    offer = alternative(request, declined(request))
    assert offer is not None
    assert (offer.params["start"], offer.params["end"]) == (utc(8, 10), utc(8, 11))


def test_a_series_that_cannot_move_within_its_day_gets_nothing() -> None:
    request = series("FREQ=WEEKLY;COUNT=4", "20300108T070000Z", opening_hours="SA 09:00-17:00")
    assert alternative(request, declined(request)) is None
