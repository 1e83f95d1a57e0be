"""The benchmark harness (benchmarks/harness.py) pairs its samples by round,
shuffles the order within each round and measures a program's own costs;
a check of its bookkeeping, not of any speed (benchmarks make no claims in
tests)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "harness.py"
_SPEC = importlib.util.spec_from_file_location("benchmark_harness", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
harness = importlib.util.module_from_spec(_SPEC)
sys.modules[_SPEC.name] = harness  # dataclasses look their module up
_SPEC.loader.exec_module(harness)
Sample, Variant, RunFailed = harness.Sample, harness.Variant, harness.RunFailed
compare, run_program, table = harness.compare, harness.run_program, harness.table


def test_ratios_are_taken_per_round_and_the_order_is_shuffled() -> None:
    order: list[str] = []

    def variant(label: str, wall: float) -> Variant:
        def measure(number: int) -> Sample:
            order.append(label)
            return Sample(wall * (number + 2), wall * (number + 2))

        return Variant(label, measure, units=10 if label == "b" else 0)

    outcome = compare("t", [variant("a", 1.0), variant("b", 3.0)], rounds=6, seed=3)
    assert outcome.samples["a"][0] == Sample(2.0, 2.0)  # the warm-up round is not kept
    assert outcome.ratios("b", "wall") == pytest.approx([3.0] * 6)
    assert outcome.per_unit("b", "cpu") == pytest.approx([(2 * n + 4) / 10 for n in range(6)])
    pairs = [tuple(order[i : i + 2]) for i in range(0, len(order), 2)]
    assert ("a", "b") in pairs and ("b", "a") in pairs
    text = table([outcome])
    assert "| t | b | 6000.0 / 13500.0 / 21000.0 |" in text
    assert "3.00 / 3.00 / 3.00" in text and "CPU ms per  over A (10)" in text


def test_a_program_reports_its_own_cpu_and_memory() -> None:
    sample = run_program([sys.executable, "-c", "sum(range(10**6))"])
    assert sample.wall > 0 and sample.cpu > 0
    assert sample.rss is not None and 1 < sample.rss < 1000
    with pytest.raises(RunFailed, match="exited 3"):
        run_program([sys.executable, "-c", "raise SystemExit(3)"])
