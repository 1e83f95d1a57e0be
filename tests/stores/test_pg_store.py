"""The database store: the store contract, run against PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from imiptools.site import open_site
from imiptools.stores.base import Store
from tests.pg import settings_of
from tests.stores.contract import StoreContract


class TestPgStore(StoreContract):
    @pytest.fixture
    def store(self, pg_dsn: str, tmp_path: Path) -> Store:
        self.settings = settings_of(pg_dsn, tmp_path)
        return open_site(self.settings).store

    @contextmanager
    def held_elsewhere(self, store: Store, user: str) -> Iterator[None]:
        """Hold the lock through another connection (another server process)."""
        other = open_site(self.settings)
        with other.store.lock(user, 5):
            yield
