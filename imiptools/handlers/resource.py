"""The resource handler: a room, car or projector that answers by itself.

Dispatch is by (component, METHOD) to a method named after both
(``vevent_request``). RFC 5546 roles: the resource is an ATTENDEE; it
answers REQUEST with REPLY (§3.2.3), ADD per ``add_method_response``
(§3.2.4: REFRESH by default, §3.2.7), applies CANCEL (§3.2.5), and answers
VFREEBUSY REQUEST (§3.3.2). Stale or duplicate versions change nothing and
send nothing new; every path ends by re-deriving the event's free/busy from
what is stored, so an interrupted earlier run converges.

What the handler knows about one scheduling object is passed along as
values (:class:`Case`, :class:`Booked`), never kept on the handler: a
message's objects cannot see each other's state.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from types import MappingProxyType

from icalendar import Component, Event

from imiptools import addresses
from imiptools.config import parse_duration
from imiptools.dates import format_utc, parse_recurrence_id, to_utc
from imiptools.deferred import dataclass
from imiptools.errors import CalendarDataError
from imiptools.handlers.base import BaseHandler
from imiptools.handlers.common import Held, Outgoing
from imiptools.i18n import N_, N_plural
from imiptools.itip import merge, replies
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
    version_key,
)
from imiptools.itip.recurrence import Expansion, Instance
from imiptools.itip.timing import start_zone
from imiptools.outcomes import QuotaChange
from imiptools.periods import Period
from imiptools.quota.base import QuotaLedger
from imiptools.quota.limits import QuotaBooking
from imiptools.quota.model import QuotaState, parse_user
from imiptools.scheduling import (
    CONFIRMATIONS,
    REQUEST_STATUS,
    RETRACTIONS,
    Answer,
    Booking,
    Decision,
    Request,
    Step,
    parse_function_lines,
    run_steps,
    schedule,
)
from imiptools.scheduling.quota import quotas_named

log = logging.getLogger(__name__)


def _recurs(component: Component) -> bool:
    """Whether ``component`` is the master of a series (RFC 5545 §3.8.5)."""
    recurring = "RRULE" in component or "RDATE" in component
    return recurring and "RECURRENCE-ID" not in component


def _quota_user(obj: ItipObject) -> str | None:
    """The organiser as quota records name users (None when unusable)."""
    try:
        return parse_user(organizer_of(obj.first)) if obj.components else None
    except ValueError:
        return None


@dataclass(frozen=True)
class Case:
    """One scheduling object as the resource handles it: the object, what
    the agent holds for it (the quota ledger and the quota states read
    under its locks), and whether a resource of one of our quotas delegated
    it to us (RFC 5546 §3.2.2.3: the answer then goes to its organiser)."""

    obj: ItipObject
    held: Held
    forwarded: bool = False


@dataclass(frozen=True)
class Booked:
    """What one scheduling decision was about: the RECURRENCE-ID ('' for the
    whole event) and the instances, from now on, that it decided."""

    rid: str
    instances: Sequence[Instance] = ()
    #: Whether the whole object was stored as it came (``records.save``),
    #: so that its free/busy can be derived from it without a re-read.
    saved_whole: bool = False


class ResourceHandler(BaseHandler):
    """Handles the scheduling objects of one message for one resource."""

    bounce_unusable = True

    @contextmanager
    def scope(self, obj: ItipObject) -> Iterator[Held]:
        """Hold the locks of the quotas the functions name while ``obj`` is
        handled and committed.

        Lock order (see imiptools.quota.base): the resource's store lock,
        held by the caller, then the quota locks by name. They are held from
        the decision until the commit has recorded it; the ledger's writes
        go into the unit's transaction, so that quota records and bookings
        are committed together. The ledger is the site's (``unit.ledger``);
        without one, the quota functions answer "misconfigured".
        """
        names = quotas_named(self._lines()) if obj.kind == "VEVENT" else []
        journal = self.unit.ledger
        if not names or journal is None:
            if names:
                log.error("quotas %s: no quota ledger given", ", ".join(names))
            yield Held()
            return
        with journal.locked(names, self.unit.settings.lock_timeout):
            journal.defer(self.unit.transaction)
            quotas = self._snapshots(journal, names, _quota_user(obj))
            try:
                yield Held(journal, MappingProxyType(quotas))
            finally:
                journal.defer(None)

    def _snapshots(
        self, journal: QuotaLedger, names: Sequence[str], organiser: str | None
    ) -> dict[str, QuotaState]:
        """The readable quotas, with the bookings of the organiser and their
        group; one with a bad file is left out (its functions then answer
        "misconfigured") and logged."""
        states = {}
        for name in names:
            try:
                states[name] = journal.snapshot(name, organiser)
            except ValueError as exc:
                log.error("quota %s: %s", name, exc)
        return states

    def _lines(self) -> list[tuple[str, list[str]]]:
        try:
            return parse_function_lines(self.unit.preferences.get("scheduling_function"))
        except ValueError:
            return []

    def _check_usable(self, obj: ItipObject) -> None:
        """As for everyone, and the ORGANIZER must be an address we can
        answer (:func:`imiptools.addresses.check`): a resource's answer is
        the point, and a booking no one can be told about only blocks the
        slot. Refused before anything is decided, stored or spooled (65)."""
        super()._check_usable(obj)
        organiser = organizer_of(obj.first)
        why = addresses.problem(organiser)
        if why:
            raise CalendarDataError(
                f"{obj.method} whose ORGANIZER cannot be answered: {organiser[:100]!r} ({why})"
            )

    def vevent_request(self, obj: ItipObject, held: Held) -> None:
        """Answer an invitation, an update, or an instance update."""
        self._check_usable(obj)
        if not any(find_attendee(c, self.unit.user) for c in obj.components):
            self._not_invited(obj)
            return
        stored = self.records.stored(obj.uid)
        if stored is not None and not self._authorised(stored.first, obj.first):
            return
        case = Case(obj, held, self._forwarded_by_pool(obj, held))
        booked: list[Booked] = []
        if obj.master is None:
            found = (self._instance_request(case, c) for c in obj.overrides)
            booked += [b for b in found if b is not None]
        elif self._is_new_version(obj.uid, obj.master, stored):
            booked.append(self._book(case, obj.components, full=True))
        saved = obj if any(b.saved_whole for b in booked) else None
        periods = self.records.refresh_freebusy(obj.uid, saved)
        self._after(case, periods, booked, retract=stored is not None)

    def _not_invited(self, obj: ItipObject) -> None:
        """A request that does not name us: nothing to answer, but an admin
        must see it at the default level (a misrouted message, or an
        ATTENDEE spelt unlike the resource's address)."""
        named = [mail_address_of(a)[:100] for a in attendees_of(obj.first)]
        shown = ", ".join(named[:5]) + (f" and {len(named) - 5} more" if len(named) > 5 else "")
        reason = (
            f"{self.unit.address} is not among the ATTENDEEs ({shown or 'none'}); nothing answered"
        )
        self.unit.decision(obj.uid, "", "ignored", "not-invited", reason, logging.WARNING)

    def _instance_request(self, case: Case, component: Component) -> Booked | None:
        obj = case.obj
        rid = recurrence_id_of(component, self.unit.zone)
        current = self.records.stored_version(obj.uid, rid)
        if current is not None and not self._newer_or_log(obj.uid, rid, component, current):
            return None
        single = ItipObject(obj.method, obj.kind, obj.uid, [component], obj.timezones)
        return self._book(replace(case, obj=single), [component], full=False)

    def _book(self, case: Case, components: Sequence[Component], full: bool) -> Booked:
        """Decide, answer and store one object (``full``) or one instance."""
        decision, future = self._schedule(case, full)
        return self._apply(case, components, full, decision, future)

    def _apply(
        self,
        case: Case,
        components: Sequence[Component],
        full: bool,
        decision: Decision,
        future: list[Instance],
    ) -> Booked:
        """Answer and store what ``decision`` decided about ``case``."""
        obj = case.obj
        rid = "" if full else recurrence_id_of(components[0], self.unit.zone)
        self.unit.decision(obj.uid, rid, decision.answer, decision.code, decision.text())
        self._log(obj, rid, components[0], decision)
        if decision.answer is Answer.COUNTER:
            self._set_partstat(components, "DECLINED")  # the requested time is not booked
            self._counter(case, components[0], decision, future)
        elif decision.answer is Answer.DELEGATED:
            self._delegate(case, components, decision)
        else:
            self._set_partstat(components, str(decision.answer))
            declined = self._declined_instances(obj, decision.declined) if full else []
            added = [c for c in declined if not any(c is known for known in components)]
            self._reply(case, [*components, *added], decision)
        if decision.answer is Answer.ACCEPTED:
            self.records.remove_offers(obj.uid)
        if full:
            self.records.save(obj)
        else:
            self.save_instance(obj.uid, components[0], obj.timezones)
        return Booked(rid, future, saved_whole=full)

    def _set_partstat(self, components: Sequence[Component], partstat: str) -> None:
        for component in components:
            attendee = find_attendee(component, self.unit.user)
            if attendee is not None:
                attendee.params["PARTSTAT"] = partstat

    def _declined_instances(self, obj: ItipObject, rids: Sequence[str]) -> list[Component]:
        """Overridden instances marking the declined ones of an accepted series
        (new ones are appended to ``obj.components`` too).

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
        verdicts = [list(v) for v in decision.verdicts]
        reason = decision.text()
        self._log_line(obj, rid, component, str(decision.answer), decision.code, reason, verdicts)

    def _log_line(
        self,
        obj: ItipObject,
        rid: str,
        component: Component,
        answer: str,
        code: str,
        reason: str,
        verdicts: Sequence[list[str]] = (),
    ) -> None:
        entry = {
            "time": format_utc(self.unit.now),
            "message_id": self.unit.message.message_id,
            "resource": self.unit.user,
            "organiser": organizer_of(obj.first),
            "uid": obj.uid,
            "recurrence_id": rid,
            "sequence": sequence_of(component),
            "verdicts": list(verdicts),
            "answer": answer,
            "code": code,
            "reason": reason,
        }
        security = self.unit.message.security
        if security.encrypted:
            entry["encrypted"] = True
        if security.signer:
            entry["signed_by"] = security.signer
        self.records.log_decision(json.dumps(entry, ensure_ascii=False))

    def _log_refusal(self, obj: ItipObject, code: str, reason: str) -> None:
        """A refusal before any decision, in the decision log too; a new
        invitation refused for its signature is declined, saying why (an
        update or cancellation of a booking is not answered: the organiser
        of the booking did not send it)."""
        self._log_line(obj, "", obj.first, "refused", code, reason)
        if obj.method != "REQUEST" or obj.kind != "VEVENT" or self.records.stored(obj.uid):
            return
        if not organizer_of(obj.first) or not any(
            find_attendee(c, self.unit.user) for c in obj.components
        ):
            return
        decision = Decision(
            Answer.DECLINED, "signature", N_("the request is not signed with its organiser's key")
        )
        self._set_partstat(obj.components, "DECLINED")  # the request's own copy, never stored
        self._reply(Case(obj, Held()), obj.components, decision)

    def unreadable(self) -> None:
        """An encrypted message the resource cannot read: logged, and the
        sender told in a short text (no calendar data) when it may be
        answered (:meth:`~imiptools.handlers.common.Unit.may_answer`: not a
        bounce, not automatic mail)."""
        super().unreadable()
        sender = self.unit.message.from_address
        if not self.unit.may_answer(sender):
            return
        subject = self.unit.message.subject
        text = self._(
            "{user} could not read your message: it was encrypted to a key that the "
            "calendar agent does not hold. Its invitation was not processed. Please send "
            "it again unencrypted, or encrypted to the key in this message's Autocrypt "
            "header, if it has one."
        ).format(user=self.unit.address)
        self.send(
            Outgoing(
                key=self.unit.key("undecryptable"),
                recipients=[sender],
                subject=self._("Not read: {subject}").format(subject=subject),
                text=text + "\n",
                calendar=None,
                method="",
            )
        )

    def _schedule(self, case: Case, full: bool) -> tuple[Decision, list[Instance]]:
        """The decision about ``case`` (the whole event when ``full``, else
        its instance), and the instances from now on that it is about."""
        now, obj = self.unit.now, case.obj
        limits = self.records.limits(now, now + self.unit.settings.window)
        expansion = self.records.expand(obj, limits, () if full else None)
        future = [i for i in expansion.instances if i.end > now]
        if not future:
            return self._nothing_to_book(obj), future
        return self._decide(obj, future, expansion, case.held.quotas), future

    def _after(
        self, case: Case, periods: Sequence[Period], booked: Sequence[Booked], retract: bool
    ) -> None:
        """Run the steps of the configured functions for the event as now stored
        (``periods``, its free/busy): confirmations when the resource is busy for
        it, else retractions (only when ``retract``: an event that was never
        booked has nothing to undo). Runs after every message about the UID, so
        that a redelivered message completes what an interrupted run left undone.
        ``booked``: the decisions this object made (none: it changed nothing)."""
        touched = tuple(b.rid for b in booked) or ("",)
        if periods:
            instances = [i for b in booked for i in b.instances]
            self._steps(CONFIRMATIONS, case, touched, instances, periods)
        elif retract:
            self._steps(RETRACTIONS, case, touched, (), periods)

    def _steps(
        self,
        steps: Mapping[str, Step],
        case: Case,
        touched: Sequence[str],
        instances: Sequence[Instance],
        periods: Sequence[Period],
    ) -> None:
        """Run confirmation or retraction steps of the configured functions
        for the RECURRENCE-IDs ``touched`` ('' alone: the whole event)."""
        obj = case.obj
        booking = Booking(
            self.unit.user,
            organizer_of(obj.first),
            obj.uid,
            touched,
            instances,
            self.unit.now,
            periods,
            case.held.ledger,
        )
        before = self._quota_records(case)
        for name in run_steps(steps, booking, self._lines()):
            self.unit.decision(obj.uid, ",".join(touched), "step", name, "ran")
        self._quota_changes(case, before)

    def _quota_records(self, case: Case) -> dict[str, frozenset[QuotaBooking]]:
        """The held quotas' records of this event, by quota (for outcomes)."""
        ledger, user = case.held.ledger, _quota_user(case.obj)
        if ledger is None or user is None:
            return {}
        event = (self.unit.user, case.obj.uid)
        return {
            quota: frozenset(b for b in ledger.user_bookings(quota, user) if b.key[1:3] == event)
            for quota in case.held.quotas
        }

    def _quota_changes(self, case: Case, before: Mapping[str, frozenset[QuotaBooking]]) -> None:
        """Report how the steps changed the held quotas' records of this event."""
        after, user = self._quota_records(case), _quota_user(case.obj) or ""
        for quota, old in before.items():
            new = after.get(quota, frozenset())
            if old != new:
                change = QuotaChange(
                    quota,
                    user,
                    self.unit.user,
                    case.obj.uid,
                    recorded=len(new - old),
                    removed=len({b.key for b in old} - {b.key for b in new}),
                )
                self.unit.outcomes.quota.append(change)

    def vevent_cancel(self, obj: ItipObject, held: Held) -> None:
        """Cancel (see BaseHandler), then retract what the functions confirmed."""
        cancelled = self.cancel(obj)
        if cancelled.done:
            rids = [recurrence_id_of(c, self.unit.zone) for c in obj.overrides] or [""]
            self._steps(RETRACTIONS, Case(obj, held), tuple(rids), (), cancelled.periods)
        by_rid = {recurrence_id_of(c, self.unit.zone): c for c in obj.overrides}
        for rid, count in cancelled.what:
            component = by_rid.get(rid, obj.first)
            reason = self._cancelled_words(rid, count)
            self._log_line(obj, rid, component, "CANCELLED", "cancel", reason)

    def _cancelled_words(self, rid: str, count: int) -> str:
        """What a CANCEL cancelled, for the decision log (English, as logged):
        the event, or the instance (in the resource's zone) and how many
        following ones went with it (RANGE=THISANDFUTURE)."""
        if not rid:
            return "the organiser cancelled the event"
        moment = parse_recurrence_id(rid)
        if isinstance(moment, datetime):
            local = moment.astimezone(self.unit.zone)
            when = f"{local:%Y-%m-%d %H:%M} ({local.tzname()})"
        else:
            when = moment.isoformat()
        following = count - 1
        more = f" and the {following} following" if following > 1 else " and the one following"
        return f"the organiser cancelled the instance of {when}" + (more if following else "")

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

    # -- the scheduling engine (imiptools.scheduling): limits, functions, alternatives --

    def _decide(
        self,
        obj: ItipObject,
        future: list[Instance],
        expansion: Expansion,
        quotas: Mapping[str, QuotaState],
    ) -> Decision:
        """The engine's decision: event limits, then the scheduling functions
        (RFC 5546 §3.2.3; see :func:`imiptools.scheduling.engine.schedule`)."""
        cut_short = expansion.reason if expansion.truncated and expansion.reason != "window" else ""
        return schedule(self._request(obj, future, expansion.indefinite, quotas, cut_short))

    def _request(
        self,
        obj: ItipObject,
        instances: list[Instance],
        indefinite: bool,
        quotas: Mapping[str, QuotaState],
        cut_short: str,
    ) -> Request:
        """The policies' view; busy periods are fetched as the policies ask."""
        uid = obj.uid
        return Request(
            resource=self.unit.user,
            organiser=organizer_of(obj.first),
            uid=uid,
            summary=text_of(obj.first, "SUMMARY"),
            instances=instances,
            busy=(),
            now=self.unit.now,
            zone=self.unit.zone,
            truncated=bool(cut_short),
            attendees=[mail_address_of(a) for a in attendees_of(obj.first)],
            component=obj.first,
            indefinite=indefinite,
            preference=self.unit.preferences.get,
            quotas=quotas,
            busy_of=self._busy_of,
            busy_between=lambda start, end: self._busy(uid, start, end),
            truncation=cut_short,
        )

    def _busy_of(self, resource: str, start: datetime, end: datetime) -> list[Period]:
        """Another resource's bookings and held offers over [start, end) (no lock:
        files are replaced atomically; that resource decides for itself)."""
        return self.records.as_user(resource).busy_or_offered(start, end)

    def _busy(self, uid: str, start: datetime, end: datetime) -> list[Period]:
        """Bookings and other organisers' held offers over [start, end), not ``uid``'s."""
        return self.records.busy_or_offered(start, end, exclude_uid=uid)

    # -- answers: REPLY, COUNTER, delegation ------------------------------------

    def _counter(
        self,
        case: Case,
        component: Component,
        decision: Decision,
        future: Sequence[Instance],
    ) -> None:
        """Propose another time (RFC 5546 §3.2.7) and hold it per ``freebusy_offers``."""
        obj = case.obj
        start, end = decision.params["start"], decision.params["end"]
        assert isinstance(start, datetime) and isinstance(end, datetime)
        hold = self.unit.preferences.get("freebusy_offers")
        if hold:
            offers = [
                Period(s, e, obj.uid, rid, "OPAQUE", "", organizer_of(obj.first), "BUSY-TENTATIVE")
                for s, e, rid in self._offered(decision, start, end, future)
            ]
            expires = self.unit.now + parse_duration(hold)
            self.records.set_offers(obj.uid, offers, expires)
        organiser = organizer_of(obj.first)
        if not self._may_answer(case, organiser):
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
                    zone=start_zone(component, self.unit.zone),
                    timezones=obj.timezones,
                    cn=self._own_name(),
                ),
                method="COUNTER",
            )
        )

    def _offered(
        self, decision: Decision, start: datetime, end: datetime, future: Sequence[Instance]
    ) -> list[tuple[datetime, datetime, str]]:
        """The periods a COUNTER proposes: every kept instance (of ``future``,
        the instances requested) of a series cut to ``count`` instances (same
        times as requested), else the one period."""
        count = decision.params.get("count")
        if decision.params.get("rrule") and isinstance(count, int) and future:
            kept = sorted(future, key=lambda i: i.start)[:count]
            if kept and kept[0].start == start and kept[0].end == end:
                return [(i.start, i.end, i.recurrenceid) for i in kept]
        return [(start, end, "")]

    def _reply(self, case: Case, components: Sequence[Component], decision: Decision) -> None:
        obj = case.obj
        organiser = organizer_of(obj.first)
        if not self._may_answer(case, organiser):
            return
        answers = [
            self._answer(c, decision) for c in components if find_attendee(c, self.unit.user)
        ]
        subject = {
            Answer.ACCEPTED: self._("Accepted: {summary}"),
            Answer.DELEGATED: self._("Delegated: {summary}"),
        }.get(decision.answer, self._("Declined: {summary}"))
        self.send(
            Outgoing(
                key=self.unit.key(obj.uid, [version_key(c) for c in components], "REPLY"),
                recipients=[organiser],
                subject=subject.format(summary=self._summary(obj.first)),
                text=self._text(obj, components, decision),
                calendar=replies.reply(answers),
                method="REPLY",
            )
        )

    def _may_answer(self, case: Case, organiser: str) -> bool:
        """May we answer? A request a pool member forwarded to us (RFC 5546
        §3.2.2.3) is automatic mail, but its organiser expects our answer."""
        return self.unit.may_answer(organiser, forwarded=case.forwarded)

    def _forwarded_by_pool(self, obj: ItipObject, held: Held) -> bool:
        """Whether ``obj`` was delegated to us by a resource of one of our
        quotas (our ATTENDEE's DELEGATED-FROM, which also sent the message)."""
        attendee = find_attendee(obj.first, self.unit.user)
        if attendee is None:
            return False
        delegators = {
            mail_address_of(a) for a in str(attendee.params.get("DELEGATED-FROM", "")).split(",")
        }
        pool = {d.removeprefix("mailto:") for q in held.quotas.values() for d in q.delegates}
        return bool(delegators & self.unit.senders() & pool)

    def _delegate(self, case: Case, components: Sequence[Component], decision: Decision) -> None:
        """Delegate (RFC 5546 §3.2.2.3): REPLY DELEGATED to the organiser, and the
        request, with the delegate added, to the delegate, which answers itself."""
        obj = case.obj
        delegate = str(decision.params["delegate"])
        for component in components:
            attendee = find_attendee(component, self.unit.user)
            if attendee is not None:
                attendee.params["PARTSTAT"] = "DELEGATED"
                attendee.params["DELEGATED-TO"] = f"mailto:{delegate}"
        self._reply(case, components, decision)
        if not self._may_answer(case, organizer_of(obj.first)):
            return
        forwarded = [replies.delegation(c, self.unit.user, delegate) for c in components]
        self.send(
            Outgoing(
                key=self.unit.key(obj.uid, [version_key(c) for c in components], "DELEGATE"),
                recipients=[delegate],
                subject=self._("Delegated: {summary}").format(summary=self._summary(obj.first)),
                text=self._("Reason: {reason}.").format(reason=decision.text(self.unit.translator))
                + "\n",
                calendar=make_calendar(forwarded, "REQUEST", obj.timezones),
                method="REQUEST",
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
        delegated_to = str(attendee.params.get("DELEGATED-TO", "")) if attendee else ""
        comment = "; ".join(d.text(self.unit.translator) for d in (decision, *decision.remarks))
        return replies.reply_component(
            component,
            self.unit.user,
            partstat,
            self.unit.now,
            comment=comment,
            request_status=status,
            sent_by=self.unit.sent_by,
            delegated_to=delegated_to if partstat == "DELEGATED" else "",
            cn=self._own_name(),
        )

    def _own_name(self) -> str:
        """The resource's own name (its CN preference; '' when unset, and the
        answers keep the CN the request gave it)."""
        return self.unit.preferences.get("CN") or ""

    def _text(self, obj: ItipObject, components: Sequence[Component], decision: Decision) -> str:
        attendee = find_attendee(components[0], self.unit.user)
        invited_as = str(attendee.params.get("CN", "")) if attendee is not None else ""
        name = self.unit.preferences.get("CN") or invited_as or self.unit.address
        sentence = {
            Answer.ACCEPTED: self._('{name} has accepted the invitation "{summary}"{when}.'),
            Answer.DELEGATED: self._(
                '{name} has delegated the invitation "{summary}"{when} to {delegate}.'
            ),
        }.get(decision.answer, self._('{name} has declined the invitation "{summary}"{when}.'))
        if _recurs(components[0]) and decision.answer is not Answer.DELEGATED:
            sentence = (
                self._('{name} has accepted the series "{summary}"{when}.')
                if decision.answer is Answer.ACCEPTED
                else self._('{name} has declined the series "{summary}"{when}.')
            )
        translator = self.unit.translator
        reason = self._("Reason: {reason}.").format(reason=decision.text(translator))
        notes = "".join(
            "\n" + self._("Note: {note}.").format(note=r.text(translator)) for r in decision.remarks
        )
        return (
            sentence.format(
                name=name,
                summary=self._summary(obj.first),
                when=self._when(components[0]),
                delegate=decision.params.get("delegate", ""),
            )
            + "\n"
            + reason
            + notes
            + "\n\n"
            + self._("This answer was sent automatically by the resource's booking agent.")
            + "\n"
        )

    def vevent_declinecounter(self, obj: ItipObject, held: Held) -> None:
        """The organiser declined our proposal: release the held offer (§3.2.8)."""
        stored = self.records.stored(obj.uid) if obj.uid else None
        if stored is not None and self._authorised(stored.first, obj.first):
            self.records.remove_offers(obj.uid)
            self.unit.decision(obj.uid, "", "released", "declinecounter", "offer released")

    def vevent_add(self, obj: ItipObject, held: Held) -> None:
        """ADD (RFC 5546 §3.2.4): per ``add_method_response``; unknown -> REFRESH."""
        self._check_usable(obj)
        response = self.unit.preferences.get("add_method_response")
        stored = self.records.stored(obj.uid)
        if response == "ignore" and stored is not None:
            self.unit.decision(obj.uid, "", "ignored", "add-ignored", "add_method_response")
        elif response == "refresh" or stored is None:
            self._refresh(obj)
        elif self._authorised(stored.first, obj.first):
            case = Case(obj, held)
            found = (self._add_instance(case, c) for c in obj.components)
            booked = [b for b in found if b is not None]
            self._after(case, self.records.refresh_freebusy(obj.uid), booked, retract=True)

    def _add_instance(self, case: Case, component: Component) -> Booked | None:
        if "RECURRENCE-ID" not in component and "DTSTART" in component:
            component.add("RECURRENCE-ID", component.decoded("DTSTART"))
        return self._instance_request(case, component)
