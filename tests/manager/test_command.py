"""``imip-manager serve`` as a person runs it: waitress on loopback."""

from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.manager.support import ALICE, NOW, SUMMARY, invited
from tests.support import BIN, ROOT


def test_serve_on_loopback_as_a_development_user(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    argv = [
        str(BIN / "imip-manager"),
        *agent.store_options,
        "--now",
        NOW,
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--as-user",
        ALICE,
        "--output",
        str(tmp_path / "sent"),
    ]
    server = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        found = re.match(r"imip-manager: serving (http://127\.0\.0\.1:\d+/)$", line.strip())
        assert found, line
        with urllib.request.urlopen(f"{found.group(1)}calendar/{ALICE}/?week=2030-01-07") as page:
            text = page.read().decode()
            assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert SUMMARY.replace("<", "&lt;").replace(">", "&gt;").replace(" & ", " &amp; ") in text
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_as_user_is_refused_off_loopback(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    argv = [str(BIN / "imip-manager"), *agent.store_options, "serve", "--listen"]
    done = subprocess.run(
        [*argv, "0.0.0.0:0", "--as-user", ALICE], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 64
    assert "loopback" in done.stdout + done.stderr


def test_an_administrator_must_be_an_address(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    argv = [str(BIN / "imip-manager"), *agent.store_options, "serve", "--listen", "127.0.0.1:0"]
    done = subprocess.run(
        [*argv, "--admin", "not an address"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 64
    assert "--admin" in done.stdout + done.stderr


def test_without_a_command_it_says_which(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "imip-manager")], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 64
    assert "serve" in done.stdout + done.stderr


def test_no_user_named_is_401(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    argv = [str(BIN / "imip-manager"), *agent.store_options, "serve", "--listen", "127.0.0.1:0"]
    server = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        url = server.stderr.readline().strip().rpartition(" ")[2]
        try:
            urllib.request.urlopen(url)
            raise AssertionError("served without a user")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
    finally:
        server.terminate()
        server.wait(timeout=30)


@contextmanager
def demo(root: Path, **extra: str) -> Iterator[str]:
    """``./demo-manager`` serving on a free loopback port (with ``extra``
    in its environment): its address, until the block ends."""
    environment = {**os.environ, "IMIP_DEMO_DIR": str(root / "demo"), "PORT": "0", **extra}
    server = subprocess.Popen(
        [str(ROOT / "demo-manager")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        assert server.stderr is not None
        url = ""
        for line in server.stderr:
            if line.startswith("imip-manager: serving "):
                url = line.strip().rpartition(" ")[2]
                break
        assert url, "the demo serves"
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_demo_serves_alices_invitation(tmp_path: Path) -> None:
    with demo(tmp_path) as url, urllib.request.urlopen(f"{url}calendar/{ALICE}/requests") as page:
        text = page.read().decode()
    assert "Weekly sync" in text and "10:00" in text and "Europe/Berlin" in text


def test_the_demo_with_its_own_login(tmp_path: Path) -> None:
    with demo(tmp_path, IMIP_DEMO_LOGIN="password") as url:
        browser = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        with browser.open(f"{url}calendar/{ALICE}/requests") as page:
            form = page.read().decode()
            assert page.url.startswith(f"{url}login?next=")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token, "the login form carries its token"
        fields = {
            "csrf_token": token.group(1),
            "next": f"/calendar/{ALICE}/requests",
            "address": ALICE,
            "password": "demo-password",
        }
        with browser.open(f"{url}login", urllib.parse.urlencode(fields).encode()) as page:
            text = page.read().decode()
    assert "Weekly sync" in text and "Europe/Berlin" in text
