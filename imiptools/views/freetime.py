"""Finding a free time: the first slots in which nobody is busy.

A view over free/busy periods, for ``imip-client free-time`` and the
library (:meth:`imiptools.client.UserCalendar.free_time`): the periods of
the user and of everyone else whose free/busy the store holds (RFC 5546
§3.3, VFREEBUSY replies and published free/busy) are indexed once
(:class:`~imiptools.periods.Timeline`), then candidate slots are tried in
steps, within daily hours and on chosen weekdays in the user's zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

from imiptools.periods import Period, Timeline, busy_only

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
