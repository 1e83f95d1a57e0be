"""The application a production WSGI server runs, configured from the
environment (imip_agent.manager.wsgi)."""

from __future__ import annotations

from pathlib import Path

import pytest

from imip_agent.manager.wsgi import make_application
from tests.manager.support import ALICE, invited


def test_the_environment_configures_site_header_proxies_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = invited(tmp_path)
    config = tmp_path / "imip-agent.toml"
    config.write_text(
        "[agent]\n"
        + "".join(
            f'{key} = "{tmp_path / name}"\n'
            for key, name in (
                ("store", "store"),
                ("preferences", "prefs"),
                ("journal", "journal"),
                ("publishing", "published"),
            )
        )
    )
    key = tmp_path / "manager.key"
    key.write_bytes(b"a key shared by every worker\n")
    monkeypatch.setenv("IMIP_AGENT_CONFIG", str(config))
    monkeypatch.setenv("IMIP_MANAGER_USER_HEADER", "X-Remote-User")
    monkeypatch.setenv("IMIP_MANAGER_TRUSTED_PROXIES", "127.0.0.1 ::1")
    monkeypatch.setenv("IMIP_MANAGER_SECRET_KEY_FILE", str(key))
    monkeypatch.setenv("IMIP_MANAGER_ADMINS", "admin@example.com  Boss@Example.com")
    app = make_application()
    access = app.extensions["imip_manager"].access
    assert access.admins == ("admin@example.com", "boss@example.com")
    assert app.config["SECRET_KEY"] == b"a key shared by every worker"
    assert app.config["SESSION_COOKIE_SECURE"] is True
    client = app.test_client()
    headers = {"X-Remote-User": ALICE}
    page = client.get(
        f"/calendar/{ALICE}/requests", headers=headers, environ_base={"REMOTE_ADDR": "::1"}
    )
    assert page.status_code == 200
    assert "Team &lt;b&gt;sync" in page.get_data(as_text=True)
    assert agent.requests(ALICE)
    stranger = client.get("/", headers=headers, environ_base={"REMOTE_ADDR": "198.51.100.1"})
    assert stranger.status_code == 401
