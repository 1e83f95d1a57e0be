"""Where the connection string comes from, and that it is never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from imiptools.backends.postgresql.backend import ENV_DSN, dsn_of
from imiptools.config import Settings
from imiptools.errors import ConfigError, StoreUnavailable
from imiptools.site import open_site

SECRET = "s3cret-Passw0rd"


def test_the_dsn_setting_is_used() -> None:
    assert dsn_of(Settings(backend="postgresql", dsn="dbname=imip")) == "dbname=imip"


def test_a_dsn_file_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "dsn"
    path.write_text(f"dbname=imip password={SECRET}\n")
    path.chmod(0o600)
    settings = Settings(backend="postgresql", dsn_file=str(path))
    assert dsn_of(settings) == f"dbname=imip password={SECRET}"
    path.chmod(0o640)
    with pytest.raises(ConfigError, match="chmod 600") as refused:
        dsn_of(settings)
    assert SECRET not in str(refused.value)


def test_the_environment_when_nothing_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_DSN, "dbname=from-env")
    assert dsn_of(Settings(backend="postgresql")) == "dbname=from-env"
    monkeypatch.delenv(ENV_DSN)
    with pytest.raises(ConfigError, match="dsn"):
        dsn_of(Settings(backend="postgresql"))


def test_dsn_and_dsn_file_together_are_refused(tmp_path: Path) -> None:
    settings = Settings(backend="postgresql", dsn="dbname=a", dsn_file=str(tmp_path / "x"))
    with pytest.raises(ConfigError, match="both"):
        dsn_of(settings)


def test_no_message_shows_the_password(tmp_path: Path) -> None:
    dsn = f"host=127.0.0.1 port=1 dbname=imip user=imip password={SECRET} connect_timeout=2"
    site = open_site(Settings(backend="postgresql", dsn=dsn))
    with pytest.raises(StoreUnavailable) as failed:
        site.store.get_object("mailto:room@example.com", "a")
    assert SECRET not in str(failed.value)
    assert SECRET not in site.backend.store_location
    assert "imip on 127.0.0.1:1" in site.backend.store_location
    bad = open_site(Settings(backend="postgresql", dsn=f"password={SECRET} nonsense"))
    with pytest.raises(ConfigError) as unparsable:
        bad.store.get_object("mailto:room@example.com", "a")
    assert SECRET not in str(unparsable.value)
