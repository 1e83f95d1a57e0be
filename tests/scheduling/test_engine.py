"""The engine (imiptools.scheduling.engine): limits, then the functions.

:func:`~imiptools.scheduling.schedule` is what the resource handler calls:
a broken event limit decides first (declined, or countered under
``limit_action counter``), then a truncated expansion, then the configured
lines. A request with ``busy_between`` fetches busy periods as the
functions ask, so no caller computes a search span.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from icalendar import Event

from imiptools.errors import StoreUnavailable
from imiptools.itip.recurrence import Instance
from imiptools.periods import Period
from imiptools.scheduling import Answer, Request, schedule

NOW = datetime(2030, 1, 7, 8, tzinfo=UTC)
HOUR = timedelta(hours=1)
NEXT = "schedule_next_available_in_freebusy"


def request(
    start: datetime,
    end: datetime,
    busy: list[Period] | None = None,
    calls: list[tuple[datetime, datetime]] | None = None,
    truncated: str = "",
    **values: str,
) -> Request:
    """One instance [start, end); busy periods fetched lazily when ``calls`` is given."""
    periods = busy or []

    def fetch(low: datetime, high: datetime) -> list[Period]:
        assert calls is not None
        calls.append((low, high))
        return [p for p in periods if p.overlaps(low, high)]

    return Request(
        resource="room@example.com",
        organiser="alice@example.com",
        uid="e@example.com",
        summary="Meeting",
        instances=[Instance(start, end, "", Event(), False)],
        busy=periods if calls is None else (),
        now=NOW,
        zone=UTC,
        truncated=bool(truncated),
        preference=lambda name: values.get(name, ""),
        busy_between=None if calls is None else fetch,
        truncation=truncated,
    )


def test_a_broken_limit_decides_before_the_functions() -> None:
    start = NOW + 24 * HOUR
    decision = schedule(request(start, start + 3 * HOUR, max_duration="PT2H"))
    assert (decision.answer, decision.code) == (Answer.DECLINED, "max-duration")
    assert decision.verdicts == (("max_duration", "DECLINED", "max-duration"),)


def test_a_broken_limit_is_countered_under_limit_action_counter() -> None:
    start = NOW + 24 * HOUR
    decision = schedule(
        request(start, start + 3 * HOUR, max_duration="PT2H", limit_action="counter")
    )
    assert (decision.answer, decision.code) == (Answer.COUNTER, "counter")
    assert (decision.params["start"], decision.params["end"]) == (start, start + 2 * HOUR)
    assert decision.verdicts == (("max_duration", "COUNTER", "counter"),)


def test_a_truncated_expansion_is_declined_after_the_limits() -> None:
    start = NOW + 24 * HOUR
    decision = schedule(request(start, start + HOUR, truncated="instance cap 200"))
    assert (decision.answer, decision.code) == (Answer.DECLINED, "too-many-instances")
    assert decision.text() == "the event recurs too often to be checked (instance cap 200)"
    limited = schedule(request(start, start + 3 * HOUR, truncated="x", max_duration="PT1H"))
    assert limited.code == "max-duration"


def test_the_functions_run_without_a_limit_broken() -> None:
    start = NOW + 24 * HOUR
    taken = [Period(start, start + HOUR, "other")]
    lines = "schedule_in_freebusy"
    decision = schedule(request(start, start + HOUR, taken, scheduling_function=lines))
    assert (decision.answer, decision.code) == (Answer.DECLINED, "conflict")
    assert decision.verdicts == (("schedule_in_freebusy", "DECLINED", "conflict"),)
    assert schedule(request(start, start + HOUR, taken), []).answer is Answer.ACCEPTED


def test_busy_periods_are_fetched_as_the_functions_ask() -> None:
    start = NOW + 24 * HOUR
    taken = [Period(start, start + 10 * HOUR, "other")]
    calls: list[tuple[datetime, datetime]] = []
    lazy = request(start, start + HOUR, taken, calls)
    decision = schedule(lazy, [(NEXT, [])])
    assert decision.answer is Answer.COUNTER
    assert decision.params["start"] == start + 10 * HOUR
    assert calls[0] == (start, start + HOUR)  # the instance first, then as far as the search went
    assert max(high for _, high in calls) >= start + 11 * HOUR
    eager = schedule(request(start, start + HOUR, taken), [(NEXT, [])])
    assert eager.params == decision.params


def test_a_free_request_fetches_its_own_span_only() -> None:
    start = NOW + 24 * HOUR
    calls: list[tuple[datetime, datetime]] = []
    lines = [(NEXT, [])]
    assert schedule(request(start, start + HOUR, [], calls), lines).answer is Answer.ACCEPTED
    assert calls == [(start, start + HOUR)]


@pytest.mark.parametrize("error", [ValueError("bad line"), StoreUnavailable("disk gone")])
def test_trouble_fetching_busy_periods_is_raised_not_decided(error: Exception) -> None:
    start = NOW + 24 * HOUR

    def broken(low: datetime, high: datetime) -> list[Period]:
        raise error

    lazy = replace(request(start, start + HOUR, [], []), busy_between=broken)
    with pytest.raises(type(error)) as raised:
        schedule(lazy, [("schedule_in_freebusy", [])])
    assert raised.value is error  # not "misconfigured", which would be stored and answered


def _series(start: datetime, count: int, step: timedelta, length: timedelta) -> list[Instance]:
    return [
        Instance(start + n * step, start + n * step + length, f"r{n}", Event(), False)
        for n in range(count)
    ]


def test_a_sparse_series_fetches_each_instances_span_and_a_dense_one_its_whole_span() -> None:
    """Ten minutes a day for a year: each clash check fetches its instance's
    span (the store answers those from an index), not the year's periods;
    a week of whole days fetches the week once. Both decide the same."""
    start = NOW + 24 * HOUR
    taken = [Period(start + 5 * 24 * HOUR, start + 5 * 24 * HOUR + HOUR, "other")]
    lines = [("schedule_in_freebusy", [])]
    for instances, narrow in (
        (_series(start, 365, 24 * HOUR, timedelta(minutes=10)), True),
        (_series(start, 7, 24 * HOUR, 24 * HOUR), False),
    ):
        calls: list[tuple[datetime, datetime]] = []
        lazy = replace(request(start, start + HOUR, taken, calls), instances=instances)
        eager = replace(request(start, start + HOUR, taken), instances=instances)
        assert schedule(lazy, lines).answer is schedule(eager, lines).answer is Answer.DECLINED
        spans = {(i.start, i.end) for i in instances}
        if narrow:
            assert set(calls) == spans
        else:
            assert calls == [(instances[0].start, instances[-1].end)]
