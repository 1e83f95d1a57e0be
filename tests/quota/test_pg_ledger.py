"""The quota ledger contract, run against the database ledger (PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imiptools.site import Site, open_site
from tests.pg import settings_of
from tests.quota.contract import LedgerContract


class TestPgLedger(LedgerContract):
    @pytest.fixture
    def site(self, pg_dsn: str, tmp_path: Path) -> Site:
        return open_site(settings_of(pg_dsn, tmp_path))

    def reopen(self, site: Site) -> Site:
        return open_site(site.settings)
