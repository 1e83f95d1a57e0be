"""Approval: a resource's owners decide what its rules leave open, by mail.

:class:`ApprovingResourceHandler` is the resource handler with the
workflow of the ``approval`` preference (see
:mod:`imiptools.scheduling.approval` for which requests need one):

- **pending**: the organiser gets a REPLY with PARTSTAT=TENTATIVE and a text
  saying who decides and by when; the event is stored with the resource's
  PARTSTAT=TENTATIVE, so its period is held BUSY-TENTATIVE and nobody else
  takes it; the queue holds ``(UID, '', APPROVAL)`` and the decision log an
  entry with the approvers, the deadline and the assessment. All of it is
  written in the unit's transaction, with the mail, at one commit.
- **asking**: each approver gets the request as a delegate (RFC 5546
  §3.2.2.3: the resource's ATTENDEE DELEGATED-TO them, theirs DELEGATED-FROM
  the resource, RSVP), organised by the resource so that their client's
  Accept/Decline comes back here, with the assessment in the text and a
  token in the subject;
- **answers**: an iTIP REPLY whose ATTENDEE is a listed approver (and who
  sent it), or a plain mail from one whose first word is ``approve`` or
  ``decline`` (matched by In-Reply-To/References or the subject's token,
  see :mod:`imiptools.mail.approval`). The first answer wins; the other
  approvers are sent a CANCEL of their copy saying who decided;
- **deciding**: an approval re-runs the rules under the locks (free/busy and
  quotas as they are now): booked if they accept, or if they still break
  only the rule the owners were shown; a clash is declined. The organiser
  gets ACCEPTED or DECLINED with the approver's reason;
- **organiser changes**: an update while pending is assessed again (pending
  again, or answered by rule), a cancel withdraws it; the approvers are told.

Every step is a decision (``imip-admin log``) and a line of the decision log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any

from icalendar import Calendar, Component, vCalAddress

from imiptools import addresses
from imiptools.config import parse_duration
from imiptools.dates import format_utc, parse_utc
from imiptools.deferred import dataclass
from imiptools.digests import sha256_hex
from imiptools.handlers.common import HUMAN, Held, Outgoing
from imiptools.handlers.resource import Booked, Case, ResourceHandler
from imiptools.i18n import N_
from imiptools.itip import replies
from imiptools.itip.objects import (
    ItipObject,
    attendees_of,
    find_attendee,
    mail_address_of,
    make_calendar,
    organizer_of,
    sequence_of,
    text_of,
    version_key,
)
from imiptools.itip.recurrence import Instance
from imiptools.quota.model import parse_user
from imiptools.scheduling import RETRACTIONS, Answer, Decision
from imiptools.scheduling.approval import (
    approvable,
    approvers_of,
    needs_approval,
    parse_approval,
)

log = logging.getLogger(__name__)

#: The queue kind of a request waiting for its owners.
APPROVAL = "APPROVAL"
#: The approval steps after which a request is no longer pending.
SETTLED = frozenset({"approved", "declined", "withdrawn", "timeout"})


@dataclass(frozen=True)
class Pending:
    """A pending request as its decision-log entry says."""

    uid: str
    approvers: tuple[str, ...]
    deadline: datetime
    assessed: str
    assessment: str
    token: str
    message_ids: tuple[str, ...]
    timeout_action: str
    organiser: str


def _quota_user_of(organiser: str) -> str | None:
    try:
        return parse_user(organiser) if organiser else None
    except ValueError:
        return None


def token_tag(token: str) -> str:
    """What the resource puts in its subjects (:mod:`imiptools.mail.approval`
    finds it in an answer's): ``[approval TOKEN]``."""
    return f"[approval {token}]"


def approval_token(resource: str, uid: str) -> str:
    """The token of ``uid``'s approval at ``resource`` (in subjects)."""
    return sha256_hex(f"{resource}\0{uid}".encode("utf-8", "replace"))[:12]


def pending_entries(lines: Iterator[str]) -> dict[str, Pending]:
    """The latest pending entry of each UID in a decision log, if its
    latest approval step is still ``pending``."""
    found: dict[str, Pending | None] = {}
    for line in lines:
        try:
            entry = json.loads(line)
            step = entry["approval"]["step"]
        except (ValueError, KeyError, TypeError):
            continue
        uid = str(entry.get("uid", ""))
        if step == "pending":
            found[uid] = _pending(entry)
        elif step in SETTLED:
            found[uid] = None
    return {uid: p for uid, p in found.items() if p is not None}


def _pending(entry: Mapping[str, Any]) -> Pending | None:
    approval = entry["approval"]
    try:
        return Pending(
            str(entry["uid"]),
            tuple(str(a) for a in approval["approvers"]),
            parse_utc(approval["deadline"]),
            str(approval["assessed"]),
            str(approval["assessment"]),
            str(approval["token"]),
            tuple(str(m) for m in approval.get("message_ids", [])),
            str(approval.get("timeout_action", "decline")),
            str(entry.get("organiser", "")),
        )
    except (KeyError, TypeError, ValueError):
        return None


class ApprovingResourceHandler(ResourceHandler):
    """The resource handler with approval by the resource's owners."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._objects = 0

    def handle(self, obj: ItipObject, held: Held) -> None:
        """As for every resource, counting the objects (a message without
        any may be an owner's answer by text, see :meth:`finish`)."""
        self._objects += 1
        super().handle(obj, held)

    # -- what is pending ---------------------------------------------------------

    def _approvers(self) -> tuple[str, ...]:
        return tuple(approvers_of(self.unit.preferences.get("approvers")))

    def _is_pending(self, uid: str) -> bool:
        return (uid, "", APPROVAL) in self.records.queued()

    def _pending(self) -> dict[str, Pending]:
        """The pending requests, by UID (queued and logged)."""
        queued = {uid for uid, rid, kind in self.records.queued() if kind == APPROVAL and not rid}
        if not queued:
            return {}
        entries = pending_entries(iter(self.records.decisions()))
        return {uid: p for uid, p in entries.items() if uid in queued}

    def _group_of(self, quota: str, organiser: str) -> str | None:
        ledger = self.unit.ledger
        if ledger is None:
            return None
        try:
            return ledger.group_of(quota, organiser) if ledger.exists(quota) else None
        except ValueError:
            return None

    # -- a request: book by rule, or hold it for the owners ---------------------

    def _book(self, case: Case, components: Sequence[Component], full: bool) -> Booked:
        """Decide as every resource does; a whole-object request that the
        ``approval`` preference sends to the owners is held for them."""
        decision, future = self._schedule(case, full)
        approvers = self._approvers()
        uid = case.obj.uid
        was_pending = full and self._is_pending(uid)
        if full and approvers and self._needs_approval(case.obj, decision):
            return self._hold(case, components, decision, future, approvers, was_pending)
        booked = self._apply(case, components, full, decision, future)
        if was_pending:
            self._settled(case.obj, "answered by rule after the organiser's update")
        return booked

    def _needs_approval(self, obj: ItipObject, decision: Decision) -> bool:
        try:
            policy = parse_approval(self.unit.preferences.get("approval"))
        except ValueError:
            return False
        organiser = addresses.normalise(organizer_of(obj.first))
        return needs_approval(policy, decision, organiser, self._group_of)

    def _hold(
        self,
        case: Case,
        components: Sequence[Component],
        decision: Decision,
        future: list[Instance],
        approvers: Sequence[str],
        update: bool,
    ) -> Booked:
        """Hold the request for the owners: TENTATIVE to the organiser, the
        event stored TENTATIVE (busy-tentative), queued, and each approver asked."""
        obj = case.obj
        deadline = self.unit.now + parse_duration(self.unit.preferences.get("approval_timeout"))
        token = approval_token(self.unit.user, obj.uid)
        self._set_partstat(components, "TENTATIVE")
        self._tentative(case, components, approvers, deadline)
        sent = [
            self._ask(obj, decision, approver, deadline, token, update) for approver in approvers
        ]
        self.records.save(obj)
        self.records.queue(obj.uid, "", APPROVAL)
        assessment = decision.text()
        approval = {
            "step": "pending",
            "approvers": list(approvers),
            "deadline": format_utc(deadline),
            "assessed": decision.code,
            "assessment": assessment,
            "token": token,
            "message_ids": [m for m in sent if m],
            "timeout_action": self.unit.preferences.get("approval_timeout_action"),
        }
        reason = f"waiting for {', '.join(approvers)} until {format_utc(deadline)} ({assessment})"
        self._approval_log(obj, "TENTATIVE", "approval-pending", reason, approval, decision)
        self.unit.decision(obj.uid, "", "pending", "approval", reason)
        return Booked("", future)

    def _tentative(
        self,
        case: Case,
        components: Sequence[Component],
        approvers: Sequence[str],
        deadline: datetime,
    ) -> None:
        """REPLY PARTSTAT=TENTATIVE to the organiser, saying who decides by when."""
        obj = case.obj
        organiser = organizer_of(obj.first)
        if not self._may_answer(case, organiser):
            return
        when = f"{deadline.astimezone(self.unit.zone):%Y-%m-%d %H:%M %Z}"
        who = ", ".join(approvers)
        comment = self._("the request needs the approval of {approvers}, who decide by {deadline}")
        comment = comment.format(approvers=who, deadline=when)
        answers = [
            replies.reply_component(
                c,
                self.unit.user,
                "TENTATIVE",
                self.unit.now,
                comment=comment,
                request_status="2.0;Success",
                sent_by=self.unit.sent_by,
            )
            for c in components
            if find_attendee(c, self.unit.user)
        ]
        name = self.unit.preferences.get("CN") or self.unit.address
        sentence = self._('{name} has received the invitation "{summary}"{when}.').format(
            name=name, summary=self._summary(obj.first), when=self._when(obj.first)
        )
        text = (
            sentence
            + "\n"
            + self._("Tentative: {reason}.").format(reason=comment)
            + "\n\n"
            + self._("This answer was sent automatically by the resource's booking agent.")
            + "\n"
        )
        self.send(
            Outgoing(
                key=self.unit.key(obj.uid, [version_key(c) for c in components], "TENTATIVE"),
                recipients=[organiser],
                subject=self._("Tentative: {summary}").format(summary=self._summary(obj.first)),
                text=text,
                calendar=replies.reply(answers),
                method="REPLY",
            )
        )

    def _ask(
        self,
        obj: ItipObject,
        decision: Decision,
        approver: str,
        deadline: datetime,
        token: str,
        update: bool,
    ) -> str:
        """Send ``approver`` the request as a delegate; its Message-ID."""
        organiser = mail_address_of(organizer_of(obj.first))
        when = f"{deadline.astimezone(self.unit.zone):%Y-%m-%d %H:%M %Z}"
        action = self.unit.preferences.get("approval_timeout_action")
        then = (
            self._("it is accepted if the period is still free")
            if action == "accept"
            else self._("it is declined")
        )
        lines = [
            self._('{organiser} asks to book {resource} for "{summary}"{when}.').format(
                organiser=organiser,
                resource=self.unit.address,
                summary=self._summary(obj.first),
                when=self._when(obj.first),
            ),
            self._("The organiser updated the request.") if update else "",
            self._("Assessment: {assessment}.").format(
                assessment=decision.text(self.unit.translator)
            ),
            self._("Please decide by {deadline}; after that, {then}.").format(
                deadline=when, then=then
            ),
            "",
            self._(
                "Answer with Accept or Decline in your calendar, or reply to this message "
                'with the first word "approve" or "decline", followed by a reason if you like.'
            ),
        ]
        subject = self._("Approval needed: {summary}").format(summary=self._summary(obj.first))
        self.send(
            Outgoing(
                key=self.unit.key(obj.uid, approver, version_key(obj.first), "APPROVAL"),
                recipients=[approver],
                subject=f"{subject} {token_tag(token)}",
                text="\n".join(line for line in lines if line is not None) + "\n",
                calendar=self._copy_for(obj, approver, "REQUEST"),
                method="REQUEST",
            )
        )
        sent = self.unit.outcomes.sent
        return sent[-1].message_id if sent else ""

    def _copy_for(self, obj: ItipObject, approver: str, method: str) -> Calendar:
        """The request as the approver's calendar gets it (RFC 5546 §3.2.2.3):
        delegated to them by the resource, which organises this copy so that
        their client answers it. A CANCEL holds the approver alone."""
        copies = []
        for component in obj.components:
            copy = replies.delegation(component, self.unit.user, approver)
            organiser = vCalAddress(f"mailto:{self.unit.address}")
            name = self.unit.preferences.get("CN")
            if name:
                organiser.params["CN"] = name
            copy.pop("ORGANIZER", None)
            copy.add("ORGANIZER", organiser)
            if method == "CANCEL":
                copy.pop("ATTENDEE", None)
                copy.add("ATTENDEE", vCalAddress(f"mailto:{approver}"))
                copy.pop("STATUS", None)
                copy.add("STATUS", "CANCELLED")
            copies.append(copy)
        return make_calendar(copies, method, obj.timezones)

    # -- the owners' answers -----------------------------------------------------

    def vevent_reply(self, obj: ItipObject, held: Held) -> None:
        """An approver's answer from their calendar (RFC 5546 §3.2.3: a
        REPLY to the copy the resource sent them as a delegate)."""
        pending = self._pending().get(obj.uid)
        replier = {mail_address_of(a) for a in attendees_of(obj.first)}
        if pending is None:
            self._late(obj.uid, replier)
            return
        approver = self._approver(pending, replier)
        if approver is None:
            return
        partstat = ""
        attendee = find_attendee(obj.first, f"mailto:{approver}")
        if attendee is not None:
            partstat = str(attendee.params.get("PARTSTAT", "")).upper()
        verdict = {"ACCEPTED": "approve", "DECLINED": "decline"}.get(partstat)
        if verdict is None:
            self.unit.decision(obj.uid, "", "ignored", "approval-answer", f"PARTSTAT {partstat}")
            return
        comment = text_of(obj.first, "COMMENT")
        self._conclude(pending, verdict, comment, approver, self._held_for(pending, held))

    def _held_for(self, pending: Pending, held: Held) -> Held:
        """``held`` (the locks :meth:`scope` took for the REPLY, whose
        ORGANIZER is the resource), its quota states read again for the
        request's organiser: the re-check counts their bookings."""
        if held.ledger is None or not held.quotas:
            return held
        organiser = _quota_user_of(pending.organiser)
        states = self._snapshots(held.ledger, list(held.quotas), organiser)
        return Held(held.ledger, MappingProxyType(states))

    def _approver(self, pending: Pending, claimed: set[str]) -> str | None:
        """The listed approver who answers: named in the answer (``claimed``,
        from the REPLY's ATTENDEE or the mail's From) and among its senders
        (as the organiser's changes are checked). None: not one (logged)."""
        listed = set(pending.approvers) & set(self._approvers())
        senders = {s.lower() for s in self.unit.senders()}
        found = sorted({c.lower() for c in claimed} & senders & listed)
        if found:
            return found[0]
        self.unit.decision(
            pending.uid,
            "",
            "refused",
            "not-approver",
            f"sender {sorted(senders)} is not an approver of the request",
        )
        self._approval_log_line(pending.uid, pending.organiser, "refused", "not-approver", "")
        return None

    def _late(self, uid: str, claimed: set[str]) -> None:
        """An answer about a request that is not pending (decided, withdrawn)."""
        self.unit.decision(
            uid, "", "ignored", "approval-late", f"{sorted(claimed)}: no pending request"
        )

    def finish(self) -> None:
        """A message without calendar data may be an owner's answer by text."""
        super().finish()
        if self._objects:
            return
        from imiptools.mail.approval import subject_token, text_answer  # lazy: start-up

        message = self.unit.message
        if message.auto_submitted not in HUMAN:
            return  # a vacation notice is nobody's answer (RFC 3834)
        answer = text_answer(message.message)
        if answer is None:
            return
        pending = self._answered(message.references, subject_token(message.subject))
        if pending is None:
            self.unit.decision("", "", "ignored", "approval-unmatched", answer.verdict)
            return
        approver = self._approver(pending, {message.from_address})
        if approver is None:
            return
        level = self.unit.preferences.get("require_signature")
        if level != "no" and not message.security.signed_by(approver):
            reason = f"answer by text refused (require_signature {level}): not signed by {approver}"
            self.unit.decision(pending.uid, "", "refused", "signature", reason, logging.WARNING)
            return
        stored = self.records.stored(pending.uid)
        if stored is None:
            self._late(pending.uid, {approver})
            return
        with self.scope(stored) as held:
            self._conclude(pending, answer.verdict, answer.reason, approver, held)
            self.unit.commit()

    def _answered(self, references: Sequence[str], token: str) -> Pending | None:
        """The pending request a mail answers: by the Message-IDs it refers
        to, else by the token in its subject."""
        pending = self._pending()
        refs = set(references)
        for each in pending.values():
            if refs & set(each.message_ids):
                return each
        for each in pending.values():
            if token and each.token == token:
                return each
        return None

    # -- deciding ----------------------------------------------------------------

    def _conclude(
        self, pending: Pending, verdict: str, reason: str, approver: str, held: Held
    ) -> None:
        """Book or decline the pending request as ``approver`` said (the
        first answer wins: the request is no longer pending afterwards)."""
        stored = self.records.stored(pending.uid)
        if stored is None:
            self._withdrawn_entry(pending, "the request is no longer stored")
            return
        case = Case(stored, held)
        why = reason.strip()
        if verdict == "approve":
            recheck, future = self._schedule(case, True)
            if approvable(pending.assessed, recheck):
                decision = self._verdict(Answer.ACCEPTED, "approved", approver, why, recheck)
            else:
                decision = Decision(
                    Answer.DECLINED,
                    recheck.code,
                    N_("approved by {approver}, but {reason}"),
                    "approval",
                    {"approver": approver, "reason": recheck.text()},
                )
        else:
            future = []
            decision = self._verdict(Answer.DECLINED, "declined-by-owner", approver, why, None)
        self._finish(case, decision, future, pending, approver, why)

    def decide(self, uid: str, verdict: str, reason: str, by: str) -> bool:
        """Decide the pending request ``uid`` from the shell (``imip-admin
        approve|decline``: the administrator is trusted, no sender check);
        whether one was pending. Commits under the quota locks."""
        pending = self._pending().get(uid)
        stored = self.records.stored(uid) if pending is not None else None
        if pending is None or stored is None:
            return False
        with self.scope(stored) as held:
            self._conclude(pending, verdict, reason, by, held)
            self.unit.commit()
        return True

    def expire(self) -> list[str]:
        """Apply the timeout of every pending request whose deadline has
        passed (``approval_timeout_action`` as it was when it was asked:
        decline, or accept if still free); the UIDs decided."""
        done = []
        for uid, pending in sorted(self._pending().items()):
            stored = self.records.stored(uid)
            if pending.deadline > self.unit.now or stored is None:
                continue
            with self.scope(stored) as held:
                self._time_out(pending, Case(stored, held))
                self.unit.commit()
            done.append(uid)
        return done

    def _time_out(self, pending: Pending, case: Case) -> None:
        when = f"{pending.deadline.astimezone(self.unit.zone):%Y-%m-%d %H:%M %Z}"
        future: list[Instance] = []
        if pending.timeout_action == "accept":
            recheck, future = self._schedule(case, True)
            if approvable(pending.assessed, recheck):
                decision = Decision(
                    Answer.ACCEPTED,
                    "approval-timeout",
                    N_("no owner answered by {deadline} and the period is free"),
                    "approval",
                    {"deadline": when},
                    declined=recheck.declined,
                )
            else:
                decision = Decision(
                    Answer.DECLINED,
                    recheck.code,
                    N_("no owner answered by {deadline}, and {reason}"),
                    "approval",
                    {"deadline": when, "reason": recheck.text()},
                )
        else:
            decision = Decision(
                Answer.DECLINED,
                "approval-timeout",
                N_("no owner answered by {deadline}"),
                "approval",
                {"deadline": when},
            )
        self._finish(case, decision, future, pending, "", "timeout")

    def _verdict(
        self, answer: Answer, code: str, approver: str, reason: str, recheck: Decision | None
    ) -> Decision:
        if answer is Answer.ACCEPTED:
            template = (
                N_("approved by {approver}: {reason}") if reason else N_("approved by {approver}")
            )
        else:
            template = (
                N_("declined by {approver}: {reason}") if reason else N_("declined by {approver}")
            )
        declined = recheck.declined if recheck is not None else ()
        return Decision(
            answer,
            code,
            template,
            "approval",
            {"approver": approver, "reason": reason},
            declined=declined,
        )

    def _finish(
        self,
        case: Case,
        decision: Decision,
        future: Sequence[Instance],
        pending: Pending,
        approver: str,
        reason: str,
    ) -> None:
        """Answer the organiser, store, dequeue, log; tell the other approvers."""
        obj = case.obj
        components = list(obj.components)
        self._set_partstat(components, str(decision.answer))
        declined = self._declined_instances(obj, decision.declined)
        added = [c for c in declined if not any(c is known for known in components)]
        self._reply(case, [*components, *added], decision)
        self.records.save(obj)
        self.records.dequeue(obj.uid, "")
        periods = self.records.refresh_freebusy(obj.uid)
        if periods:
            self._after(case, periods, [Booked("", list(future))], retract=False)
        else:
            self._steps(RETRACTIONS, case, ("",), (), periods)
        step = "approved" if decision.answer is Answer.ACCEPTED else "declined"
        if not approver:
            step = "timeout"
        text = decision.text()
        self.unit.decision(obj.uid, "", str(decision.answer), decision.code, text)
        approval = {"step": step, "by": approver, "reason": reason}
        self._approval_log(obj, str(decision.answer), decision.code, text, approval, decision)
        self._tell_others(obj, pending, approver, text)

    def _tell_others(self, obj: ItipObject, pending: Pending, by: str, text: str) -> None:
        """A CANCEL of their copy to every approver but ``by``, saying why."""
        for other in pending.approvers:
            if other == by:
                continue
            self.send(
                Outgoing(
                    key=self.unit.key(obj.uid, other, version_key(obj.first), "DECIDED"),
                    recipients=[other],
                    subject=self._("Decided: {summary}").format(summary=self._summary(obj.first))
                    + f" {token_tag(pending.token)}",
                    text=self._("No answer is needed any more: {reason}.").format(reason=text)
                    + "\n",
                    calendar=self._copy_for(obj, other, "CANCEL"),
                    method="CANCEL",
                )
            )

    # -- the organiser withdraws or settles a pending request ---------------------

    def vevent_cancel(self, obj: ItipObject, held: Held) -> None:
        """Cancel as every resource does; a pending request is withdrawn and
        its approvers told."""
        pending = self._pending().get(obj.uid) if obj.master is not None else None
        stored = self.records.stored(obj.uid) if pending is not None else None
        super().vevent_cancel(obj, held)
        if pending is None or stored is None or self.records.cancellation(obj.uid) is None:
            return
        self._withdrawn_entry(pending, "the organiser cancelled the request")
        self._tell_others(stored, pending, "", self._("the organiser cancelled the request"))

    def _settled(self, obj: ItipObject, why: str) -> None:
        """An update answered by rule: the request is no longer pending."""
        pending = self._pending().get(obj.uid)
        if pending is None:
            return
        self._withdrawn_entry(pending, why)
        self._tell_others(obj, pending, "", why)

    def _withdrawn_entry(self, pending: Pending, why: str) -> None:
        self.records.dequeue(pending.uid, "")
        self.unit.decision(pending.uid, "", "withdrawn", "approval-withdrawn", why)
        self._approval_log_line(
            pending.uid, pending.organiser, "withdrawn", "approval-withdrawn", why
        )

    # -- the decision log ----------------------------------------------------------

    def _approval_log(
        self,
        obj: ItipObject,
        answer: str,
        code: str,
        reason: str,
        approval: Mapping[str, object],
        decision: Decision,
    ) -> None:
        entry = {
            "time": format_utc(self.unit.now),
            "message_id": self.unit.message.message_id,
            "resource": self.unit.user,
            "organiser": organizer_of(obj.first),
            "uid": obj.uid,
            "recurrence_id": "",
            "sequence": sequence_of(obj.first),
            "verdicts": [list(v) for v in decision.verdicts],
            "answer": answer,
            "code": code,
            "reason": reason,
            "approval": dict(approval),
        }
        self.records.log_decision(json.dumps(entry, ensure_ascii=False))

    def _approval_log_line(self, uid: str, organiser: str, step: str, code: str, why: str) -> None:
        entry = {
            "time": format_utc(self.unit.now),
            "message_id": self.unit.message.message_id,
            "resource": self.unit.user,
            "organiser": organiser,
            "uid": uid,
            "recurrence_id": "",
            "answer": step.upper(),
            "code": code,
            "reason": why,
            "approval": {"step": step},
        }
        self.records.log_decision(json.dumps(entry, ensure_ascii=False))
