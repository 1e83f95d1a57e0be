"""The period index (:class:`imiptools.periods.Timeline`) against brute force.

Random periods (fixed seeds), short and long, touching and nested: every
query answers what a scan of every period answers (:func:`max_overlap`,
and a filter for the periods overlapping a span).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from imiptools.periods import Period, Timeline, max_overlap

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
