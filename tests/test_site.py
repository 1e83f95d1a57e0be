"""The composition root: a site assembled from its settings, backends by name."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from imiptools.backends import file as file_backend
from imiptools.backends.file import FileBackend
from imiptools.config import Settings
from imiptools.dates import FixedClock
from imiptools.errors import ConfigError, ExitCode
from imiptools.site import ENTRY_POINT_GROUP, known_backends, open_site
from tests.support import BIN, calendar_text, imip_message, vevent

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)


def settings_of(root: Path, backend: str = "file") -> Settings:
    return Settings(
        backend=backend,
        store=str(root / "store"),
        preferences=str(root / "prefs"),
        journal=str(root / "journal"),
    )


class ElsewhereBackend(FileBackend):
    """A backend of a third party: files, with the outbox elsewhere."""

    name = "elsewhere"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.outbox = file_backend.outbox_of(Path(settings.journal))


def open_elsewhere(settings: Settings) -> ElsewhereBackend:
    return ElsewhereBackend(settings)


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed distribution declaring two backends (one broken)."""
    info = tmp_path / "plugins" / "imip_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: imip-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\n"
        "elsewhere = tests.test_site:open_elsewhere\n"
        "broken = tests.no_such_module:open_backend\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))


def test_the_file_backend_is_the_default(tmp_path: Path) -> None:
    site = open_site(settings_of(tmp_path), FixedClock(NOW))
    assert site.backend.name == "file" and Settings().backend == "file"
    assert site.store is site.backend.store and site.ledger is site.backend.ledger
    assert site.outbox.directory == (tmp_path / "store").resolve() / ".outbox"
    assert site.backend.store_location == str((tmp_path / "store").resolve())
    assert site.records("mailto:room@example.com").now == NOW


def test_the_file_backend_is_declared_as_an_entry_point() -> None:
    (point,) = entry_points(group=ENTRY_POINT_GROUP, name="file")
    assert point.value == "imiptools.backends.file:open_backend"
    assert point.load() is file_backend.open_backend


def test_unknown_backend_is_a_configuration_error_naming_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown backend 'nosuch'.*known: file") as caught:
        open_site(settings_of(tmp_path, "nosuch"))
    assert caught.value.exit_code is ExitCode.TEMPFAIL


def test_a_backend_of_another_package_is_found_by_its_entry_point(
    tmp_path: Path, plugin: None
) -> None:
    assert {"elsewhere", "file"} <= set(known_backends())
    site = open_site(settings_of(tmp_path, "elsewhere"))
    assert site.backend.name == "elsewhere"
    assert site.outbox.directory == (tmp_path / "journal").resolve() / ".outbox"


def test_a_backend_that_cannot_be_loaded_is_a_configuration_error(
    tmp_path: Path, plugin: None
) -> None:
    with pytest.raises(ConfigError, match="backend 'broken' cannot be loaded"):
        open_site(settings_of(tmp_path, "broken"))


def test_agent_with_an_unknown_backend_defers_the_mail(tmp_path: Path) -> None:
    config = tmp_path / "imip-agent.toml"
    config.write_text(f'[agent]\nbackend = "nosuch"\nstore = "{tmp_path / "store"}"\n')
    message = imip_message(calendar_text(vevent("b")))
    result = subprocess.run(
        [str(BIN / "imip-resource"), "-c", str(config), "-o", "room@example.com", "-d"],
        input=message,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == ExitCode.TEMPFAIL
    assert result.stdout.startswith(b"4.3.5 ") and b"known: file" in result.stdout
    assert result.stderr == b""
    assert not (tmp_path / "store").exists()
