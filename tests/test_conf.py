"""The shipped example configuration is the schema's and loads cleanly."""

from __future__ import annotations

from imiptools.config import Settings, example_config, load_settings
from tests.support import ROOT


def test_conf_example_matches_schema() -> None:
    path = ROOT / "conf" / "imip-agent.toml"
    assert path.read_text() == example_config(), "regenerate conf/imip-agent.toml"
    assert load_settings(str(path)) == Settings()
