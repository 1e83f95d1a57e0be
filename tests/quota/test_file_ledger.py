"""The quota ledger contract, run against the file ledger (the quota journal)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imiptools.config import Settings
from imiptools.quota.journal import QuotaJournal
from imiptools.site import Site, open_site
from tests.quota.contract import LedgerContract


def settings_of(root: Path) -> Settings:
    return Settings(
        store=str(root / "store"), preferences=str(root / "prefs"), journal=str(root / "journal")
    )


class TestFileLedger(LedgerContract):
    @pytest.fixture
    def site(self, tmp_path: Path) -> Site:
        return open_site(settings_of(tmp_path))

    def reopen(self, site: Site) -> Site:
        return open_site(site.settings)


def test_the_file_backend_ledger_is_the_journal(tmp_path: Path) -> None:
    ledger = open_site(settings_of(tmp_path)).ledger
    assert isinstance(ledger, QuotaJournal)
    assert ledger.root == (tmp_path / "journal").resolve()
    assert ledger.location("rooms", "limits") == str(ledger.root / "rooms" / "limits")
