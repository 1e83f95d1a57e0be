"""The organiser's pages: a new event, an event with every property, its
update, its cancellation (the series or one instance), removing attendees.

Pages (``ADDRESS`` the user's own, as every page of the manager):

- ``/calendar/ADDRESS/new``: the event form (:mod:`.eventform`); a POST
  builds the REQUEST (:func:`imiptools.itip.organising.new_event`, RFC
  5546 §3.2.2), or with ``action=preview`` shows the rule in words and the
  first occurrences without sending anything;
- ``/calendar/ADDRESS/event?uid=UID``: every property of a stored event,
  and for its organiser the form again; a POST sends the update
  (:func:`~imiptools.itip.organising.revised`, SEQUENCE + 1) of what
  changed, after the CANCEL to attendees removed
  (:func:`~imiptools.itip.organising.removal`, RFC 5546 §4.2.10);
- ``/calendar/ADDRESS/event/cancel``: the CANCEL of the whole event or of
  one instance (:func:`~imiptools.itip.organising.cancellation`, §3.2.5);
- ``/calendar/ADDRESS/event/instance?uid=UID&rid=RID``: one occurrence's
  form; a POST sends that instance alone
  (:func:`imiptools.itip.series.instance_update`) or, for "this and
  following", the old series ended and a new one
  (:func:`~imiptools.itip.series.split`);
- ``/calendar/ADDRESS/event/exclude``: an EXDATE added for one occurrence
  of the preview, or taken away (:func:`~imiptools.itip.series.exclusion`),
  sent as an update.

Every message's SEQUENCE exceeds every one sent for the UID (RFC 5545
§3.8.7.4): the stored CANCELs of single instances count
(:meth:`~imiptools.records.UserRecords.cancelled_sequence`).

Every message is composed by :func:`imiptools.mail.compose.build_message`
(RFC 6047) and sent by :func:`imiptools.answering.send_as`: recorded as
``imip-person-outgoing`` records what a person sends and spooled in the
same transaction. The application hands its own pieces in
(:class:`Hooks`), so this module adds routes without changing the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from flask import Flask, abort, current_app, flash, redirect, render_template, request, url_for
from icalendar import Calendar, Component
from werkzeug.wrappers.response import Response

from imip_agent.manager import eventform, language
from imip_agent.manager.eventform import EventForm, FormErrors
from imip_agent.manager.language import gettext
from imiptools import answering
from imiptools.dates import format_recurrence_id
from imiptools.deferred import dataclass
from imiptools.errors import DeliveryFailed, ImipError, InputError
from imiptools.i18n import N_
from imiptools.itip import organising, series
from imiptools.itip.instances import cancelled_exdates
from imiptools.itip.objects import (
    ItipObject,
    attendees_of,
    mail_address_of,
    organizer_of,
    sequence_of,
    serialise,
    text_of,
)
from imiptools.itip.organising import Invitee, Revision
from imiptools.mail.compose import build_message
from imiptools.mail.send import Sender
from imiptools.records import UserRecords
from imiptools.site import Site
from imiptools.views.occurrences import preview
from imiptools.views.resources import Resource, resources
from imiptools.views.roomcheck import RoomForecast, check_rooms

log = logging.getLogger(__name__)

#: The choices the form offers, as (value, label).
Choices = tuple[tuple[str, str], ...]
CLASS_CHOICES: Choices = (
    ("", N_("(not said)")),
    ("PUBLIC", N_("Public")),
    ("PRIVATE", N_("Private")),
    ("CONFIDENTIAL", N_("Confidential")),
)
STATUS_CHOICES: Choices = (
    ("", N_("(not said)")),
    ("CONFIRMED", N_("Confirmed")),
    ("TENTATIVE", N_("Tentative")),
    ("CANCELLED", N_("Cancelled")),
)
TRANSP_CHOICES = (("", N_("Busy (default)")), ("OPAQUE", N_("Busy")), ("TRANSPARENT", N_("Free")))
PRIORITY_CHOICES = (("", N_("(none)")), *((str(n), str(n)) for n in range(10)))
ROLE_CHOICES = (
    ("REQ-PARTICIPANT", N_("Required")),
    ("OPT-PARTICIPANT", N_("Optional")),
    ("NON-PARTICIPANT", N_("For information")),
    ("CHAIR", N_("Chair")),
)
#: The roles a room picked from the site's list may have ('': not picked).
ROOM_ROLE_CHOICES = (("", N_("Not invited")), *ROLE_CHOICES)
#: RSVP (RFC 5545 §3.2.17): whether the attendee is asked to answer.
RSVP_CHOICES = (("TRUE", N_("Yes")), ("FALSE", N_("No")))
CUTYPE_CHOICES = (
    ("INDIVIDUAL", N_("Person")),
    ("ROOM", N_("Room")),
    ("RESOURCE", N_("Resource")),
    ("GROUP", N_("Group")),
    ("UNKNOWN", N_("Unknown")),
)
FREQ_CHOICES: Choices = (
    ("", N_("Does not repeat")),
    ("DAILY", N_("Daily")),
    ("WEEKLY", N_("Weekly")),
    ("MONTHLY", N_("Monthly")),
    ("YEARLY", N_("Yearly")),
)
ENDS_CHOICES = (
    ("never", N_("Never")),
    ("count", N_("After a number of times")),
    ("until", N_("On a day")),
)


@dataclass(frozen=True)
class Hooks:
    """What the application lends these pages: whose calendar an address
    is (403 when not the user's own), the site of this request, the sender."""

    own: Callable[[str], str]
    site: Callable[[], Site]
    sender: Callable[[], Sender]


def register(app: Flask, hooks: Hooks) -> None:
    """Add the organiser's pages to ``app``."""
    app.extensions["imip_manager_organiser"] = hooks
    app.add_url_rule("/calendar/<address>/new", "new_event", new_page)
    app.add_url_rule("/calendar/<address>/new", "create_event", create, methods=["POST"])
    app.add_url_rule("/calendar/<address>/event", "event", event_page)
    app.add_url_rule("/calendar/<address>/event", "update_event", update, methods=["POST"])
    app.add_url_rule("/calendar/<address>/event/cancel", "cancel_event", cancel, methods=["POST"])
    app.add_url_rule("/calendar/<address>/event/instance", "instance", instance_page)
    app.add_url_rule(
        "/calendar/<address>/event/instance", "update_instance", update_instance, methods=["POST"]
    )
    app.add_url_rule("/calendar/<address>/event/exclude", "exclude_date", exclude, methods=["POST"])


def _hooks() -> Hooks:
    hooks: Hooks = current_app.extensions["imip_manager_organiser"]
    return hooks


# -- a new event --------------------------------------------------------------


def new_page(address: str) -> str:
    user = _hooks().own(address)
    records = _hooks().site().records(user)
    tomorrow = records.now.astimezone(records.zone).date() + timedelta(days=1)
    values = eventform.blank(_zone_name(records), tomorrow)
    return _form_page("new.html", address, values)


def create(address: str) -> Response | tuple[str, int]:
    user = _hooks().own(address)
    site = _hooks().site()
    values = eventform.read_form(request.form, _kinds(resources(site)))
    try:
        draft = eventform.to_draft(values)
    except FormErrors as exc:
        return _form_page("new.html", address, values, exc.messages), 422
    if request.form.get("action") == "preview":
        return _form_page("new.html", address, values, preview=draft), 200
    now = site.clock.now()
    calendar = organising.new_event(draft, user, now, cn=_cn(site, user), domain=_domain(user))
    event = calendar.walk("VEVENT")[0]
    invited = organising.recipients_of(event, user)
    subject = f"Invitation: {draft.summary}"
    if request.form.get("action") == "check":
        message = _message(site, user, calendar, invited, subject, _event_text(event))
        forecasts = _check(site, user, message, values)
        return _form_page("new.html", address, values, checked=forecasts), 200
    if _send(site, user, calendar, invited, subject, _event_text(event)):
        flash(_sent_to(N_("Invitation"), invited))
    return redirect(url_for("event", address=address, uid=str(event["UID"])))


# -- an event -----------------------------------------------------------------


def event_page(address: str) -> str:
    user = _hooks().own(address)
    records = _hooks().site().records(user)
    stored = _stored(records, request.args.get("uid", ""))
    return _event_page(address, records, stored, None, [])


def _event_page(
    address: str,
    records: UserRecords,
    stored: ItipObject,
    values: EventForm | None,
    errors: list[str],
    checked: Checked | None = None,
) -> str:
    source = stored.master or stored.first
    mine = organizer_of(source) == address
    shown = values or _form_of(records, stored)
    return render_template(
        "event.html",
        address=address,
        uid=stored.uid,
        mine=mine,
        event=source,
        facts=_facts(stored, source, records.cancelled_sequence(stored.uid)),
        people=_people(source),
        rule=_rule_text(source),
        described=eventform.describe(
            _rule_text(source), source.decoded("DTSTART"), language.code()
        ),
        occurrences=preview(records, stored),
        values=shown,
        errors=errors,
        zone=str(records.zone),
        checked=checked,
        **_choices(),
    )


def _form_of(records: UserRecords, stored: ItipObject) -> EventForm:
    """The form of the stored event, the instances cancelled one by one
    among its exceptions (an update sends them as EXDATEs)."""
    source = stored.master or stored.first
    cancelled = records.cancelled_instances(stored.uid) if stored.master is not None else []
    gone = tuple(cancelled_exdates(source, cancelled, records.zone))
    return eventform.from_event(source, records.zone, gone)


def update(address: str) -> Response | tuple[str, int]:
    user, site, records, stored, source = _organised(address)
    values = eventform.read_form(request.form)
    try:
        draft = eventform.to_draft(values, stored.uid)
        revision = _revision(_form_of(records, stored), values, draft, source)
    except FormErrors as exc:
        return _event_page(address, records, stored, values, exc.messages), 422
    if request.form.get("action") == "check":
        checked = _check_update(site, user, stored, revision or Revision(), values)
        return _event_page(address, records, stored, values, [], checked), 200
    if revision is None:
        flash(gettext("Nothing changed."))
        return redirect(url_for("event", address=address, uid=stored.uid))
    now = site.clock.now()
    summary = text_of(source, "SUMMARY") or "(no title)"
    floor = records.cancelled_sequence(stored.uid)
    if revision.removed:
        gone = organising.removal(stored, revision.removed, now, floor=floor)
        floor = max(floor, sequence_of(gone.walk("VEVENT")[0]))
        text = f"You are no longer invited to {summary}.\n"
        if not _send(site, user, gone, list(revision.removed), f"Removed: {summary}", text):
            return redirect(url_for("event", address=address, uid=stored.uid))
        stored = _stored(records, stored.uid)
    try:
        calendar = _revised(records, stored, revision, floor)
    except ValueError as exc:
        message = f"{str(exc)[:1].upper()}{str(exc)[1:]}."
        return _event_page(address, records, stored, values, [message]), 422
    _send_update(site, user, calendar, "Updated", N_("Update"))
    return redirect(url_for("event", address=address, uid=stored.uid))


def _revised(records: UserRecords, stored: ItipObject, revision: Revision, floor: int) -> Calendar:
    """The REQUEST of ``revision`` (:func:`~imiptools.itip.organising.revised`),
    the stored overrides and the cancelled instances carried."""
    return organising.revised(
        stored,
        revision,
        records.now,
        floor=floor,
        cancelled=tuple(records.cancelled_instances(stored.uid)),
        zone=records.zone,
    )


def _sent_to(told: str, invited: list[str]) -> str:
    """What was sent (``told``, a msgid) and to whom, in the page's language."""
    if not invited:
        return gettext("Saved in your calendar.")
    return gettext("{what} sent to {who}.").format(what=gettext(told), who=", ".join(invited))


def _send_update(site: Site, user: str, calendar: Calendar, what: str, told: str) -> bool:
    """Send a REQUEST to its attendees as ``user`` (subject ``what``:
    SUMMARY); flash ``told`` and who was told."""
    event = calendar.walk("VEVENT")[0]
    invited = list(
        dict.fromkeys(a for c in calendar.walk("VEVENT") for a in organising.recipients_of(c, user))
    )
    title = text_of(event, "SUMMARY") or "(no title)"
    sent = _send(site, user, calendar, invited, f"{what}: {title}", _event_text(event))
    if sent:
        flash(_sent_to(told, invited))
    return sent


def cancel(address: str) -> Response:
    user, site, records, stored, source = _organised(address)
    rid = request.form.get("recurrence_id", "")
    instance = _instance(records, stored, rid) if rid else None
    floor = records.cancelled_sequence(stored.uid)
    calendar = organising.cancellation(stored, site.clock.now(), instance, floor=floor)
    event = calendar.walk("VEVENT")[0]
    invited = organising.recipients_of(event, user)
    summary = text_of(source, "SUMMARY") or "(no title)"
    what = "This occurrence of " if rid else ""
    text = f"{what}{summary} is cancelled.\n"
    if _send(site, user, calendar, invited, f"Cancelled: {summary}", text):
        flash(
            gettext("Cancelled; {who} told.").format(who=", ".join(invited))
            if invited
            else gettext("Cancelled.")
        )
    if site.records(user).stored(stored.uid) is None:  # the whole event is gone
        week = _day(source.decoded("DTSTART"), records).isoformat()
        return redirect(url_for("week", address=address, week=week))
    return redirect(url_for("event", address=address, uid=stored.uid))


def _day(moment: date | datetime, records: UserRecords) -> date:
    if isinstance(moment, datetime):
        return moment.astimezone(records.zone).date()
    return moment


# -- one occurrence: change it, or this and the following; exclude, restore --------


def instance_page(address: str) -> str:
    """The form of one occurrence (``uid``, ``rid``) of the user's own series."""
    user = _hooks().own(address)
    records = _hooks().site().records(user)
    stored = _stored(records, request.args.get("uid", ""))
    source = stored.master or stored.first
    if organizer_of(source) != address:
        abort(403)
    rid = request.args.get("rid", "")
    instance = _instance(records, stored, rid)
    values = eventform.from_event(instance, records.zone)
    return _instance_page(address, records, stored, rid, values, [])


def _instance_page(
    address: str,
    records: UserRecords,
    stored: ItipObject,
    rid: str,
    values: EventForm,
    errors: list[str],
    following: EventForm | None = None,
) -> str:
    source = stored.master or stored.first
    first = _is_first(source, rid, records)
    if following is None and not first:
        following = _following_form(records, stored, rid)
    return render_template(
        "instance.html",
        address=address,
        uid=stored.uid,
        rid=rid,
        values=values,
        errors=errors,
        series=text_of(source, "SUMMARY") or "(no title)",
        first=first,
        following=following,
        **_choices(),
    )


def _following_form(records: UserRecords, stored: ItipObject, rid: str) -> EventForm:
    """The form of the series as the new one of a split from ``rid`` would
    be unless changed: its attendees, and its rule (a COUNT less the
    occurrences before, :func:`~imiptools.itip.series.following_rule`)."""
    source = stored.master or stored.first
    values = eventform.from_event(source, records.zone)
    return eventform.with_rule(values, series.following_rule(stored, rid, records.zone))


def _is_first(master: Component, rid: str, records: UserRecords) -> bool:
    """Whether ``rid`` is the series' first occurrence (no split from it)."""
    return format_recurrence_id(master.decoded("DTSTART"), records.zone) == rid


def update_instance(address: str) -> Response | tuple[str, int]:
    """Send the change of one occurrence, or with ``scope=following`` the
    split of the series from it (RFC 5546 §3.2.2); 422 with the messages
    for a form that makes no event."""
    user, site, records, stored, _ = _organised(address)
    rid = request.form.get("recurrence_id", "")
    instance = _instance(records, stored, rid)
    before = eventform.from_event(instance, records.zone)
    values = eventform.instance_form(before, request.form)
    following = request.form.get("scope") == "following"
    series_form = later = None
    master = stored.master
    if request.form.get("following_series") and master and not _is_first(master, rid, records):
        series_form = _following_form(records, stored, rid)
        later = eventform.following_form(series_form, request.form)
    try:
        change = _instance_change(before, values)
        rest = _following_change(series_form, later) if series_form else None
        if rest is not None and not following:
            raise FormErrors(
                [
                    gettext(
                        "The rule and the attendees change only for this and the following "
                        "occurrences (a new series)."
                    )
                ]
            )
        if change is None and rest is None and not following:
            flash(gettext("Nothing changed."))
            return redirect(url_for("event", address=address, uid=stored.uid))
        floor = records.cancelled_sequence(stored.uid)
        if following:
            merged = _merged(change or Revision(), rest)
            return _split(address, site, user, records, stored, rid, merged, floor)
        calendar = series.instance_update(
            stored, instance, change or Revision(), site.clock.now(), floor=floor
        )
    except (FormErrors, ValueError) as exc:
        messages = exc.messages if isinstance(exc, FormErrors) else [_sentence(exc)]
        page = _instance_page(address, records, stored, rid, values, messages, later)
        return page, 422
    _send_update(site, user, calendar, "Occurrence changed", N_("Change of the occurrence"))
    return redirect(url_for("event", address=address, uid=stored.uid))


def _split(
    address: str,
    site: Site,
    user: str,
    records: UserRecords,
    stored: ItipObject,
    rid: str,
    change: Revision,
    floor: int,
) -> Response:
    """Send "this and following" (:func:`~imiptools.itip.series.split`):
    the old series ended, then the new one; to the new one's page."""
    old, new = series.split(
        stored,
        rid,
        change,
        site.clock.now(),
        domain=_domain(user),
        zone=records.zone,
        floor=floor,
        cancelled=tuple(records.cancelled_instances(stored.uid)),
    )
    if not _send_update(site, user, old, "Updated", N_("The series' end")):
        return redirect(url_for("event", address=address, uid=stored.uid))
    uid = str(new.walk("VEVENT")[0]["UID"])
    _send_update(site, user, new, "Invitation", N_("The following occurrences"))
    return redirect(url_for("event", address=address, uid=uid))


def _following_change(before: EventForm, after: EventForm | None) -> Revision | None:
    """What the organiser changed of the new series' rule and attendees
    (``after``, None when the form had no such part) from ``before``, as
    a Revision of ``rrule``, ``invitees``, ``removed`` and ``roles`` (None
    for nothing); FormErrors as the event form gives them, and for no rule."""
    if after is None:
        return None
    eventform.to_draft(after)
    changes = _attendee_changes(
        eventform.normalised(before), eventform.normalised(after), after.removed
    )
    if before.rule() != after.rule():
        if not after.rule():
            raise FormErrors([gettext("Repeat: the following occurrences need a rule.")])
        changes["rrule"] = after.rule()
    return Revision(**changes) if changes else None


def _merged(change: Revision, rest: Revision | None) -> Revision:
    """An occurrence's ``change`` with the new series' ``rest``."""
    if rest is None:
        return change
    return replace(
        change,
        rrule=rest.rrule,
        invitees=rest.invitees,
        removed=rest.removed,
        roles=rest.roles,
        rsvps=rest.rsvps,
    )


def _instance_change(before: EventForm, after: EventForm) -> Revision | None:
    """What changed in the form of one instance, as a Revision of
    :data:`~imiptools.itip.series.INSTANCE_FIELDS` (None for nothing)."""
    draft = eventform.to_draft(after)
    changes: dict[str, Any] = {}
    for name in ("summary", "location", "description"):
        if getattr(before, name) != getattr(after, name):
            changes[name] = getattr(after, name)
    moved = ("start_date", "start_time", "end_date", "end_time")
    if any(getattr(before, n) != getattr(after, n) for n in moved):
        changes.update(start=draft.start, end=draft.end)
    return Revision(**changes) if changes else None


def exclude(address: str) -> Response:
    """Exclude one occurrence (an EXDATE) or restore it, and send the update."""
    user, site, records, stored, _ = _organised(address)
    rid = request.form.get("recurrence_id", "")
    restore = request.form.get("action") == "restore"
    cancelled = tuple(records.cancelled_instances(stored.uid))
    listed = {o.rid for o in preview(records, stored)}
    if stored.master is None or rid not in listed:
        abort(404)
    revision = series.exclusion(stored.master, rid, cancelled, records.zone, not restore)
    calendar = _revised(records, stored, revision, records.cancelled_sequence(stored.uid))
    told = N_("Restored; the update") if restore else N_("Excluded; the update")
    _send_update(site, user, calendar, "Updated", told)
    return redirect(url_for("event", address=address, uid=stored.uid))


def _sentence(exc: Exception) -> str:
    text = str(exc)
    return f"{text[:1].upper()}{text[1:]}."


# -- what the pages are made of -------------------------------------------------


def _organised(address: str) -> tuple[str, Site, UserRecords, ItipObject, Component]:
    """For a POST on the user's own event (its ``uid`` field): the user, the
    site, their records, the stored event and its master; 404 when there is
    no such event, 403 when the user does not organise it."""
    user = _hooks().own(address)
    site = _hooks().site()
    records = site.records(user)
    stored = _stored(records, request.form.get("uid", ""))
    source = stored.master or stored.first
    if organizer_of(source) != address:
        abort(403)
    return user, site, records, stored, source


def _stored(records: UserRecords, uid: str) -> ItipObject:
    try:
        stored = records.stored(uid) if uid else None
    except InputError:
        stored = None
    if stored is None:
        abort(404)
    return stored


def _instance(records: UserRecords, stored: ItipObject, rid: str) -> Component:
    """The component of occurrence ``rid``: an override, or one made from
    the master for an occurrence of its series
    (:func:`~imiptools.itip.series.occurrence`); 404 for anything else."""
    found = series.occurrence(stored, rid, records.zone) if rid else None
    if found is None:
        abort(404)
    return found


def _revision(
    before: EventForm, values: EventForm, draft: organising.Draft, source: Component
) -> Revision | None:
    """What changed between the stored event's form and the one posted,
    as a Revision (None for nothing)."""
    after = eventform.normalised(values)
    before = eventform.normalised(before)
    changes: dict[str, Any] = {}
    for name in ("summary", "location", "description", "url", "klass", "priority", "status"):
        if getattr(before, name) != getattr(after, name):
            changes[name] = getattr(after, name)
    if before.transp != after.transp:
        changes["transp"] = after.transp
    if before.categories != after.categories:
        changes["categories"] = draft.categories
    moved = ["all_day", "start_date", "start_time", "end_date", "end_time"]
    if not (before.all_day and after.all_day):  # a date has no zone
        moved.append("tzid")
    if any(getattr(before, n) != getattr(after, n) for n in moved):
        changes.update(start=draft.start, end=draft.end)
    if before.rule() != after.rule():
        changes["rrule"] = draft.rrule
    if before.exdates != after.exdates:
        changes["exdates"] = draft.exdates
    if before.rdates != after.rdates:
        changes["rdates"] = draft.rdates
    changes.update(_attendee_changes(before, after, values.removed))
    return Revision(**changes) if changes else None


def _attendee_changes(
    before: EventForm, after: EventForm, marked: tuple[str, ...]
) -> dict[str, Any]:
    """The attendees added (``invitees``), removed (``removed``: gone from
    the rows, or ``marked``), given another role (``roles``) or asked to
    answer or not (``rsvps``) from ``before`` to ``after``; FormErrors when
    everyone would be removed."""
    found: dict[str, Any] = {}
    held = {p.address.lower() for p in before.attendees}
    posted = {p.address.lower() for p in after.attendees}
    added = tuple(
        Invitee(p.address, p.role, p.cutype, rsvp=p.rsvp == "TRUE")
        for p in after.attendees
        if p.address.lower() not in held
    )
    removed = tuple(sorted(held - posted | {r.lower() for r in marked} & held))
    if removed and not (held - set(removed)):
        raise FormErrors([gettext("Attendees: to remove everyone, cancel the event.")])
    roles = tuple(
        (p.address, p.role)
        for p in after.attendees
        if any(
            h.address.lower() == p.address.lower() and h.role != p.role for h in before.attendees
        )
    )
    if roles:
        found["roles"] = roles
    rsvps = tuple(
        (p.address, p.rsvp == "TRUE")
        for p in after.attendees
        if any(
            h.address.lower() == p.address.lower() and h.rsvp != p.rsvp for h in before.attendees
        )
    )
    if rsvps:
        found["rsvps"] = rsvps
    if added:
        found["invitees"] = added
    if removed:
        found["removed"] = removed
    return found


def _facts(stored: ItipObject, source: Component, floor: int) -> list[tuple[str, str]]:
    """Every property of the event, as (name, text), for the page; SEQUENCE
    the highest sent (``floor``: of the CANCELs of single instances)."""
    sequence = max(floor, *(sequence_of(c) for c in stored.components))
    found = [("UID", stored.uid), ("SEQUENCE", str(sequence))]
    for name, value in source.property_items(recursive=False):
        if name in ("BEGIN", "END", "ATTENDEE", "UID", "SEQUENCE"):
            continue
        text = value.to_ical() if hasattr(value, "to_ical") else value
        text = text.decode() if isinstance(text, bytes) else str(text)
        params = getattr(value, "params", {})
        if "TZID" in params:
            text = f"{text} ({params['TZID']})"
        found.append((name, text))
    return found


def _people(source: Component) -> list[dict[str, str]]:
    return [
        {
            "address": mail_address_of(a),
            "role": str(a.params.get("ROLE", "REQ-PARTICIPANT")),
            "cutype": str(a.params.get("CUTYPE", "INDIVIDUAL")),
            "partstat": str(a.params.get("PARTSTAT", "NEEDS-ACTION")),
        }
        for a in attendees_of(source)
    ]


def _rule_text(source: Component) -> str:
    rule = source.get("RRULE")
    if rule is None:
        return ""
    text = rule.to_ical()
    return text.decode() if isinstance(text, bytes) else str(text)


def _form_page(
    template: str,
    address: str,
    values: EventForm,
    errors: Sequence[str] = (),
    preview: organising.Draft | None = None,
    checked: Checked | None = None,
) -> str:
    described = upcoming = None
    if preview is not None:
        described = eventform.describe(preview.rrule, preview.start, language.code())
        upcoming = eventform.upcoming(preview)
    named = {p.address.lower() for p in values.attendees}
    rooms = [(r, r.address.lower() in named) for r in resources(_hooks().site())]
    return render_template(
        template,
        address=address,
        values=values,
        errors=list(errors),
        described=described,
        upcoming=upcoming,
        rooms=rooms,
        checked=checked,
        **_choices(),
    )


@dataclass(frozen=True)
class Checked:
    """The dry run of the rooms invited: what each resource of the site
    would answer, and the attendees named as rooms or resources that are
    not this site's (nobody can say what they would answer)."""

    forecasts: list[RoomForecast]
    elsewhere: list[str]


def _check(site: Site, user: str, message: bytes, values: EventForm) -> Checked:
    """What the site's resources among the attendees would answer to
    ``message`` (:func:`imiptools.views.roomcheck.check_rooms`: nothing is
    written or sent)."""
    named = {p.address.lower(): p for p in values.attendees}
    rooms = [r for r in resources(site) if r.address.lower() in named]
    known = {r.address.lower() for r in rooms}
    elsewhere = [
        p.address
        for key, p in named.items()
        if key not in known and p.cutype in ("ROOM", "RESOURCE")
    ]
    sender = user.removeprefix("mailto:")
    return Checked(check_rooms(site, message, sender, rooms), elsewhere)


def _check_update(
    site: Site, user: str, stored: ItipObject, revision: Revision, values: EventForm
) -> Checked:
    """:func:`_check` for the update ``revision`` would send (RFC 5546
    §3.2.2: the rooms see it as an update of their booking)."""
    calendar = organising.revised(stored, revision, site.clock.now())
    event = calendar.walk("VEVENT")[0]
    invited = organising.recipients_of(event, user)
    title = text_of(event, "SUMMARY") or "(no title)"
    message = _message(site, user, calendar, invited, f"Updated: {title}", _event_text(event))
    return _check(site, user, message, values)


def _kinds(found: Sequence[Resource]) -> dict[str, str]:
    """The site's resources by address (lower case): their CUTYPE."""
    return {r.address.lower(): r.cutype for r in found}


def _choices() -> dict[str, Any]:
    return {
        "zones": eventform.zones(),
        "weekdays": list(zip(eventform.WEEKDAYS, eventform.WEEKDAY_NAMES, strict=True)),
        "class_choices": CLASS_CHOICES,
        "status_choices": STATUS_CHOICES,
        "transp_choices": TRANSP_CHOICES,
        "priority_choices": PRIORITY_CHOICES,
        "role_choices": ROLE_CHOICES,
        "cutype_choices": CUTYPE_CHOICES,
        "freq_choices": FREQ_CHOICES,
        "ends_choices": ENDS_CHOICES,
        "room_role_choices": ROOM_ROLE_CHOICES,
        "rsvp_choices": RSVP_CHOICES,
    }


def _send(
    site: Site, user: str, calendar: Calendar, to: list[str], subject: str, text: str
) -> bool:
    """Compose the iMIP message (RFC 6047) and send it as ``user`` sends
    (:func:`~imiptools.answering.send_as`); flash what went wrong."""
    message = _message(site, user, calendar, to, subject, text)
    try:
        result = answering.send_as(site, user, message, to, _hooks().sender())
    except DeliveryFailed as exc:  # recorded and spooled: the outbox keeps it
        log.warning("user=%s message spooled, not yet sent: %s", user, exc)
        flash(
            gettext(
                "Recorded; the mail system did not take the message yet, it waits in the outbox."
            )
        )
        return False
    except ImipError as exc:
        log.warning("user=%s sending failed: %s", user, exc)
        flash(gettext("Not sent: the calendar is busy or unavailable; try again."))
        return False
    if result.code:
        flash(gettext("Not sent: {reason}").format(reason=result.status))
        return False
    return True


def _message(
    site: Site, user: str, calendar: Calendar, to: list[str], subject: str, text: str
) -> bytes:
    """The iMIP message (RFC 6047) ``user`` sends to ``to``."""
    address = user.removeprefix("mailto:")
    return build_message(
        from_addr=address,
        to_addrs=to or [address],
        subject=subject,
        text=text,
        calendar=serialise(calendar),
        method=str(calendar.get("METHOD", "")),
        auto_submitted="",  # a person sends it
        date=site.clock.now(),
        message_id_domain=_domain(user),
    )


def _event_text(event: Component) -> str:
    """The text part of an invitation: what, when, how often, where."""
    start, end = event.decoded("DTSTART"), event.decoded("DTEND")
    lines = [text_of(event, "SUMMARY"), f"When: {_when(start)} to {_when(end)}"]
    rule = _rule_text(event)
    if rule:
        lines.append(f"Repeats: {eventform.describe(rule, start)} ({rule})")
    if "LOCATION" in event:
        lines.append(f"Where: {text_of(event, 'LOCATION')}")
    if "DESCRIPTION" in event:
        lines += ["", text_of(event, "DESCRIPTION")]
    return "\n".join(lines) + "\n"


def _when(moment: date | datetime) -> str:
    if isinstance(moment, datetime):
        return moment.strftime("%A %d %B %Y %H:%M %Z").strip()
    return moment.strftime("%A %d %B %Y")


def _cn(site: Site, user: str) -> str:
    return site.preferences_of(user).get("CN") or ""


def _domain(user: str) -> str:
    return user.removeprefix("mailto:").rpartition("@")[2] or "localhost"


def _zone_name(records: UserRecords) -> str:
    name = getattr(records.zone, "key", None) or str(records.zone)
    return str(name) if str(name) in eventform.zones() else "UTC"
