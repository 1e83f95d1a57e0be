"""Busy periods: the unit of free/busy records (RFC 5545 §3.6.4, RFC 7953).

A :class:`Period` is one busy (or free) stretch of one instance of one
event, in UTC. Stores keep them as one tab-separated line each, readable by
an admin::

    20300108T100000Z  20300108T110000Z  uid  OPAQUE  20300108T100000Z  summary  organiser  BUSY

Fields that come from event data are escaped so that a line is always one
line with exactly eight fields, whatever a hostile UID or SUMMARY holds.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Protocol
from urllib.parse import quote, unquote

from imiptools.dates import format_utc, parse_utc
from imiptools.deferred import dataclass

FIELDS = 8


def _escape(text: str) -> str:
    """Percent-escape tabs, newlines, controls and '%'; '' becomes '-'."""
    if not text:
        return "-"
    if text == "-":
        return "%2D"
    if text.isascii() and text.isprintable() and "%" not in text and "\\" not in text:
        return text  # what quote() would give (every other printable ASCII is safe)
    return quote(text, safe=" !\"#$&'()*+,-./:;<=>?@[]^_`{|}~", errors="surrogatepass")


def _unescape(text: str) -> str:
    if "%" not in text:  # most fields: no call into urllib
        return "" if text == "-" else text
    return unquote(text, errors="surrogatepass")


@dataclass(frozen=True, order=True)
class Period:
    """One busy period of one instance; ``start`` < ``end``, both aware UTC.

    ``recurrenceid`` is the normalised RECURRENCE-ID of the instance (see
    :func:`imiptools.dates.format_recurrence_id`), empty for a single event.
    ``transp`` is ``OPAQUE`` (busy) or ``TRANSPARENT``; ``status`` is the
    FBTYPE it contributes (``BUSY``, ``BUSY-TENTATIVE``, ``BUSY-UNAVAILABLE``).
    """

    start: datetime
    end: datetime
    uid: str = ""
    recurrenceid: str = ""
    transp: str = "OPAQUE"
    summary: str = ""
    organiser: str = ""
    status: str = "BUSY"

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """True if this period shares any instant with ``[start, end)``."""
        return self.start < end and start < self.end

    def key(self) -> tuple[datetime, datetime, str, str, str, str, str, str]:
        """The fields in order: sorting by this key is sorting periods (the
        dataclass order), several times faster for many periods."""
        return (
            self.start,
            self.end,
            self.uid,
            self.recurrenceid,
            self.transp,
            self.summary,
            self.organiser,
            self.status,
        )

    def to_line(self) -> str:
        """Serialise as one tab-separated line (no trailing newline)."""
        return "\t".join(
            (
                format_utc(self.start),
                format_utc(self.end),
                _escape(self.uid),
                self.transp,
                _escape(self.recurrenceid),
                _escape(self.summary[:200]),
                _escape(self.organiser),
                self.status,
            )
        )

    @classmethod
    def from_line(cls, line: str) -> Period:
        """Parse a line written by :meth:`to_line`; raises ValueError."""
        parts = line.rstrip("\n").split("\t")
        if len(parts) != FIELDS:
            raise ValueError(f"bad free/busy line: {line!r}")
        start, end, uid, transp, rid, summary, organiser, status = parts
        return cls(
            parse_utc(start),
            parse_utc(end),
            _unescape(uid),
            _unescape(rid),
            transp,
            _unescape(summary),
            _unescape(organiser),
            status,
        )


def line_uid(line: str) -> str | None:
    """The uid a line of :meth:`Period.to_line` names (its third field,
    unescaped), the rest unread; None for a line without eight fields
    (which :meth:`Period.from_line` refuses too). A line that gives a uid
    may still not parse; one that parses gives its period's uid."""
    parts = line.rstrip("\n").split("\t")
    return _unescape(parts[2]) if len(parts) == FIELDS else None


def busy_only(periods: Iterable[Period]) -> list[Period]:
    """The periods that make the user busy (not TRANSPARENT)."""
    return [p for p in periods if p.transp != "TRANSPARENT"]


def max_overlap(periods: Iterable[Period], start: datetime, end: datetime) -> int:
    """The largest number of ``periods`` in effect at one instant of [start, end).

    A sweep over the clipped period boundaries: used for capacity checks
    (``schedule_in_freebusy N``).
    """
    events: list[tuple[datetime, int]] = []
    for period in periods:
        if period.overlaps(start, end):
            events.append((max(period.start, start), 1))
            events.append((min(period.end, end), -1))
    events.sort(key=lambda item: (item[0], item[1]))  # ends before starts
    current = peak = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


#: Periods longer than this are kept aside by a :class:`Timeline` (scanned
#: on every query) so that the window searched for the others stays short.
LONG_PERIOD = timedelta(days=7)


class Timeline:
    """Periods indexed for many queries: built once in O(n log n), then
    :meth:`peak` costs O(log n + boundaries in the span) and
    :meth:`overlapping` O(log n + periods near the span), instead of a scan
    of every period per query (a series checked against a busy resource
    asks once per instance). Periods without duration are ignored.
    """

    def __init__(self, periods: Iterable[Period]) -> None:
        kept = sorted((p for p in periods if p.end > p.start), key=lambda p: (p.start, p.end))
        self._long = [p for p in kept if p.end - p.start > LONG_PERIOD]
        self._short = [p for p in kept if p.end - p.start <= LONG_PERIOD]
        self._starts = [p.start for p in self._short]
        self._reach = max((p.end - p.start for p in self._short), default=timedelta(0))
        self._points: list[datetime] = []
        self._counts: list[int] = []
        events = sorted([(p.start, 1) for p in kept] + [(p.end, -1) for p in kept])
        current = 0
        for when, delta in events:  # ends sort before starts at the same instant
            current += delta
            if self._points and self._points[-1] == when:
                self._counts[-1] = current
            else:
                self._points.append(when)
                self._counts.append(current)

    def peak(self, start: datetime, end: datetime) -> int:
        """The largest number of periods in effect at one instant of [start, end)
        (what :func:`max_overlap` computes)."""
        index = bisect_right(self._points, start) - 1
        peak = self._counts[index] if index >= 0 else 0
        index += 1
        while index < len(self._points) and self._points[index] < end:
            peak = max(peak, self._counts[index])
            index += 1
        return peak

    def overlapping(self, start: datetime, end: datetime) -> list[Period]:
        """The periods overlapping [start, end), in order of their start."""
        low = bisect_left(self._starts, start - self._reach)
        high = bisect_left(self._starts, end)
        near = [p for p in self._short[low:high] if p.end > start]
        far = [p for p in self._long if p.overlaps(start, end)]
        return sorted(near + far, key=lambda p: (p.start, p.end)) if far else near


class PeriodIndex(Protocol):
    """What a :class:`Timeline` answers (and a :class:`FetchingTimeline`)."""

    def peak(self, start: datetime, end: datetime) -> int:
        """The largest number of periods in effect at one instant of [start, end)."""
        ...

    def overlapping(self, start: datetime, end: datetime) -> list[Period]:
        """The periods overlapping [start, end), in order of their start."""
        ...


#: The least a :class:`FetchingTimeline` fetches beyond what it holds.
FETCH_STEP = timedelta(days=7)
_INSTANT = timedelta(microseconds=1)


class FetchingTimeline:
    """A :class:`Timeline` over periods fetched as queries reach them.

    ``fetch(start, end)`` returns the periods overlapping [start, end) (as
    ``Store.get_freebusy`` does). The first query fetches its span joined
    with ``first`` (the span the caller knows it will ask about: every
    instance of a series, say); a later query beyond what is held fetches
    only the missing part, at least :data:`FETCH_STEP` and at least as long
    as what is held, so that a search walking ahead for months costs a few
    fetches. Each answer is the one a :class:`Timeline` over a single fetch
    of a span covering the query would give: a period returned by two
    adjacent fetches is kept once (it is held when it overlaps what was
    held before).
    """

    def __init__(
        self,
        fetch: Callable[[datetime, datetime], Sequence[Period]],
        first: tuple[datetime, datetime] | None = None,
    ) -> None:
        self._fetch = fetch
        self._first = first
        self._span: tuple[datetime, datetime] | None = None
        self._periods: list[Period] = []
        self._timeline = Timeline(())
        #: How many times ``fetch`` was called (for tests and benchmarks).
        self.fetches = 0

    def peak(self, start: datetime, end: datetime) -> int:
        """:meth:`Timeline.peak`, after fetching what the query needs."""
        self._cover(start, end)
        return self._timeline.peak(start, end)

    def overlapping(self, start: datetime, end: datetime) -> list[Period]:
        """:meth:`Timeline.overlapping`, after fetching what the query needs."""
        self._cover(start, end)
        return self._timeline.overlapping(start, end)

    def _get(self, start: datetime, end: datetime) -> Sequence[Period]:
        self.fetches += 1
        return self._fetch(start, end)

    def _cover(self, start: datetime, end: datetime) -> None:
        """Hold every period overlapping [start, end) (at least the instant
        ``start`` for an empty query, which :meth:`Timeline.peak` reads)."""
        end = max(end, _shifted(start, _INSTANT))
        if self._span is None:
            low, high = start, end
            if self._first is not None:
                low, high = min(low, self._first[0]), max(high, self._first[1])
            self._periods = list(self._get(low, high))
        else:
            low, high = self._span
            if low <= start and end <= high:
                return
            step = max(high - low, FETCH_STEP)
            if start < low:
                earlier = min(start, _shifted(low, -step))
                self._periods += [p for p in self._get(earlier, low) if p.end <= low]
                low = earlier
            if end > high:
                later = max(end, _shifted(high, step))
                self._periods += [p for p in self._get(high, later) if p.start >= high]
                high = later
        self._span = (low, high)
        self._timeline = Timeline(self._periods)


class NarrowTimeline:
    """A :class:`PeriodIndex` fetching each query's own span, holding nothing.

    For a series whose instances lie far apart (ten minutes a day for a
    year): a :class:`FetchingTimeline` would fetch and index every period
    of the year, where each instance needs only those overlapping it. A
    store that answers narrow spans from an index (the file store's
    buckets, read once under the user's lock; a database's index) then
    costs what the instances touch, not what the resource holds.
    """

    def __init__(self, fetch: Callable[[datetime, datetime], Sequence[Period]]) -> None:
        self._fetch = fetch
        #: How many times ``fetch`` was called (for tests and benchmarks).
        self.fetches = 0

    def _timeline(self, start: datetime, end: datetime) -> Timeline:
        self.fetches += 1
        return Timeline(self._fetch(start, max(end, _shifted(start, _INSTANT))))

    def peak(self, start: datetime, end: datetime) -> int:
        """:meth:`Timeline.peak` over the periods fetched for [start, end)."""
        return self._timeline(start, end).peak(start, end)

    def overlapping(self, start: datetime, end: datetime) -> list[Period]:
        """:meth:`Timeline.overlapping` over the periods fetched for [start, end)."""
        return self._timeline(start, end).overlapping(start, end)


def _shifted(moment: datetime, step: timedelta) -> datetime:
    """``moment + step``, stopping at the ends of the calendar."""
    try:
        return moment + step
    except OverflowError:
        edge = datetime.max if step > timedelta(0) else datetime.min
        return edge.replace(tzinfo=moment.tzinfo)
