"""What a person receives as the organiser: REPLY, REFRESH, COUNTER.

RFC 5546 §3.2.3 (REPLY), §3.2.6 (REFRESH), §3.2.7 (COUNTER), as
:class:`~imiptools.handlers.person.PersonHandler` handles them for events the
person organises. Only attendees may answer, ask or propose, and only for
themselves (:mod:`imiptools.itip.answers` decides who counts); a REPLY only
touches occurrences that exist, and one that changes nothing writes
nothing.
"""

from __future__ import annotations

from typing import cast

from icalendar import Component, Event, vCalAddress

from imiptools.handlers.base import BaseHandler
from imiptools.handlers.common import Held, Outgoing, Unit
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
from imiptools.itip.timing import recurs


class Organiser(BaseHandler):
    """The organiser's side of a person's handler."""

    def __init__(self, unit: Unit) -> None:
        super().__init__(unit)
        #: Whether the person's records changed in this message (their
        #: free/busy is published when it did).
        self.changed = False

    def vevent_reply(self, obj: ItipObject, held: Held) -> None:
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
        answered: set[str] = set()
        for component in sorted(obj.components, key=lambda c: "RECURRENCE-ID" in c):
            if sequence_of(component) < sequence_of(stored.first):
                self.unit.decision(obj.uid, "", "ignored", "stale", "reply to an older version")
                continue
            for answer in self._answers(component, stored):
                if self._merge_answer(stored, component, answer, named):
                    answered.add(answer.address)
        if answered:
            self.records.save(stored, authoritative=False)
            for attendee in sorted(answered):  # once each, however many instances answered
                self._record_attendee_busy(stored, attendee)
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
        other, window = f"mailto:{attendee}", self.records.limits()
        current = self.records.freebusy_of(other, window.window_start, window.window_end)
        kept = [p for p in current if p.uid != stored.uid]
        own = self.records.as_user(other).periods(stored)
        if sorted(kept + own) != sorted(current):
            self.records.set_freebusy_of(other, kept + own)

    def _sending_attendee(self, component: Component) -> str:
        """The ATTENDEE of ``component`` who sent the message ('' if none)."""
        senders = self.unit.senders()
        found = (mail_address_of(a) for a in attendees_of(component))
        return next((who for who in found if who in senders), "")

    def vevent_refresh(self, obj: ItipObject, held: Held) -> None:
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
            self.records.queue(obj.uid, "", "REFRESH")

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

    def vevent_counter(self, obj: ItipObject, held: Held) -> None:
        """Keep an attendee's counter-proposal for the organiser (§3.2.7)."""
        stored = self._organised(obj)
        if stored is None:
            return
        proposer = self._sending_attendee(obj.first)
        if not proposer:
            self.unit.decision(obj.uid, "", "refused", "not-attendee", "counter from a stranger")
            return
        text = to_text(make_calendar(obj.components, "COUNTER", obj.timezones))
        self.records.set_counter(obj.uid, f"mailto:{proposer}", text)
        self.records.queue(obj.uid, "", "COUNTER")
        self.notes.append(
            self._('{attendee} proposes a new time for "{summary}"{when}.').format(
                attendee=proposer, summary=self._summary(obj.first), when=self._when(obj.first)
            )
        )
        self.changed = True


def _partstat(answer: Answer) -> str:
    return str(answer.attendee.params.get("PARTSTAT", ""))
