"""Counter-proposing scheduling functions (imiptools.scheduling.counter):
corrected periods, the next available period, and the span to load (RFC 5546 §3.2.7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Event

import imiptools.scheduling.counter as counter
from imiptools.itip.recurrence import Instance
from imiptools.periods import Period
from imiptools.scheduling import Answer, Decision, Request, decide, lookup
from imiptools.scheduling.counter import (
    delegated_limits,
    schedule_corrected_in_freebusy,
    schedule_next_available_in_freebusy,
    search_span,
)

BERLIN = ZoneInfo("Europe/Berlin")
#: Monday 2030-01-07, 09:00 in Berlin.
NOW = datetime(2030, 1, 7, 8, 0, tzinfo=UTC)
CORRECTED = "schedule_corrected_in_freebusy"
NEXT = "schedule_next_available_in_freebusy"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A Berlin wall time in January 2030 (CET), as aware UTC."""
    return datetime(2030, 1, day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


def instance(start: datetime, end: datetime) -> Instance:
    return Instance(start, end, "", Event(), False)


def busy(start: datetime, end: datetime, uid: str = "other") -> Period:
    return Period(start, end, uid)


def request(
    start: datetime,
    end: datetime,
    busy: list[Period] | None = None,
    instances: list[Instance] | None = None,
    **values: str,
) -> Request:
    """A request for one instance ``[start, end)`` (or ``instances``) with preferences."""
    return Request(
        resource="room@example.com",
        organiser="alice@example.com",
        uid="e@example.com",
        summary="Meeting",
        instances=instances if instances is not None else [instance(start, end)],
        busy=busy or [],
        now=NOW,
        zone=BERLIN,
        preference=lambda name: values.get(name, ""),
    )


def proposed(decision: Decision) -> tuple[datetime, datetime]:
    assert decision.answer is Answer.COUNTER, decision
    assert decision.code == "counter"
    start, end = decision.params["start"], decision.params["end"]
    assert isinstance(start, datetime) and isinstance(end, datetime)
    assert start.utcoffset() == timedelta(0) and end.utcoffset() == timedelta(0)
    return start, end


def test_registered() -> None:
    assert lookup(CORRECTED) is schedule_corrected_in_freebusy
    assert lookup(NEXT) is schedule_next_available_in_freebusy


# -- schedule_corrected_in_freebusy ------------------------------------------


def test_corrected_accepts_a_period_on_the_grid() -> None:
    decision = schedule_corrected_in_freebusy(
        request(at(8, 10), at(8, 11), permitted_times="0,30"), []
    )
    assert (decision.answer, decision.code, decision.function) == (
        Answer.ACCEPTED,
        "free",
        CORRECTED,
    )


def test_corrected_without_permitted_times_keeps_the_instance() -> None:
    decision = schedule_corrected_in_freebusy(request(at(8, 10, 10), at(8, 10, 55)), [])
    assert decision.answer is Answer.ACCEPTED


def test_corrected_counters_with_the_widened_period() -> None:
    decision = schedule_corrected_in_freebusy(
        request(at(8, 10, 10), at(8, 10, 50), permitted_times="0,30"), []
    )
    assert proposed(decision) == (at(8, 10), at(8, 11))
    assert decision.function == CORRECTED
    assert decision.params["period"] == "2030-01-08 10:00-11:00 (CET)"
    assert decision.text() == (
        "bookings start and end at xx:00, xx:30; 2030-01-08 10:00-11:00 (CET) would fit"
    )


def test_corrected_declines_when_the_widened_period_is_busy() -> None:
    taken = [busy(at(8, 10, 55), at(8, 11, 30))]
    req = request(at(8, 10, 10), at(8, 10, 50), taken, permitted_times="0,30")
    decision = schedule_corrected_in_freebusy(req, [])
    assert (decision.answer, decision.code) == (Answer.DECLINED, "conflict")
    # The booking in the way of the widened period, not the period itself.
    assert decision.text() == "the resource is already booked 2030-01-08 10:55-11:30 (CET)"


def test_corrected_uses_the_capacity() -> None:
    taken = [busy(at(8, 10, 55), at(8, 11, 30))]
    req = request(at(8, 10, 10), at(8, 10, 50), taken, permitted_times="0,30")
    assert proposed(schedule_corrected_in_freebusy(req, ["2"])) == (at(8, 10), at(8, 11))
    with pytest.raises(ValueError):
        schedule_corrected_in_freebusy(req, ["0"])


def test_corrected_respects_opening_hours() -> None:
    req = request(at(8, 8, 10), at(8, 9), permitted_times="0,30", opening_hours="MO-FR 08:05-18:00")
    decision = schedule_corrected_in_freebusy(req, [])
    assert (decision.answer, decision.code) == (Answer.DECLINED, "opening-hours")


def test_corrected_respects_notice() -> None:
    """The corrected start (10:00 CET) is before now + PT1H30M (10:30 CET)."""
    req = request(at(7, 10, 40), at(7, 11), permitted_times="0", min_notice="PT1H30M")
    decision = schedule_corrected_in_freebusy(req, [])
    assert (decision.answer, decision.code) == (Answer.DECLINED, "min-notice")
    assert decision.text() == "the resource must be booked at least 1 hour 30 minutes in advance"


def test_corrected_on_a_series_is_schedule_in_freebusy() -> None:
    series = [instance(at(8, 10, 10), at(8, 10, 50)), instance(at(9, 10, 10), at(9, 10, 50))]
    free = request(at(8, 10), at(8, 11), instances=series, permitted_times="0,30")
    decision = schedule_corrected_in_freebusy(free, [])
    assert (decision.answer, decision.function) == (Answer.ACCEPTED, CORRECTED)
    taken = [busy(at(9, 10), at(9, 10, 30))]
    clash = request(at(8, 10), at(8, 11), taken, instances=series, permitted_times="0,30")
    decision = schedule_corrected_in_freebusy(clash, [])
    assert (decision.answer, decision.code, decision.function) == (
        Answer.DECLINED,
        "conflict",
        CORRECTED,
    )


# -- schedule_next_available_in_freebusy -------------------------------------


def test_next_available_accepts_a_free_period() -> None:
    decision = schedule_next_available_in_freebusy(request(at(8, 10), at(8, 11)), [])
    assert (decision.answer, decision.code, decision.function) == (Answer.ACCEPTED, "free", NEXT)


def test_next_available_counters_after_the_booking() -> None:
    req = request(at(8, 10), at(8, 11), [busy(at(8, 9, 30), at(8, 12))])
    decision = schedule_next_available_in_freebusy(req, [])
    assert proposed(decision) == (at(8, 12), at(8, 13))
    assert decision.function == NEXT
    assert decision.text() == (
        "the resource is busy then; it is free at 2030-01-08 12:00-13:00 (CET)"
    )


def test_next_available_skips_gaps_too_short() -> None:
    taken = [busy(at(8, 10), at(8, 11)), busy(at(8, 11, 30), at(8, 13, 10))]
    decision = schedule_next_available_in_freebusy(request(at(8, 10), at(8, 11), taken), [])
    assert proposed(decision) == (at(8, 13, 15), at(8, 14, 15))


def test_next_available_uses_the_capacity() -> None:
    taken = [busy(at(8, 10), at(8, 11), "a"), busy(at(8, 10), at(8, 12), "b")]
    req = request(at(8, 10), at(8, 11), taken)
    assert proposed(schedule_next_available_in_freebusy(req, ["2"])) == (at(8, 11), at(8, 12))
    assert proposed(schedule_next_available_in_freebusy(req, [])) == (at(8, 12), at(8, 13))
    one = request(at(8, 10), at(8, 11), taken[:1])
    assert schedule_next_available_in_freebusy(one, ["2"]).answer is Answer.ACCEPTED


def test_next_available_ignores_transparent_periods() -> None:
    see_through = Period(at(8, 10), at(8, 11), "x", transp="TRANSPARENT")
    req = request(at(8, 10), at(8, 11), [see_through])
    assert schedule_next_available_in_freebusy(req, []).answer is Answer.ACCEPTED


def test_next_available_respects_opening_hours() -> None:
    """Tuesday 16:00 is taken until closing; Wednesday opens at 08:00."""
    taken = [busy(at(8, 16), at(8, 18))]
    req = request(at(8, 16), at(8, 17), taken, opening_hours="MO-FR 08:00-18:00")
    assert proposed(schedule_next_available_in_freebusy(req, [])) == (at(9, 8), at(9, 9))


def test_next_available_moves_a_free_period_outside_the_hours() -> None:
    """Friday 17:30-18:30 is free but past closing: Monday 08:00."""
    req = request(at(11, 17, 30), at(11, 18, 30), opening_hours="MO-FR 08:00-18:00")
    assert proposed(schedule_next_available_in_freebusy(req, [])) == (at(14, 8), at(14, 9))


def test_next_available_moves_to_the_grid() -> None:
    """Off the grid: the next start on it, the end rounded up to it."""
    req = request(at(8, 10, 10), at(8, 10, 55), permitted_times="0,30")
    assert proposed(schedule_next_available_in_freebusy(req, [])) == (at(8, 10, 30), at(8, 11, 30))


def test_next_available_combines_grid_hours_and_bookings() -> None:
    taken = [busy(at(8, 12), at(8, 14, 10))]
    req = request(
        at(8, 12),
        at(8, 13),
        taken,
        permitted_times="8,10,12,14,16:0",
        opening_hours="MO-FR 08:00-16:00",
    )
    decision = schedule_next_available_in_freebusy(req, [])
    assert proposed(decision) == (at(9, 8), at(9, 10))  # 16:00 is closing; 1h rounds to 2h


def test_next_available_respects_notice() -> None:
    """Tuesday 10:00 CET is 25 hours ahead; PT48H gives Wednesday 09:00 CET."""
    req = request(at(8, 10), at(8, 11), min_notice="PT48H")
    assert proposed(schedule_next_available_in_freebusy(req, [])) == (at(9, 9), at(9, 10))


def test_next_available_never_proposes_the_past() -> None:
    req = request(at(7, 8), at(7, 9))  # now is 09:00 CET
    assert proposed(schedule_next_available_in_freebusy(req, [])) == (at(7, 9), at(7, 10))


def test_next_available_declines_when_nothing_is_free() -> None:
    taken = [busy(at(8, 0), at(8, 0) + timedelta(days=40))]
    decision = schedule_next_available_in_freebusy(request(at(8, 10), at(8, 11), taken), [])
    assert (decision.answer, decision.code, decision.function) == (
        Answer.DECLINED,
        "conflict",
        NEXT,
    )
    # The booking in the way, not the requested period.
    assert decision.text() == (
        "the resource is already booked 2030-01-08 00:00-2030-02-17 00:00 (CET)"
    )


def test_next_available_keeps_within_the_booking_window() -> None:
    taken = [busy(at(8, 10), at(8, 12))]
    req = request(at(8, 10), at(8, 11), taken, booking_window="PT27H")  # until 8 Jan 12:00 CET
    assert proposed(schedule_next_available_in_freebusy(req, [])) == (at(8, 12), at(8, 13))
    tight = request(at(8, 10), at(8, 11), taken, booking_window="PT26H")
    assert schedule_next_available_in_freebusy(tight, []).code == "conflict"


def test_next_available_declines_with_what_is_wrong_with_the_request() -> None:
    """Nothing is free later: busy requests get "conflict", free ones off the grid
    "permitted-times"."""
    taken = [busy(at(8, 10, 30), at(8, 10, 30) + timedelta(days=40))]
    req = request(at(8, 10, 10), at(8, 10, 40), taken, permitted_times="0,30")
    decision = schedule_next_available_in_freebusy(req, [])
    assert (decision.answer, decision.code) == (Answer.DECLINED, "conflict")
    req = request(at(8, 10, 10), at(8, 10, 20), taken, permitted_times="0,30")
    decision = schedule_next_available_in_freebusy(req, [])
    assert (decision.answer, decision.code) == (Answer.DECLINED, "permitted-times")
    free = request(at(8, 10, 10), at(8, 10, 20), permitted_times="10:10", booking_window="PT1H")
    decision = schedule_next_available_in_freebusy(free, [])
    assert (decision.answer, decision.code) == (Answer.DECLINED, "permitted-times")


def test_next_available_search_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bookings every half hour leave no free hour; the search gives up after MAX_STEPS."""
    taken = [
        busy(at(8, 10) + n * timedelta(minutes=30), at(8, 10, 20) + n * timedelta(minutes=30))
        for n in range(20)
    ]
    req = request(at(8, 10), at(8, 11), taken)
    assert proposed(schedule_next_available_in_freebusy(req, [])) == (at(8, 20), at(8, 21))
    monkeypatch.setattr(counter, "MAX_STEPS", 10)
    assert schedule_next_available_in_freebusy(req, []).code == "conflict"


def test_next_available_on_a_series_is_schedule_in_freebusy() -> None:
    series = [instance(at(8, 10), at(8, 11)), instance(at(9, 10), at(9, 11))]
    taken = [busy(at(9, 10), at(9, 11))]
    decision = schedule_next_available_in_freebusy(
        request(at(8, 10), at(8, 11), taken, instances=series), []
    )
    assert (decision.answer, decision.code, decision.function) == (
        Answer.DECLINED,
        "conflict",
        NEXT,
    )
    free = request(at(8, 10), at(8, 11), instances=series)
    assert schedule_next_available_in_freebusy(free, []).answer is Answer.ACCEPTED


def test_decide_passes_a_counter_on() -> None:
    req = request(at(8, 10), at(8, 11), [busy(at(8, 10), at(8, 11))])
    decision = decide(req, [("schedule_in_freebusy", []), (NEXT, [])])
    assert decision.answer is Answer.DECLINED  # the first line declines first
    decision = decide(req, [(NEXT, []), ("schedule_in_freebusy", [])])
    assert decision.answer is Answer.COUNTER
    assert decision.verdicts == ((NEXT, "COUNTER", "counter"),)


# -- search_span -------------------------------------------------------------


def test_search_span_is_the_instance_without_counter_functions() -> None:
    req = request(at(8, 10, 10), at(8, 11), scheduling_function="schedule_in_freebusy")
    assert search_span(req) == (at(8, 10, 10), at(8, 11))


def test_search_span_covers_corrections_and_the_search() -> None:
    req = request(
        at(8, 10, 10),
        at(8, 11),
        scheduling_function=f"{NEXT} 2",
        permitted_times="0,30",
        booking_window="P10D",
    )
    start, end = search_span(req)
    assert start == at(8, 10)
    assert end >= NOW + timedelta(days=10, minutes=50)


def test_search_span_of_a_series_is_its_span() -> None:
    series = [instance(at(8, 10), at(8, 11)), instance(at(9, 10), at(9, 11))]
    req = request(at(8, 10), at(8, 11), instances=series, scheduling_function=CORRECTED)
    assert search_span(req) == (at(8, 10), at(9, 11))


def test_next_available_across_the_march_change() -> None:
    """Friday 29 March after closing (CET) -> Monday 1 April 08:00 CEST (06:00 UTC)."""
    start = datetime(2030, 3, 29, 17, 30, tzinfo=BERLIN).astimezone(UTC)
    req = request(start, start + timedelta(hours=1), opening_hours="MO-FR 08:00-18:00")
    first = datetime(2030, 4, 1, 6, 0, tzinfo=UTC)
    assert proposed(schedule_next_available_in_freebusy(req, [])) == (
        first,
        first + timedelta(hours=1),
    )


def test_delegated_limits() -> None:
    single = request(at(8, 10), at(8, 11), scheduling_function=f"same_domain_only\n{NEXT}")
    assert delegated_limits(single) == {"min_notice", "opening_hours", "permitted_times"}
    plain = request(at(8, 10), at(8, 11), scheduling_function="schedule_in_freebusy")
    assert delegated_limits(plain) == frozenset()
    series = [instance(at(8, 10), at(8, 11)), instance(at(9, 10), at(9, 11))]
    many = request(at(8, 10), at(8, 11), instances=series, scheduling_function=NEXT)
    assert delegated_limits(many) == frozenset()
