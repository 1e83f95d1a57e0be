"""Finding a free time: the first slots in which nobody is busy.

A view over free/busy periods, for ``imip-client free-time`` and the
library (:meth:`imiptools.client.UserCalendar.free_time`): the periods of
the user and of everyone else whose free/busy the store holds (RFC 5546
§3.3, VFREEBUSY replies and published free/busy) are indexed once
(:class:`~imiptools.periods.Timeline`), then candidate slots are tried in
steps, within daily hours and on chosen weekdays in the user's zone.

:func:`ranked_slots` orders the free slots for people in several time
zones: each participant's working hours (:class:`Hours`: their zone and
their ``opening_hours``, Monday to Friday 09:00-17:00 by default) count a
slot inside them; slots inside everyone's come first, then those inside
the most people's, earliest first within a rank. Hours that are binding
(a resource's ``opening_hours``: outside them it declines) drop the slots
outside them altogether.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, time, timedelta, tzinfo

from imiptools.deferred import dataclass
from imiptools.periods import Period, Timeline, busy_only
from imiptools.scheduling.opening import OpeningHours

#: A free slot: its start and end.
Slot = tuple[datetime, datetime]
#: The most slots one search tries (a year of 5-minute steps is 105,120).
MAX_CANDIDATES = 110_000

#: Monday to Friday (``datetime.weekday``).
WORKDAYS = frozenset(range(5))


@dataclass(frozen=True)
class Search:
    """What to look for: ``duration`` in [start, end), tried every ``step``
    from ``start`` (rounded up to a whole step after midnight UTC), between
    ``hours`` (local start and end of the day, in ``zone``) on ``days``."""

    start: datetime
    end: datetime
    duration: timedelta
    step: timedelta = timedelta(minutes=30)
    hours: tuple[time, time] = (time(9), time(17))
    days: frozenset[int] = WORKDAYS
    zone: tzinfo | None = None

    def check(self) -> None:
        """ValueError for a search that can find nothing or never ends."""
        if self.start.tzinfo is None or self.end.tzinfo is None or self.end <= self.start:
            raise ValueError("the span needs an aware start and a later end")
        if self.duration <= timedelta(0) or self.step < timedelta(minutes=5):
            raise ValueError("the duration must be positive and the step at least 5 minutes")
        if self.hours[1] <= self.hours[0]:
            raise ValueError("the day's hours must end after they start")
        if (self.end - self.start) / self.step > MAX_CANDIDATES:
            raise ValueError(f"the span holds more than {MAX_CANDIDATES} steps: narrow it")


def free_slots(
    busy: Iterable[Period], search: Search, count: int
) -> list[tuple[datetime, datetime]]:
    """The first ``count`` slots of ``search`` that overlap no busy period
    (TRANSPARENT periods do not count). Raises ValueError as
    :meth:`Search.check`."""
    search.check()
    timeline = Timeline(busy_only(busy))
    found: list[Slot] = []
    for start in _candidates(search):
        end = start + search.duration
        if timeline.peak(start, end) == 0:
            found.append((start, end))
            if len(found) >= count:
                break
    return found


#: How many free slots :func:`ranked_slots` ranks at most.
RANKED_POOL = 500


@dataclass(frozen=True)
class Hours:
    """One participant's working hours: ``opening`` in ``zone`` (None:
    Monday to Friday, 09:00-17:00 there); ``binding`` when a slot outside
    them cannot be booked at all (a resource's opening hours)."""

    zone: tzinfo
    opening: OpeningHours | None = None
    binding: bool = False

    def inside(self, start: datetime, end: datetime) -> bool:
        """Whether [start, end) lies within these hours."""
        if self.opening is not None:
            return self.opening.contains(start, end, self.zone)
        first = start.astimezone(self.zone)
        closing = datetime.combine(first.date(), time(17), self.zone)
        return first.weekday() in WORKDAYS and time(9) <= first.time() and end <= closing


@dataclass(frozen=True)
class Ranked:
    """A free slot and how many participants it suits: ``inside`` of ``of``
    are within their working hours."""

    start: datetime
    end: datetime
    inside: int
    of: int


def ranked_slots(
    busy: Iterable[Period], search: Search, count: int, hours: Sequence[Hours]
) -> list[Ranked]:
    """The ``count`` best free slots of ``search`` (as :func:`free_slots`,
    of the first :data:`RANKED_POOL`) for participants with ``hours``: the
    slots outside binding hours left out, the rest ordered by how many
    participants they suit, most first, then by start."""
    fitting = []
    for start, end in free_slots(busy, search, RANKED_POOL):
        if all(h.inside(start, end) for h in hours if h.binding):
            inside = sum(1 for h in hours if h.inside(start, end))
            fitting.append(Ranked(start, end, inside, len(hours)))
    fitting.sort(key=lambda r: (-r.inside, r.start))
    return fitting[:count]


def _candidates(search: Search) -> Iterator[datetime]:
    """Slot starts in order: on the step grid, inside the hours and days."""
    step = search.step
    epoch = search.start.replace(hour=0, minute=0, second=0, microsecond=0)
    offset = search.start - epoch
    moment = epoch + -(-offset // step) * step
    zone = search.zone or search.start.tzinfo
    while moment + search.duration <= search.end:
        local = moment.astimezone(zone)
        last = (local + search.duration).astimezone(zone)
        if (
            local.weekday() in search.days
            and search.hours[0] <= local.time()
            and last.date() == local.date()
            and last.time() <= search.hours[1]
        ):
            yield moment
        moment += step
