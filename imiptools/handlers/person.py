"""The person handler: mail *to* a person (``imip-person``).

Records what each scheduling object means for the person, queues what
needs their attention, sends only what preferences allow (REFRESH answers,
free/busy replies), and then lets the message through to the mailbox, with
a summary if the ``incoming`` preference asks for one. A calendar part that
cannot be used never stops delivery.

RFC 5546 roles: as an attendee the person receives REQUEST (§3.2.2), ADD
(§3.2.4), CANCEL (§3.2.5) and DECLINECOUNTER (§3.2.8); as the organiser
it receives REPLY (§3.2.3), REFRESH (§3.2.6) and COUNTER (§3.2.7);
delegation follows §4.2.5 to §4.2.7.
"""

from __future__ import annotations

from icalendar import Component

from imiptools.errors import CalendarDataError
from imiptools.handlers.common import Held, Outgoing, Unit
from imiptools.handlers.organiser import Organiser
from imiptools.itip import merge
from imiptools.itip.objects import (
    ItipObject,
    find_attendee,
    organizer_of,
    recurrence_id_of,
    sequence_of,
    text_of,
)
from imiptools.mail.summary import deliveries_for
from imiptools.publishing import freebusy_calendar, publish_freebusy


class PersonHandler(Organiser):
    """Handles one message for one person, then says what to deliver."""

    def __init__(self, unit: Unit) -> None:
        super().__init__(unit)
        self.participating = unit.preferences.get("participating") != "no"

    def send(self, outgoing: Outgoing) -> None:
        """Send, with our free/busy attached under ``freebusy_bundling=always``."""
        if self.unit.preferences.get("freebusy_bundling") == "always":
            outgoing.attachments.append((freebusy_calendar(self.unit), "PUBLISH", "freebusy.ifb"))
        self.unit.send(outgoing)

    def handle(self, obj: ItipObject, held: Held) -> None:
        """Process ``obj`` unless the person does not participate."""
        if self.participating:
            super().handle(obj, held)

    def finish(self) -> None:
        """Publish free/busy if it changed and the person wants it published."""
        if self.changed and self.unit.preferences.get("freebusy_publishing") == "publish":
            publish_freebusy(self.unit)

    def deliveries(self, raw: bytes) -> list[bytes]:
        """The message, with or without a summary, per ``incoming``."""
        if not self.participating:
            return [raw]
        return deliveries_for(self.unit, raw, self.notes)

    # -- as an attendee ------------------------------------------------------

    def vevent_request(self, obj: ItipObject, held: Held) -> None:
        """Record an invitation or update if newer; busy time stays tentative."""
        self._check_usable(obj)
        if organizer_of(obj.first) == self.unit.address:
            self.unit.decision(obj.uid, "", "ignored", "own-event", "we organise it")
            return
        stored = self.records.stored(obj.uid)
        if stored is not None and not self._may_replace(stored.first, obj.first):
            return
        if obj.master is None:
            for component in obj.overrides:
                self._record_instance(obj, component)
        elif self._is_new_version(obj.uid, obj.master, stored):
            self.records.expand(obj)  # unusable data raises here, before any write
            kept = [self._keep_answer(stored, c) for c in obj.components] if stored else []
            self.records.save(obj)
            self._recorded(
                obj, "", "REQUEST", self._invitation_note(obj, stored is None, any(kept))
            )
        self.records.refresh_freebusy(obj.uid)

    def _keep_answer(self, stored: ItipObject | None, incoming: Component) -> bool:
        """Give ``incoming`` (part of a newer version) the person's stored
        answer, per ``answer_after_update``, unless the update reschedules:
        a raised SEQUENCE (the organiser's signal, RFC 5546 §2.1.4 and
        CalConnect's recurrence recommendations §6.1) or a change of time,
        recurrence or location. CalendarServer (mergeAttendeePartstat) and
        Exchange do the same: a new title or description is no reason to
        ask again. True if the stored answer replaced the update's."""
        if stored is None or self.unit.preferences.get("answer_after_update") != "keep":
            return False
        before = self._counterpart(stored, incoming)
        if before is None or sequence_of(incoming) > sequence_of(before):
            return False
        if merge.significant_change(before, incoming, self.unit.zone):
            return False
        if not merge.keep_answer(before, incoming, self.unit.user):
            return False
        rid = recurrence_id_of(incoming, self.unit.zone)
        partstat = find_attendee(incoming, self.unit.user)
        answer = str(partstat.params.get("PARTSTAT", "")) if partstat is not None else ""
        self.unit.decision(stored.uid, rid, "kept", "answer", f"{answer}: no significant change")
        return True

    def _counterpart(self, stored: ItipObject, incoming: Component) -> Component | None:
        """The stored component ``incoming`` updates: the same override, the
        master, or the occurrence as the stored master gives it."""
        rid = recurrence_id_of(incoming, self.unit.zone)
        if not rid:
            return stored.master
        for override in stored.overrides:
            if recurrence_id_of(override, self.unit.zone) == rid:
                return override
        if stored.master is None:
            return None
        return merge.instance_of(stored.master, incoming.decoded("RECURRENCE-ID"))

    def vevent_publish(self, obj: ItipObject, held: Held) -> None:
        """Record a published event (no reply, nothing queued)."""
        self._check_uid(obj)
        stored = self.records.stored(obj.uid)
        if stored is not None and not self._may_replace(stored.first, obj.first):
            return
        if obj.master is None or self._is_new_version(obj.uid, obj.master, stored):
            self.records.expand(obj)  # unusable data raises here, before any write
            self.records.save(obj)
            self.changed = True
            self.unit.decision(obj.uid, "", "recorded", "publish", "published event")
        self.records.refresh_freebusy(obj.uid)

    def _record_instance(self, obj: ItipObject, component: Component) -> None:
        rid = recurrence_id_of(component, self.unit.zone)
        current = self.records.stored_version(obj.uid, rid)
        if current is not None and not self._newer_or_log(obj.uid, rid, component, current):
            return
        self.records.expand(ItipObject(obj.method, obj.kind, obj.uid, [component]))
        kept = self._keep_answer(self._around(obj.uid, current), component)
        self.save_instance(obj.uid, component, obj.timezones)
        text = (
            self._('{organiser} has updated "{summary}"{when}; your answer still stands.')
            if kept
            else self._('{organiser} has updated "{summary}"{when}.')
        )
        note = text.format(
            organiser=organizer_of(component),
            summary=self._summary(component),
            when=self._when(component),
        )
        self._recorded(obj, rid, "REQUEST", note)

    def _around(self, uid: str, current: Component | None) -> ItipObject | None:
        """The stored series of ``uid`` with ``current`` if it is an override:
        what an instance update is compared with, without reading (and
        parsing) every stored instance for each instance of a message."""
        series = self.records.stored_series(uid)
        components = list(series.components) if series is not None else []
        if current is not None and "RECURRENCE-ID" in current:
            components.append(current)
        zones = series.timezones if series is not None else []
        return ItipObject("PUBLISH", "VEVENT", uid, components, zones) if components else None

    def _recorded(self, obj: ItipObject, rid: str, kind: str, note: str) -> None:
        self.records.queue(obj.uid, rid, kind)
        self.unit.decision(obj.uid, rid, "recorded", kind.lower(), "queued for the user")
        self.notes.append(note)
        self.changed = True

    def _invitation_note(self, obj: ItipObject, new: bool, kept: bool = False) -> str:
        if new:
            text = self._('{organiser} invites you to "{summary}"{when}.')
        elif kept:
            text = self._('{organiser} has updated "{summary}"{when}; your answer still stands.')
        else:
            text = self._('{organiser} has updated "{summary}"{when}.')
        return text.format(
            organiser=organizer_of(obj.first),
            summary=self._summary(obj.first),
            when=self._when(obj.first),
        )

    def _may_replace(self, stored: Component, incoming: Component) -> bool:
        """The stored organiser, or a new one per ``organiser_replacement``."""
        old, new = organizer_of(stored), organizer_of(incoming)
        if old == new:
            return self._authorised(stored, incoming)
        policy = self.unit.preferences.get("organiser_replacement")
        allowed = policy == "any" or (
            policy == "attendee" and find_attendee(stored, new) is not None
        )
        if allowed and new in self.unit.senders():
            self.unit.decision(text_of(stored, "UID"), "", "replaced", "organiser", new)
            return True
        self.unit.decision(
            text_of(stored, "UID"),
            "",
            "refused",
            "organiser-replacement",
            f"{new} may not replace {old} ({policy})",
        )
        return False

    def vevent_cancel(self, obj: ItipObject, held: Held) -> None:
        """Cancel the event, some instances, or our attendance (§4.2.10)."""
        if self.cancel(obj).done and obj.uid:
            removed = (
                find_attendee(obj.first, self.unit.user) is not None
                and text_of(obj.first, "STATUS").upper() != "CANCELLED"
            )
            text = (
                self._('{organiser} has removed you from "{summary}".')
                if removed
                else self._('{organiser} has cancelled "{summary}".')
            )
            if obj.master is None:
                text = self._('{organiser} has cancelled one occurrence of "{summary}"{when}.')
            self.notes.append(
                text.format(
                    organiser=organizer_of(obj.first),
                    summary=self._summary(obj.first),
                    when=self._when(obj.first),
                )
            )
            self.records.queue(obj.uid, "", "CANCEL")
            self.changed = True

    def vevent_add(self, obj: ItipObject, held: Held) -> None:
        """ADD per ``add_method_response``: add instances, ignore, or REFRESH."""
        self._check_usable(obj)
        response = self.unit.preferences.get("add_method_response")
        stored = self.records.stored(obj.uid)
        if stored is None or response == "refresh":
            self._refresh(obj)
        elif response == "add" and self._authorised(stored.first, obj.first):
            for component in obj.components:
                if "RECURRENCE-ID" not in component and "DTSTART" in component:
                    component.add("RECURRENCE-ID", component.decoded("DTSTART"))
                self.save_instance(obj.uid, component, obj.timezones)
            note = self._('{organiser} added occurrences to "{summary}".').format(
                organiser=organizer_of(obj.first), summary=self._summary(obj.first)
            )
            self._recorded(obj, "", "ADD", note)
            self.records.refresh_freebusy(obj.uid)
        else:
            self.unit.decision(obj.uid, "", "ignored", "add-ignored", "add_method_response")

    def vevent_declinecounter(self, obj: ItipObject, held: Held) -> None:
        """The organiser declined our proposal: drop our offer (§3.2.8)."""
        stored = self.records.stored(obj.uid) if obj.uid else None
        if stored is None or not self._authorised(stored.first, obj.first):
            return
        self.records.remove_offers(obj.uid)
        self.notes.append(
            self._('{organiser} declined your proposal for "{summary}".').format(
                organiser=organizer_of(obj.first), summary=self._summary(obj.first)
            )
        )
        self.changed = True

    # -- free/busy -------------------------------------------------------------

    def vfreebusy_request(self, obj: ItipObject, held: Held) -> None:
        """Answered only when ``freebusy_sharing=share``; else left to the user."""
        if self.unit.preferences.get("freebusy_sharing") == "share":
            super().vfreebusy_request(obj, held)
        else:
            self.unit.decision(obj.uid, "", "ignored", "not-shared", "freebusy_sharing=no")

    def _store_other(self, other: str, component: Component) -> None:
        """Keep another user's free/busy; tell the person under ``freebusy_messages``."""
        super()._store_other(other, component)
        if other and self.unit.preferences.get("freebusy_messages") == "notify":
            self.notes.append(self._("Free/busy information of {user}.").format(user=other))

    def _check_uid(self, obj: ItipObject) -> None:
        if not obj.uid:
            raise CalendarDataError(f"{obj.method} without UID")
