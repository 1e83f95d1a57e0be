"""What the tests of the manager's own accounts share: the application
with users from the password file (no pause after a failed login: the
tests assert what is refused, never how long it took), passwords and
feeds set through the real ``imip-admin``, and logging in."""

from __future__ import annotations

import subprocess
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from imip_agent.manager.accounts import FeedTokens, PasswordFile
from imip_agent.manager.app import create_app
from imip_agent.manager.login import Accounts
from imip_agent.manager.security import AccessConfig
from imiptools.dates import FixedClock, parse_datetime
from imiptools.mail.send import DirectorySender
from tests.manager.support import NOW, settings_of, token_in
from tests.support import BIN, Agent

ALICE_PASSWORD = "correct horse battery staple"
BOB_PASSWORD = "bobs own long password"


def admin(agent: Agent, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """imip-admin over the agent's site, ``stdin`` on its standard input."""
    agent.set_up()
    argv = [str(BIN / "imip-admin"), *agent.store_options, "--now", NOW, *args]
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120)


def set_password(agent: Agent, user: str, password: str) -> None:
    """Give ``user`` a password with ``imip-admin web-password set``."""
    done = admin(agent, "web-password", "set", user, stdin=password + "\n")
    assert done.returncode == 0, done.stdout + done.stderr


def accounts_of(agent: Agent) -> Accounts:
    """The site's accounts, without the pause after a failed login."""
    settings = settings_of(agent)
    return Accounts(PasswordFile.of(settings), FeedTokens.of(settings), delay=0)


def password_manager(agent: Agent, sent: Path, source: str = "password") -> Flask:
    """The application over the agent's site, users logging in with a password."""
    return create_app(
        settings_of(agent),
        FixedClock(parse_datetime(NOW)),
        DirectorySender(sent),
        AccessConfig(source=source),
        secure_cookies=False,
        accounts=accounts_of(agent),
    )


def log_in(client: FlaskClient, user: str, password: str, next_path: str = "") -> int:
    """Post the login form (with the token its page gave); the status."""
    page = client.get("/login").get_data(as_text=True)
    data = {"csrf_token": token_in(page), "address": user, "password": password}
    if next_path:
        data["next"] = next_path
    return client.post("/login", data=data).status_code
