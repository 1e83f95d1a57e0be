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

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from icalendar import Component, Event

from imiptools.config import parse_duration
from imiptools.dates import format_utc, parse_recurrence_id, to_utc
from imiptools.errors import CalendarDataError
from imiptools.handlers.base import BaseHandler
from imiptools.handlers.common import Outgoing
from imiptools.i18n import N_, N_plural
from imiptools.itip import merge, replies
from imiptools.itip.objects import (
    ItipObject,
    attendees_of,
    find_attendee,
    mail_address_of,
    organizer_of,
    recurrence_id_of,
    sequence_of,
    text_of,
    version_key,
)
from imiptools.itip.recurrence import Instance
from imiptools.periods import Period
from imiptools.scheduling import (
    CONFIRMATIONS,
    REQUEST_STATUS,
    RETRACTIONS,
    Answer,
    Booking,
    Decision,
    Request,
    Step,
    alternatives,
    decide,
    parse_function_lines,
    run_steps,
)
from imiptools.scheduling.alternatives import alternative
from imiptools.scheduling.counter import delegated_limits, search_span
from imiptools.scheduling.limits import check_limits

log = logging.getLogger(__name__)


class ResourceHandler(BaseHandler):
    """Handles the scheduling objects of one message for one resource."""

    bounce_unusable = True
    #: The instances the last scheduling decision was about (for steps).
    booked: Sequence[Instance] = ()

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
        self.unit.decision(obj.uid, rid, decision.answer, decision.code, decision.text())
        self._log(obj, rid, components[0], decision)
        if decision.answer is Answer.COUNTER:
            self._set_partstat(components, "DECLINED")  # the requested time is not booked
            self._counter(obj, components[0], decision)
        else:
            self._set_partstat(components, str(decision.answer))
            declined = self._declined_instances(obj, decision.declined) if full else []
            self._reply(obj, [*components, *declined], decision)
        if decision.answer is Answer.ACCEPTED:
            self.records.store.remove_offers(self.unit.user, obj.uid)
        if full:
            self.records.save(obj)
        else:
            self.records.save_instance(obj.uid, components[0], obj.timezones)
        if decision.answer is Answer.ACCEPTED:
            self._steps(CONFIRMATIONS, obj, [rid], self.booked)

    def _set_partstat(self, components: Sequence[Component], partstat: str) -> None:
        for component in components:
            attendee = find_attendee(component, self.unit.user)
            if attendee is not None:
                attendee.params["PARTSTAT"] = partstat

    def _declined_instances(self, obj: ItipObject, rids: Sequence[str]) -> list[Component]:
        """Overridden instances marking the declined ones of an accepted series.

        They go into the REPLY (RFC 5546 §3.2.3: one component per instance
        answered differently) and into the store, where they do not block.
        """
        by_rid = {recurrence_id_of(c, self.unit.zone): c for c in obj.overrides}
        added: list[Component] = []
        for rid in rids:
            instance = by_rid.get(rid)
            if instance is None and obj.master is not None:
                instance = merge.instance_of(obj.master, parse_recurrence_id(rid))
                obj.components.append(instance)
                added.append(instance)
            if instance is not None:
                self._set_partstat([instance], "DECLINED")
        return added

    def _log(self, obj: ItipObject, rid: str, component: Component, decision: Decision) -> None:
        """One JSON line per decision in the resource's log (``imip-admin log``)."""
        entry = {
            "time": format_utc(self.unit.now),
            "message_id": self.unit.message.message_id,
            "resource": self.unit.user,
            "organiser": organizer_of(obj.first),
            "uid": obj.uid,
            "recurrence_id": rid,
            "sequence": sequence_of(component),
            "verdicts": [list(v) for v in decision.verdicts],
            "answer": str(decision.answer),
            "code": decision.code,
            "reason": decision.text(),
        }
        self.records.store.log_decision(self.unit.user, json.dumps(entry, ensure_ascii=False))

    def _schedule(self, obj: ItipObject, full: bool) -> Decision:
        """Event limits first, then the scheduling functions (RFC 5546 §3.2.3)."""
        now, unit = self.unit.now, self.unit
        limits = self.records.limits(now, now + unit.settings.window)
        expansion = self.records.expand(obj, limits, () if full else None)
        future = [i for i in expansion.instances if i.end > now]
        self.booked = future
        if not future:
            return self._nothing_to_book(obj)
        request = self._request(obj, future, expansion.indefinite)
        limited = check_limits(request, skip=delegated_limits(request))
        if limited is not None:
            return self._limited(request, limited)
        if expansion.truncated and expansion.reason != "window":
            return Decision(
                Answer.DECLINED,
                "too-many-instances",
                N_("the event recurs too often to be checked ({reason})"),
                params={"reason": expansion.reason},
            )
        lines = parse_function_lines(unit.preferences.get("scheduling_function"))
        return decide(request, lines)

    def _steps(
        self,
        steps: Mapping[str, Step],
        obj: ItipObject,
        rids: Sequence[str],
        instances: Sequence[Instance],
    ) -> None:
        """Run confirmation or retraction steps of the configured functions."""
        lines = parse_function_lines(self.unit.preferences.get("scheduling_function"))
        booking = Booking(
            self.unit.user, organizer_of(obj.first), obj.uid, rids, instances, self.unit.now
        )
        for name in run_steps(steps, booking, lines):
            self.unit.decision(obj.uid, ",".join(rids), "step", name, "ran")

    def vevent_cancel(self, obj: ItipObject) -> None:
        """Cancel (see BaseHandler), then retract what the functions confirmed."""
        super().vevent_cancel(obj)
        if self.cancelled:
            rids = [recurrence_id_of(c, self.unit.zone) for c in obj.overrides] or [""]
            self._steps(RETRACTIONS, obj, rids, [])

    def _limited(self, request: Request, limited: Decision) -> Decision:
        """A broken limit: decline, or counter with a compliant alternative."""
        if self.unit.preferences.get("limit_action") == "counter":
            offer = alternative(request, limited)
            if offer is not None:
                return replace(offer, verdicts=((limited.function, "COUNTER", offer.code),))
        return replace(limited, verdicts=((limited.function, "DECLINED", limited.code),))

    def _nothing_to_book(self, obj: ItipObject) -> Decision:
        """No instance between now and the window's end: past, or too far ahead."""
        try:
            first = to_utc(obj.first.decoded("DTSTART"), self.unit.zone)
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise CalendarDataError("event without a usable DTSTART") from exc
        if first < self.unit.now:
            return Decision(Answer.DECLINED, "past", N_("the event is in the past"))
        singular, plural = N_plural(
            "the event does not occur within the next {count} day",
            "the event does not occur within the next {count} days",
        )
        days = self.unit.settings.window.days
        return Decision(
            Answer.DECLINED, "outside-window", singular, params={"count": days}, plural=plural
        )

    def _request(self, obj: ItipObject, instances: list[Instance], indefinite: bool) -> Request:
        """The policies' view; busy periods cover what a counter search may need."""
        request = Request(
            resource=self.unit.user,
            organiser=organizer_of(obj.first),
            uid=obj.uid,
            summary=text_of(obj.first, "SUMMARY"),
            instances=instances,
            busy=(),
            now=self.unit.now,
            zone=self.unit.zone,
            attendees=[mail_address_of(a) for a in attendees_of(obj.first)],
            component=obj.first,
            indefinite=indefinite,
            preference=self.unit.preferences.get,
        )
        start, end = search_span(request)
        if self.unit.preferences.get("limit_action") == "counter":
            wider = alternatives.search_span(request)
            start, end = min(start, wider[0]), max(end, wider[1])
        return replace(request, busy=self._busy(obj.uid, start, end))

    def _counter(self, obj: ItipObject, component: Component, decision: Decision) -> None:
        """Propose another time (RFC 5546 §3.2.7) and hold it per ``freebusy_offers``."""
        start, end = decision.params["start"], decision.params["end"]
        assert isinstance(start, datetime) and isinstance(end, datetime)
        hold = self.unit.preferences.get("freebusy_offers")
        if hold:
            offer = Period(
                start, end, obj.uid, "", "OPAQUE", "", organizer_of(obj.first), "BUSY-TENTATIVE"
            )
            expires = self.unit.now + parse_duration(hold)
            self.records.store.set_offers(self.unit.user, obj.uid, [offer], expires)
        organiser = organizer_of(obj.first)
        if not self.unit.may_answer(organiser):
            return
        reason = decision.text(self.unit.translator)
        self.send(
            Outgoing(
                key=self.unit.key(obj.uid, version_key(component), "COUNTER"),
                recipients=[organiser],
                subject=self._("Counter-proposal: {summary}").format(
                    summary=self._summary(obj.first)
                ),
                text=self._("Reason: {reason}.").format(reason=reason) + "\n",
                calendar=replies.counter(
                    component,
                    self.unit.user,
                    start,
                    end,
                    self.unit.now,
                    comment=reason,
                    sent_by=self.unit.sent_by,
                    rrule=str(decision.params.get("rrule", "")),
                ),
                method="COUNTER",
            )
        )

    def _reply(self, obj: ItipObject, components: Sequence[Component], decision: Decision) -> None:
        organiser = organizer_of(obj.first)
        if not self.unit.may_answer(organiser):
            return
        answers = [
            self._answer(c, decision) for c in components if find_attendee(c, self.unit.user)
        ]
        accepted = decision.answer is Answer.ACCEPTED
        subject = self._("Accepted: {summary}") if accepted else self._("Declined: {summary}")
        self.send(
            Outgoing(
                key=self.unit.key(obj.uid, [version_key(c) for c in components], "REPLY"),
                recipients=[organiser],
                subject=subject.format(summary=self._summary(obj.first)),
                text=self._text(obj, components, accepted, decision),
                calendar=replies.reply(answers),
                method="REPLY",
            )
        )

    def _answer(self, component: Component, decision: Decision) -> Event:
        """The REPLY component for one (master or instance) component.

        Its PARTSTAT is the one set on the component (a declined instance
        of an accepted series says DECLINED, with status 4.0).
        """
        attendee = find_attendee(component, self.unit.user)
        partstat = str(attendee.params.get("PARTSTAT", decision.answer)) if attendee else ""
        status = decision.request_status()
        if partstat == "DECLINED" and decision.answer is Answer.ACCEPTED:
            status = REQUEST_STATUS["conflict"]
        return replies.reply_component(
            component,
            self.unit.user,
            partstat,
            self.unit.now,
            comment=decision.text(self.unit.translator),
            request_status=status,
            sent_by=self.unit.sent_by,
        )

    def _text(
        self, obj: ItipObject, components: Sequence[Component], accepted: bool, decision: Decision
    ) -> str:
        attendee = find_attendee(components[0], self.unit.user)
        invited_as = str(attendee.params.get("CN", "")) if attendee is not None else ""
        name = self.unit.preferences.get("CN") or invited_as or self.unit.address
        sentence = (
            self._('{name} has accepted the invitation "{summary}"{when}.')
            if accepted
            else self._('{name} has declined the invitation "{summary}"{when}.')
        )
        reason = self._("Reason: {reason}.").format(reason=decision.text(self.unit.translator))
        return (
            sentence.format(
                name=name, summary=self._summary(obj.first), when=self._when(components[0])
            )
            + "\n"
            + reason
            + "\n\n"
            + self._("This answer was sent automatically by the resource's booking agent.")
            + "\n"
        )

    def _busy(self, uid: str, start: datetime, end: datetime) -> list[Period]:
        """Bookings and other organisers' held offers over [start, end), not ``uid``'s."""
        offers = self.records.store.get_offers(self.unit.user, self.unit.now)
        held = [p for p in offers if p.uid != uid and p.overlaps(start, end)]
        return self.records.busy_between(start, end, exclude_uid=uid) + held

    def vevent_declinecounter(self, obj: ItipObject) -> None:
        """The organiser declined our proposal: release the held offer (§3.2.8)."""
        stored = self.records.stored(obj.uid) if obj.uid else None
        if stored is not None and self._authorised(stored.first, obj.first):
            self.records.store.remove_offers(self.unit.user, obj.uid)
            self.unit.decision(obj.uid, "", "released", "declinecounter", "offer released")

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
