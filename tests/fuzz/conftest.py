"""The fuzz campaign's seeds and budget.

Seeds are the messages of the interop corpus (``../shared/interop``, read in
place, never copied). Without it the campaign skips with a message, except
under ``CI=true``, where it fails: CI must run it.

The budget: by default a bounded campaign fit for every test run (about a
minute on two cores, the same examples every run); ``IMIP_FUZZ_EXAMPLES=N``
runs N examples per in-process test and N/10 per process test, drawn at
random (``--hypothesis-seed=S`` replays a run). Failing messages are saved
under ``$IMIP_FUZZ_FAILURES`` (default: ``imip-fuzz-failures`` in the
temporary directory) and named in the failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.fuzz.mutate import Seed
from tests.scenarios.test_interop_resource import calendars_of, expectation, message_for
from tests.support import INTEROP

#: Examples per in-process test (processes get a tenth) when asked for more.
REQUESTED = int(os.environ.get("IMIP_FUZZ_EXAMPLES", "0") or 0)


def budget(default: int, per_process: bool = False) -> settings:
    """Hypothesis settings: ``default`` examples in CI, or what was requested."""
    examples = max(REQUESTED // 10, 1) if per_process and REQUESTED else REQUESTED or default
    return settings(
        max_examples=examples,
        derandomize=not REQUESTED,
        database=None,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


class Corpus(list[Seed]):
    """The seeds, printed short in hypothesis' reports."""

    def __repr__(self) -> str:
        return f"<{len(self)} seeds>"


def load_seeds(folder: Path) -> Corpus:
    """One seed per message file of the corpus (``.ics`` wrapped into iMIP)."""
    seeds = Corpus()
    for path in sorted(p for p in folder.rglob("*") if p.suffix in (".ics", ".eml")):
        expect = expectation(path)
        calendars = calendars_of(path)
        method, text = calendars[0] if calendars else (None, None)
        seeds.append(
            Seed(
                name=str(path.relative_to(folder)),
                raw=message_for(path, expect),
                calendar=text,
                method=str(method).upper() if method else None,
                room=expect.room,
                organiser=expect.organiser or "someone@example.com",
            )
        )
    return seeds


@pytest.fixture(scope="session")
def seeds() -> Corpus:
    """The corpus as seeds; skip (locally) or fail (``CI=true``) without it."""
    if not INTEROP.is_dir():
        reason = f"the interop corpus {INTEROP} is not present: no fuzz campaign"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true requires it", pytrace=False)
        pytest.skip(reason)
    return load_seeds(INTEROP)


@pytest.fixture(scope="session")
def fuzz_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The parent of every run's sandbox."""
    return tmp_path_factory.mktemp("fuzz")
