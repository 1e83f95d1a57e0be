"""Fixtures for scenario tests: a fresh store per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import Agent


@pytest.fixture
def agent(tmp_path: Path) -> Agent:
    """A fresh store and the programs to run against it."""
    return Agent(tmp_path)
