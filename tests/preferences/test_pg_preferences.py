"""Preferences in the database: the preference contract, run against PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from imiptools.preferences import PreferenceSource
from imiptools.site import open_site
from tests.pg import settings_of
from tests.preferences.contract import PreferenceContract


class TestPgPreferences(PreferenceContract):
    @pytest.fixture
    def source(self, pg_dsn: str, tmp_path: Path) -> PreferenceSource:
        return open_site(settings_of(pg_dsn, tmp_path)).preferences
