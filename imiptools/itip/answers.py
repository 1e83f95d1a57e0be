"""Who may answer for whom in a REPLY: the organiser's trust decisions.

A REPLY reaches the organiser by mail, and mail says nothing reliable about
its sender beyond the envelope and From addresses the MTA passes on. What
a REPLY's ATTENDEE lines claim is checked against the organiser's stored
event, never against the REPLY itself:

* RFC 5546 §3.2.3: a REPLY carries the answer of the attendee who sends it.
  The sender must be that attendee, or (RFC 5545 §3.2.18, RFC 6047 §3)
  the SENT-BY the organiser's stored event gives that attendee. A SENT-BY
  written in the REPLY proves nothing: anyone can write
  ``ATTENDEE;SENT-BY="mailto:mallory@...":mailto:bob@...``.
* RFC 5546 §3.2.2.3 and §4.2.5: a delegator's REPLY says
  ``PARTSTAT=DELEGATED;DELEGATED-TO=...`` and may name the delegate with
  ``DELEGATED-FROM`` pointing back. The delegate is added, NEEDS-ACTION:
  the delegator cannot answer for the delegate, and cannot touch anyone
  who is already an attendee.
* A delegate answering for itself is known as such only when the stored
  event records the delegation (the delegator's DELEGATED-TO names it). A
  DELEGATED-FROM the stored event does not back is dropped: the sender is
  then just someone who was not invited (RFC 5546 §2.1.1 leaves those to
  the organiser's policy, see ``uninvited_replies``).

Everything here is pure: components and addresses in, a verdict out.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import field

from icalendar import Component, vCalAddress

from imiptools.deferred import dataclass
from imiptools.itip.objects import attendees_of, find_attendee, mail_address_of, sent_by_of


@dataclass(frozen=True)
class Answer:
    """One ATTENDEE line to merge, as it may be merged.

    ``delegate``: a delegate whose delegation is established (by the
    delegator's own REPLY or by the stored event); added if not yet an
    attendee. Otherwise the sender's own answer.
    """

    attendee: vCalAddress
    delegate: bool = False

    @property
    def address(self) -> str:
        """The attendee's e-mail address."""
        return mail_address_of(self.attendee)


@dataclass
class Verdict:
    """The answers of one REPLY component that count, and those that do not.

    ``refused``: attendees the sender may not speak for; ``unbacked``:
    delegations claimed by the sender that the stored event does not record.
    """

    answers: list[Answer] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    unbacked: list[str] = field(default_factory=list)


def judge(component: Component, stored: Sequence[Component], senders: Collection[str]) -> Verdict:
    """Decide which ATTENDEE lines of REPLY ``component`` count.

    ``stored`` are the organiser's stored components of the event (master
    and overrides); ``senders`` the addresses the message comes from
    (envelope sender and From), lower case without ``mailto:``.
    """
    verdict = Verdict()
    own: dict[str, vCalAddress] = {}
    for attendee in attendees_of(component):
        if speaks_for(attendee, stored, senders):
            answer = _own(attendee, stored, verdict)
            own[answer.address] = answer.attendee
            verdict.answers.append(answer)
    for attendee in attendees_of(component):
        who = mail_address_of(attendee)
        if who in own:
            continue
        delegate = _named_delegate(attendee, stored, own)
        if delegate is not None:
            verdict.answers.append(Answer(delegate, delegate=True))
        else:
            verdict.refused.append(who)
    return verdict


def speaks_for(
    attendee: vCalAddress, stored: Sequence[Component], senders: Collection[str]
) -> bool:
    """True if a message from ``senders`` may carry ``attendee``'s own answer:
    a sender is the attendee, or the SENT-BY stored for the attendee."""
    who = mail_address_of(attendee)
    if who and who in senders:
        return True
    allowed = {sent_by_of(a) for a in stored_attendees(stored, who)} - {""}
    return bool(allowed & set(senders))


def stored_attendees(stored: Sequence[Component], who: str) -> list[vCalAddress]:
    """``who``'s ATTENDEE lines in the stored components."""
    found = (find_attendee(component, who) for component in stored)
    return [attendee for attendee in found if attendee is not None]


def delegated_to(attendee: vCalAddress) -> set[str]:
    """The addresses in ``attendee``'s DELEGATED-TO parameter."""
    return addresses(attendee.params.get("DELEGATED-TO", ""))


def addresses(value: object) -> set[str]:
    """Addresses in a DELEGATED-TO/FROM parameter (one or a list)."""
    items = value if isinstance(value, list) else [value] if value else []
    return {mail_address_of(str(item)) for item in items}


def _copy(attendee: vCalAddress) -> vCalAddress:
    copied = vCalAddress(str(attendee))
    copied.params.update(attendee.params)
    return copied


def _own(attendee: vCalAddress, stored: Sequence[Component], verdict: Verdict) -> Answer:
    """The sender's own answer; a delegate of a delegation the stored event
    records; or, with an unbacked DELEGATED-FROM dropped, a stranger's."""
    who = mail_address_of(attendee)
    claimed = addresses(attendee.params.get("DELEGATED-FROM", ""))
    if not claimed or stored_attendees(stored, who):
        return Answer(attendee)
    backed = any(
        who in delegated_to(delegator)
        for source in claimed
        for delegator in stored_attendees(stored, source)
    )
    if backed:
        return Answer(attendee, delegate=True)
    verdict.unbacked.append(who)
    stranger = _copy(attendee)
    stranger.params.pop("DELEGATED-FROM", None)
    return Answer(stranger)


def _named_delegate(
    attendee: vCalAddress, stored: Sequence[Component], own: dict[str, vCalAddress]
) -> vCalAddress | None:
    """``attendee`` as the new delegate of a delegator who answers in the
    same REPLY (RFC 5546 §4.2.5), NEEDS-ACTION; None if it is not one."""
    who = mail_address_of(attendee)
    if stored_attendees(stored, who):
        return None  # an attendee already: only its own answers count
    for source in addresses(attendee.params.get("DELEGATED-FROM", "")):
        delegator = own.get(source)
        if delegator is None or who not in delegated_to(delegator):
            continue
        if str(delegator.params.get("PARTSTAT", "")).upper() == "DELEGATED":
            delegate = _copy(attendee)
            delegate.params["PARTSTAT"] = "NEEDS-ACTION"
            return delegate
    return None
