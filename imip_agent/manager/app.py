"""The application: :func:`create_app` and its pages.

Pages (``ADDRESS`` is a calendar user's address; a user may open only
their own, anything else is 403):

- ``/``: to the user's week;
- ``/calendar/ADDRESS/?week=YYYY-MM-DD``: the week holding that day (in
  the user's ``TZID``), every instance of their events, recurring events
  expanded by the library (:func:`imiptools.views.agenda.agenda`);
- ``/calendar/ADDRESS/requests``: the requests needing attention
  (:func:`imiptools.views.agenda.pending`), each with accept, accept
  tentatively and decline, for the whole event or one instance of a
  series; a POST answers through :func:`imiptools.answering.answer`.

The site is opened per request through :func:`imiptools.site.open_site`
with the injected clock; mail leaves through the injected sender.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import (
    Flask,
    abort,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers.response import Response

from imip_agent.manager import (
    calendars,
    common,
    language,
    login,
    negotiation,
    organiser,
    outcome,
    pages,
)
from imip_agent.manager.login import Accounts
from imip_agent.manager.security import (
    CSRF_FIELD,
    HEADERS,
    AccessConfig,
    csrf_token,
    csrf_valid,
)
from imiptools import answering, deferred
from imiptools.config import Settings
from imiptools.countering import Proposal, proposals
from imiptools.dates import Clock
from imiptools.deferred import dataclass
from imiptools.i18n import N_
from imiptools.mail.send import Sender
from imiptools.records import UserRecords
from imiptools.views.agenda import agenda, pending

log = logging.getLogger(__name__)

#: The answers offered, as the buttons say them.
ANSWER_LABELS = (
    ("ACCEPTED", N_("Accept")),
    ("TENTATIVE", N_("Tentative")),
    ("DECLINED", N_("Decline")),
)


def create_app(
    settings: Settings,
    clock: Clock,
    sender: Sender,
    access: AccessConfig | None = None,
    secret_key: bytes | None = None,
    secure_cookies: bool = True,
    accounts: Accounts | None = None,
) -> Flask:
    """The manager over the site ``settings`` describe, at ``clock``'s time,
    sending with ``sender``; users named as ``access`` says.

    ``secret_key`` signs the session cookie (a random one per process when
    None: every process of a multi-process server needs the same, from a
    file); ``secure_cookies`` False only for plain HTTP on loopback (the
    development server). ``accounts`` are the password file and feed
    tokens (by default the site's, :func:`~imip_agent.manager.accounts.manager_home`).
    """
    deferred.settle_all()  # before the server's threads make instances
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key or secrets.token_bytes(32),
        SESSION_COOKIE_NAME="imip_manager",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=secure_cookies,
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.jinja_env.autoescape = True
    app.jinja_env.globals["csrf_field"] = CSRF_FIELD
    app.extensions["imip_manager"] = _Services(settings, clock, sender, access or AccessConfig())
    _routes(app)
    login.install(app, accounts or Accounts.of(settings))
    language.install(app, settings.preference_defaults.get("LANG"), _stated_language)
    pages.install(app)
    return app


@dataclass(frozen=True)
class _Services:
    settings: Settings
    clock: Clock
    sender: Sender
    access: AccessConfig


#: The services, the site of the request and the user's own calendar: the
#: same functions the blueprints use (:mod:`imip_agent.manager.common`).
_services = common.services
_site = common.site
_own = common.own


def _routes(app: Flask) -> None:
    @app.before_request
    def identify() -> Response | None:
        refused = login.identify()
        if refused is not None:
            return refused
        user = g.user
        if request.method == "POST" and not csrf_valid(session, request.form.get(CSRF_FIELD)):
            log.warning("user=%s refused a form without its token: %s", user, request.path)
            abort(403)
        return None

    @app.after_request
    def headers(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers[name] = value
        return response

    @app.context_processor
    def common() -> dict[str, Any]:
        return {"me": g.get("user", "").removeprefix("mailto:"), "csrf_token": _token}

    @app.errorhandler(401)
    @app.errorhandler(403)
    @app.errorhandler(404)
    @app.errorhandler(405)
    @app.errorhandler(413)
    def error(exc: Any) -> tuple[str, int]:
        return render_template("error.html", code=exc.code, name=exc.name), exc.code

    app.add_url_rule("/", "home", home)
    app.add_url_rule("/calendar/<address>/", "week", week)
    app.add_url_rule("/calendar/<address>/requests", "requests", requests_page)
    app.add_url_rule("/calendar/<address>/requests", "answer", answer, methods=["POST"])
    organiser.register(app, organiser.Hooks(_own, _site, lambda: _services().sender))


def _stated_language(user: str) -> str | None:
    """The ``LANG`` preference ``user`` set themselves (None: they set none)."""
    return _site().preferences.get(user, "LANG")


def _token() -> str:
    return csrf_token(session)


def home() -> Response:
    return redirect(url_for("week", address=g.user.removeprefix("mailto:")))


def week(address: str) -> str:
    user = _own(address)
    records = _site().records(user)
    today = records.now.astimezone(records.zone).date()
    first = _monday(common.day_argument(request.args.get("week"), today))
    start = datetime.combine(first, time(0), records.zone)
    end = datetime.combine(first + timedelta(days=7), time(0), records.zone)
    entries = agenda(records, start, end)
    days = [
        calendars.Day(d, [e for e in entries if calendars.on_day(e, d)]) for d in _days(first, 7)
    ]
    days = calendars.with_busy(records, days)
    return render_template(
        "week.html",
        address=address,
        grid=calendars.grid_available(),
        days=days,
        zone=str(records.zone),
        previous=(first - timedelta(days=7)).isoformat(),
        following=(first + timedelta(days=7)).isoformat(),
        today=today,
        **calendars.view_links(first),
    )


def requests_page(address: str) -> str:
    user = _own(address)
    records = _site().records(user)
    items = pending(records)
    return render_template(
        "requests.html",
        address=address,
        items=items,
        answers=ANSWER_LABELS,
        zone=str(records.zone),
        proposals={i.uid: _local(records, i.uid) for i in items if i.kind == "COUNTER"},
        fit=lambda p: negotiation.fit(records, p),
    )


def _local(records: UserRecords, uid: str) -> list[Proposal]:
    """The proposals for ``uid``, their times in the user's zone."""
    zone = records.zone
    return [
        replace(p, start=p.start.astimezone(zone), end=p.end.astimezone(zone))
        for p in proposals(records, uid)
    ]


def answer(address: str) -> Response:
    """Send the user's answer to an invitation (or one instance of it)."""
    user = _own(address)
    form = request.form
    outcome.report(
        user,
        lambda: answering.answer(
            _site(),
            user,
            form.get("uid", ""),
            form.get("recurrence_id", ""),
            form.get("partstat", ""),
            _services().sender,
            comment=form.get("comment", "").strip()[:1000],
            delegate_to=form.get("delegate_to", "").strip(),
        ),
        outcome.ANSWERED,
    )
    return redirect(url_for("requests", address=address))


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _days(first: date, count: int) -> Iterator[date]:
    return (first + timedelta(days=n) for n in range(count))
