"""Check rooms before sending: what each resource invited would answer.

:func:`check_rooms` runs each resource's own agent on the invitation an
organiser is about to send, as a dry run (:func:`imiptools.views.whatif.what_if`:
overlays of the store and the quota ledger, mail collected, nothing
written, nothing sent, no lock waited for). The resource's scheduling
functions, event limits, quotas and approval rules decide exactly as they
will when the message arrives (RFC 5546 §3.2.2, §3.2.3: the REPLY it would
send). What is said of a clashing booking is what the resource's answer
says: its holder and title only where its ``conflict_details`` preference
allows (:func:`imiptools.scheduling.freebusy.booking_words`).
"""

from __future__ import annotations

from collections.abc import Sequence

from icalendar import Component

from imiptools.dates import to_utc
from imiptools.deferred import dataclass
from imiptools.errors import ImipError
from imiptools.itip.objects import find_attendee, iter_components
from imiptools.mail.parse import parse_message
from imiptools.site import Site
from imiptools.views.decisions import LoggedDecision
from imiptools.views.resources import Resource
from imiptools.views.whatif import Forecast, Sent, what_if

#: The decision code of a request left to the resource's owners.
APPROVAL_PENDING = "approval-pending"


@dataclass(frozen=True)
class RoomForecast:
    """What ``resource`` would answer: the answer (``ACCEPTED``,
    ``DECLINED``, ``TENTATIVE``, ``COUNTER``, ``DELEGATED``; '' when it
    decided nothing), the decision's code, the reason as the organiser
    would be told it, how many instances its REPLY would decline, whether
    its owners must approve, and ``problem`` when it could not be asked."""

    resource: Resource
    answer: str = ""
    code: str = ""
    reason: str = ""
    declined: int = 0
    approval: bool = False
    problem: str = ""
    #: The organisers of the bookings the declined instances clash with,
    #: when the resource's ``conflict_details`` lets anyone know them (or
    #: the booking is the sender's own).
    holders: tuple[str, ...] = ()

    def headline(self) -> str:
        """The forecast in a few words ("would accept; 3 occurrences
        declined"); the reason says the rest."""
        if self.problem:
            return f"could not be checked: {self.problem}"
        if self.approval:
            return "needs its owners' approval (held tentatively until they decide)"
        words = {
            "ACCEPTED": "would accept",
            "DECLINED": "would decline",
            "TENTATIVE": "would accept tentatively",
            "COUNTER": "would propose another time",
            "DELEGATED": "would pass the request on to another resource",
        }.get(self.answer, "would not answer")
        if self.declined:
            plural = "s" if self.declined != 1 else ""
            words += f"; {self.declined} occurrence{plural} declined"
            if self.holders:
                words += f", clashing with bookings by {', '.join(self.holders)}"
        return words


def check_rooms(
    site: Site, message: bytes, sender: str, rooms: Sequence[Resource]
) -> list[RoomForecast]:
    """What each of ``rooms`` would answer to ``message`` (an iMIP REQUEST,
    RFC 6047) from ``sender`` (an address), in order; nothing is written
    or sent."""
    return [_forecast(site, message, sender, room) for room in rooms]


def _forecast(site: Site, message: bytes, sender: str, room: Resource) -> RoomForecast:
    try:
        found = what_if(site, room.user, message, sender)
    except ImipError as exc:
        return RoomForecast(room, problem=str(exc))
    decisions = [d for d in found.decisions if isinstance(d, LoggedDecision)]
    if not decisions:
        return RoomForecast(room, reason=found.status)
    first = decisions[0]
    declined = _declined(found, room, sender)
    return RoomForecast(
        room,
        answer=first.answer,
        code=first.code,
        reason=first.reason,
        declined=len(declined),
        approval=first.code == APPROVAL_PENDING,
        holders=_holders(site, room, sender, declined),
    )


def _declined(found: Forecast, room: Resource, organiser: str) -> list[Component]:
    """The instances the REPLY to ``organiser`` declines one by one."""
    replies = [m for m in found.messages if organiser.lower() in _lower(m)]
    declined = []
    for sent in replies:
        for part in parse_message(sent.message).parts:
            for component in iter_components(part.text):
                attendee = find_attendee(component, room.user)
                if "RECURRENCE-ID" not in component or attendee is None:
                    continue
                if str(attendee.params.get("PARTSTAT", "")).upper() == "DECLINED":
                    declined.append(component)
    return declined


def _holders(
    site: Site, room: Resource, sender: str, declined: Sequence[Component]
) -> tuple[str, ...]:
    """Who holds the bookings ``declined`` clash with, as far as the
    resource's ``conflict_details`` tells (its own bookings to the sender)."""
    everyone = site.preferences_of(room.user).get("conflict_details") == "yes"
    found: dict[str, None] = {}
    for component in declined:
        try:
            start = to_utc(component.decoded("DTSTART"))
            end = to_utc(component.decoded("DTEND"))
        except (KeyError, ValueError, TypeError):
            continue
        for period in site.store.get_freebusy(room.user, start, end):
            holder = period.organiser
            if holder and (everyone or holder.lower() == sender.lower()):
                found[holder] = None
    return tuple(found)


def _lower(sent: Sent) -> list[str]:
    return [r.lower() for r in sent.recipients]
