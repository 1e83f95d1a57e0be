"""The resource handler: a room, car or projector that answers by itself.

Dispatch is by (component, METHOD) to a method named after both
(``vevent_request``). RFC 5546 roles: the resource is an ATTENDEE; it
answers REQUEST with REPLY (§3.2.3), ADD per ``add_method_response``
(§3.2.4: REFRESH by default, §3.2.7), applies CANCEL (§3.2.5), and answers
VFREEBUSY REQUEST (§3.3.2). Stale or duplicate versions change nothing and
send nothing new; every path ends by re-deriving the event's free/busy from
what is stored, so an interrupted earlier run converges.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta

from icalendar import Component

from imiptools.dates import to_utc
from imiptools.errors import CalendarDataError
from imiptools.handlers.common import Outgoing, Unit
from imiptools.itip import replies
from imiptools.itip.objects import (
    ItipObject,
    address,
    find_attendee,
    is_newer,
    is_this_and_future,
    make_calendar,
    organizer_of,
    recurrence_id_of,
    sent_by_of,
    text_of,
    to_text,
    version_key,
)
from imiptools.itip.recurrence import Instance
from imiptools.periods import Period
from imiptools.scheduling import Answer, Decision, Request, decide, parse_function_lines

log = logging.getLogger(__name__)

#: The longest VFREEBUSY range answered (bounded work per request).
MAX_FREEBUSY_RANGE = timedelta(days=5 * 366)


class ResourceHandler:
    """Handles the scheduling objects of one message for one resource."""

    def __init__(self, unit: Unit) -> None:
        self.unit = unit
        self.records = unit.records

    def handle(self, obj: ItipObject) -> None:
        """Dispatch ``obj`` by component and METHOD; unknown pairs are logged."""
        name = f"{obj.kind}_{obj.method}".lower().replace("-", "_")
        method: Callable[[ItipObject], None] | None = getattr(self, name, None)
        if method is None:
            self.unit.decision(obj.uid, "", "ignored", "method", f"{obj.kind} {obj.method}")
            return
        method(obj)

    # -- REQUEST -----------------------------------------------------------

    def vevent_request(self, obj: ItipObject) -> None:
        """Answer an invitation, an update, or an instance update."""
        self._check_usable(obj)
        if not any(find_attendee(c, self.unit.user) for c in obj.components):
            self.unit.decision(obj.uid, "", "ignored", "not-invited", "not an attendee")
            return
        stored = self.records.stored(obj.uid)
        if stored is not None and not self._authorised(stored.first, obj.first):
            return
        if obj.master is None:
            for component in obj.overrides:
                self._instance_request(obj, component)
        elif self._is_new_version(obj.uid, obj.master, stored):
            self._book(obj, obj.components, full=True)
        self.records.refresh_freebusy(obj.uid)

    def _instance_request(self, obj: ItipObject, component: Component) -> None:
        rid = recurrence_id_of(component, self.unit.zone)
        current = self.records.stored_version(obj.uid, rid)
        if current is not None and not self._newer_or_log(obj.uid, rid, component, current):
            return
        single = ItipObject(obj.method, obj.kind, obj.uid, [component], obj.timezones)
        self._book(single, [component], full=False)

    def _book(self, obj: ItipObject, components: Sequence[Component], full: bool) -> None:
        decision = self._schedule(obj, full)
        rid = "" if full else recurrence_id_of(components[0], self.unit.zone)
        self.unit.decision(obj.uid, rid, decision.answer, decision.code, decision.reason)
        self._reply(obj, components, decision)
        for component in components:
            attendee = find_attendee(component, self.unit.user)
            if attendee is not None:
                attendee.params["PARTSTAT"] = str(decision.answer)
        if full:
            self.records.save(obj)
        else:
            self.records.save_instance(obj.uid, components[0], obj.timezones)

    def _schedule(self, obj: ItipObject, full: bool) -> Decision:
        now, unit = self.unit.now, self.unit
        limits = self.records.limits(now, now + unit.settings.window)
        expansion = self.records.expand(obj, limits, () if full else None)
        if expansion.truncated and expansion.reason != "window":
            return Decision(
                Answer.DECLINED,
                "too-many-instances",
                f"the event recurs too often to be checked ({expansion.reason})",
            )
        future = [i for i in expansion.instances if i.end > now]
        if not future:
            return self._nothing_to_book(obj)
        lines = parse_function_lines(unit.preferences.get("scheduling_function"))
        return decide(self._request(obj, future), lines)

    def _nothing_to_book(self, obj: ItipObject) -> Decision:
        """No instance between now and the window's end: past, or too far ahead."""
        try:
            first = to_utc(obj.first.decoded("DTSTART"), self.unit.zone)
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise CalendarDataError("event without a usable DTSTART") from exc
        if first < self.unit.now:
            return Decision(Answer.DECLINED, "past", "the event is in the past")
        days = self.unit.settings.window.days
        return Decision(
            Answer.DECLINED,
            "outside-window",
            f"the event does not occur within the next {days} days",
        )

    def _request(self, obj: ItipObject, instances: list[Instance]) -> Request:
        start = min(i.start for i in instances)
        end = max(i.end for i in instances)
        return Request(
            resource=self.unit.user,
            organiser=organizer_of(obj.first),
            uid=obj.uid,
            summary=text_of(obj.first, "SUMMARY"),
            instances=instances,
            busy=self.records.busy_between(start, end, exclude_uid=obj.uid),
            now=self.unit.now,
            zone=self.unit.zone,
        )

    def _reply(self, obj: ItipObject, components: Sequence[Component], decision: Decision) -> None:
        organiser = organizer_of(obj.first)
        if not self.unit.may_answer(organiser):
            return
        stamp = self.unit.now
        answers = [
            replies.reply_component(
                c,
                self.unit.user,
                str(decision.answer),
                stamp,
                comment=decision.reason,
                sent_by=self.unit.sent_by,
            )
            for c in components
            if find_attendee(c, self.unit.user) is not None
        ]
        summary = text_of(obj.first, "SUMMARY") or "(no title)"
        verb = "accepted" if decision.answer is Answer.ACCEPTED else "declined"
        self.unit.send(
            Outgoing(
                key=self.unit.key(obj.uid, [version_key(c) for c in components], "REPLY"),
                recipients=[organiser],
                subject=f"{verb.capitalize()}: {summary}",
                text=self._text(obj, components, verb, decision),
                calendar=replies.reply(answers),
                method="REPLY",
            )
        )

    def _text(
        self, obj: ItipObject, components: Sequence[Component], verb: str, decision: Decision
    ) -> str:
        attendee = find_attendee(components[0], self.unit.user)
        invited_as = str(attendee.params.get("CN", "")) if attendee is not None else ""
        name = self.unit.preferences.get("CN") or invited_as or self.unit.address
        summary = text_of(obj.first, "SUMMARY") or "(no title)"
        when = self._when(components[0])
        return (
            f'{name} has {verb} the invitation "{summary}"{when}.\n'
            f"Reason: {decision.reason}.\n\n"
            "This answer was sent automatically by the resource's booking agent.\n"
        )

    def _when(self, component: Component) -> str:
        try:
            start = component.decoded(
                "RECURRENCE-ID" if "RECURRENCE-ID" in component else "DTSTART"
            )
        except (KeyError, ValueError, TypeError, AttributeError):
            return ""
        if not isinstance(start, datetime) and isinstance(start, date):
            return f" on {start.isoformat()}"
        begin = to_utc(start, self.unit.zone).astimezone(self.unit.zone)
        return f" starting {begin:%Y-%m-%d %H:%M %Z}"

    # -- CANCEL ------------------------------------------------------------

    def vevent_cancel(self, obj: ItipObject) -> None:
        """Cancel the whole booking or some instances (RFC 5546 §3.2.5)."""
        stored = self.records.stored(obj.uid) if obj.uid else None
        if stored is None:
            self.unit.decision(obj.uid, "", "ignored", "unknown", "cancel of an unknown event")
        elif self._authorised(stored.first, obj.first):
            if obj.master is not None:
                self._cancel_whole(obj, stored)
            else:
                for component in obj.overrides:
                    self._cancel_instance(obj, stored, component)
        if obj.uid:
            self.records.refresh_freebusy(obj.uid)

    def _cancel_whole(self, obj: ItipObject, stored: ItipObject) -> None:
        assert obj.master is not None
        if stored.master is not None and version_key(obj.master)[0] < version_key(stored.master)[0]:
            self.unit.decision(obj.uid, "", "ignored", "stale", "cancel of an older version")
            return
        text = to_text(make_calendar(obj.components, "CANCEL", obj.timezones))
        self.unit.records.store.cancel_object(self.unit.user, obj.uid, text)
        self.unit.decision(obj.uid, "", "cancelled", "cancel", "the organiser cancelled")

    def _cancel_instance(self, obj: ItipObject, stored: ItipObject, component: Component) -> None:
        rid = recurrence_id_of(component, self.unit.zone)
        rids = [rid]
        if is_this_and_future(component):
            limits = self.records.limits()
            rids += [
                i.recurrenceid
                for i in self.records.expand(stored, limits).instances
                if i.recurrenceid > rid and len(i.recurrenceid) == len(rid)
            ]
        text = to_text(make_calendar([component], "CANCEL", obj.timezones))
        for each in rids:
            self.unit.records.store.cancel_recurrence(self.unit.user, obj.uid, each, text)
        self.unit.decision(obj.uid, rid, "cancelled", "cancel", f"{len(rids)} instance(s)")

    # -- ADD -----------------------------------------------------------------

    def vevent_add(self, obj: ItipObject) -> None:
        """ADD (RFC 5546 §3.2.4): per ``add_method_response``; unknown -> REFRESH."""
        self._check_usable(obj)
        response = self.unit.preferences.get("add_method_response")
        stored = self.records.stored(obj.uid)
        if response == "ignore" and stored is not None:
            self.unit.decision(obj.uid, "", "ignored", "add-ignored", "add_method_response")
        elif response == "refresh" or stored is None:
            self._refresh(obj)
        elif self._authorised(stored.first, obj.first):
            for component in obj.components:
                self._add_instance(obj, component)
            self.records.refresh_freebusy(obj.uid)

    def _add_instance(self, obj: ItipObject, component: Component) -> None:
        if "RECURRENCE-ID" not in component and "DTSTART" in component:
            component.add("RECURRENCE-ID", component.decoded("DTSTART"))
        self._instance_request(obj, component)

    def _refresh(self, obj: ItipObject) -> None:
        organiser = organizer_of(obj.first)
        self.unit.decision(obj.uid, "", "refresh", "add", "asking the organiser for the event")
        if not self.unit.may_answer(organiser):
            return
        summary = text_of(obj.first, "SUMMARY") or "(no title)"
        self.unit.send(
            Outgoing(
                key=self.unit.key(obj.uid, version_key(obj.first), "REFRESH"),
                recipients=[organiser],
                subject=f"Refresh: {summary}",
                text=f'Please send the complete, current version of "{summary}".\n',
                calendar=replies.refresh(
                    obj.first, self.unit.user, self.unit.now, self.unit.sent_by
                ),
                method="REFRESH",
            )
        )

    # -- free/busy -----------------------------------------------------------

    def vfreebusy_request(self, obj: ItipObject) -> None:
        """Answer with the busy periods in the asked range (RFC 5546 §3.3.2)."""
        component = obj.first
        try:
            start = to_utc(component.decoded("DTSTART"), self.unit.zone)
            end = to_utc(component.decoded("DTEND"), self.unit.zone)
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise CalendarDataError("VFREEBUSY request without a usable range") from exc
        end = min(end, start + MAX_FREEBUSY_RANGE)
        organiser = organizer_of(component)
        self.unit.decision(obj.uid, "", "freebusy", "request", f"{start:%Y-%m-%d}..{end:%Y-%m-%d}")
        if end <= start or not self.unit.may_answer(organiser):
            return
        periods = self.records.busy_between(start, end)
        self.unit.send(
            Outgoing(
                key=self.unit.key(obj.uid, start, end, "FREEBUSY"),
                recipients=[organiser],
                subject=f"Free/busy: {self.unit.address}",
                text=f"Busy times of {self.unit.address} from {start:%Y-%m-%d %H:%M} to "
                f"{end:%Y-%m-%d %H:%M} UTC are attached.\n",
                calendar=replies.freebusy_reply(
                    component, self.unit.user, periods, self.unit.now, start, end
                ),
                method="REPLY",
            )
        )

    def vfreebusy_reply(self, obj: ItipObject) -> None:
        """Record another user's free/busy (it never replaces our own)."""
        component = obj.first
        attendees = component.get("ATTENDEE")
        other = address(attendees[0] if isinstance(attendees, list) else attendees)
        self._store_other(other or organizer_of(component), component)

    def vfreebusy_publish(self, obj: ItipObject) -> None:
        """Record a published free/busy under its organiser."""
        self._store_other(organizer_of(obj.first), obj.first)

    def _store_other(self, other: str, component: Component) -> None:
        if not other or other == self.unit.address:
            return
        periods = freebusy_periods(component)
        self.records.store.set_freebusy_other(self.unit.user, f"mailto:{other}", periods)
        self.unit.decision("", "", "stored", "freebusy-other", f"{len(periods)} periods of {other}")

    # -- checks --------------------------------------------------------------

    def _check_usable(self, obj: ItipObject) -> None:
        if not obj.uid:
            raise CalendarDataError(f"{obj.method} without UID")
        if not organizer_of(obj.first):
            raise CalendarDataError(f"{obj.method} without ORGANIZER")

    def _is_new_version(self, uid: str, master: Component, stored: ItipObject | None) -> bool:
        cancelled = self.records.store.get_cancelled_object(self.unit.user, uid)
        if stored is None and cancelled is not None:
            for old in _components(cancelled):
                if version_key(master)[0] < version_key(old)[0]:
                    self.unit.decision(uid, "", "ignored", "stale", "older than its cancellation")
                    return False
            return True
        current = stored.master if stored is not None else None
        return current is None or self._newer_or_log(uid, "", master, current)

    def _newer_or_log(self, uid: str, rid: str, incoming: Component, stored: Component) -> bool:
        if is_newer(incoming, stored):
            return True
        same = version_key(incoming) == version_key(stored)
        self.unit.decision(
            uid,
            rid,
            "ignored",
            "duplicate" if same else "stale",
            "already processed" if same else "older than the stored version",
        )
        return False

    def _authorised(self, stored: Component, incoming: Component) -> bool:
        """Only the stored event's organiser (or its SENT-BY) may change it."""
        organiser = organizer_of(stored)
        allowed = {organiser, sent_by_of(stored.get("ORGANIZER"))} - {""}
        if organizer_of(incoming) == organiser and self.unit.senders() & allowed:
            return True
        self.unit.decision(
            text_of(stored, "UID"),
            "",
            "refused",
            "not-organiser",
            f"sender {sorted(self.unit.senders())} is not the organiser",
        )
        return False


def _components(text: str) -> list[Component]:
    from imiptools.itip.objects import iter_components

    try:
        return list(iter_components(text))
    except CalendarDataError:
        return []


def freebusy_periods(component: Component) -> list[Period]:
    """The FREEBUSY periods of a VFREEBUSY (RFC 5545 §3.8.2.6) as Periods."""
    props = component.get("FREEBUSY", [])
    found: list[Period] = []
    for prop in props if isinstance(props, list) else [props]:
        fbtype = str(prop.params.get("FBTYPE", "BUSY")).upper()
        for value in getattr(prop, "dts", None) or [prop]:
            period = getattr(value, "dt", None)
            if isinstance(period, tuple) and len(period) == 2:
                start = to_utc(period[0])
                end = period[1] if isinstance(period[1], datetime) else start + period[1]
                found.append(Period(start, to_utc(end), status=fbtype))
    return found
