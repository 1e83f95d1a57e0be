"""Access scheduling functions: who may book a resource.

Two functions, registered like ``schedule_in_freebusy``:

``same_domain_only [DOMAIN...]``
    Accept only organisers whose address is in the resource's own domain
    (the part after ``@`` of the resource's address), or in one of the extra
    ``DOMAIN`` arguments. Domains match exactly (``example.com`` does not
    admit ``sub.example.com``) and case-insensitively.

``access_control_list [RULE...]``
    Run the rules of the resource's ``acl`` preference; given arguments, each
    argument is one rule line instead (``access_control_list "accept domain
    example.com"``). The first rule that matches decides.

ACL syntax, one rule a line; ``#`` starts a comment, blank lines are ignored,
everything is case-insensitive::

    # who                       matches when
    accept organiser alice@example.com      # the organiser is this address
    decline organiser *@spam.example        # the organiser is in this domain
    accept domain example.com               # the same, written as a domain
    accept attendee boss@example.com        # some attendee matches
    group staff alice@example.com *@hq.example.com
    accept group staff                      # the organiser matches the group
    default decline                         # nothing above matched

- ``accept|decline organiser PATTERN...`` and ``accept|decline attendee
  PATTERN...`` take one or more patterns: an exact address
  (``alice@example.com``) or a whole domain (``*@example.com``). An
  ``attendee`` rule matches when any attendee of the event (the resource
  included) matches any pattern.
- ``accept|decline domain DOMAIN...`` is ``organiser *@DOMAIN...``.
- ``group NAME PATTERN...`` defines a group inside the ACL itself (there is
  no ``groups`` preference); ``accept|decline group NAME`` then matches the
  organiser against the group's patterns. A group must be defined before it
  is used; a second definition of the same name is an error.
- ``default accept|decline`` answers when no rule matched; it must be the last
  rule. Without it the answer is **decline**: an empty or unreadable ACL
  admits nobody.

:func:`parse_acl` raises :class:`ValueError` naming the line of the first bad
line; the ``acl`` preference is validated with it. Both functions are pure:
they read the request and decide (see :mod:`imiptools.scheduling`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from imiptools.deferred import dataclass
from imiptools.i18n import N_
from imiptools.itip.objects import address
from imiptools.scheduling.model import Answer, Decision, Request
from imiptools.scheduling.registry import register

Subject = Literal["organiser", "attendee", "anyone"]

#: The action words of a rule line and the answer each gives.
ACTIONS: Mapping[str, Answer] = {"accept": Answer.ACCEPTED, "decline": Answer.DECLINED}


@dataclass(frozen=True)
class Rule:
    """One ACL rule: ``answer`` if ``subject`` matches one of ``patterns``.

    ``subject`` is ``"anyone"`` for the ``default`` rule (no patterns).
    Patterns are lower-case: an address, or ``*@domain``. ``line`` is the
    rule's line number (1-based) in the ACL text, for logs and errors.
    """

    answer: Answer
    subject: Subject
    patterns: tuple[str, ...]
    line: int

    def matches(self, organiser: str, attendees: Iterable[str]) -> bool:
        """Whether the rule applies to these normalised addresses."""
        if self.subject == "anyone":
            return True
        if self.subject == "organiser":
            return matches_any(self.patterns, organiser)
        return any(matches_any(self.patterns, attendee) for attendee in attendees)


# Parsing.


def domain_of(addr: str) -> str:
    """The lower-case domain of an address or ``mailto:`` URI ('' without ``@``)."""
    local, at, domain = address(addr).rpartition("@")
    return domain if at and local else ""


def check_domain(word: str) -> str:
    """``word`` lower-cased if it looks like a domain name; ValueError otherwise."""
    domain = word.lower()
    if not domain or any(c in domain for c in "@*:/ ") or domain.strip(".") != domain:
        raise ValueError(f"not a domain: {word!r}")
    return domain


def check_pattern(word: str) -> str:
    """``word`` lower-cased if it is an address or ``*@domain``; ValueError otherwise."""
    pattern = word.lower()
    local, at, domain = pattern.rpartition("@")
    if not at or not local or ("*" in local and local != "*"):
        raise ValueError(f"not an address or *@domain: {word!r}")
    check_domain(domain)
    return pattern


def matches_any(patterns: Iterable[str], addr: str) -> bool:
    """Whether the normalised ``addr`` matches an address or ``*@domain`` pattern."""
    domain = domain_of(addr)
    return any(p == addr or (p.startswith("*@") and p[2:] == domain) for p in patterns)


def _rule(words: Sequence[str], line: int, groups: Mapping[str, tuple[str, ...]]) -> Rule:
    """The rule of an ``accept``/``decline`` line split into lower-case words."""
    if len(words) < 3:
        raise ValueError("expected: accept|decline organiser|attendee|domain|group WHO...")
    answer, kind, who = ACTIONS[words[0]], words[1], words[2:]
    if kind in ("organiser", "organizer", "attendee"):
        subject: Subject = "attendee" if kind == "attendee" else "organiser"
        return Rule(answer, subject, tuple(check_pattern(w) for w in who), line)
    if kind == "domain":
        return Rule(answer, "organiser", tuple("*@" + check_domain(w) for w in who), line)
    if kind == "group":
        if len(who) != 1:
            raise ValueError("expected: accept|decline group NAME")
        if who[0] not in groups:
            raise ValueError(f"unknown group {who[0]!r} (define it above: group NAME WHO...)")
        return Rule(answer, "organiser", groups[who[0]], line)
    raise ValueError(f"unknown kind {kind!r}: expected organiser, attendee, domain or group")


def _default(words: Sequence[str], line: int) -> Rule:
    """The rule of a ``default accept|decline`` line."""
    if len(words) != 2 or words[1] not in ACTIONS:
        raise ValueError("expected: default accept|decline")
    return Rule(ACTIONS[words[1]], "anyone", (), line)


def _group(words: Sequence[str], groups: dict[str, tuple[str, ...]]) -> None:
    """Record a ``group NAME PATTERN...`` definition in ``groups``."""
    if len(words) < 3:
        raise ValueError("expected: group NAME WHO...")
    if words[1] in groups:
        raise ValueError(f"group {words[1]!r} is already defined")
    groups[words[1]] = tuple(check_pattern(w) for w in words[2:])


def _parse_line(words: Sequence[str], line: int, groups: dict[str, tuple[str, ...]]) -> Rule | None:
    """The rule of one non-blank line, or None for a group definition."""
    if words[0] in ACTIONS:
        return _rule(words, line, groups)
    if words[0] == "default":
        return _default(words, line)
    if words[0] == "group":
        _group(words, groups)
        return None
    raise ValueError(f"unknown word {words[0]!r}: expected accept, decline, default or group")


def parse_acl(text: str) -> list[Rule]:
    """The rules of an ACL text (syntax in the module docstring), in order.

    Raises ValueError ``line N: ...`` for the first bad line, including any
    rule after ``default`` (it could never match). An empty text gives ``[]``.
    """
    rules: list[Rule] = []
    groups: dict[str, tuple[str, ...]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        words = raw.partition("#")[0].lower().split()
        if not words:
            continue
        try:
            if rules and rules[-1].subject == "anyone":
                raise ValueError("nothing may follow the default rule")
            rule = _parse_line(words, number, groups)
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from exc
        if rule is not None:
            rules.append(rule)
    return rules


# Deciding.


def first_match(rules: Iterable[Rule], organiser: str, attendees: Iterable[str]) -> Rule | None:
    """The first rule that matches, or None."""
    attendees = [address(a) for a in attendees]
    return next((r for r in rules if r.matches(address(organiser), attendees)), None)


def acl_text(request: Request, args: Sequence[str]) -> str:
    """The ACL to run: the arguments, one rule each, else the ``acl`` preference."""
    return "\n".join(args) if args else request.preference("acl")


def check_acl_arguments(args: Sequence[str]) -> None:
    """Rules given as arguments (one each) must parse like the ``acl`` preference."""
    if args:
        parse_acl("\n".join(args))


def check_domains(args: Sequence[str]) -> None:
    """Every argument of ``same_domain_only`` must be a domain."""
    for arg in args:
        check_domain(arg)


@register("access_control_list", check_acl_arguments)
def access_control_list(request: Request, args: Sequence[str]) -> Decision:
    """Answer as the first matching ACL rule says; decline when none matches.

    ``access_control_list`` reads the ``acl`` preference;
    ``access_control_list RULE...`` takes one rule per argument. Raises
    ValueError for a bad ACL (the caller reports the resource misconfigured).
    """
    rule = first_match(parse_acl(acl_text(request, args)), request.organiser, request.attendees)
    answer = rule.answer if rule is not None else Answer.DECLINED
    params = {"who": address(request.organiser), "line": rule.line if rule else 0}
    if answer is Answer.ACCEPTED:
        reason = N_("the booking rules of this resource allow {who}")
    else:
        reason = N_("the booking rules of this resource do not allow {who}")
    return Decision(answer, "acl", reason, "access_control_list", params)


@register("same_domain_only", check_domains)
def same_domain_only(request: Request, args: Sequence[str]) -> Decision:
    """Accept organisers of the resource's domain or of a ``DOMAIN`` argument.

    ``same_domain_only [DOMAIN...]``. Raises ValueError if an argument is not
    a domain or the resource's address has none.
    """
    own = domain_of(request.resource)
    if not own:
        raise ValueError(f"resource address without a domain: {request.resource!r}")
    allowed = [own, *(check_domain(arg) for arg in args)]
    domain = domain_of(request.organiser)
    if domain and domain in allowed:
        return Decision(
            Answer.ACCEPTED,
            "domain",
            N_("the organiser is from {domain}"),
            "same_domain_only",
            {"domain": domain},
        )
    return Decision(
        Answer.DECLINED,
        "domain",
        N_("only organisers from {domain} may book this resource"),
        "same_domain_only",
        {"domain": ", ".join(allowed)},
    )
