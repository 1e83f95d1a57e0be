"""Preferences: what each calendar user's preference files mean.

A preference is one file, ``PREFERENCES_DIR/<uri>/<name>``, holding its
value (the original's layout). Site defaults come from the configuration's
``[preferences]`` table; built-in defaults come from :data:`DEFINITIONS`.
A value that fails validation is logged and the next default is used, so a
typo in one file never stops mail.

The values of the scheduling preferences (``scheduling_function``,
``opening_hours``, ``permitted_times``, ``acl``) are validated with the
parsers the scheduling functions themselves use, so that what is accepted
is what runs: this module sits in the policy layer, above
:mod:`imiptools.scheduling` (see docs/architecture.md); the records below
read values through :class:`imiptools.records.PreferenceValues`.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Protocol

from imiptools.config import MAX_DURATION, parse_duration
from imiptools.dates import resolve_zone
from imiptools.deferred import dataclass
from imiptools.errors import StoreUnavailable
from imiptools.scheduling import FUNCTIONS, check_function_lines, lookup, parse_function_lines
from imiptools.scheduling.access import parse_acl
from imiptools.scheduling.approval import TIMEOUT_ACTIONS, check_approval, check_approvers
from imiptools.scheduling.hours import parse_opening, parse_permitted_times
from imiptools.stores.names import check_preference_name

log = logging.getLogger(__name__)


class PreferenceSource(Protocol):
    """Where per-user values live (files now; a database later).

    Contracts every source keeps (``tests/preferences/contract.py`` checks
    them): users are given in any spelling
    :func:`~imiptools.stores.names.normalise_user` accepts (UnsafeName
    else); names match ``[A-Za-z][A-Za-z0-9_-]{0,63}``
    (:func:`~imiptools.stores.names.check_preference_name`: UnsafeName
    else, before anything is read or written); values are text,
    kept with their inner line ends and without trailing ones; each write
    is atomic; trouble reaching the values raises
    :class:`~imiptools.errors.StoreUnavailable` (75).
    """

    def get(self, user: str, name: str) -> str | None:
        """The raw value, or None when the user has none."""
        ...

    def set(self, user: str, name: str, value: str) -> None:
        """Set ``name`` to ``value`` for ``user`` (unvalidated: callers
        validate with :func:`validate` first)."""
        ...

    def unset(self, user: str, name: str) -> None:
        """Remove ``name`` for ``user``; unset already is fine."""
        ...

    def names(self, user: str) -> list[str]:
        """The preference names set for ``user``, sorted."""
        ...

    def values(self, user: str) -> dict[str, str]:
        """Every raw value set for ``user``, by name (as :meth:`get` gives
        each): read at once, for a unit of work that reads many."""
        ...


class UnitPreferences:
    """A :class:`PreferenceSource` as one unit of work sees it: ``user``'s
    values read once, all together, on the first read (under the user's
    lock, the agent reads some twenty a message; issue 15), other users'
    as ``source`` gives them. A value changed meanwhile is seen by the
    next message; writes go to ``source`` and are seen at once.

    When the one reading fails (a file under some preference name is
    unreadable, a symlink, not UTF-8), each value is read alone, as
    ``source`` gives it: only a message that needs the unreadable value
    fails (StoreUnavailable), not every message of the user."""

    def __init__(self, source: PreferenceSource, user: str) -> None:
        self.source, self.user = source, user
        self._values: dict[str, str] | None = None
        self._each_alone = False

    def get(self, user: str, name: str) -> str | None:
        """The raw value, or None (``user``'s from the one reading)."""
        if user != self.user or self._each_alone:
            return self.source.get(user, name)
        if self._values is None:
            try:
                self._values = self.source.values(user)
            except StoreUnavailable:
                self._each_alone = True
                return self.source.get(user, name)
        check_preference_name(name)
        return self._values.get(name)

    def set(self, user: str, name: str, value: str) -> None:
        """Set it in ``source`` (read again by the next :meth:`get`)."""
        self._values, self._each_alone = None, False
        self.source.set(user, name, value)

    def unset(self, user: str, name: str) -> None:
        """Unset it in ``source`` (read again by the next :meth:`get`)."""
        self._values, self._each_alone = None, False
        self.source.unset(user, name)

    def names(self, user: str) -> list[str]:
        """As ``source`` says."""
        return self.source.names(user)

    def values(self, user: str) -> dict[str, str]:
        """As ``source`` says."""
        return self.source.values(user)


@dataclass(frozen=True)
class _Choice:
    """A validator for one of ``options`` (a form offers them as a list)."""

    options: tuple[str, ...]

    def __call__(self, value: str) -> str:
        if value not in self.options:
            raise ValueError(f"must be one of {', '.join(o for o in self.options if o)}")
        return value


def _choice(*options: str) -> Callable[[str], str]:
    return _Choice(options)


def _zone(value: str) -> str:
    if resolve_zone(value) is None:
        raise ValueError("unknown time zone")
    return value


def _duration(value: str) -> str:
    _bounded_duration(value)
    return value


def _bounded_duration(value: str) -> timedelta:
    """An RFC 5545 duration from zero to :data:`MAX_DURATION` (a century):
    added to any date the agent meets, it stays within Python's calendar."""
    duration = parse_duration(value)
    if not timedelta(0) <= duration <= MAX_DURATION:
        raise ValueError(f"must be from PT0S to P{MAX_DURATION.days}D")
    return duration


def _any(value: str) -> str:
    return value


_DIGITS = r"[0-9]{1,9}"


def _whole(value: str) -> str:
    if not re.fullmatch(_DIGITS, value):
        raise ValueError("must be a whole number below 1000000000")
    return value


def _percent(value: str) -> str:
    if not re.fullmatch(_DIGITS, value) or int(value) > 100:
        raise ValueError("must be a whole number from 0 to 100")
    return value


def _count(value: str) -> str:
    if not re.fullmatch(_DIGITS, value) or int(value) < 1:
        raise ValueError("must be a positive whole number below 1000000000")
    return value


FREQUENCIES = ("SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY")


def _frequencies(value: str) -> str:
    unknown = set(value.upper().split()) - set(FREQUENCIES)
    if unknown:
        raise ValueError(f"unknown frequencies {sorted(unknown)}")
    return value.upper()


def _periods_per_interval(value: str) -> str:
    count, _, interval = value.partition(" ")
    _count(count)
    if _bounded_duration(interval) <= timedelta(0):
        raise ValueError("the interval must be longer than PT0S")
    return value


def _parsed_by(parse: Callable[[str], object]) -> Callable[[str], str]:
    """A validator: the value if ``parse`` reads it (ValueError else)."""

    def check(value: str) -> str:
        parse(value)
        return value

    return check


_permitted_times = _parsed_by(parse_permitted_times)
_opening_hours = _parsed_by(parse_opening)
_acl = _parsed_by(parse_acl)


def _language(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*", value):
        raise ValueError("not a language tag")
    return value


def _scheduling(value: str) -> str:
    """Lines that parse (quoting), naming at least one function: what the
    agent reads. An empty value (or only comments) would leave a resource
    with no rule at all, accepting every request, clashes included: it is
    invalid, so that the default applies instead."""
    try:
        lines = parse_function_lines(value)
    except ValueError as exc:  # shlex: "No closing quotation", "No escaped character"
        raise ValueError(f"unbalanced quoting: {str(exc).lower()}") from exc
    if not lines:
        raise ValueError(f"names no function (known: {known_functions()})")
    return value


def _scheduling_strict(value: str) -> str:
    """:func:`_scheduling`, and every function known with arguments it accepts."""
    _scheduling(value)
    check_function_lines(value)
    return value


def known_functions() -> str:
    """The names of every scheduling function, built in or by entry point."""
    lookup("")  # loads the entry points once (no function has this name)
    return ", ".join(sorted(FUNCTIONS))


@dataclass(frozen=True)
class Definition:
    """A preference: its built-in default, validator and help text.

    ``strict``, if given, is what :func:`validate` (``prefs set``, ``check``)
    applies instead of ``check``: stricter than reading needs to be, so that
    the agent can still fail closed on a hand-edited value (an unknown
    scheduling function declines as "misconfigured" rather than falling back
    to the default, which would accept everything).
    """

    default: str
    check: Callable[[str], str]
    help: str
    strict: Callable[[str], str] | None = None
    #: What the agents do with a value that ``check`` accepts and ``strict``
    #: refuses (``imip-admin check`` says it).
    refused: str = ""


DEFINITIONS: dict[str, Definition] = {
    "CN": Definition("", _any, "common name used in generated messages"),
    "LANG": Definition("en", _language, "language of generated messages"),
    "TZID": Definition("UTC", _zone, "time zone for floating times and all-day events"),
    "CUTYPE": Definition(
        "",
        _choice("", "ROOM", "RESOURCE"),
        "resource: what it is to organisers (RFC 5545 §3.2.3): ROOM or RESOURCE; "
        "a resource without it is a RESOURCE",
    ),
    "scheduling_function": Definition(
        "schedule_in_freebusy",
        _scheduling,
        "resource: scheduling functions, one a line, all must agree",
        _scheduling_strict,
        "a resource with this value declines every request as misconfigured",
    ),
    "add_method_response": Definition(
        "refresh", _choice("add", "ignore", "refresh"), "how to answer ADD (RFC 5546 §3.2.4)"
    ),
    "event_refreshing": Definition(
        "never", _choice("never", "always"), "resend an event on REFRESH automatically"
    ),
    "freebusy_bundling": Definition(
        "never", _choice("never", "always"), "attach free/busy to messages sent"
    ),
    "freebusy_messages": Definition(
        "none", _choice("none", "notify"), "notify the user of free/busy messages"
    ),
    "freebusy_offers": Definition("", _duration, "hold counter-proposed periods for this long"),
    "freebusy_publishing": Definition(
        "no", _choice("no", "publish"), "publish free/busy as a static .ifb file"
    ),
    "freebusy_sharing": Definition(
        "no", _choice("no", "share"), "answer VFREEBUSY requests automatically"
    ),
    "incoming": Definition(
        "message-only",
        _choice(
            "message-only",
            "message-then-summary",
            "summary-then-message",
            "summary-only",
            "summary-wraps-message",
        ),
        "what the mailbox receives",
    ),
    "answer_after_update": Definition(
        "keep",
        _choice("keep", "reset"),
        "attendee: keep your answer when an update changes neither time, recurrence nor "
        "location (reset: every update asks again); updates are queued either way",
    ),
    "uninvited_replies": Definition(
        "ignore",
        _choice("ignore", "add"),
        "organiser: a REPLY from someone who was not invited is ignored, or adds them",
    ),
    "organiser_replacement": Definition(
        "attendee", _choice("any", "attendee", "never"), "who may take over an event"
    ),
    "participating": Definition(
        "participate", _choice("participate", "no"), "whether the agent handles mail at all"
    ),
    "permitted_times": Definition(
        "", _permitted_times, "granularity of start and end times, e.g. 0,15,30,45"
    ),
    "opening_hours": Definition(
        "",
        _opening_hours,
        "when the resource can be booked, e.g. MO-FR 08:00-18:00 (one rule a line) "
        "or an RFC 7953 VAVAILABILITY",
    ),
    # Event limits (every event recorded for the user; enforced by resources).
    "max_duration": Definition("", _duration, "longest instance, e.g. PT4H"),
    "min_duration": Definition("", _duration, "shortest instance, e.g. PT15M"),
    "max_instances": Definition("", _count, "most instances a series may have"),
    "allow_indefinite": Definition(
        "yes", _choice("yes", "no"), "accept series without COUNT or UNTIL"
    ),
    "permitted_frequencies": Definition(
        "", _frequencies, "recurrence frequencies allowed, e.g. DAILY WEEKLY MONTHLY YEARLY"
    ),
    "max_periods_per_interval": Definition(
        "", _periods_per_interval, "at most N periods in any interval, e.g. 2 P1D"
    ),
    "booking_window": Definition("", _duration, "how far ahead bookings may start, e.g. P180D"),
    "min_notice": Definition("", _duration, "how long before its start a booking must come"),
    "acl": Definition("", _acl, "access rules for access_control_list, one a line"),
    "limit_action": Definition(
        "decline",
        _choice("decline", "counter"),
        "answer a broken limit with a decline or a compliant counter-proposal",
    ),
    "max_conflict_instances": Definition(
        "0", _whole, "clashing instances a series may have and still be accepted"
    ),
    "max_conflict_percent": Definition(
        "0", _percent, "per cent of a series that may clash and still be accepted"
    ),
    "conflict_details": Definition(
        "no",
        _choice("no", "yes"),
        "name the event and organiser of a clashing booking in any decline",
    ),
    # OpenPGP (imiptools/mail/openpgp.py, docs/admin/openpgp.md).
    "require_signature": Definition(
        "no",
        _choice("no", "changes", "all"),
        "OpenPGP: a REQUEST, ADD, CANCEL or REPLY about a stored event (changes) or about "
        "any event (all) must be signed by a key of the site's keyring bound to its "
        "organiser (for a REPLY, its attendee); else it is refused",
    ),
    "sign_outgoing": Definition(
        "no",
        _choice("no", "yes"),
        "OpenPGP: sign the messages sent with the user's key (imip-admin key generate); "
        "replies to encrypted mail are signed and encrypted whenever the keys are known",
    ),
    # Approval by the resource's owners (imiptools.scheduling.approval).
    "approvers": Definition(
        "", check_approvers, "resource: the owners who approve requests (addresses)"
    ),
    "approval": Definition(
        "never",
        check_approval,
        "resource: which requests need an owner's approval: never, always, out_of_policy, "
        "or the organisers (address, *@domain) and quota groups (group:QUOTA/GROUP) "
        "booked directly while everyone else's need approval",
    ),
    "approval_timeout": Definition(
        "P2D", _duration, "resource: how long the owners have to decide, e.g. P2D"
    ),
    "approval_timeout_action": Definition(
        "decline",
        _choice(*TIMEOUT_ACTIONS),
        "resource: at the approval timeout, decline, or accept if the period is still free",
    ),
}


def fallback(name: str, site: Mapping[str, str]) -> tuple[str, str]:
    """What the agents use instead of an invalid user value of ``name``:
    ("site default", value) when the site's is valid, else ("built-in
    default", value) (see :meth:`Preferences.get`)."""
    definition = DEFINITIONS[name]
    if name in site:
        try:
            return "site default", definition.check(site[name].strip())
        except ValueError:
            pass
    return "built-in default", definition.default


def validate(name: str, value: str) -> str:
    """Return the validated value; raise ValueError (unknown name, bad value)."""
    definition = DEFINITIONS.get(name)
    if definition is None:
        raise ValueError(f"unknown preference {name!r}")
    return (definition.strict or definition.check)(value.strip())


def set_validated(source: PreferenceSource, user: str, name: str, value: str) -> str:
    """Set ``name`` for ``user`` to ``value`` once :func:`validate` accepts
    it (ValueError else, nothing written): what ``imip-admin prefs set``
    and the manager's preference form do. Returns the value written."""
    checked = validate(name, value)
    source.set(user, name, checked)
    return checked


def options(name: str) -> tuple[str, ...]:
    """The values preference ``name`` may take, when it is a choice (else
    none): what a form offers as a list."""
    check = DEFINITIONS[name].check
    return check.options if isinstance(check, _Choice) else ()


#: The preferences whose values are lines (a form gives them a text area).
MULTILINE = frozenset({"scheduling_function", "opening_hours", "acl"})


@dataclass(frozen=True)
class Preferences:
    """One user's effective preferences: file, then site default, then built-in."""

    user: str
    source: PreferenceSource | None
    site: Mapping[str, str]

    def get(self, name: str) -> str:
        """The effective, validated value of ``name`` (never raises for values)."""
        definition = DEFINITIONS[name]
        candidates = (
            ("user", self.source.get(self.user, name) if self.source else None),
            ("site", self.site.get(name)),
        )
        for origin, raw in candidates:
            if raw is None:
                continue
            value, problem = _checked(name, raw.strip())
            if problem is None:
                return value
            log.warning("invalid %s preference %s for %s: %s", origin, name, self.user, problem)
        return definition.default


@functools.lru_cache(maxsize=1024)
def _checked(name: str, text: str) -> tuple[str, str | None]:
    """``DEFINITIONS[name].check(text)`` and None, or ("", why it fails).

    Kept per process (a check is a function of the text alone: parsing a
    ``scheduling_function`` or ``opening_hours`` value, resolving a zone),
    so that the LMTP service's workers validate a user's unchanged value
    once, not at each message (issue 15); a changed value is another key."""
    try:
        return DEFINITIONS[name].check(text), None
    except ValueError as exc:
        return "", str(exc)
