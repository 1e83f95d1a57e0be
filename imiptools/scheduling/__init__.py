"""Scheduling functions: small pure policies that decide a resource's answer.

A resource's ``scheduling_function`` preference holds one function a line,
with arguments (``schedule_in_freebusy 2``). Every function sees the same
:class:`Request` and returns a :class:`Decision`; all must agree (the first
answer that is not ACCEPTED wins, in the order of the lines). Functions are
registered with :func:`register`; third parties add theirs through the
``imip_agent.scheduling`` entry-point group. Functions never write and
never send mail: the handler applies the decision.
"""

from __future__ import annotations

import enum
import logging
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from functools import cached_property

from icalendar import Component

from imiptools.i18n import N_, Translator
from imiptools.itip.recurrence import Instance
from imiptools.periods import Period, Timeline, busy_only
from imiptools.quota.base import QuotaLedger
from imiptools.quota.model import QuotaState

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "imip_agent.scheduling"


class Answer(enum.StrEnum):
    """The PARTSTAT a decision leads to (RFC 5545 §3.2.12)."""

    ACCEPTED = "ACCEPTED"
    DECLINED = "DECLINED"
    #: Not a PARTSTAT: the resource answers with METHOD:COUNTER (RFC 5546 §3.2.7).
    COUNTER = "COUNTER"
    #: The resource hands the request to ``params["delegate"]`` (RFC 5546 §3.2.2.3).
    DELEGATED = "DELEGATED"


class Words(str):
    """A parameter value that is itself a msgid (marked ``N_``): translated
    when the reason is rendered."""


@dataclass(frozen=True)
class Phrase:
    """A parameter value that is a msgid with parameters of its own: translated,
    then filled (its parameters rendered the same way), when the reason is."""

    template: str
    params: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Count:
    """A number of things, rendered with the right plural (``5 bookings``)."""

    count: int
    singular: str
    plural: str


@dataclass(frozen=True)
class Decision:
    """An answer with a machine-readable code and a human-readable reason.

    ``reason`` is an English ``str.format`` template (a gettext msgid marked
    with ``N_``) filled from ``params``; :meth:`text` renders it in the
    recipient's language. With ``plural``, the form is chosen by
    ``params["count"]``.
    """

    answer: Answer
    code: str
    reason: str
    function: str = ""
    params: Mapping[str, object] = field(default_factory=dict)
    plural: str = ""
    #: (function, answer, code) of every function that ran (see decide()).
    verdicts: tuple[tuple[str, str, str], ...] = ()
    #: RECURRENCE-IDs of instances declined while the series is accepted.
    declined: tuple[str, ...] = ()
    #: An accepting decision worth telling the organiser about even when
    #: another function has the last word (``2 hours of your 6 hours remain``).
    remark: bool = False
    #: The remarks of the accepting functions (see decide()).
    remarks: tuple[Decision, ...] = ()

    def request_status(self) -> str:
        """The REQUEST-STATUS of the answer (RFC 5546 §3.6), e.g. ``2.0;Success``."""
        if self.answer is Answer.ACCEPTED:
            return "2.0;Success"
        return REQUEST_STATUS.get(self.code, "3.8;No authority")

    def text(self, translator: Translator | None = None) -> str:
        """The reason, translated when a translator is given, then filled in."""
        if translator is None:
            count = self.params.get("count", 1)
            template = self.plural if self.plural and str(count) != "1" else self.reason
        elif self.plural:
            count = self.params.get("count", 1)
            template = translator.ngettext(self.reason, self.plural, int(str(count)))
        else:
            template = translator.gettext(self.reason)
        return template.format(**{k: _render(v, translator) for k, v in self.params.items()})


#: REQUEST-STATUS (RFC 5546 §3.6) of declining decisions, by code. Refusals
#: by policy are "3.8 No authority" unless a closer status exists: a clash is
#: "4.0 Event conflict", a request the resource cannot evaluate is "3.14
#: Unsupported capability", a resource that cannot decide is "5.1".
REQUEST_STATUS: dict[str, str] = {
    "acl": "3.8;No authority",
    "domain": "3.8;No authority",
    "conflict": "4.0;Event conflict. Date-time is busy.",
    "misconfigured": "5.1;Service unavailable",
    "past": "3.1;Invalid property value;DTSTART",
    "outside-window": "3.1;Invalid property value;DTSTART",
    "too-many-instances": "3.14;Unsupported capability;RRULE",
}


def _render(value: object, translator: Translator | None) -> object:
    """A parameter as words: durations, :class:`Words`, :class:`Phrase` and
    :class:`Count` in the reader's language."""
    if isinstance(value, timedelta):
        from imiptools.scheduling.limits import describe_duration

        return describe_duration(value, translator)
    if isinstance(value, Words) and translator is not None:
        return translator.gettext(value)
    if isinstance(value, Phrase):
        template = translator.gettext(value.template) if translator else value.template
        return template.format(**{k: _render(v, translator) for k, v in value.params.items()})
    if isinstance(value, Count):
        if translator is not None:
            template = translator.ngettext(value.singular, value.plural, value.count)
        else:
            template = value.singular if value.count == 1 else value.plural
        return template.format(count=value.count)
    return value


def _no_preference(name: str) -> str:
    return ""


def _nobody_busy(resource: str, start: datetime, end: datetime) -> Sequence[Period]:
    return ()


@dataclass(frozen=True)
class Request:
    """What a scheduling function may look at (all read-only).

    ``instances`` are the instances to book (future, inside the window);
    ``busy`` holds the resource's busy periods over their span, excluding
    this event's own periods.
    """

    resource: str
    organiser: str
    uid: str
    summary: str
    instances: Sequence[Instance]
    busy: Sequence[Period]
    now: datetime
    zone: tzinfo
    truncated: bool = False
    attendees: Sequence[str] = field(default_factory=tuple)
    #: The requested component (the master of a series): its RRULE, DTSTART...
    component: Component | None = None
    #: Whether some RRULE has neither COUNT nor UNTIL (RFC 5545 §3.3.10).
    indefinite: bool = False
    #: The resource's effective preferences (validated; '' when unset).
    preference: Callable[[str], str] = _no_preference
    #: Snapshots of the quota groups named by the configured functions, by
    #: name, read under their locks (see imiptools.scheduling.quota).
    quotas: Mapping[str, QuotaState] = field(default_factory=dict)
    #: The busy periods (and held offers) of another resource over [start, end).
    busy_of: Callable[[str, datetime, datetime], Sequence[Period]] = _nobody_busy

    @cached_property
    def timeline(self) -> Timeline:
        """The periods of ``busy`` that make the resource busy, indexed once
        for the many queries of a series (see :class:`Timeline`)."""
        return Timeline(busy_only(self.busy))


Function = Callable[[Request, Sequence[str]], Decision]
#: Checks a function line's arguments; raises ValueError saying what is wrong.
ArgumentCheck = Callable[[Sequence[str]], None]

FUNCTIONS: dict[str, Function] = {}
ARGUMENTS: dict[str, ArgumentCheck] = {}
_loaded_entry_points = False


def no_arguments(args: Sequence[str]) -> None:
    """The argument check of a function that takes none."""
    if args:
        raise ValueError("takes no arguments")


def any_arguments(args: Sequence[str]) -> None:
    """The argument check of a function that checks its own when it runs."""


def register(name: str, arguments: ArgumentCheck = any_arguments) -> Callable[[Function], Function]:
    """Decorator: make ``function`` available under ``name``.

    ``arguments`` checks a line's arguments when the preference is set
    (``imip-admin prefs set``) and when it is read: use the parser the
    function itself uses, so that what is accepted is what runs.
    """

    def add(function: Function) -> Function:
        FUNCTIONS[name] = function
        ARGUMENTS[name] = arguments
        return function

    return add


def parse_function_lines(text: str) -> list[tuple[str, list[str]]]:
    """Split the preference into (name, arguments) lines; ValueError on bad quoting."""
    lines = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            lines.append((words[0], words[1:]))
    return lines


def check_function_lines(text: str) -> list[tuple[str, list[str]]]:
    """:func:`parse_function_lines`, each function known and its arguments
    accepted by its check; ValueError naming the line and the known functions."""
    lines = parse_function_lines(text)
    for number, (name, args) in enumerate(lines, 1):
        if lookup(name) is None:
            known = ", ".join(sorted(FUNCTIONS))
            raise ValueError(f"line {number}: unknown function {name!r} (known: {known})")
        try:
            ARGUMENTS.get(name, any_arguments)(args)
        except ValueError as exc:
            raise ValueError(f"line {number}: {name} {shlex.join(args)}: {exc}") from exc
    return lines


@dataclass(frozen=True)
class Booking:
    """What confirmation and retraction steps see of a booking (or its end).

    ``recurrence_ids`` are the instances concerned ('' alone: the whole
    event). ``instances`` are the instances just decided (empty for a
    retraction, and when the message changed nothing). ``periods`` are the
    resource's busy periods for the UID as stored *after* the message: the
    state a step makes its records match.
    """

    resource: str
    organiser: str
    uid: str
    recurrence_ids: Sequence[str]
    instances: Sequence[Instance]
    now: datetime
    periods: Sequence[Period] = ()
    #: The quota journal, holding the locks of the quotas the functions name.
    journal: QuotaLedger | None = None


Step = Callable[[Booking, Sequence[str]], None]
#: Run after a booking is accepted / after it is cancelled or given up, for
#: each ``scheduling_function`` line whose name has a step registered.
CONFIRMATIONS: dict[str, Step] = {}
RETRACTIONS: dict[str, Step] = {}


def register_confirmation(name: str) -> Callable[[Step], Step]:
    """Decorator: run ``step`` after ``name`` helped accept a booking."""

    def add(step: Step) -> Step:
        CONFIRMATIONS[name] = step
        return step

    return add


def register_retraction(name: str) -> Callable[[Step], Step]:
    """Decorator: run ``step`` when a booking ``name`` confirmed ends early."""

    def add(step: Step) -> Step:
        RETRACTIONS[name] = step
        return step

    return add


def run_steps(
    steps: Mapping[str, Step], booking: Booking, lines: Sequence[tuple[str, list[str]]]
) -> list[str]:
    """Run the steps registered for the configured lines; return their names.

    Unlike the decisions, steps may write (a quota journal, say). They run
    after the store is written, under the resource's lock, after *every*
    message about a UID: confirmations when the resource holds busy periods
    for it afterwards, retractions when it holds none (cancelled, declined,
    delegated). A step therefore makes its records match ``booking.periods``
    and must be idempotent: one that fails raises, the message is retried
    (75), and a redelivered message runs the steps again, so that an
    interrupted run converges.
    """
    ran = []
    for name, args in lines:
        lookup(name)  # loads entry points, which may register steps too
        step = steps.get(name)
        if step is not None:
            step(booking, args)
            ran.append(name)
    return ran


def lookup(name: str) -> Function | None:
    """The function registered as ``name`` (loading entry points once)."""
    global _loaded_entry_points
    if name not in FUNCTIONS and not _loaded_entry_points:
        from importlib.metadata import entry_points  # only for a name not built in

        _loaded_entry_points = True
        for point in entry_points(group=ENTRY_POINT_GROUP):
            try:
                FUNCTIONS.setdefault(point.name, point.load())
            except Exception:  # a broken plug-in must not stop mail
                log.exception("cannot load scheduling function %s", point.name)
    return FUNCTIONS.get(name)


def misconfigured(name: str, why: str) -> Decision:
    """The decision for a line that cannot be run."""
    log.error("scheduling function %r: %s", name, why)
    return Decision(Answer.DECLINED, "misconfigured", N_("the resource is misconfigured"), name)


def decide(request: Request, lines: Sequence[tuple[str, list[str]]]) -> Decision:
    """Run every function line; the first that does not accept decides.

    The result's ``verdicts`` lists (function, answer, code) of each line
    run, for the decision log; ``declined`` gathers the instances that any
    accepting function declined; ``remarks`` the accepting decisions marked
    ``remark`` (when the final answer is ACCEPTED).
    """
    verdicts: list[tuple[str, str, str]] = []
    declined: set[str] = set()
    remarks: list[Decision] = []
    decision = Decision(Answer.ACCEPTED, "accepted", N_("no scheduling rules apply"))
    for name, args in lines:
        decision = _run_line(request, name, args)
        verdicts.append((name, str(decision.answer), decision.code))
        declined.update(decision.declined)
        if decision.answer is not Answer.ACCEPTED:
            remarks.clear()
            break
        if decision.remark:
            remarks.append(decision)
    return replace(
        decision,
        verdicts=tuple(verdicts),
        declined=tuple(sorted(declined)),
        remarks=tuple(remarks),
    )


def _run_line(request: Request, name: str, args: list[str]) -> Decision:
    function = lookup(name)
    if function is None:
        return misconfigured(name, "unknown function")
    try:
        return function(request, args)
    except (ValueError, TypeError) as exc:
        return misconfigured(name, f"bad arguments {args!r}: {exc}")


# Register the built-in functions.
from imiptools.scheduling import access as _access  # noqa: E402,F401
from imiptools.scheduling import counter as _counter  # noqa: E402,F401
from imiptools.scheduling import freebusy as _freebusy  # noqa: E402,F401
from imiptools.scheduling import hours as _hours  # noqa: E402
from imiptools.scheduling import limits as _limits  # noqa: E402
from imiptools.scheduling import quota as _quota  # noqa: E402

#: RFC 5546 §3.6 descriptions of the status codes we send.
STATUS_TEXT: dict[str, str] = {
    "3.1": "Invalid property value",
    "3.5": "Invalid date or time",
    "3.6": "Invalid rule",
    "3.8": "No authority",
    "3.14": "Unsupported capability",
    "4.0": "Event conflict. Date-time is busy.",
    "5.1": "Service unavailable",
}
for _table in (_limits.REQUEST_STATUS, _hours.REQUEST_STATUS, _quota.REQUEST_STATUS):
    REQUEST_STATUS.update(
        (code, f"{status};{STATUS_TEXT[status]}") for code, status in _table.items()
    )
