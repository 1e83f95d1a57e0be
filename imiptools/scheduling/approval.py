"""Approval by a resource's owners: which requests need one (pure policy).

A resource's ``approval`` preference says which requests go to its owners
(the ``approvers`` preference) instead of being answered by rule alone, as
Exchange's ``AllBookInPolicy``/``AllRequestInPolicy``/``AllRequestOutOfPolicy``
and ``BookInPolicy``/``RequestInPolicy`` do:

- ``never``: the rules answer (the default);
- ``always``: every request the rules would accept or decline for a rule
  goes to the owners (one that clashes with a booking, is in the past or
  outside the window does not: no owner can make room for it, and it is
  declined at once);
- ``out_of_policy``: a request the rules accept is booked; one they would
  decline (or counter) goes to the owners instead;
- a list of organisers (an address or ``*@domain``) and quota groups
  (``group:QUOTA/GROUP``): their requests are answered by rule, everyone
  else's go to the owners (as ``always``).

``approval_timeout`` (an RFC 5545 duration, e.g. ``P2D``) is how long the
owners have; ``approval_timeout_action`` what happens then (``decline``, or
``accept`` if the period is still free). Nothing here reads or writes
records: the handler (:mod:`imiptools.handlers.approval`) asks
:func:`needs_approval` and applies the answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from imiptools.deferred import dataclass
from imiptools.scheduling.access import check_pattern, matches_any
from imiptools.scheduling.model import Answer, Decision

#: The modes of the ``approval`` preference that are one word.
MODES = ("never", "always", "out_of_policy")
#: The actions of ``approval_timeout_action``.
TIMEOUT_ACTIONS = ("decline", "accept")
#: Decision codes nobody can approve away: the request cannot be booked at all.
FINAL_CODES = frozenset({"past", "outside-window", "truncated", "misconfigured"})
#: Decision codes that a re-check at approval time never lets through: the
#: period is taken (a double booking is never approved).
CLASH_CODES = frozenset({"conflict"})

_GROUP = r"group:([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)"


@dataclass(frozen=True)
class ApprovalPolicy:
    """The ``approval`` preference read: a mode, or the organisers and
    quota groups ((quota, group) pairs) booked directly."""

    mode: str
    direct: tuple[str, ...] = ()
    groups: tuple[tuple[str, str], ...] = ()


def parse_approval(value: str) -> ApprovalPolicy:
    """The policy of an ``approval`` value; ValueError for a bad one."""
    words = value.replace(",", " ").split()
    if not words:
        return ApprovalPolicy("never")
    if len(words) == 1 and words[0].lower() in MODES:
        return ApprovalPolicy(words[0].lower())
    direct: list[str] = []
    groups: list[tuple[str, str]] = []
    for word in words:
        if word.lower() in MODES:
            raise ValueError(f"{word!r} must stand alone")
        found = re.fullmatch(_GROUP, word)
        if found:
            groups.append((found.group(1), found.group(2)))
        elif word.lower().startswith("group:"):
            raise ValueError(f"not a quota group: {word!r} (expected group:QUOTA/GROUP)")
        else:
            direct.append(check_pattern(word.removeprefix("mailto:")))
    return ApprovalPolicy("list", tuple(direct), tuple(groups))


def parse_approvers(value: str) -> tuple[str, ...]:
    """The approvers' addresses (lower case), in order; ValueError for a
    word that is not an address."""
    found: list[str] = []
    for word in value.replace(",", " ").split():
        address = word.removeprefix("mailto:").lower()
        local, at, domain = address.rpartition("@")
        if not at or not local or "*" in address or not domain or "." not in domain:
            raise ValueError(f"not an address: {word!r}")
        if address not in found:
            found.append(address)
    return tuple(found)


def check_approval(value: str) -> str:
    """A validator for ``approval`` (the value, or ValueError)."""
    parse_approval(value)
    return value


def check_approvers(value: str) -> str:
    """A validator for ``approvers`` (the value, or ValueError)."""
    parse_approvers(value)
    return value


def needs_approval(
    policy: ApprovalPolicy,
    decision: Decision,
    organiser: str,
    group_of: Callable[[str, str], str | None],
) -> bool:
    """Whether the request the rules answered with ``decision`` goes to the
    owners. ``organiser`` is its normalised address; ``group_of(quota,
    organiser)`` the organiser's group in a quota (None: none)."""
    if policy.mode == "never" or decision.code in FINAL_CODES or decision.code in CLASH_CODES:
        return False
    if policy.mode == "out_of_policy":
        return decision.answer is not Answer.ACCEPTED
    if policy.mode == "list" and _booked_directly(policy, organiser, group_of):
        return False
    return decision.answer in (Answer.ACCEPTED, Answer.DECLINED, Answer.COUNTER)


def _booked_directly(
    policy: ApprovalPolicy, organiser: str, group_of: Callable[[str, str], str | None]
) -> bool:
    if matches_any(policy.direct, organiser):
        return True
    return any(group_of(quota, organiser) == group for quota, group in policy.groups)


def approvable(assessed: str, recheck: Decision) -> bool:
    """Whether an approval made for a request assessed as ``assessed`` (the
    decision code the owners were shown) may be booked, given the rules'
    ``recheck`` now: yes when the rules accept it now, or when they still
    break only the rule the owners saw; never for a clash or a request that
    cannot be booked at all (:data:`FINAL_CODES`)."""
    if recheck.answer is Answer.ACCEPTED:
        return True
    if recheck.code in CLASH_CODES or recheck.code in FINAL_CODES:
        return False
    return recheck.code == assessed


def approvers_of(value: str) -> Sequence[str]:
    """:func:`parse_approvers`, or none for a value that does not parse."""
    try:
        return parse_approvers(value)
    except ValueError:
        return ()
