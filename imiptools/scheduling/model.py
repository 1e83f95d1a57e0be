"""What scheduling functions see and say: the request, the decision and its words.

Values only: a :class:`Request` (read-only, what a function may look at), a
:class:`Decision` (an answer, a machine-readable code and a reason that is
rendered in the reader's language), the parameter values a reason may hold
(:class:`Words`, :class:`Phrase`, :class:`Count`, :class:`Listing`, durations), and the
:class:`Booking` that confirmation and retraction steps see. Nothing here
runs a function (see :mod:`imiptools.scheduling.engine`) or knows which
exist (see :mod:`imiptools.scheduling.registry`).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import field
from datetime import datetime, timedelta, tzinfo
from functools import cached_property

from icalendar import Component

from imiptools.deferred import dataclass
from imiptools.i18n import N_, N_plural, Translator
from imiptools.itip.recurrence import Instance
from imiptools.periods import (
    FetchingTimeline,
    NarrowTimeline,
    Period,
    PeriodIndex,
    Timeline,
    busy_only,
)
from imiptools.quota.base import QuotaLedger
from imiptools.quota.model import QuotaState

__all__ = [
    "REQUEST_STATUS",
    "STATUS_TEXT",
    "Answer",
    "Booking",
    "BusyBetween",
    "BusyUnreadable",
    "Count",
    "Decision",
    "Listing",
    "Phrase",
    "Request",
    "Words",
    "add_request_status",
    "describe_duration",
    "misconfigured",
]

#: The scheduling modules log as one: the name the decisions' log lines had.
log = logging.getLogger("imiptools.scheduling")


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
class Listing:
    """A parameter value that is several values (each rendered as a parameter
    is), joined with commas: the bookings in the way of a request."""

    items: tuple[object, ...]


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
    #: (function, answer, code) of every function that ran (see engine.decide()).
    verdicts: tuple[tuple[str, str, str], ...] = ()
    #: RECURRENCE-IDs of instances declined while the series is accepted.
    declined: tuple[str, ...] = ()
    #: An accepting decision worth telling the organiser about even when
    #: another function has the last word (``2 hours of your 6 hours remain``).
    remark: bool = False
    #: The remarks of the accepting functions (see engine.decide()).
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

#: REQUEST-STATUS (RFC 5546 §3.6) of declining decisions, by code. Refusals
#: by policy are "3.8 No authority" unless a closer status exists: a clash is
#: "4.0 Event conflict", a request the resource cannot evaluate is "3.14
#: Unsupported capability", a resource that cannot decide is "5.1". The
#: modules that decline with codes of their own add them with
#: :func:`add_request_status` when they are imported.
REQUEST_STATUS: dict[str, str] = {
    "acl": "3.8;No authority",
    "domain": "3.8;No authority",
    "conflict": "4.0;Event conflict. Date-time is busy.",
    "misconfigured": "5.1;Service unavailable",
    "past": "3.1;Invalid property value;DTSTART",
    "outside-window": "3.1;Invalid property value;DTSTART",
    "too-many-instances": "3.14;Unsupported capability;RRULE",
    "signature": "3.8;No authority",
}


def add_request_status(table: Mapping[str, str]) -> None:
    """Add codes with their status numbers (``{"quota": "3.8"}``) to
    :data:`REQUEST_STATUS`, each with its :data:`STATUS_TEXT`."""
    REQUEST_STATUS.update(
        (code, f"{status};{STATUS_TEXT[status]}") for code, status in table.items()
    )


# -- words -------------------------------------------------------------------

_UNITS = (
    (N_plural("{count} day", "{count} days"), 86400),
    (N_plural("{count} hour", "{count} hours"), 3600),
    (N_plural("{count} minute", "{count} minutes"), 60),
    (N_plural("{count} second", "{count} seconds"), 1),
)
MINUS = N_("minus {duration}")


def describe_duration(duration: timedelta, translator: Translator | None = None) -> str:
    """Words for ``duration``: ``4 hours``, ``1 day 2 hours``, ``30 minutes``.

    Whole days, hours, minutes and seconds, largest first, zero parts left
    out (microseconds are dropped); ``0 seconds`` for zero; a negative
    duration is prefixed with ``minus``. In the translator's language when
    one is given.
    """
    seconds = int(abs(duration).total_seconds())
    parts = []
    for (singular, plural), size in _UNITS:
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(_plural(translator, singular, plural, amount).format(count=amount))
    text = " ".join(parts) or _plural(translator, *_UNITS[-1][0], 0).format(count=0)
    if duration < timedelta(0):
        minus = translator.gettext(MINUS) if translator else MINUS
        return minus.format(duration=text)
    return text


def _plural(translator: Translator | None, singular: str, plural: str, count: int) -> str:
    if translator is not None:
        return translator.ngettext(singular, plural, count)
    return singular if count == 1 else plural


def _render(value: object, translator: Translator | None) -> object:
    """A parameter as words: durations, :class:`Words`, :class:`Phrase`,
    :class:`Count` and :class:`Listing` in the reader's language."""
    if isinstance(value, timedelta):
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
    if isinstance(value, Listing):
        return ", ".join(str(_render(item, translator)) for item in value.items)
    return value


def misconfigured(name: str, why: str) -> Decision:
    """The decision for a line that cannot be run (logged as an error)."""
    log.error("scheduling function %r: %s", name, why)
    return Decision(Answer.DECLINED, "misconfigured", N_("the resource is misconfigured"), name)


# -- the request -------------------------------------------------------------

#: Fetches periods overlapping [start, end) (as ``Store.get_freebusy`` does).
BusyBetween = Callable[[datetime, datetime], Sequence[Period]]


class BusyUnreadable(Exception):
    """Fetching busy periods for :attr:`Request.timeline` failed with ``error``.

    Not a ValueError: the policies treat those as a bad preference (the
    resource "misconfigured"), while trouble reading the store must reach
    the program (75, the MTA retries). :func:`~.engine.schedule` raises
    ``error`` itself again.
    """

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _no_preference(name: str) -> str:
    return ""


def _nobody_busy(resource: str, start: datetime, end: datetime) -> Sequence[Period]:
    return ()


@dataclass(frozen=True)
class Request:
    """What a scheduling function may look at (all read-only).

    ``instances`` are the instances to book (future, inside the window).
    The resource's busy periods, excluding this event's own, are either
    given in ``busy`` (over at least every span a function will ask about)
    or fetched by ``busy_between`` as the functions ask about them (then
    ``busy`` is not read): either way functions query them through
    :attr:`timeline`, and need not say in advance how far they will look.
    """

    resource: str
    organiser: str
    uid: str
    summary: str
    instances: Sequence[Instance]
    busy: Sequence[Period]
    now: datetime
    zone: tzinfo
    #: Whether the expansion stopped before the window's end for another
    #: reason than the window (too many instances, the time budget): the
    #: request is declined after the event limits (see engine.schedule()).
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
    #: Fetches this resource's busy periods over [start, end) when asked
    #: (this event's excluded); None: ``busy`` holds them.
    busy_between: BusyBetween | None = None
    #: Why the expansion was truncated (with ``truncated``), for the reason.
    truncation: str = ""

    @cached_property
    def timeline(self) -> PeriodIndex:
        """The periods that make the resource busy, indexed once for the many
        queries of a series (see :class:`~imiptools.periods.Timeline`); with
        ``busy_between``, fetched as queries reach them, starting with the
        instances' span (see :class:`~imiptools.periods.FetchingTimeline`)."""
        fetch = self.busy_between
        if fetch is None:
            return Timeline(busy_only(self.busy))

        def fetched(start: datetime, end: datetime) -> list[Period]:
            try:
                return busy_only(fetch(start, end))
            except Exception as exc:
                raise BusyUnreadable(exc) from exc

        span = _span(self.instances)
        if span is not None and _sparse(self.instances, span):
            return NarrowTimeline(fetched)
        return FetchingTimeline(fetched, span)


#: A series is sparse (each instance's clash check fetches its own span)
#: from this many instances on, when they cover less than 1/SPARSE_SHARE
#: of their span: ten minutes a day for a year is sparse, a week of
#: all-day instances is not.
SPARSE_INSTANCES = 8
SPARSE_SHARE = 8


def _span(instances: Sequence[Instance]) -> tuple[datetime, datetime] | None:
    """From the first instance's start to the last one's end."""
    if not instances:
        return None
    return min(i.start for i in instances), max(i.end for i in instances)


def _sparse(instances: Sequence[Instance], span: tuple[datetime, datetime]) -> bool:
    """Whether ``instances`` lie far apart in ``span`` (see :data:`SPARSE_SHARE`)."""
    if len(instances) < SPARSE_INSTANCES:
        return False
    covered = sum((i.end - i.start for i in instances), timedelta(0))
    return covered * SPARSE_SHARE < span[1] - span[0]


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
