"""Counter-proposals from the requests page, both ways (RFC 5546 §3.2.7,
§3.2.8).

- ``POST /calendar/ADDRESS/requests/propose``: the user, invited, proposes
  another time for the whole event or one instance
  (:func:`imiptools.answering.propose`): the COUNTER goes to the organiser.
- ``POST /calendar/ADDRESS/requests/proposal``: the user, organising,
  accepts an attendee's proposal (the update with the proposed time goes
  to every attendee) or declines it (the DECLINECOUNTER goes to the
  attendee), through :mod:`imiptools.countering`.

Times in the forms are the user's local times (``datetime-local``, their
``TZID``). Every outcome is said in a message on the requests page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, tzinfo

from flask import Blueprint, flash, redirect, request, url_for
from werkzeug.wrappers.response import Response

from imip_agent.manager import findtime, outcome
from imip_agent.manager.common import own, services, site
from imip_agent.manager.language import gettext
from imiptools import answering, countering
from imiptools.countering import Proposal
from imiptools.deferred import dataclass
from imiptools.i18n import N_
from imiptools.itip.objects import attendees_of, mail_address_of
from imiptools.periods import busy_only
from imiptools.records import UserRecords

log = logging.getLogger(__name__)

blueprint = Blueprint("negotiation", __name__)


@blueprint.post("/calendar/<address>/requests/propose")
def propose(address: str) -> Response:
    """Send the user's counter-proposal for an invitation."""
    user = own(address)
    form = request.form
    zone = site().records(user).zone
    try:
        start = _local(form.get("start", ""), zone)
        end = _local(form.get("end", ""), zone)
    except ValueError:
        flash(gettext("Not proposed: give a start and an end."))
        return _back(address)
    _done(
        user,
        lambda: answering.propose(
            site(),
            user,
            form.get("uid", ""),
            form.get("recurrence_id", ""),
            start,
            end,
            services().sender,
            comment=form.get("comment", "").strip()[:1000],
        ),
        N_("Your proposal was sent to {who}."),
    )
    return _back(address)


@blueprint.post("/calendar/<address>/requests/proposal")
def proposal(address: str) -> Response:
    """Accept or decline an attendee's proposal for an event the user organises."""
    user = own(address)
    form = request.form
    uid, attendee = form.get("uid", ""), form.get("attendee", "")
    if form.get("action") == "accept":
        _done(
            user,
            lambda: countering.accept(site(), user, uid, attendee, services().sender),
            N_("The event moves to the time {who} proposed; everyone is asked again."),
        )
    else:
        comment = form.get("comment", "").strip()[:1000]
        _done(
            user,
            lambda: countering.decline(site(), user, uid, attendee, services().sender, comment),
            N_("The proposal of {who} is declined."),
        )
    return _back(address)


@dataclass(frozen=True)
class Fit:
    """Who is busy at a proposed time, and of whom nothing is known."""

    busy: list[str]
    unknown: list[str]


def fit(records: UserRecords, proposal: Proposal) -> Fit:
    """Whether the time ``proposal`` asks for suits everyone of the event:
    the organiser's own calendar and each attendee's known free/busy (as
    "find a time" reads it), the event itself left out."""
    stored = records.stored(proposal.uid)
    if stored is None:
        return Fit([], [])
    start, end = proposal.start, proposal.end
    mine = findtime.Person(records.user, records.busy_between(start, end), "")
    others = [f"mailto:{mail_address_of(a)}" for a in attendees_of(stored.first)]
    people = [mine] + [
        findtime.busy_of(site(), records, o, start, end) for o in others if o != records.user
    ]
    busy = [
        p.address.removeprefix("mailto:")
        for p in people
        if p.busy
        and any(b.uid != proposal.uid and b.overlaps(start, end) for b in busy_only(p.busy))
    ]
    return Fit(busy, [p.address for p in people if p.busy is None])


def _done(user: str, act: Callable[[], answering.Answered], sent: str) -> None:
    """Run ``act``, and say what came of it (``sent``: its success, with ``{who}``)."""
    outcome.report(user, act, replace(outcome.DONE, sent=sent))


def _local(text: str, zone: tzinfo) -> datetime:
    """A ``datetime-local`` value as an aware time in ``zone``; ValueError if none."""
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is not None:
        raise ValueError("a local time is expected")
    return moment.replace(tzinfo=zone)


def _back(address: str) -> Response:
    return redirect(url_for("requests", address=address))
