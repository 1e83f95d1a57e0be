"""The outgoing handler: copies of mail a person *sends* (``imip-person-outgoing``).

The MTA sends the program a copy of each message the person submits
(Postfix ``sender_bcc_maps``). The person is the envelope sender; what
they sent updates their own records, as their client did on their side:

- as organiser: REQUEST, PUBLISH, ADD record the event; CANCEL cancels it,
  some instances, or removes attendees (RFC 5546 §4.2.10); DECLINECOUNTER
  drops the attendee's counter-proposal;
- as attendee: REPLY records their answer (DECLINED frees the time) and
  takes the item off their queue; COUNTER holds the proposed period as an
  offer for ``freebusy_offers``.

It sends nothing and delivers nothing.
"""

from __future__ import annotations

from datetime import datetime

from icalendar import Component

from imiptools.config import parse_duration
from imiptools.dates import to_utc
from imiptools.handlers.base import BaseHandler
from imiptools.handlers.common import Held
from imiptools.itip import merge
from imiptools.itip.objects import (
    ItipObject,
    attendees_of,
    find_attendee,
    mail_address_of,
    organizer_of,
    recurrence_id_of,
    text_of,
)
from imiptools.periods import Period


class OutgoingHandler(BaseHandler):
    """Records what the person sent."""

    def _signature_accepted(self, obj: ItipObject) -> bool:
        """The person's own messages (the MTA's copy of what they sent, or
        what their client answered) are theirs: ``require_signature`` is
        about mail from others."""
        return True

    # -- as the organiser ----------------------------------------------------

    def vevent_request(self, obj: ItipObject, held: Held) -> None:
        """Our own invitation or update: record it if newer."""
        self._check_usable(obj)
        if not self._ours(obj):
            return
        stored = self.records.stored(obj.uid)
        if obj.master is None:
            for component in obj.overrides:
                rid = recurrence_id_of(component, self.unit.zone)
                current = self.records.stored_version(obj.uid, rid)
                if current is None or self._newer_or_log(obj.uid, rid, component, current):
                    self.records.save_instance(obj.uid, component, obj.timezones)
        elif self._is_new_version(obj.uid, obj.master, stored):
            self.records.save(obj)
            self.unit.decision(obj.uid, "", "recorded", "own-request", "our invitation")
            if stored is not None:
                self._drop_counters(obj.uid, [])
        self.records.refresh_freebusy(obj.uid)

    vevent_publish = vevent_request

    def vevent_add(self, obj: ItipObject, held: Held) -> None:
        """Instances we added to our event (RFC 5546 §3.2.4)."""
        self._check_usable(obj)
        if not self._ours(obj) or self.records.stored(obj.uid) is None:
            return
        for component in obj.components:
            if "RECURRENCE-ID" not in component and "DTSTART" in component:
                component.add("RECURRENCE-ID", component.decoded("DTSTART"))
            self.records.save_instance(obj.uid, component, obj.timezones)
        self.records.refresh_freebusy(obj.uid)

    def vevent_cancel(self, obj: ItipObject, held: Held) -> None:
        """Our CANCEL: the event, some instances, or some attendees only."""
        stored = self.records.stored(obj.uid) if obj.uid else None
        if stored is None or not self._ours(obj):
            super().vevent_cancel(obj, held)
            return
        removed = _removed_attendees(stored.first, obj)
        if removed and obj.master is not None:
            for component in stored.components:
                merge.remove_attendees(component, removed)
            self.records.save(stored, authoritative=False)
            self.unit.decision(obj.uid, "", "recorded", "attendees-removed", ", ".join(removed))
            self.records.refresh_freebusy(obj.uid)
        else:
            super().vevent_cancel(obj, held)

    def vevent_declinecounter(self, obj: ItipObject, held: Held) -> None:
        """We declined an attendee's proposal: forget it."""
        if not obj.uid or not self._ours(obj):
            return
        self._drop_counters(obj.uid, [mail_address_of(a) for a in attendees_of(obj.first)])
        self.unit.decision(obj.uid, "", "recorded", "declinecounter", "counter dropped")

    def _drop_counters(self, uid: str, attendees: list[str]) -> None:
        """Forget the proposals of ``attendees`` for ``uid`` (all of them when
        none are named: an update supersedes every proposal for the version
        it replaces); the queue's COUNTER item goes with the last one."""
        held = self.records.counters(uid)
        for attendee in attendees or [a.removeprefix("mailto:") for a in held]:
            self.records.remove_counters(uid, f"mailto:{attendee}")
        if held and not self.records.counters(uid):
            self.records.dequeue(uid, "")

    def _ours(self, obj: ItipObject) -> bool:
        if organizer_of(obj.first) == self.unit.address:
            return True
        self.unit.decision(obj.uid, "", "ignored", "not-organiser", f"{obj.method} by another")
        return False

    # -- as an attendee --------------------------------------------------------

    def vevent_reply(self, obj: ItipObject, held: Held) -> None:
        """Our answer to an invitation: record PARTSTAT, dequeue the request."""
        stored = self.records.stored(obj.uid) if obj.uid else None
        if stored is None:
            self.unit.decision(obj.uid, "", "ignored", "unknown", "reply to an unknown event")
            return
        for component in obj.components:
            answer = find_attendee(component, self.unit.user)
            if answer is None:
                continue
            rid = recurrence_id_of(component, self.unit.zone)
            targets = self._targets(stored, component, rid)
            for target in targets:
                merge.set_participation(target, answer)
            self.records.dequeue(obj.uid, rid)
            self.unit.decision(
                obj.uid, rid, "recorded", "own-reply", str(answer.params.get("PARTSTAT", ""))
            )
        self.records.save(stored, authoritative=False)
        self.records.refresh_freebusy(obj.uid)

    def vevent_counter(self, obj: ItipObject, held: Held) -> None:
        """Our proposal: hold its period as an offer for ``freebusy_offers``."""
        hold = self.unit.preferences.get("freebusy_offers")
        if not obj.uid or not hold:
            return
        periods = [p for p in map(self._offered, obj.components) if p is not None]
        expires = self.unit.now + parse_duration(hold)
        self.records.set_offers(obj.uid, periods, expires)
        self.unit.decision(obj.uid, "", "recorded", "offer", f"{len(periods)} until {expires}")

    def _offered(self, component: Component) -> Period | None:
        try:
            start = component.decoded("DTSTART")
            end = component.decoded("DTEND")
        except (KeyError, ValueError, TypeError, AttributeError):
            return None
        begin, finish = to_utc(start, self.unit.zone), to_utc(end, self.unit.zone)
        if not isinstance(begin, datetime) or finish <= begin:
            return None
        uid = text_of(component, "UID")
        return Period(begin, finish, uid, "", "OPAQUE", "", "", "BUSY-TENTATIVE")


def _removed_attendees(stored: Component, cancel: ItipObject) -> list[str]:
    """Attendees a CANCEL removes, when it does not cancel the whole event.

    RFC 5546 §4.2.10: the organiser sends a CANCEL naming only the removed
    attendees; a CANCEL naming all of them (or STATUS:CANCELLED) ends the event.
    """
    if text_of(cancel.first, "STATUS").upper() == "CANCELLED":
        return []
    named = {mail_address_of(a) for a in attendees_of(cancel.first)}
    everyone = {mail_address_of(a) for a in attendees_of(stored)}
    organiser = organizer_of(cancel.first)
    if not named or (everyone - {organiser}) <= named:
        return []
    return sorted(named & everyone)
