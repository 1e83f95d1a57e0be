"""Busy periods: the unit of free/busy records (RFC 5545 §3.6.4, RFC 7953).

A :class:`Period` is one busy (or free) stretch of one instance of one
event, in UTC. Stores keep them as one tab-separated line each, readable by
an admin::

    20300108T100000Z  20300108T110000Z  uid  OPAQUE  20300108T100000Z  summary  organiser  BUSY

Fields that come from event data are escaped so that a line is always one
line with exactly eight fields, whatever a hostile UID or SUMMARY holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, unquote

from imiptools.dates import format_utc, parse_utc

FIELDS = 8


def _escape(text: str) -> str:
    """Percent-escape tabs, newlines, controls and '%'; '' becomes '-'."""
    if not text:
        return "-"
    if text == "-":
        return "%2D"
    return quote(text, safe=" !\"#$&'()*+,-./:;<=>?@[]^_`{|}~", errors="surrogatepass")


def _unescape(text: str) -> str:
    return "" if text == "-" else unquote(text, errors="surrogatepass")


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
