"""Fixtures for scenario tests: a fresh site per test (of either backend in
the modules that run on both: see tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import site_agent
from tests.support import Agent


@pytest.fixture
def agent(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Agent:
    """A fresh site and the programs to run against it."""
    return site_agent(request, tmp_path, backend)
