"""Logging in with a password, logging out, and who the user of a request is.

With users from the password file (``AccessConfig.source == "password"``),
``/login`` shows a form (with its CSRF token, as every form) and checks
the address and password against :class:`~imip_agent.manager.accounts.PasswordFile`
(argon2id). On success the session is renewed (a new cookie content and a
new form token: no session fixation) and holds the user and when they
logged in; it lasts :data:`SESSION_LIFETIME`, and ends at once when the
password is removed. ``/logout`` (a form, POST) ends it.

A failed login is logged with the address given and the peer, never the
password; it answers after :attr:`Accounts.delay` seconds, and after
:data:`MAX_FAILURES` failures within :data:`FAILURE_WINDOW` for an
address, or :data:`MAX_FAILURES_PER_PEER` from one peer, further attempts
are refused unchecked (429) until the window has passed: guessing costs
time, and a password file cannot be tried through the form at speed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import field
from datetime import datetime, timedelta

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from werkzeug.wrappers.response import Response

from imip_agent.manager.accounts import FeedTokens, PasswordFile
from imip_agent.manager.common import is_public, public, services
from imip_agent.manager.language import gettext
from imip_agent.manager.security import authenticated_user, csrf_token
from imiptools.config import Settings
from imiptools.dates import format_utc, parse_datetime
from imiptools.deferred import dataclass
from imiptools.errors import ImipError
from imiptools.i18n import N_
from imiptools.stores.names import normalise_user

log = logging.getLogger(__name__)

#: How long a session lasts after logging in.
SESSION_LIFETIME = timedelta(hours=12)
#: Failures counted per address (and per peer) within this window.
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES = 5
MAX_FAILURES_PER_PEER = 20

blueprint = Blueprint("auth", __name__)


@dataclass
class Failures:
    """Recent failed logins, by address and by peer (in memory, per process)."""

    times: dict[str, deque[datetime]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, key: str, now: datetime) -> int:
        """Failures of ``key`` within :data:`FAILURE_WINDOW` before ``now``."""
        with self.lock:
            recent = self.times.get(key)
            if recent is None:
                return 0
            while recent and recent[0] <= now - FAILURE_WINDOW:
                recent.popleft()
            return len(recent)

    def add(self, key: str, now: datetime) -> None:
        """One more failure of ``key``."""
        with self.lock:
            self.times.setdefault(key, deque(maxlen=100)).append(now)


@dataclass
class Accounts:
    """The manager's own accounts: the password file, the feed tokens, the
    pause after a failed login (seconds) and the failures seen."""

    passwords: PasswordFile
    feeds: FeedTokens
    delay: float = 1.0
    failures: Failures = field(default_factory=Failures)

    @classmethod
    def of(cls, settings: Settings) -> Accounts:
        """The site's accounts (in the manager's directory)."""
        return cls(PasswordFile.of(settings), FeedTokens.of(settings))


def accounts() -> Accounts:
    """The application's accounts."""
    found: Accounts = current_app.extensions["imip_manager_accounts"]
    return found


class Sessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, the cookie ``Secure`` whenever the
    request came over https, even where plain HTTP is allowed."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(super().get_cookie_secure(app) or (request and request.is_secure))


def install(app: Flask, made: Accounts) -> None:
    """Add the login pages, the accounts and the sessions to ``app``."""
    app.session_interface = Sessions()
    app.extensions["imip_manager_accounts"] = made
    app.jinja_env.globals["own_login"] = app.extensions["imip_manager"].access.source == "password"
    app.register_blueprint(blueprint)


def identify() -> Response | None:
    """Set ``g.user`` (a ``mailto:`` URI, '' on a public page), or answer:
    401 when the front server named nobody, to the login form when users
    log in here. Run before every request, before the form token check."""
    access = services().access
    endpoint = request.endpoint or ""
    public_view = endpoint == "static" or is_public(current_app.view_functions.get(endpoint))
    if access.source == "password":
        user = session_user()
    else:
        user = authenticated_user(request.environ, access)
        if user is not None and session.get("user") != user:
            session.clear()
            session["user"] = user
    g.user = user or ""
    if user is None and not public_view:
        if access.source == "password":
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        abort(401)
    return None


def session_user() -> str | None:
    """The user this session logged in as, while the login holds: not older
    than :data:`SESSION_LIFETIME` and the password not removed since."""
    user, since = session.get("user"), session.get("since")
    if not isinstance(user, str) or not isinstance(since, str):
        return None
    try:
        started = parse_datetime(since)
    except ValueError:
        return None
    now = services().clock.now()
    if not started <= now < started + SESSION_LIFETIME:
        return None
    if not accounts().passwords.has(user):
        return None
    return user


@blueprint.get("/login")
@public
def login() -> str | Response:
    """The login form (home when logged in already)."""
    if g.user:
        return redirect(url_for("home"))
    return render_template("login.html", next=_next_path(request.args.get("next")))


@blueprint.post("/login")
@public
def login_post() -> tuple[str, int] | Response:
    """Check the address and password; a session on success."""
    if services().access.source != "password":
        abort(404)
    address = request.form.get("address", "").strip()
    password = request.form.get("password", "")
    target = _next_path(request.form.get("next"))
    peer = str(request.remote_addr or "")
    now = services().clock.now()
    failures = accounts().failures
    try:
        user = normalise_user(address)
    except (ImipError, ValueError):
        user = ""
    limited = (
        failures.count(f"user:{user}", now) >= MAX_FAILURES
        or failures.count(f"peer:{peer}", now) >= MAX_FAILURES_PER_PEER
    )
    if limited:
        log.warning("login refused, too many failures: user=%s peer=%s", user or "?", peer)
        message = N_("Too many failed attempts: try again in a quarter of an hour.")
        return render_template("login.html", next=target, error=message, address=address), 429
    if not user or not accounts().passwords.check(user, password):
        failures.add(f"user:{user}", now)
        failures.add(f"peer:{peer}", now)
        log.warning("login failed: user=%s peer=%s", user or repr(address[:100]), peer)
        time.sleep(accounts().delay)
        message = N_("That address and password do not match.")
        return render_template("login.html", next=target, error=message, address=address), 401
    session.clear()  # a new session: nothing from before the login carries over
    session["user"], session["since"] = user, format_utc(now)
    csrf_token(session)
    log.info("login: user=%s peer=%s", user, peer)
    return redirect(target or url_for("home"))


@blueprint.post("/logout")
@public
def logout() -> Response:
    """End the session."""
    if g.user:
        log.info("logout: user=%s", g.user)
    session.clear()
    if services().access.source != "password":
        return redirect(url_for("home"))
    flash(gettext("You are logged out."))
    return redirect(url_for("auth.login"))


def _next_path(text: str | None) -> str:
    """``text`` when it is a path on this site (never another site's URL)."""
    if not text or not text.startswith("/") or text.startswith("//") or "\\" in text:
        return ""
    return text
