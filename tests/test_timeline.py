"""The period index (:class:`imiptools.periods.Timeline`) against brute force.

Random periods (fixed seeds), short and long, touching and nested: every
query answers what a scan of every period answers (:func:`max_overlap`,
and a filter for the periods overlapping a span). A
:class:`~imiptools.periods.FetchingTimeline` answers what a Timeline over
everything answers, fetching only what the queries reach; so does a
:class:`~imiptools.periods.NarrowTimeline`, fetching each query's own span.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from imiptools.periods import FetchingTimeline, NarrowTimeline, Period, Timeline, max_overlap

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _periods(rng: random.Random, count: int) -> list[Period]:
    found = []
    for number in range(count):
        start = T0 + timedelta(minutes=15 * rng.randrange(0, 2000))
        length = timedelta(minutes=15 * rng.choice([0, 1, 2, 4, 8, 96, 2000]))
        found.append(Period(start, start + length, f"u{number}"))
    return found


@pytest.mark.parametrize("seed", range(20))
def test_queries_agree_with_a_scan_of_every_period(seed: int) -> None:
    rng = random.Random(seed)
    periods = _periods(rng, rng.randrange(0, 60))
    timeline = Timeline(periods)
    lasting = [p for p in periods if p.end > p.start]
    for _ in range(200):
        start = T0 + timedelta(minutes=15 * rng.randrange(-10, 2100))
        end = start + timedelta(minutes=15 * rng.randrange(1, 300))
        assert timeline.peak(start, end) == max_overlap(lasting, start, end)
        expected = sorted(
            (p for p in lasting if p.overlaps(start, end)), key=lambda p: (p.start, p.end)
        )
        assert timeline.overlapping(start, end) == expected


def test_touching_periods_do_not_overlap() -> None:
    hour = timedelta(hours=1)
    timeline = Timeline([Period(T0, T0 + hour, "a"), Period(T0 + hour, T0 + 2 * hour, "b")])
    assert timeline.peak(T0, T0 + 2 * hour) == 1
    assert timeline.peak(T0 + hour, T0 + 2 * hour) == 1
    assert timeline.peak(T0 + 2 * hour, T0 + 3 * hour) == 0


# -- FetchingTimeline: the same answers, fetched as queries reach them --------

Fetch = Callable[[datetime, datetime], list[Period]]


def _fetcher(periods: list[Period], calls: list[tuple[datetime, datetime]]) -> Fetch:
    def fetch(start: datetime, end: datetime) -> list[Period]:
        calls.append((start, end))
        return [p for p in periods if p.overlaps(start, end)]

    return fetch


@pytest.mark.parametrize("seed", range(20))
def test_fetching_answers_what_one_fetch_of_everything_answers(seed: int) -> None:
    rng = random.Random(seed)
    periods = _periods(rng, rng.randrange(0, 60))
    everything = Timeline(periods)
    first = None
    if seed % 2:
        start = T0 + timedelta(minutes=15 * rng.randrange(0, 2000))
        first = (start, start + timedelta(hours=rng.randrange(0, 48)))
    fetching = FetchingTimeline(_fetcher(periods, []), first)
    for _ in range(200):
        start = T0 + timedelta(minutes=15 * rng.randrange(-3000, 5000))
        end = start + timedelta(minutes=15 * rng.randrange(-2, 300))
        assert fetching.peak(start, end) == everything.peak(start, end), (start, end)
        assert fetching.overlapping(start, end) == everything.overlapping(start, end)


def test_a_period_across_fetches_counts_once() -> None:
    hour = timedelta(hours=1)
    long = Period(T0 - 30 * 24 * hour, T0 + 30 * 24 * hour, "long")
    fetching = FetchingTimeline(_fetcher([long], []), (T0, T0 + hour))
    for day in (-20, 0, 10, 25, -25):
        moment = T0 + day * 24 * hour
        assert fetching.peak(moment, moment + hour) == 1
        assert fetching.overlapping(moment, moment + hour) == [long]


def test_the_first_fetch_covers_the_span_given_and_a_walk_ahead_costs_few_fetches() -> None:
    calls: list[tuple[datetime, datetime]] = []
    first = (T0, T0 + timedelta(days=3))
    fetching = FetchingTimeline(_fetcher([], calls), first)
    fetching.peak(T0 + timedelta(days=1), T0 + timedelta(days=1, hours=1))
    assert calls == [first]
    moment = T0
    while moment < T0 + timedelta(days=365):  # a search stepping a quarter hour a time
        fetching.peak(moment, moment + timedelta(hours=1))
        moment += timedelta(minutes=15)
    assert fetching.fetches == len(calls) <= 8
    assert all(end == start for (_, end), (start, _) in pairwise(calls))  # only what is missing


# -- NarrowTimeline: the same answers, each query fetching its own span -------


@pytest.mark.parametrize("seed", range(20))
def test_narrow_answers_what_one_fetch_of_everything_answers(seed: int) -> None:
    rng = random.Random(seed)
    periods = _periods(rng, rng.randrange(0, 60))
    everything = Timeline(periods)
    calls: list[tuple[datetime, datetime]] = []
    narrow = NarrowTimeline(_fetcher(periods, calls))
    for _ in range(200):
        start = T0 + timedelta(minutes=15 * rng.randrange(-3000, 5000))
        end = start + timedelta(minutes=15 * rng.randrange(-2, 300))
        assert narrow.peak(start, end) == everything.peak(start, end), (start, end)
        assert narrow.overlapping(start, end) == everything.overlapping(start, end)
    assert narrow.fetches == len(calls) == 400
    assert all(end > start for start, end in calls)  # an empty query asks for an instant
