"""Subscription feeds: a secret URL per feed that calendar programs read.

- ``/feed/TOKEN.ics`` (no login): the user's events as ``imip-admin
  export`` writes them (:func:`imiptools.transfer.export_calendar`, RFC
  5545, no METHOD) or their free/busy over the window
  (:func:`imiptools.views.freebusy.freebusy_calendar`, a VFREEBUSY,
  RFC 5546 §3.3.1 PUBLISH). A wrong or revoked token is 404, alike.
- ``/calendar/ADDRESS/subscriptions``: the user's feeds, made and revoked
  with a form (POST, with its token); a new feed's URL is shown once.

The tokens are those of :class:`~imip_agent.manager.accounts.FeedTokens`
(``imip-admin web-feed`` manages the same).
"""

from __future__ import annotations

import logging

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers.response import Response as BaseResponse

from imip_agent.manager.accounts import FEED_KINDS
from imip_agent.manager.common import own, public, services, site
from imip_agent.manager.language import gettext
from imip_agent.manager.login import accounts
from imiptools.errors import InputError
from imiptools.i18n import N_
from imiptools.itip.objects import to_text
from imiptools.stores.names import normalise_user
from imiptools.transfer import export_calendar
from imiptools.views.freebusy import freebusy_calendar, freebusy_span

log = logging.getLogger(__name__)

blueprint = Blueprint("feeds", __name__)

#: What each kind of feed gives, as the page says it.
KINDS = {"events": N_("Events"), "freebusy": N_("Free/busy only")}
assert set(KINDS) == set(FEED_KINDS)


@blueprint.get("/feed/<token>.ics")
@public
def feed(token: str) -> Response:
    """The feed ``token`` opens (404 for any other token)."""
    found = accounts().feeds.find(token)
    if found is None:
        abort(404)
    records = site().records(normalise_user(found.user))
    if found.kind == "freebusy":
        calendar = freebusy_calendar(records, *freebusy_span(records))
    else:
        calendar = export_calendar(records)
    return Response(
        to_text(calendar),
        mimetype="text/calendar",
        headers={"Content-Disposition": f'inline; filename="{found.kind}.ics"'},
    )


@blueprint.get("/calendar/<address>/subscriptions")
def subscriptions(address: str) -> str:
    """The user's feeds and the form to make one."""
    user = own(address)
    return _page(address, user)


def _page(address: str, user: str, **made: object) -> str:
    return render_template(
        "subscriptions.html",
        address=address,
        feeds=accounts().feeds.feeds(user),
        kinds=KINDS,
        **made,
    )


@blueprint.post("/calendar/<address>/subscriptions")
def change(address: str) -> str | BaseResponse:
    """Make a feed (the page shows its URL once) or revoke one."""
    user = own(address)
    tokens = accounts().feeds
    if request.form.get("action") == "revoke":
        if tokens.revoke(user, request.form.get("id", "")):
            log.info("user=%s revoked feed %s", user, request.form.get("id"))
            flash(gettext("The feed is revoked: its address no longer answers."))
        else:
            flash(gettext("No such feed."))
        return redirect(url_for("feeds.subscriptions", address=address))
    try:
        kind, label = request.form.get("kind", ""), request.form.get("label", "")
        made, token = tokens.make(user, kind, label, services().clock.now())
    except InputError:
        abort(400)
    log.info("user=%s made %s feed %s", user, made.kind, made.id)
    # Served for https (Secure cookies) behind a proxy, the URL is https too.
    https = current_app.config["SESSION_COOKIE_SECURE"] or request.is_secure
    url = url_for("feeds.feed", token=token, _external=True, _scheme="https" if https else "http")
    return _page(address, g.user, made=made, url=url)
