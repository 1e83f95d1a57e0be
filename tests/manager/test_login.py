"""The manager's own login: passwords set by ``imip-admin web-password``
(argon2id in a file only its owner reads), the login form with its token,
the session cookie, failed logins logged without the password and limited,
logout, and the other sources of users (REMOTE_USER kept working)."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from imip_agent.manager.accounts import PasswordFile, manager_home
from imip_agent.manager.login import MAX_FAILURES
from tests.manager.accounts_support import (
    ALICE_PASSWORD,
    BOB_PASSWORD,
    admin,
    log_in,
    password_manager,
    set_password,
)
from tests.manager.support import ALICE, BOB, SUMMARY, invited, settings_of, token_in
from tests.support import Agent


@pytest.fixture
def agent(tmp_path: Path) -> Agent:
    """alice invited by bob; both have a password."""
    made = invited(tmp_path / "site")
    set_password(made, ALICE, ALICE_PASSWORD)
    set_password(made, BOB, BOB_PASSWORD)
    return made


def test_imip_admin_keeps_argon2_hashes_readable_by_their_owner_only(agent: Agent) -> None:
    path = manager_home(settings_of(agent)) / "passwords"
    text = path.read_text()
    assert ALICE_PASSWORD not in text and BOB_PASSWORD not in text
    assert text.startswith(f"{ALICE}:$argon2id$")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert admin(agent, "web-password", "list").stdout == f"{ALICE}\n{BOB}\n"
    assert PasswordFile(path).check(ALICE, ALICE_PASSWORD)
    assert not PasswordFile(path).check(ALICE, BOB_PASSWORD)


def test_imip_admin_takes_no_password_from_the_command_line(agent: Agent) -> None:
    extra = admin(agent, "web-password", "set", ALICE, "new-password-here")
    assert extra.returncode == 64
    short = admin(agent, "web-password", "set", ALICE, stdin="short\n")
    assert short.returncode == 65 and "8 to 1024" in short.stdout
    empty = admin(agent, "web-password", "set", ALICE, stdin="")
    assert empty.returncode == 65
    missing = admin(agent, "web-password", "remove", "carol@example.com")
    assert missing.returncode == 67


def test_a_page_leads_to_the_login_form_and_back(agent: Agent, tmp_path: Path) -> None:
    client = password_manager(agent, tmp_path / "sent").test_client()
    answer = client.get(f"/calendar/{ALICE}/?week=2030-01-14")
    assert answer.status_code == 302
    assert answer.headers["Location"].startswith("/login?next=")
    assert client.get(f"/calendar/{ALICE}/", environ_base={"REMOTE_USER": ALICE}).status_code == 302
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    data = {
        "csrf_token": token_in(page),
        "address": ALICE,
        "password": ALICE_PASSWORD,
        "next": f"/calendar/{ALICE}/?week=2030-01-14",
    }
    logged_in = client.post("/login", data=data)
    assert logged_in.status_code == 302
    assert logged_in.headers["Location"] == f"/calendar/{ALICE}/?week=2030-01-14"
    cookie = logged_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    week = client.get(logged_in.headers["Location"]).get_data(as_text=True)
    assert "Team &lt;b&gt;sync" in week and "Log out" in week


def test_the_session_cookie_is_secure_over_https(agent: Agent, tmp_path: Path) -> None:
    client = password_manager(agent, tmp_path / "sent").test_client()  # plain HTTP allowed
    page = client.get("/login", base_url="https://manager.example.com").get_data(as_text=True)
    data = {"csrf_token": token_in(page), "address": ALICE, "password": ALICE_PASSWORD}
    answer = client.post("/login", data=data, base_url="https://manager.example.com")
    assert answer.status_code == 302
    assert "Secure" in answer.headers["Set-Cookie"]
    over_http = client.get("/login").headers["Set-Cookie"]
    assert "Secure" not in over_http, "development over plain HTTP on loopback"


def test_a_login_is_refused_with_a_wrong_password_and_logged_without_it(
    agent: Agent, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = password_manager(agent, tmp_path / "sent").test_client()
    with caplog.at_level(logging.INFO, logger="imip_agent.manager"):
        assert log_in(client, ALICE, BOB_PASSWORD) == 401
        assert log_in(client, "nobody@example.com", ALICE_PASSWORD) == 401
    assert client.get(f"/calendar/{ALICE}/").status_code == 302, "still not logged in"
    logged = caplog.text
    assert f"login failed: user=mailto:{ALICE}" in logged
    assert "login failed: user=mailto:nobody@example.com" in logged
    assert BOB_PASSWORD not in logged and ALICE_PASSWORD not in logged


def test_failed_logins_are_limited(agent: Agent, tmp_path: Path) -> None:
    client = password_manager(agent, tmp_path / "sent").test_client()
    for _ in range(MAX_FAILURES):
        assert log_in(client, ALICE, "wrong password") == 401
    assert log_in(client, ALICE, ALICE_PASSWORD) == 429, "refused unchecked, even the right one"
    assert log_in(client, BOB, BOB_PASSWORD) == 302, "another user is not locked out"


def test_the_login_form_needs_its_token(agent: Agent, tmp_path: Path) -> None:
    client = password_manager(agent, tmp_path / "sent").test_client()
    client.get("/login")
    data = {"address": ALICE, "password": ALICE_PASSWORD}
    assert client.post("/login", data=data).status_code == 403
    assert client.post("/login", data={**data, "csrf_token": "forged"}).status_code == 403
    assert client.get(f"/calendar/{ALICE}/").status_code == 302


def test_logging_in_renews_the_session(agent: Agent, tmp_path: Path) -> None:
    client = password_manager(agent, tmp_path / "sent").test_client()
    before = token_in(client.get("/login").get_data(as_text=True))
    assert log_in(client, ALICE, ALICE_PASSWORD) == 302
    with client.session_transaction() as session:
        assert session["csrf"] != before, "no form token from before the login is good after"
        assert session["user"] == f"mailto:{ALICE}"


def test_logout_ends_the_session(agent: Agent, tmp_path: Path) -> None:
    client = password_manager(agent, tmp_path / "sent").test_client()
    assert log_in(client, ALICE, ALICE_PASSWORD) == 302
    page = client.get(f"/calendar/{ALICE}/").get_data(as_text=True)
    answer = client.post("/logout", data={"csrf_token": token_in(page)})
    assert answer.status_code == 302 and answer.headers["Location"] == "/login"
    assert "You are logged out." in client.get("/login").get_data(as_text=True)
    assert client.get(f"/calendar/{ALICE}/").status_code == 302


def test_removing_the_password_ends_its_sessions(agent: Agent, tmp_path: Path) -> None:
    client = password_manager(agent, tmp_path / "sent").test_client()
    assert log_in(client, ALICE, ALICE_PASSWORD) == 302
    assert client.get(f"/calendar/{ALICE}/").status_code == 200
    assert admin(agent, "web-password", "remove", ALICE).returncode == 0
    assert client.get(f"/calendar/{ALICE}/").status_code == 302


def test_a_user_logged_in_sees_another_users_calendar_as_403(agent: Agent, tmp_path: Path) -> None:
    client = password_manager(agent, tmp_path / "sent").test_client()
    assert log_in(client, BOB, BOB_PASSWORD) == 302
    for path in (
        f"/calendar/{ALICE}/",
        f"/calendar/{ALICE}/day?day=2030-01-15",
        f"/calendar/{ALICE}/month?month=2030-01",
        f"/calendar/{ALICE}/requests",
        f"/calendar/{ALICE}/find-time",
        f"/calendar/{ALICE}/subscriptions",
    ):
        answer = client.get(path)
        assert answer.status_code == 403, path
        assert SUMMARY.split()[0] not in answer.get_data(as_text=True).replace("403", "")


def test_with_passwords_the_front_servers_user_is_not_believed(
    agent: Agent, tmp_path: Path
) -> None:
    client = password_manager(agent, tmp_path / "sent").test_client()
    answer = client.get(f"/calendar/{ALICE}/", environ_base={"REMOTE_USER": ALICE})
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")


def test_with_the_front_server_there_is_no_login(agent: Agent, tmp_path: Path) -> None:
    client = password_manager(agent, tmp_path / "sent", source="remote-user").test_client()
    assert client.get("/", environ_base={"REMOTE_USER": ALICE}).status_code == 302
    assert client.get(f"/calendar/{ALICE}/", environ_base={"REMOTE_USER": ALICE}).status_code == 200
    assert client.get(f"/calendar/{ALICE}/").status_code == 401
    page = client.get("/login").get_data(as_text=True)
    posted = client.post(
        "/login",
        data={"csrf_token": token_in(page), "address": ALICE, "password": ALICE_PASSWORD},
    )
    assert posted.status_code == 404, "no password login unless configured"


def test_only_local_paths_are_followed_after_login(agent: Agent, tmp_path: Path) -> None:
    client = password_manager(agent, tmp_path / "sent").test_client()
    page = client.get("/login").get_data(as_text=True)
    data = {
        "csrf_token": token_in(page),
        "address": ALICE,
        "password": ALICE_PASSWORD,
        "next": "//evil.example/",
    }
    answer = client.post("/login", data=data)
    assert answer.headers["Location"] == "/"
