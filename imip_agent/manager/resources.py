"""The pages of the site's resources, for their owners and the administrators.

Pages (``ADDRESS`` a resource's address; who may open one is the
library's answer, :func:`imiptools.views.resources.may_manage`: its owners,
the ``approvers`` preference, and the administrators the manager is
configured with; anyone else gets 403, an address that is no resource 404):

- ``/resources/``: the site's resources (:func:`~imiptools.views.resources.resources`),
  those the user manages linked, and their timeline over a week drawn in
  the browser (event-calendar's resource timeline; ``?week=YYYY-MM-DD``) from
  ``/resources/timeline.json?week=YYYY-MM-DD``: the managed resources and
  their bookings, wall times in the user's zone;
- ``/resources/ADDRESS/?week=YYYY-MM-DD``: its bookings over the week
  (:func:`~imiptools.views.resources.bookings`) as a table, and the
  requests waiting for its owners (:func:`imiptools.approvals.waiting`),
  approved or declined with a POST to ``/resources/ADDRESS/approvals``
  (:func:`imiptools.approvals.decide`, as ``imip-admin approve|decline``,
  then the outbox is sent);
- ``/resources/ADDRESS/decisions``: its decision log with the reasons
  (:func:`imiptools.views.decisions.decision_log`);
- ``/resources/ADDRESS/quota``: each quota it records in, each user's use
  (:func:`~imiptools.views.resources.quota_use`) and the quota's limits;
  for those who may change them
  (:func:`~imiptools.views.resources.may_change_quota`: the administrators,
  or whoever manages every resource recording in the quota), a POST sets or
  removes a limit as ``imip-admin quota set-limit`` does
  (:func:`~imiptools.views.resources.change_limit`; refused: 422 with its
  message);
- ``/resources/ADDRESS/preferences``: a form made from the preference
  definitions; a POST validates every value as ``imip-admin prefs set``
  does (:func:`~imiptools.views.resources.change_preferences`) and writes
  them all, or none with each error beside its field (422).

Every POST carries the form token (the application checks it first).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date, datetime, time, timedelta

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers.response import Response

from imip_agent.manager import calendars, common
from imip_agent.manager.language import gettext
from imiptools import approvals
from imiptools.errors import DeliveryFailed, ImipError
from imiptools.i18n import N_
from imiptools.preferences import DEFINITIONS
from imiptools.quota.limits import ROLLING, format_amount
from imiptools.site import Site
from imiptools.stores.names import normalise_user
from imiptools.views.agenda import Entry
from imiptools.views.decisions import decision_log
from imiptools.views.resources import (
    Resource,
    bookings,
    change_limit,
    change_preferences,
    may_change_quota,
    may_manage,
    preference_fields,
    quota_use,
    recorded_in,
    resource_of,
    resources,
)

log = logging.getLogger(__name__)

blueprint = Blueprint("resources", __name__, url_prefix="/resources")

#: The decisions the log page shows, newest first.
LOG_SHOWN = 200


def _admins() -> tuple[str, ...]:
    return common.services().access.admins


def _managed(address: str) -> tuple[Site, Resource]:
    """The site and the resource of ``address`` when the user manages it
    (403 otherwise; 404 for what is no resource of the site)."""
    try:
        user = normalise_user(address)
    except (ImipError, ValueError):
        abort(404)
    site = common.site()
    resource = resource_of(site, user)
    if resource is None:
        abort(404)
    if not may_manage(resource, g.user, _admins()):
        log.warning("user=%s refused the pages of %s", g.user, user)
        abort(403)
    return site, resource


@blueprint.route("/")
def listing() -> str:
    """The site's resources, those the user manages linked."""
    site = common.site()
    found = resources(site)
    managed = {r.address for r in found if may_manage(r, g.user, _admins())}
    records = site.records(g.user)
    today = records.now.astimezone(records.zone).date()
    day = common.day_argument(request.args.get("week"), today)
    return render_template(
        "resources.html",
        resources=found,
        managed=managed,
        grid=calendars.grid_available() and bool(managed),
        monday=(day - timedelta(days=day.weekday())).isoformat(),
    )


@blueprint.route("/timeline.json")
def timeline() -> Response:
    """The resources the user manages and their bookings over a week, for
    the resource timeline (``static/grid.js``)."""
    site = common.site()
    records = site.records(g.user)
    zone = records.zone
    day = common.day_argument(request.args.get("week"), records.now.astimezone(zone).date())
    start = datetime.combine(day - timedelta(days=day.weekday()), time(0), zone)
    managed = [r for r in resources(site) if may_manage(r, g.user, _admins())]
    events = []
    for resource in managed:
        for entry in bookings(site, resource, start, start + timedelta(days=7)):
            local = replace(
                entry, start=entry.start.astimezone(zone), end=entry.end.astimezone(zone)
            )
            event = calendars.grid_event(local)
            event["resourceIds"] = [resource.address]
            event["extendedProps"] = {"url": url_for("resources.week", address=resource.address)}
            events.append(event)
    listed = [{"id": r.address, "title": r.label} for r in managed]
    return jsonify({"resources": listed, "events": events})


@blueprint.route("/<address>/")
def week(address: str) -> str:
    """The resource's bookings over a week, and what waits for its owners."""
    site, resource = _managed(address)
    records = site.records(resource.user)
    today = records.now.astimezone(records.zone).date()
    day = common.day_argument(request.args.get("week"), today)
    first = day - timedelta(days=day.weekday())
    start = datetime.combine(first, time(0), records.zone)
    entries = bookings(site, resource, start, start + timedelta(days=7))
    days: list[tuple[date, list[Entry]]] = [(first + timedelta(days=n), []) for n in range(7)]
    for entry in entries:
        for shown, listed in days:
            if entry.start.date() <= shown <= max(entry.start.date(), _last_day(entry)):
                listed.append(entry)
    return render_template(
        "resource.html",
        resource=resource,
        days=days,
        first=first,
        zone=str(records.zone),
        previous=(first - timedelta(days=7)).isoformat(),
        following=(first + timedelta(days=7)).isoformat(),
        today=today.isoformat(),
        waiting=approvals.waiting(site, [resource.user]),
    )


def _last_day(entry: Entry) -> date:
    """The last day an entry covers (an end at midnight is exclusive)."""
    start, end = entry.start, entry.end
    if end > start and end.time() == time(0):
        return (end - timedelta(days=1)).date()
    return end.date()


@blueprint.route("/<address>/approvals", methods=["POST"])
def decide(address: str) -> Response:
    """Approve or decline a waiting request, as ``imip-admin approve`` does."""
    site, resource = _managed(address)
    verdict = request.form.get("verdict", "")
    uid = request.form.get("uid", "")
    if verdict not in ("approve", "decline"):
        abort(400)
    reason = request.form.get("reason", "").strip()[:500]
    try:
        done = approvals.decide(site, resource.user, uid, verdict, reason, site.clock.now())
        if done:
            approvals.send_spooled(site, common.services().sender)
    except DeliveryFailed as exc:
        log.warning("user=%s %s %s: mail waits in the outbox: %s", g.user, verdict, uid, exc)
        flash(
            gettext(
                "Decided; the mail system did not take the answers yet, they wait in the outbox."
            )
        )
    except ImipError as exc:
        log.warning("user=%s %s %s failed: %s", g.user, verdict, uid, exc)
        flash(gettext("Not decided: the resource is busy or unavailable; try again."))
    else:
        if done:
            log.info("user=%s %sd %s at %s", g.user, verdict, uid, resource.user)
            said = N_("{uid}: approved.") if verdict == "approve" else N_("{uid}: declined.")
            flash(gettext(said).format(uid=uid))
        else:
            flash(gettext("No request {uid} waits for approval.").format(uid=uid))
    return redirect(url_for("resources.week", address=resource.address))


@blueprint.route("/<address>/decisions")
def decisions(address: str) -> str:
    """The resource's decision log, newest first."""
    site, resource = _managed(address)
    entries = decision_log(site.store, resource.user)[::-1][:LOG_SHOWN]
    return render_template("resource_decisions.html", resource=resource, entries=entries)


@blueprint.route("/<address>/quota")
def quota(address: str) -> str:
    """Each quota the resource records in, each user's use of it and its limits."""
    site, resource = _managed(address)
    return _quota_page(site, resource)


@blueprint.route("/<address>/quota", methods=["POST"])
def change_quota(address: str) -> Response | tuple[str, int]:
    """Set or remove a limit of one of the resource's quotas, as ``imip-admin
    quota set-limit`` does; 403 for who may not change that quota's limits,
    404 for a quota the resource does not record in."""
    site, resource = _managed(address)
    name = request.form.get("quota", "")
    if name not in recorded_in(site, resource):
        abort(404)
    if not may_change_quota(site, name, g.user, _admins()):
        log.warning("user=%s refused changing the limits of quota %s", g.user, name)
        abort(403)
    form = request.form
    remove = form.get("action") == "remove"
    per = form.get("window", "").strip() or form.get("per", "")
    problem = change_limit(
        site, name, form.get("who", ""), form.get("limit", ""), per, remove=remove
    )
    if problem:
        return _quota_page(site, resource, name, problem), 422
    log.info("user=%s %s a limit of quota %s", g.user, "removed" if remove else "set", name)
    flash(gettext("Limit removed.") if remove else gettext("Limit saved."))
    return redirect(url_for("resources.quota", address=resource.address))


def _quota_page(site: Site, resource: Resource, refused: str = "", problem: str = "") -> str:
    quotas = quota_use(site, resource)
    return render_template(
        "resource_quota.html",
        resource=resource,
        quotas=quotas,
        changeable={q.name for q in quotas if may_change_quota(site, q.name, g.user, _admins())},
        refused=refused,
        problem=problem,
        posted=request.form if refused else {},
        amount=format_amount,
        per_word=lambda period: period.removeprefix(ROLLING),
    )


@blueprint.route("/<address>/preferences")
def preferences(address: str) -> str:
    """The resource's preferences as a form."""
    site, resource = _managed(address)
    return _preferences_page(site, resource, {}, {})


@blueprint.route("/<address>/preferences", methods=["POST"])
def save_preferences(address: str) -> Response | tuple[str, int]:
    """Validate and write the form's preferences (all of them, or none)."""
    site, resource = _managed(address)
    values = {name: request.form.get(name, "") for name in DEFINITIONS}
    errors = change_preferences(site, resource.user, values)
    if errors:
        return _preferences_page(site, resource, values, errors), 422
    log.info("user=%s changed the preferences of %s", g.user, resource.user)
    flash(gettext("Preferences saved."))
    return redirect(url_for("resources.preferences", address=resource.address))


def _preferences_page(
    site: Site, resource: Resource, posted: dict[str, str], errors: dict[str, str]
) -> str:
    return render_template(
        "resource_prefs.html",
        resource=resource,
        fields=preference_fields(site, resource.user),
        posted=posted,
        errors=errors,
    )
