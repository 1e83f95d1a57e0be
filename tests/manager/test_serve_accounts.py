"""Where users come from, as the commands and the environment configure
it: ``imip-manager serve --auth``, ``IMIP_MANAGER_AUTH`` for a production
WSGI server, and ``[agent] manager`` naming the manager's directory for
both the application and ``imip-admin``."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from imip_agent.manager.wsgi import make_application
from tests.manager.accounts_support import ALICE_PASSWORD
from tests.manager.support import ALICE, NOW, invited, token_in
from tests.support import BIN


def test_the_environment_chooses_password_logins_from_the_configured_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    invited(tmp_path)
    config = tmp_path / "imip-agent.toml"
    places = (("store", "store"), ("preferences", "prefs"), ("manager", "elsewhere/manager"))
    config.write_text("[agent]\n" + "".join(f'{k} = "{tmp_path / v}"\n' for k, v in places))
    argv = [str(BIN / "imip-admin"), "-c", str(config), "web-password", "set", ALICE]
    done = subprocess.run(
        argv, input=ALICE_PASSWORD + "\n", capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "elsewhere" / "manager" / "passwords").exists()
    monkeypatch.setenv("IMIP_AGENT_CONFIG", str(config))
    monkeypatch.setenv("IMIP_MANAGER_AUTH", "password")
    client = make_application().test_client()
    https = "https://calendar.example.com"
    assert client.get("/", base_url=https).headers["Location"].startswith("/login")
    page = client.get("/login", base_url=https).get_data(as_text=True)
    data = {"csrf_token": token_in(page), "address": ALICE, "password": ALICE_PASSWORD}
    assert client.post("/login", data=data, base_url=https).status_code == 302
    assert client.get(f"/calendar/{ALICE}/", base_url=https).status_code == 200


def test_serve_with_its_own_login(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    argv = [str(BIN / "imip-manager"), *agent.store_options, "--now", NOW, "serve"]
    server = subprocess.Popen(
        [*argv, "--listen", "127.0.0.1:0", "--auth", "password", "--insecure-cookies"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        url = server.stderr.readline().strip().rpartition(" ")[2]
        with urllib.request.urlopen(f"{url}calendar/{ALICE}/") as page:  # redirects are followed
            assert page.url.startswith(f"{url}login?next=")
            assert 'name="password"' in page.read().decode()
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize(
    "options",
    [
        ["--auth", "password", "--as-user", ALICE],
        ["--auth", "header"],
        ["--auth", "nobody"],
    ],
)
def test_serve_refuses_what_cannot_work(tmp_path: Path, options: list[str]) -> None:
    agent = invited(tmp_path)
    argv = [str(BIN / "imip-manager"), *agent.store_options, "serve", "--listen", "127.0.0.1:0"]
    done = subprocess.run([*argv, *options], capture_output=True, text=True, timeout=60)
    assert done.returncode == 64, done.stdout + done.stderr
