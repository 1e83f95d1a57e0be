"""What a message's calendar data must satisfy before any handler sees it.

Calendar data comes from strangers, and the work it causes must be bounded
per message, not only per event. :class:`MessageLimits` (settings of the
``[agent]`` table, see :mod:`imiptools.config`) bound, per message:

- the calendar text (all calendar parts, decoded): ``max_calendar_size`` bytes;
- the components (every BEGIN, VTIMEZONE observances and VALARMs included)
  and their nesting: ``max_components``, :data:`MAX_DEPTH` levels;
- the scheduling objects (distinct UIDs): ``max_objects``;
- the properties of one component, each parameter and each value of a
  multi-valued property counting as one: ``max_properties``;
- the CPU time spent on it, parsing included: ``max_seconds``
  (:class:`CpuBudget`: objects left when it is spent are not processed).

Over any of them, the message's calendar data is unusable as a whole
(:class:`~imiptools.errors.CalendarDataError` with the reason): a resource
bounces it (65), a person's mail is delivered unchanged with its calendar
part ignored. Recurrence (instances, time) and time zones are bounded where
they are expanded (:mod:`imiptools.itip.recurrence`,
:mod:`imiptools.itip.zones`).

:func:`object_problem` then says why one scheduling object is unusable:
values every handler relies on (SEQUENCE, RECURRENCE-ID, the calendar user
addresses) that icalendar could not read or that are out of range.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import field
from datetime import date

from icalendar import Calendar, Component, vCalAddress
from icalendar.prop import vBroken

from imiptools.config import Settings
from imiptools.deferred import dataclass
from imiptools.errors import CalendarDataError
from imiptools.itip.objects import ItipObject

log = logging.getLogger(__name__)

#: Nesting of components below VCALENDAR (VEVENT > VALARM is 2; real data: 3).
MAX_DEPTH = 8
#: RFC 5545 §3.3.8: INTEGER values are 32-bit signed.
MAX_INTEGER = 2**31 - 1
_ADDRESSES = ("ORGANIZER", "ATTENDEE")


@dataclass(frozen=True)
class MessageLimits:
    """The bounds on one message's calendar data (see the module docstring)."""

    calendar_size: int = 1024 * 1024
    components: int = 1000
    objects: int = 100
    properties: int = 2000

    @classmethod
    def from_settings(cls, settings: Settings) -> MessageLimits:
        """The limits the site configured."""
        return cls(
            settings.max_calendar_size,
            settings.max_components,
            settings.max_objects,
            settings.max_properties,
        )

    def check_size(self, texts: Iterable[str]) -> None:
        """Raise if the calendar texts together exceed ``calendar_size`` bytes."""
        size = sum(len(text.encode("utf-8", "surrogatepass")) for text in texts)
        if size > self.calendar_size:
            raise CalendarDataError(
                f"calendar data of {size} bytes exceeds the limit of {self.calendar_size} bytes"
            )


@dataclass
class Tally:
    """Running totals of one message's components and objects."""

    limits: MessageLimits
    components: int = 0
    objects: int = 0
    uids: set[tuple[str, str]] = field(default_factory=set)

    def add_calendar(self, calendar: Calendar) -> None:
        """Count ``calendar``'s components; raise past a limit."""
        for component, depth in _components(calendar):
            self.components += 1
            if self.components > self.limits.components:
                raise CalendarDataError(
                    f"more than {self.limits.components} components in one message"
                )
            if depth > MAX_DEPTH:
                raise CalendarDataError(f"components nested more than {MAX_DEPTH} deep")
            _check_properties(component, self.limits.properties)

    def add_objects(self, objects: Iterable[ItipObject]) -> None:
        """Count distinct scheduling objects; raise past ``max_objects``."""
        self.uids.update((obj.kind, obj.uid) for obj in objects)
        if len(self.uids) > self.limits.objects:
            raise CalendarDataError(
                f"more than {self.limits.objects} scheduling objects (UIDs) in one message"
            )


def _components(calendar: Calendar) -> Iterator[tuple[Component, int]]:
    """Every component below ``calendar`` with its depth, without recursion."""
    stack = [(child, 1) for child in reversed(calendar.subcomponents)]
    while stack:
        component, depth = stack.pop()
        yield component, depth
        stack.extend((child, depth + 1) for child in reversed(component.subcomponents))


def _check_properties(component: Component, limit: int) -> None:
    """Raise if ``component`` has more than ``limit`` properties, parameters
    and values of multi-valued properties together."""
    count = 0
    for value in component.values():
        for item in value if isinstance(value, list) else [value]:
            count += 1 + len(getattr(item, "params", None) or ()) + _values(item)
        if count > limit:
            raise CalendarDataError(
                f"{component.name} with more than {limit} properties and parameters"
            )


def _values(item: object) -> int:
    """Further values of one multi-valued property (CATEGORIES, RDATE, ...)."""
    if isinstance(item, vBroken):
        return 0
    for attribute in ("cats", "dts"):
        values = getattr(item, attribute, None)
        if isinstance(values, list):
            return max(len(values) - 1, 0)
    return 0


@dataclass
class CpuBudget:
    """A message's scheduling objects, handed out while it has CPU time left.

    Iterating yields the objects in order until the process has spent
    ``seconds`` of CPU (user and system) since ``started`` (by default when
    the budget was made; the agent passes the time it began to read the
    message, so parsing counts too). The first object is always yielded
    (its own work is bounded where it recurs: ``max_instances``,
    ``expansion_seconds``). The objects left are not processed;
    :meth:`reasons` says how many, once, for the outcome.
    CPU time, unlike wall-clock time, does not depend on the machine's load:
    the same message gets the same answer on a busy server.
    """

    objects: Sequence[ItipObject]
    seconds: float
    started: float = field(default_factory=time.process_time)
    skipped: set[tuple[str, str]] = field(default_factory=set)

    def __iter__(self) -> Iterator[ItipObject]:
        for index, obj in enumerate(self.objects):
            if index and self.spent():
                self.skipped.update((o.kind, o.uid) for o in self.objects[index:])
                log.warning("%s", self.reasons()[0])
                return
            yield obj

    def spent(self) -> bool:
        """Whether the message has used its CPU time."""
        return time.process_time() - self.started >= self.seconds

    def reasons(self) -> list[str]:
        """The failure to report for the objects not processed, if any."""
        if not self.skipped:
            return []
        return [
            f"{len(self.skipped)} scheduling object(s) not processed: the message "
            f"used its {self.seconds:g} s of CPU"
        ]


# -- one object ----------------------------------------------------------------


def object_problem(obj: ItipObject) -> str | None:
    """Why the scheduling object ``obj`` is unusable; None when it is usable.

    Each component needs a readable SEQUENCE within RFC 5545's INTEGER range
    (§3.8.7.4, §3.3.8), a RECURRENCE-ID that is a DATE or DATE-TIME
    (§3.8.4.4), ORGANIZER and ATTENDEE values icalendar could read as
    calendar addresses without line breaks (§3.3.3), and it must be
    writable again: the store and the replies serialise what was read
    (icalendar reads some values it cannot write, such as a PERIOD that
    ends before it starts).
    """
    for component in obj.components:
        problem = _sequence_problem(component) or _rid_problem(component)
        problem = problem or _address_problem(component) or _writing_problem(component)
        if problem:
            return problem
    return None


def _writing_problem(component: Component) -> str | None:
    """Why ``component`` cannot be serialised; None when it can.

    Its content lines are made and encoded as :meth:`Component.to_ical`
    makes and encodes them, without the folding, which raises nothing of
    its own (issue 15: a third of what serialising costs)."""
    try:
        "\r\n".join(component.content_lines()).encode("utf-8")
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as exc:
        return f"{component.name} cannot be written back: {' '.join(str(exc).split())[:100]}"
    return None


def _sequence_problem(component: Component) -> str | None:
    if "SEQUENCE" not in component:
        return None
    value = component["SEQUENCE"]
    try:
        number = int(str(value[0] if isinstance(value, list) else value))
    except ValueError:
        return "unreadable SEQUENCE"
    return None if abs(number) <= MAX_INTEGER else "SEQUENCE out of range"


def _rid_problem(component: Component) -> str | None:
    if "RECURRENCE-ID" not in component:
        return None
    value = component["RECURRENCE-ID"]
    moment = None if isinstance(value, vBroken) else getattr(value, "dt", None)
    return None if isinstance(moment, date) else "unreadable RECURRENCE-ID"


def _address_problem(component: Component) -> str | None:
    for name in _ADDRESSES:
        value = component.get(name)
        for item in value if isinstance(value, list) else [value] if value is not None else []:
            text = str(item)
            if not isinstance(item, vCalAddress) or "\r" in text or "\n" in text:
                return f"unreadable {name}"
    return None
