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

from typing import cast

from icalendar import Component, Event, vCalAddress

from imiptools.errors import CalendarDataError
from imiptools.handlers.base import BaseHandler
from imiptools.handlers.common import Outgoing, Unit
from imiptools.itip import merge
from imiptools.itip.answers import Answer, delegated_to, judge
from imiptools.itip.objects import (
    ItipObject,
    attendees_of,
    find_attendee,
    mail_address_of,
    make_calendar,
    organizer_of,
    recurrence_id_of,
    sequence_of,
    text_of,
    to_text,
    version_key,
)
from imiptools.itip.recurrence_set import recurs
from imiptools.mail.summary import deliveries_for
from imiptools.publishing import freebusy_calendar, publish_freebusy


class PersonHandler(BaseHandler):
    """Handles one message for one person, then says what to deliver."""

    def __init__(self, unit: Unit) -> None:
        super().__init__(unit)
        self.participating = unit.preferences.get("participating") != "no"
        self.changed = False

    def send(self, outgoing: Outgoing) -> None:
        """Send, with our free/busy attached under ``freebusy_bundling=always``."""
        if self.unit.preferences.get("freebusy_bundling") == "always":
            outgoing.attachments.append((freebusy_calendar(self.unit), "PUBLISH", "freebusy.ifb"))
        self.unit.send(outgoing)

    def handle(self, obj: ItipObject) -> None:
        """Process ``obj`` unless the person does not participate."""
        if self.participating:
            super().handle(obj)

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

    def vevent_request(self, obj: ItipObject) -> None:
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

    def vevent_publish(self, obj: ItipObject) -> None:
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
        stored = self.records.stored(obj.uid)
        kept = self._keep_answer(stored, component)
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

    def _recorded(self, obj: ItipObject, rid: str, kind: str, note: str) -> None:
        self.unit.records.store.queue_request(self.unit.user, obj.uid, rid, kind)
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

    def vevent_cancel(self, obj: ItipObject) -> None:
        """Cancel the event, some instances, or our attendance (§4.2.10)."""
        super().vevent_cancel(obj)
        if obj.uid and self.cancelled:
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
            self.unit.records.store.queue_request(self.unit.user, obj.uid, "", "CANCEL")
            self.changed = True

    def vevent_add(self, obj: ItipObject) -> None:
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

    def vevent_declinecounter(self, obj: ItipObject) -> None:
        """The organiser declined our proposal: drop our offer (§3.2.8)."""
        stored = self.records.stored(obj.uid) if obj.uid else None
        if stored is None or not self._authorised(stored.first, obj.first):
            return
        self.unit.records.store.remove_offers(self.unit.user, obj.uid)
        self.notes.append(
            self._('{organiser} declined your proposal for "{summary}".').format(
                organiser=organizer_of(obj.first), summary=self._summary(obj.first)
            )
        )
        self.changed = True

    # -- as the organiser ----------------------------------------------------

    def vevent_reply(self, obj: ItipObject) -> None:
        """Merge the answers a REPLY may give into our event (RFC 5546 §3.2.3).

        Which ATTENDEE lines count is :func:`imiptools.itip.answers.judge`'s
        decision (the sender, or the SENT-BY our stored event allows, and
        delegates established as RFC 5546 §4.2.5 says). The series' answer
        comes first and also answers our overridden instances within the
        attendee's series (:meth:`_answered_by_master`); an instance answer
        only touches an occurrence that exists (:meth:`_targets`). A reply
        that changes nothing is logged ``unchanged`` and writes nothing.
        """
        stored = self._organised(obj)
        if stored is None:
            return
        named = {recurrence_id_of(c, self.unit.zone) for c in obj.overrides}
        changed = False
        for component in sorted(obj.components, key=lambda c: "RECURRENCE-ID" in c):
            if sequence_of(component) < sequence_of(stored.first):
                self.unit.decision(obj.uid, "", "ignored", "stale", "reply to an older version")
                continue
            for answer in self._answers(component, stored):
                changed |= self._merge_answer(stored, component, answer, named)
        if changed:
            self.records.save(stored, authoritative=False)
            self.changed = True
        self.records.refresh_freebusy(obj.uid)

    def _organised(self, obj: ItipObject) -> ItipObject | None:
        stored = self.records.stored(obj.uid) if obj.uid else None
        if stored is None or organizer_of(stored.first) != self.unit.address:
            self.unit.decision(
                obj.uid,
                "",
                "ignored",
                "not-organiser",
                f"{obj.method} for an event we do not organise",
            )
            return None
        return stored

    def _answers(self, component: Component, stored: ItipObject) -> list[Answer]:
        """The answers of ``component`` that count; the others are logged."""
        verdict = judge(component, stored.components, self.unit.senders())
        uid, senders = text_of(component, "UID"), sorted(self.unit.senders())
        if verdict.refused:
            reason = f"{senders} may not answer for {sorted(verdict.refused)}"
            self.unit.decision(uid, "", "refused", "not-attendee", reason)
        if verdict.unbacked:
            reason = f"DELEGATED-FROM of {sorted(verdict.unbacked)} not in the event"
            self.unit.decision(uid, "", "refused", "not-delegated", reason)
        return verdict.answers

    def _merge_answer(
        self, stored: ItipObject, component: Component, answer: Answer, named: set[str]
    ) -> bool:
        """Merge one answer; True if the stored event changed."""
        rid = recurrence_id_of(component, self.unit.zone)
        targets = self._targets(stored, component, rid)
        if not rid:
            targets = [t for t in targets if self._answered_by_master(t, component, named)]
        results = [merge.set_participation(target, answer.attendee) for target in targets]
        if targets and all(result is None for result in results):
            if not self._add_uninvited(stored, targets, answer, rid):
                return False
        elif not any(results):
            if targets:
                reason = f"{answer.address} {_partstat(answer)} already recorded"
                self.unit.decision(stored.uid, rid, "unchanged", "reply", reason)
            return False
        self.notes.append(self._answer_note(stored.first, answer.attendee))
        self._record_attendee_busy(stored, answer.address)
        reason = f"{answer.address} {_partstat(answer)}"
        self.unit.decision(stored.uid, rid, "merged", "reply", reason)
        return True

    def _answered_by_master(self, target: Component, reply: Component, named: set[str]) -> bool:
        """Whether the series' answer in ``reply`` also answers ``target``.

        Our master, yes. An override the REPLY answers by itself, no. Any
        other override only if its occurrence is in the attendee's series
        as the REPLY gives it (CalendarServer's rule, test_processReply
        1.4 and 1.5: an attendee holding an older, shorter series has not
        answered for occurrences it does not know). When the REPLY's master
        gives no series to check (no DTSTART or RRULE/RDATE, as some
        clients send), it answers every override, as it always did here:
        unlike CalendarServer, which then propagates nowhere, because such
        minimal replies do mean the whole series.
        """
        rid = recurrence_id_of(target, self.unit.zone)
        if not rid:
            return True
        if rid in named:
            return False
        if "DTSTART" not in reply or not recurs(cast(Event, reply)):
            return True
        series = ItipObject("REPLY", "VEVENT", text_of(reply, "UID"), [reply])
        return self._occurs(series, reply, rid)

    def _add_uninvited(
        self, stored: ItipObject, targets: list[Component], answer: Answer, rid: str
    ) -> bool:
        """Add an attendee no target names: an established delegate always,
        anyone else under ``uninvited_replies=add`` (RFC 5546 §2.1.1 leaves
        "party crashers" to the organiser); else log and ignore."""
        if not answer.delegate and self.unit.preferences.get("uninvited_replies") != "add":
            self.unit.decision(stored.uid, rid, "ignored", "uninvited", answer.address)
            return False
        for target in targets:
            merge.add_attendee(target, answer.attendee)
        if not answer.delegate:
            self.unit.decision(stored.uid, rid, "added", "uninvited", answer.address)
        return True

    def _answer_note(self, event: Component, answer: vCalAddress) -> str:
        partstat = str(answer.params.get("PARTSTAT", "")).upper()
        texts = {
            "ACCEPTED": self._('{attendee} has accepted "{summary}".'),
            "DECLINED": self._('{attendee} has declined "{summary}".'),
            "TENTATIVE": self._('{attendee} has tentatively accepted "{summary}".'),
            "DELEGATED": self._('{attendee} has delegated "{summary}" to {delegate}.'),
        }
        text = texts.get(partstat, self._('{attendee} has accepted "{summary}".'))
        delegate = ", ".join(sorted(delegated_to(answer)))
        return text.format(
            attendee=mail_address_of(answer), summary=self._summary(event), delegate=delegate
        )

    def _record_attendee_busy(self, stored: ItipObject, attendee: str) -> None:
        """Keep the attendee's busy time for this event among others' free/busy."""
        store, user, other = self.unit.records.store, self.unit.user, f"mailto:{attendee}"
        window = self.records.limits()
        kept = [
            p
            for p in store.get_freebusy_other(user, other, window.window_start, window.window_end)
            if p.uid != stored.uid
        ]
        own = self.records.as_user(other).periods(stored)
        current = store.get_freebusy_other(user, other, window.window_start, window.window_end)
        if sorted(kept + own) != sorted(current):
            store.set_freebusy_other(user, other, kept + own)

    def _sending_attendee(self, component: Component) -> str:
        """The ATTENDEE of ``component`` who sent the message ('' if none)."""
        senders = self.unit.senders()
        found = (mail_address_of(a) for a in attendees_of(component))
        return next((who for who in found if who in senders), "")

    def vevent_refresh(self, obj: ItipObject) -> None:
        """Resend the event (``event_refreshing=always``) or queue it (§3.2.6)."""
        stored = self._organised(obj)
        if stored is None:
            return
        requester = self._sending_attendee(obj.first)
        if not requester or find_attendee(stored.first, requester) is None:
            self.unit.decision(obj.uid, "", "refused", "not-attendee", "refresh from a stranger")
            return
        self.notes.append(
            self._('{attendee} asks for the current version of "{summary}".').format(
                attendee=requester, summary=self._summary(stored.first)
            )
        )
        if self.unit.preferences.get("event_refreshing") == "always":
            self._resend(stored, requester)
        else:
            self.unit.records.store.queue_request(self.unit.user, obj.uid, "", "REFRESH")

    def _resend(self, stored: ItipObject, requester: str) -> None:
        if not self.unit.may_answer(requester):
            return
        calendar = make_calendar(stored.components, "REQUEST", stored.timezones)
        summary = self._summary(stored.first)
        self.send(
            Outgoing(
                key=self.unit.key(stored.uid, requester, version_key(stored.first), "REQUEST"),
                recipients=[requester],
                subject=summary,
                text=self._('{organiser} invites you to "{summary}"{when}.').format(
                    organiser=self.unit.address, summary=summary, when=self._when(stored.first)
                ),
                calendar=calendar,
                method="REQUEST",
            )
        )
        self.unit.decision(stored.uid, "", "sent", "refresh", f"REQUEST to {requester}")

    def vevent_counter(self, obj: ItipObject) -> None:
        """Keep an attendee's counter-proposal for the organiser (§3.2.7)."""
        stored = self._organised(obj)
        if stored is None:
            return
        proposer = self._sending_attendee(obj.first)
        if not proposer:
            self.unit.decision(obj.uid, "", "refused", "not-attendee", "counter from a stranger")
            return
        text = to_text(make_calendar(obj.components, "COUNTER", obj.timezones))
        self.unit.records.store.set_counter(self.unit.user, obj.uid, f"mailto:{proposer}", text)
        self.unit.records.store.queue_request(self.unit.user, obj.uid, "", "COUNTER")
        self.notes.append(
            self._('{attendee} proposes a new time for "{summary}"{when}.').format(
                attendee=proposer, summary=self._summary(obj.first), when=self._when(obj.first)
            )
        )
        self.changed = True

    # -- free/busy -------------------------------------------------------------

    def vfreebusy_request(self, obj: ItipObject) -> None:
        """Answered only when ``freebusy_sharing=share``; else left to the user."""
        if self.unit.preferences.get("freebusy_sharing") == "share":
            super().vfreebusy_request(obj)
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


def _partstat(answer: Answer) -> str:
    return str(answer.attendee.params.get("PARTSTAT", ""))
