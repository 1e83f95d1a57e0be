"""What an organiser sends about part of a series: one instance changed,
this and the following ones split off, a date excluded or restored.

- :func:`occurrence`: the component of one occurrence (the stored
  override, or one made from the master, RFC 5545 §3.8.4.4);
- :func:`instance_update`: the REQUEST carrying only that overridden
  instance (RFC 5546 §3.2.2, "the Organizer MAY ... an instance"). The
  instance alone, not the master with it: attendees keep their answer to
  the series, and every peer handles it (Exchange and Outlook, Google,
  Thunderbird, Apple, and this agent's ``imip-person`` and
  ``imip-resource``, which decide on that instance alone);
- :func:`split`: "this and following" as two series (RFC 5546 has no
  ``RANGE=THISANDFUTURE`` REQUEST that clients handle alike, so the split
  is the one they all understand, as Google, Apple and Thunderbird make
  it): the old series ends just before the occurrence (UNTIL, RFC 5545
  §3.3.10, sent as a REQUEST with a higher SEQUENCE), and a new UID holds
  the rest, with the overrides, exceptions and extra dates from then on.
  They are linked by RELATED-TO (RFC 5545 §3.8.4.5) with the relation
  types of RFC 9253 §8 (and JSCalendar's, RFC 8984 §4.1.3): the old series
  names the new one ``RELTYPE=NEXT``, the new one names the first of the
  chain ``RELTYPE=FIRST``. The new series may have its own rule and its
  own attendees (:data:`SPLIT_FIELDS`; :func:`following_rule` is the rule
  it has unless changed): the old series goes to everyone it had, so an
  attendee left out of the new one keeps the occurrences before and hears
  of no later ones, and the new series goes to its own attendees only;
- :func:`exclusion`: the :class:`~imiptools.itip.organising.Revision`
  adding an EXDATE (RFC 5545 §3.8.5.1) for one occurrence, or taking it
  away again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from uuid import uuid4

from dateutil.rrule import rrulestr
from icalendar import Calendar, Component, Event, vRecur, vText

from imiptools.dates import format_recurrence_id, parse_recurrence_id, to_utc
from imiptools.errors import CalendarDataError
from imiptools.itip.instances import (
    Moment,
    cancelled_exdates,
    carried,
    next_sequence,
    occurs,
    offset,
    rewrite_dates,
)
from imiptools.itip.merge import copy_component, instance_of
from imiptools.itip.objects import (
    ItipObject,
    attendees_of,
    mail_address_of,
    make_calendar,
    recurrence_id_of,
)
from imiptools.itip.organising import (
    Revision,
    _apply,
    _as_draft,
    _ask_again,
    _invited,
    _stamp,
    check_draft,
    set_attendee_params,
)
from imiptools.itip.timing import date_values

#: The fields one instance may change (those of the event form that an
#: instance has: RFC 5545 §3.8.4.4 lets an override change any, the
#: attendees and the rule stay the series').
INSTANCE_FIELDS = ("summary", "start", "end", "location", "description")
#: The fields "this and following" may change: an instance's, and the new
#: series' own rule (``rrule``), attendees added (``invitees``), left out
#: (``removed``), their roles (``roles``) and RSVP (``rsvps``).
SPLIT_FIELDS = (*INSTANCE_FIELDS, "rrule", "invitees", "removed", "roles", "rsvps")
#: RFC 9253 §8 relation types linking the parts of a split series.
NEXT, FIRST = "NEXT", "FIRST"


def occurrence(stored: ItipObject, rid: str, zone: tzinfo = UTC) -> Component | None:
    """The component of occurrence ``rid`` (normalised RECURRENCE-ID in
    ``zone``): the stored override, else one made from the master for an
    occurrence of its series (its RECURRENCE-ID in DTSTART's zone); None
    for anything else."""
    for override in stored.overrides:
        if recurrence_id_of(override, zone) == rid:
            return override
    master = stored.master
    if master is None or not occurs(master, rid, zone):
        return None
    return instance_of(master, _in_series_zone(master, parse_recurrence_id(rid)))


def _in_series_zone(master: Component, moment: Moment) -> Moment:
    start = master.decoded("DTSTART")
    if isinstance(moment, datetime) and isinstance(start, datetime) and start.tzinfo:
        return moment.astimezone(start.tzinfo)
    return moment


def instance_update(
    stored: ItipObject,
    instance: Component,
    change: Revision,
    stamp: datetime,
    *,
    floor: int = -1,
) -> Calendar:
    """The REQUEST changing one instance (RFC 5546 §3.2.2, RFC 5545
    §3.8.4.4): ``instance`` (from :func:`occurrence`) with ``change``
    applied, only :data:`INSTANCE_FIELDS`; SEQUENCE one more than every
    one sent (:func:`~imiptools.itip.instances.next_sequence`); a new time
    asks every attendee but the organiser again, for this instance.
    Raises ValueError for another field, or an instance that is no event."""
    _instance_fields_only(change)
    event = copy_component(instance)
    _apply(event, change)
    check_draft(_as_draft(event))
    _stamp(event, next_sequence(stored, floor), stamp)
    if change.start is not None or change.end is not None:
        _ask_again(event)
    calendar = make_calendar([event], "REQUEST", list(stored.timezones))
    if isinstance(event.decoded("DTSTART"), datetime):
        calendar.add_missing_timezones()
    return calendar


def _instance_fields_only(change: Revision) -> None:
    """ValueError unless ``change`` changes only :data:`INSTANCE_FIELDS`."""
    rest = replace(change, summary=None, start=None, end=None, location=None, description=None)
    if rest != Revision():
        raise ValueError("only the summary, the time, the location and the description")


def _split_fields_only(change: Revision) -> None:
    """ValueError unless ``change`` changes only :data:`SPLIT_FIELDS`, and
    leaves the new series a rule."""
    _instance_fields_only(replace(change, rrule=None, invitees=(), removed=(), roles=(), rsvps=()))
    if change.rrule == "":
        raise ValueError("the following occurrences need a rule")


def exclusion(
    master: Component, rid: str, cancelled: tuple[str, ...], zone: tzinfo, exclude: bool
) -> Revision:
    """The revision whose EXDATEs (RFC 5545 §3.8.5.1) are ``master``'s, the
    instances ``cancelled`` one by one, and, with ``exclude``, occurrence
    ``rid``, or, without, all but ``rid`` (restored)."""
    held = _exdates(master)
    known = {r for r, _ in held}
    fresh = cancelled_exdates(master, [c for c in cancelled if c not in known], zone)
    held += [(format_recurrence_id(v, UTC), v) for v in fresh]
    kept = [(r, v) for r, v in held if r != rid]
    if exclude:
        same = [(r, v) for r, v in held if r == rid][:1]
        kept += same or [(rid, v) for v in cancelled_exdates(master, [rid], zone)]
    return Revision(exdates=tuple(v for _, v in sorted(kept, key=lambda p: p[0])))


def _exdates(master: Component) -> list[tuple[str, Moment]]:
    try:
        values = [v for v in date_values(master, "EXDATE") if not isinstance(v, tuple)]
    except CalendarDataError:
        return []
    return [(format_recurrence_id(v, UTC), v) for v in values]


def split(
    stored: ItipObject,
    rid: str,
    change: Revision,
    stamp: datetime,
    *,
    domain: str,
    zone: tzinfo = UTC,
    floor: int = -1,
    cancelled: tuple[str, ...] = (),
    uid: str = "",
) -> tuple[Calendar, Calendar]:
    """ "This and following" from occurrence ``rid``: the REQUEST ending
    the old series just before it, and the REQUEST of the new series (UID
    ``uid``, else made in ``domain``) from it on, with ``change``
    (:data:`SPLIT_FIELDS`) applied (see the module).

    The old series keeps the overrides, EXDATEs, RDATEs and the instances
    cancelled one by one (as EXDATEs) before ``rid``; the new one takes
    those from ``rid`` on, moved as ``change`` moves its start (an
    override that is no occurrence of a new rule is left out). The new
    series keeps the attendees and their answers (PARTSTAT), but those
    ``change`` removes, and invites those it adds (NEEDS-ACTION, RSVP);
    when its time or its rule changes, everyone is asked again (RFC 5546
    §2.1.4). Raises ValueError when ``rid`` is no occurrence, is the first
    (change the series instead), ``change`` is not one of
    :data:`SPLIT_FIELDS`, takes the rule away, removes someone who is no
    attendee or adds someone who is one already.
    """
    master = stored.master
    if master is None or not occurs(master, rid, zone):
        raise ValueError("not an occurrence of the series")
    moment = _in_series_zone(master, parse_recurrence_id(rid))
    start = master.decoded("DTSTART")
    if to_utc(moment, zone) <= to_utc(start, zone):
        raise ValueError("the first occurrence: change the whole series instead")
    _split_fields_only(change)
    new_uid = uid or f"{uuid4()}@{domain}"
    sequence = next_sequence(stored, floor)
    before = [o for o in stored.overrides if not _at_or_after(o, moment, zone)]
    after = [o for o in stored.overrides if _at_or_after(o, moment, zone)]
    gone = [c for c in cancelled if _rid_at_or_after(c, moment, zone)]
    kept = [c for c in cancelled if c not in gone]
    old = _ended(master, moment, new_uid, kept, zone)
    _stamp(old, sequence, stamp)
    old_calendar = _calendar(
        stored,
        old,
        carried(before, master, old, sequence=sequence, stamp=stamp, significant=False, zone=zone),
    )
    new = _rest(stored, master, moment, change, new_uid, gone, zone)
    _stamp(new, 0, stamp)
    by = offset(moment, new.decoded("DTSTART")) or timedelta(0)
    moved = change.start is not None or change.end is not None
    significant = moved or change.rrule is not None
    if change.rrule is not None or (moved and (by or _length_changed(master, new))):
        _ask_again(new)
    overrides = carried(
        after, master, new, sequence=0, stamp=stamp, significant=significant, zone=zone, by=by
    )
    return old_calendar, _calendar(stored, new, overrides)


def _calendar(stored: ItipObject, event: Component, overrides: list[Event]) -> Calendar:
    calendar = make_calendar([event, *overrides], "REQUEST", list(stored.timezones))
    if isinstance(event.decoded("DTSTART"), datetime):
        calendar.add_missing_timezones()
    return calendar


def _at_or_after(component: Component, moment: Moment, zone: tzinfo) -> bool:
    return _rid_at_or_after(recurrence_id_of(component, zone), moment, zone)


def _rid_at_or_after(rid: str, moment: Moment, zone: tzinfo) -> bool:
    try:
        return to_utc(parse_recurrence_id(rid), zone) >= to_utc(moment, zone)
    except ValueError:
        return False


def _ended(
    master: Component, moment: Moment, new_uid: str, cancelled: list[str], zone: tzinfo
) -> Component:
    """The old series: its rule ends just before ``moment`` (UNTIL, in UTC
    for a timed series, RFC 5545 §3.3.10; COUNT gives way), its later
    EXDATEs and RDATEs gone, its instances cancelled before as EXDATEs,
    and ``RELATED-TO;RELTYPE=NEXT`` the new series."""
    event = copy_component(master)
    if "RRULE" in event:
        rule = vRecur.from_ical(_rule_text(event))
        rule.pop("COUNT", None)
        if isinstance(moment, datetime):
            rule["UNTIL"] = [to_utc(moment, zone) - timedelta(seconds=1)]
        else:
            rule["UNTIL"] = [moment - timedelta(days=1)]
        event.pop("RRULE")
        event.add("RRULE", rule)
    for name in ("EXDATE", "RDATE"):
        _keep_dates(event, name, lambda v: not _is_at_or_after(v, moment, zone))
    exdates = cancelled_exdates(event, cancelled, zone)
    if exdates:
        event.add("EXDATE", exdates)
    _relate(event, NEXT, new_uid, drop=(NEXT,))
    return event


def _rest(
    stored: ItipObject,
    master: Component,
    moment: Moment,
    change: Revision,
    new_uid: str,
    cancelled: list[str],
    zone: tzinfo,
) -> Component:
    """The new series: the master from ``moment`` on (DTSTART ``moment``, a
    COUNT less the occurrences before it), ``change`` applied, the earlier
    EXDATEs and RDATEs gone, the cancelled instances from then on as
    EXDATEs, every list moved as the start moves, and
    ``RELATED-TO;RELTYPE=FIRST`` the first series of the chain."""
    event = copy_component(master)
    length = event.decoded("DTEND") - event.decoded("DTSTART") if "DTEND" in event else None
    event.pop("UID")
    event.add("UID", new_uid)
    for name in ("DTSTART", "DTEND"):
        event.pop(name, None)
    event.add("DTSTART", moment)
    if length is not None:
        event.add("DTEND", moment + length)
    if "RRULE" in event:
        _count_rest(event, master, moment)
    for name in ("EXDATE", "RDATE"):
        _keep_dates(event, name, lambda v: _is_at_or_after(v, moment, zone))
    exdates = cancelled_exdates(event, cancelled, zone)
    if exdates:
        event.add("EXDATE", exdates)
    _apply(event, change)
    check_draft(_as_draft(event))
    _change_attendees(event, change)
    by = offset(moment, event.decoded("DTSTART"))
    if by:
        frame = moment.tzinfo if isinstance(moment, datetime) else None
        for name in ("EXDATE", "RDATE"):
            _keep_dates(event, name, lambda v: True, by=by, zone=frame)
    _relate(event, FIRST, _first_of(stored), drop=(FIRST,))
    return event


def _change_attendees(event: Component, change: Revision) -> None:
    """The new series' attendees: those ``change`` removes left out, those
    it adds invited (:func:`~imiptools.itip.organising._invited`), the
    roles it names set; ValueError for someone removed who is no attendee,
    or added who is one already."""
    held = {mail_address_of(a): a for a in attendees_of(event)}
    gone = {mail_address_of(a) for a in change.removed}
    if gone - set(held):
        raise ValueError("not an attendee: " + ", ".join(sorted(gone - set(held))))
    added = [i for i in change.invitees if mail_address_of(i.address) in held]
    if added:
        raise ValueError("an attendee already: " + ", ".join(i.address for i in added))
    if gone:
        event.pop("ATTENDEE", None)
        for address, attendee in held.items():
            if address not in gone:
                event.add("ATTENDEE", attendee)
    for invitee in change.invitees:
        event.add("ATTENDEE", _invited(invitee))
    set_attendee_params(event, change.roles, change.rsvps)


def following_rule(stored: ItipObject, rid: str, zone: tzinfo = UTC) -> str:
    """The RRULE the new series of a split from occurrence ``rid`` has
    unless the organiser changes it (the series' own, a COUNT less the
    occurrences before; '' for a series without a rule)."""
    master = stored.master
    if master is None or "RRULE" not in master:
        return ""
    moment = _in_series_zone(master, parse_recurrence_id(rid))
    event = copy_component(master)
    _count_rest(event, master, moment)
    return _rule_text(event)


def _count_rest(event: Component, master: Component, moment: Moment) -> None:
    """A COUNT less the rule's occurrences before ``moment`` (RFC 5545
    §3.3.10: DTSTART counts as the first)."""
    rule = vRecur.from_ical(_rule_text(master))
    if "COUNT" not in rule:
        return
    start = master.decoded("DTSTART")
    anchor = start if isinstance(start, datetime) else datetime.combine(start, datetime.min.time())
    until = moment if isinstance(moment, datetime) else datetime.combine(moment, anchor.time())
    before = sum(1 for o in rrulestr(f"RRULE:{_rule_text(master)}", dtstart=anchor) if o < until)
    rule["COUNT"] = [max(1, int(rule["COUNT"][0]) - before)]
    event.pop("RRULE")
    event.add("RRULE", rule)


def _rule_text(event: Component) -> str:
    text = event["RRULE"].to_ical()
    return text.decode() if isinstance(text, bytes) else str(text)


def _length_changed(master: Component, new: Component) -> bool:
    if "DTEND" not in master or "DTEND" not in new:
        return False
    old = master.decoded("DTEND") - master.decoded("DTSTART")
    return bool(old != new.decoded("DTEND") - new.decoded("DTSTART"))


def _is_at_or_after(value: object, moment: Moment, zone: tzinfo) -> bool:
    start = value[0] if isinstance(value, tuple) else value
    if not isinstance(start, date):
        return False
    return to_utc(start, zone) >= to_utc(moment, zone)


def _keep_dates(
    event: Component,
    name: str,
    keep: Callable[[object], bool],
    *,
    by: timedelta | None = None,
    zone: tzinfo | None = None,
) -> None:
    """Keep the values of ``name`` that ``keep`` (a predicate) keeps,
    moved ``by`` when given."""
    rewrite_dates(event, name, keep=keep, by=by, zone=zone)


def _first_of(stored: ItipObject) -> str:
    """The UID of the first series of a chain of splits: the one the
    master names ``RELTYPE=FIRST``, else its own."""
    for uid, reltype in _relations(stored.master or stored.first):
        if reltype == FIRST:
            return uid
    return stored.uid


def _relations(event: Component) -> list[tuple[str, str]]:
    found = event.get("RELATED-TO")
    items = found if isinstance(found, list) else [found] if found is not None else []
    return [(str(i), str(getattr(i, "params", {}).get("RELTYPE", "PARENT")).upper()) for i in items]


def _relate(event: Component, reltype: str, uid: str, drop: tuple[str, ...]) -> None:
    """``RELATED-TO;RELTYPE=reltype:uid`` (RFC 5545 §3.8.4.5, RFC 9253),
    the relations of the types ``drop`` taken away first."""
    kept = [(u, r) for u, r in _relations(event) if r not in drop]
    event.pop("RELATED-TO", None)
    for other, kind in [*kept, (uid, reltype)]:
        value = vText(other)
        value.params["RELTYPE"] = kind
        event.add("RELATED-TO", value)
