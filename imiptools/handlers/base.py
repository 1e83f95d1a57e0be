"""What every handler shares: dispatch, version checks, authorisation,
cancellation, REFRESH, and free/busy requests and records.

Dispatch is by (component, METHOD) to a method named after both
(``vevent_request``, ``vfreebusy_reply``), through a table each handler
class builds once, when it is defined (:attr:`BaseHandler.methods`); pairs
without a method are logged and ignored. Each method is given the object
and what the agent holds for it (:class:`~imiptools.handlers.common.Held`),
and keeps nothing about the object on the handler.

Stale or duplicate versions change nothing and send nothing new
(RFC 5546 §2.1.5); changes to a stored event are accepted only from its
organiser (§3.2, "the Organizer is the only one who may ..."). Every path
that touches an event ends by re-deriving its free/busy from what is stored,
so an interrupted earlier run converges.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any, ClassVar, cast

from icalendar import Component, Event, Timezone

from imiptools.dates import format_recurrence_id, parse_recurrence_id, to_utc
from imiptools.deferred import dataclass
from imiptools.errors import CalendarDataError
from imiptools.handlers.common import Held, Outgoing, Unit
from imiptools.itip import merge, replies
from imiptools.itip.objects import (
    ItipObject,
    address,
    attendees_of,
    is_newer,
    is_this_and_future,
    iter_components,
    mail_address_of,
    make_calendar,
    organizer_of,
    recurrence_id_of,
    sent_by_of,
    text_of,
    to_text,
    version_key,
)
from imiptools.itip.timing import recurs
from imiptools.periods import Period

log = logging.getLogger(__name__)

#: The longest VFREEBUSY range answered (bounded work per request).
MAX_FREEBUSY_RANGE = timedelta(days=5 * 366)
#: Half the window expanded to find whether one occurrence exists.
INSTANT = timedelta(seconds=1)
#: The components a handler method can be named after (``vevent_request``).
COMPONENTS = ("VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY")

#: The methods that ``require_signature`` covers (RFC 5546 §3.2: those
#: that create, change or cancel an event, or answer it).
SIGNED_METHODS = frozenset({"REQUEST", "ADD", "CANCEL", "REPLY"})

#: A handler method: (handler, object, what is held for it) -> None.
Method = Callable[[Any, ItipObject, Held], None]


def method_key(kind: str, method: str) -> tuple[str, str]:
    """The dispatch key of a component ``kind`` and an iTIP ``method``
    (RFC 5546 §1.4): both upper case, ``-`` as ``_``."""
    return kind.upper(), method.upper().replace("-", "_")


def dispatch_table(cls: type) -> Mapping[tuple[str, str], Method]:
    """The handler methods of ``cls`` by (component, METHOD), found by name:
    ``vevent_request`` handles (VEVENT, REQUEST)."""
    table: dict[tuple[str, str], Method] = {}
    for name in dir(cls):
        kind, _, method = name.partition("_")
        if kind.upper() in COMPONENTS and method and callable(getattr(cls, name)):
            table[method_key(kind, method)] = getattr(cls, name)
    return MappingProxyType(table)


@dataclass(frozen=True)
class Cancelled:
    """What a CANCEL did: whether it cancelled anything, and the free/busy
    periods of its UID as stored after it."""

    done: bool
    periods: Sequence[Period] = ()
    #: What was cancelled: (RECURRENCE-ID, number of instances) per
    #: cancelled component, ('', 0) for the whole event.
    what: Sequence[tuple[str, int]] = ()


class BaseHandler:
    """The scheduling objects of one message for one calendar user."""

    #: Unusable calendar data makes the program exit 65 (resources only:
    #: a person's mail is delivered whatever its calendar part holds).
    bounce_unusable = False
    #: (component, METHOD) -> handler method, built once per class.
    methods: ClassVar[Mapping[tuple[str, str], Method]] = MappingProxyType({})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Build the subclass's dispatch table once, when it is defined."""
        super().__init_subclass__(**kwargs)
        cls.methods = dispatch_table(cls)

    def __init__(self, unit: Unit) -> None:
        self.unit = unit
        self.records = unit.records
        #: One line per change, for the user's summary (``incoming``).
        self.notes: list[str] = []

    def _(self, message: str) -> str:
        """``message`` in the user's language (LANG preference)."""
        return self.unit.gettext(message)

    def _summary(self, component: Component) -> str:
        return text_of(component, "SUMMARY") or self._("(no title)")

    def send(self, outgoing: Outgoing) -> None:
        """Spool ``outgoing`` (subclasses may add to it first)."""
        self.unit.send(outgoing)

    def finish(self) -> None:
        """Called once, still under the user's lock, after every object."""

    def deliveries(self, raw: bytes) -> list[bytes]:
        """What the user's mailbox receives: nothing, unless a subclass says."""
        return []

    @contextmanager
    def scope(self, obj: ItipObject) -> Iterator[Held]:
        """Held while ``obj`` is handled and committed: nothing more here."""
        yield Held()

    def handle(self, obj: ItipObject, held: Held) -> None:
        """Dispatch ``obj`` by component and METHOD; unknown pairs are logged."""
        method = self.methods.get(method_key(obj.kind, obj.method))
        if method is None:
            self.unit.decision(obj.uid, "", "ignored", "method", f"{obj.kind} {obj.method}")
            return
        if not self._signature_accepted(obj):
            return
        method(self, obj, held)

    def unreadable(self) -> None:
        """An encrypted message the agent cannot read: logged, and (for a
        person) delivered as it is, like mail without calendar data."""
        problem = self.unit.message.security.problem
        self.unit.decision("", "", "ignored", "undecryptable", problem, logging.WARNING)

    def _signers(self, obj: ItipObject) -> list[str]:
        """Who must have signed ``obj``: the replying attendees of a REPLY,
        else the organiser (RFC 5546 §3.2)."""
        if obj.method == "REPLY":
            found = {mail_address_of(a) for c in obj.components for a in attendees_of(c)}
            return sorted(found - {""})
        return [organizer_of(obj.first)] if obj.components else []

    def _signature_accepted(self, obj: ItipObject) -> bool:
        """Whether ``obj`` passes the user's ``require_signature``: ``no``;
        ``changes`` (a REQUEST, ADD, CANCEL or REPLY about a stored event)
        or ``all`` (about any) must carry a valid OpenPGP signature by a key
        of the site's keyring bound to the organiser, or for a REPLY to the
        attendee. A verified signature is logged with its key's fingerprint
        whatever the preference says."""
        security = self.unit.message.security
        signers = self._signers(obj)
        bound = [a for a in signers if security.signed_by(a)]
        if security.signer:
            who = ", ".join(security.signer_addresses) or "no address"
            outcome = "verified" if bound else "signed"
            self.unit.decision(obj.uid, "", outcome, "signature", f"key {security.signer} ({who})")
        level = self.unit.preferences.get("require_signature")
        if level == "no" or bound or obj.method not in SIGNED_METHODS or obj.kind == "VFREEBUSY":
            return True
        if level == "changes" and (not obj.uid or self.records.stored(obj.uid) is None):
            return True
        if security.signer:
            why = f"signed by key {security.signer}, which is not bound to {', '.join(signers)}"
        elif security.signed:
            why = f"signature not valid: {security.signature_problem}"
        else:
            why = "not signed"
        reason = f"{obj.method} refused (require_signature {level}): {why}"
        self.unit.decision(obj.uid, "", "refused", "signature", reason, logging.WARNING)
        self._log_refusal(obj, "signature", reason)
        return False

    def _log_refusal(self, obj: ItipObject, code: str, reason: str) -> None:
        """Where a refusal is kept besides the log (a resource's decision log)."""

    def _when(self, component: Component) -> str:
        """' on DAY' / ' starting TIME' for texts; '' when the start is unusable."""
        try:
            start = component.decoded(
                "RECURRENCE-ID" if "RECURRENCE-ID" in component else "DTSTART"
            )
        except (KeyError, ValueError, TypeError, AttributeError):
            return ""
        if isinstance(start, datetime):
            begin = to_utc(start, self.unit.zone).astimezone(self.unit.zone)
            return " " + self._("starting {start}").format(start=f"{begin:%Y-%m-%d %H:%M %Z}")
        if isinstance(start, date):
            return " " + self._("on {date}").format(date=start.isoformat())
        return ""

    def _targets(self, stored: ItipObject, component: Component, rid: str) -> list[Component]:
        """The stored components a reply applies to (creating an override).

        A reply may only touch occurrences that exist (RFC 5546 §3.2.3: it
        answers the organiser's event): a stored override with that
        RECURRENCE-ID, or an instance of the stored series, from which an
        override is made. Any other RECURRENCE-ID is logged (``no-instance``)
        and gives no target, so a reply cannot invent an occurrence (and
        busy time) in the organiser's calendar.
        """
        if not rid:
            return list(stored.components)
        for override in stored.overrides:
            if recurrence_id_of(override, self.unit.zone) == rid:
                return [override]
        master = stored.master
        if master is not None and not recurs(cast(Event, master)) and self._starts_at(master, rid):
            return [master]  # some clients name the only occurrence of a single event
        if master is None or not self._occurs(stored, master, rid):
            self.unit.decision(stored.uid, rid, "ignored", "no-instance", "no such occurrence")
            return []
        instance = merge.instance_of(master, component.decoded("RECURRENCE-ID"))
        stored.components.append(instance)
        return [instance]

    def _starts_at(self, component: Component, rid: str) -> bool:
        try:
            return format_recurrence_id(component.decoded("DTSTART"), self.unit.zone) == rid
        except (KeyError, ValueError, TypeError, AttributeError):
            return False

    def _occurs(self, stored: ItipObject, master: Component, rid: str) -> bool:
        """True if ``rid`` is an occurrence of the stored series: generated by
        its RRULE or RDATE, not excluded by EXDATE, not cancelled
        (RFC 5545 §3.8.5). Only the moment of ``rid`` is expanded."""
        if rid in self.records.cancelled_instances(stored.uid):
            return False
        try:
            moment = to_utc(parse_recurrence_id(rid), self.unit.zone)
            limits = self.records.limits(moment - INSTANT, moment + INSTANT)
            series = ItipObject(stored.method, stored.kind, stored.uid, [master], stored.timezones)
            expansion = self.records.expand(series, limits, cancelled=())
        except (ValueError, CalendarDataError):
            return False
        return any(instance.recurrenceid == rid for instance in expansion.instances)

    def save_instance(self, uid: str, component: Component, zones: list[Timezone]) -> None:
        """Store an overridden instance from the organiser, reinstating it in
        the stored series first if an EXDATE there excludes it.

        An organiser brings back an occurrence it had removed by sending it
        as an instance (CalendarServer's "override of EXDATE"); RFC 5545
        §3.8.5.1 drops excluded instances, so without this the occurrence
        would be stored but never shown, booked or exported. The series is
        written first: after a crash in between, the occurrence exists as
        the series describes it, and the redelivered instance completes it.
        """
        rid = recurrence_id_of(component, self.unit.zone)
        stored = self.records.stored_series(uid)  # the master only: not every instance
        master = stored.master if stored is not None else None
        if stored and master is not None and merge.include_instance(master, rid, self.unit.zone):
            series = ItipObject(stored.method, stored.kind, uid, [master], stored.timezones)
            self.records.save(series, authoritative=False)
            self.unit.decision(uid, rid, "reinstated", "exdate", "the organiser sent it again")
        self.records.save_instance(uid, component, zones)

    def vevent_cancel(self, obj: ItipObject, held: Held) -> None:
        """Cancel the whole booking or some instances (RFC 5546 §3.2.5)."""
        self.cancel(obj)

    def cancel(self, obj: ItipObject) -> Cancelled:
        """Cancel as :meth:`vevent_cancel` says; what it did, and the UID's
        free/busy re-derived from what is then stored."""
        stored = self.records.stored(obj.uid) if obj.uid else None
        what: list[tuple[str, int]] = []
        if stored is None:
            self.unit.decision(obj.uid, "", "ignored", "unknown", "cancel of an unknown event")
        elif self._authorised(stored.first, obj.first):
            if obj.master is not None:
                what += [("", 0)] if self._cancel_whole(obj, stored) else []
            else:
                what += [self._cancel_instance(obj, stored, c) for c in obj.overrides]
        periods = self.records.refresh_freebusy(obj.uid) if obj.uid else []
        return Cancelled(bool(what), periods, tuple(what))

    def _cancel_whole(self, obj: ItipObject, stored: ItipObject) -> bool:
        assert obj.master is not None
        if stored.master is not None and version_key(obj.master)[0] < version_key(stored.master)[0]:
            self.unit.decision(obj.uid, "", "ignored", "stale", "cancel of an older version")
            return False
        text = to_text(make_calendar(obj.components, "CANCEL", obj.timezones))
        self.records.cancel(obj.uid, text)
        self.unit.decision(obj.uid, "", "cancelled", "cancel", "the organiser cancelled")
        return True

    def _cancel_instance(
        self, obj: ItipObject, stored: ItipObject, component: Component
    ) -> tuple[str, int]:
        """Cancel one instance (and with RANGE=THISANDFUTURE the later ones):
        its RECURRENCE-ID and how many instances were cancelled."""
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
            self.records.cancel_instance(obj.uid, each, text)
        self.unit.decision(obj.uid, rid, "cancelled", "cancel", f"{len(rids)} instance(s)")
        return rid, len(rids)

    def _refresh(self, obj: ItipObject) -> None:
        organiser = organizer_of(obj.first)
        self.unit.decision(obj.uid, "", "refresh", "add", "asking the organiser for the event")
        if not self.unit.may_answer(organiser):
            return
        summary = self._summary(obj.first)
        self.send(
            Outgoing(
                key=self.unit.key(obj.uid, version_key(obj.first), "REFRESH"),
                recipients=[organiser],
                subject=self._("Refresh: {summary}").format(summary=summary),
                text=self._('Please send the complete, current version of "{summary}".').format(
                    summary=summary
                )
                + "\n",
                calendar=replies.refresh(
                    obj.first, self.unit.user, self.unit.now, self.unit.sent_by
                ),
                method="REFRESH",
            )
        )

    def vfreebusy_request(self, obj: ItipObject, held: Held) -> None:
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
        self.send(
            Outgoing(
                key=self.unit.key(obj.uid, start, end, "FREEBUSY"),
                recipients=[organiser],
                subject=self._("Free/busy: {user}").format(user=self.unit.address),
                text=self._("Busy times of {user} from {start} to {end} UTC are attached.").format(
                    user=self.unit.address,
                    start=f"{start:%Y-%m-%d %H:%M}",
                    end=f"{end:%Y-%m-%d %H:%M}",
                )
                + "\n",
                calendar=replies.freebusy_reply(
                    component, self.unit.user, periods, self.unit.now, start, end
                ),
                method="REPLY",
            )
        )

    def vfreebusy_reply(self, obj: ItipObject, held: Held) -> None:
        """Record another user's free/busy (it never replaces our own)."""
        component = obj.first
        attendees = component.get("ATTENDEE")
        other = address(attendees[0] if isinstance(attendees, list) else attendees)
        self._store_other(other or organizer_of(component), component)

    def vfreebusy_publish(self, obj: ItipObject, held: Held) -> None:
        """Record a published free/busy under its organiser."""
        self._store_other(organizer_of(obj.first), obj.first)

    def _store_other(self, other: str, component: Component) -> None:
        if not other or other == self.unit.address:
            return
        periods = freebusy_periods(component)
        self.records.set_freebusy_of(f"mailto:{other}", periods)
        self.unit.decision("", "", "stored", "freebusy-other", f"{len(periods)} periods of {other}")

    def _check_usable(self, obj: ItipObject) -> None:
        if not obj.uid:
            raise CalendarDataError(f"{obj.method} without UID")
        if not organizer_of(obj.first):
            raise CalendarDataError(f"{obj.method} without ORGANIZER")

    def _is_new_version(self, uid: str, master: Component, stored: ItipObject | None) -> bool:
        cancelled = self.records.cancellation(uid)
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


BaseHandler.methods = dispatch_table(BaseHandler)
