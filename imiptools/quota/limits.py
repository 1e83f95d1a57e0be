"""Quota limits: the values of a quota group and the pure arithmetic over them.

No I/O here: :mod:`imiptools.quota.journal` reads the files and hands the
values over. A limit is one line of a quota's ``limits`` file::

    WHO      MEASURE  PERIOD        VALUE
    *        time     week          PT10H
    alice@example.com  count  month  4
    @staff   time     outstanding   PT20H
    bob@example.com    time   rolling:P7D  PT6H

Meaning, as the code below implements it:

* WHO is a calendar user (stored normalised, ``mailto:alice@example.com``),
  ``@group`` (a pooled allowance: the members share it) or ``*``.
* MEASURE ``time`` sums booked durations (VALUE an RFC 5545 duration);
  ``count`` counts booked instances (VALUE a non-negative integer).
* PERIOD ``day``, ``week`` (ISO: from Monday) and ``month`` are calendar
  periods in the quota's zone. A booking counts wholly in the period that
  contains its *start* (a booking from Sunday 23:00 to Monday 01:00 spends
  two hours of the week of the Sunday); this keeps each booking in exactly
  one period and the arithmetic obvious to an admin.
* ``outstanding`` counts every booking that has not ended at ``now``.
* ``rolling:DURATION`` (``rolling:P7D``): no window of that length, placed
  anywhere, may hold more than VALUE of bookings *starting* in it.
  :func:`usage` reports the window ``[when, when + DURATION)``; :func:`check`
  tests every window that contains the start of a new booking.

Precedence (:func:`applicable`): a user named on some line is bound by
their own lines and by their group's lines; ``*`` binds only users with no
line of their own (group members included). All applicable limits must
hold; they are tried in that order (own, group, ``*``; file order within
each) and the first that fails is reported.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime, time, timedelta, tzinfo

from imiptools.config import parse_duration
from imiptools.deferred import dataclass

MEASURES = ("time", "count")
CALENDAR_PERIODS = ("day", "week", "month")
ROLLING = "rolling:"
EVERYONE = "*"
GROUP_PREFIX = "@"

Amount = timedelta | int


@dataclass(frozen=True)
class QuotaBooking:
    """One booked instance recorded in a quota; ``start`` < ``end``, aware UTC.

    ``user`` is the normalised organiser URI, ``resource`` the booked
    resource's URI, ``rid`` the normalised RECURRENCE-ID ('' for a single
    event). (user, resource, uid, rid) identifies the record.
    """

    user: str
    resource: str
    uid: str
    rid: str
    start: datetime
    end: datetime

    @property
    def key(self) -> tuple[str, str, str, str]:
        """The identity of the record: (user, resource, uid, rid)."""
        return (self.user, self.resource, self.uid, self.rid)


@dataclass(frozen=True)
class QuotaLimit:
    """One line of ``limits``: WHO may book VALUE of MEASURE per PERIOD.

    ``value`` is a :class:`timedelta` for ``time``, an ``int`` for ``count``.
    """

    who: str
    measure: str
    period: str
    value: Amount

    @property
    def window(self) -> timedelta | None:
        """The length of a ``rolling:`` period, else None."""
        if not self.period.startswith(ROLLING):
            return None
        return parse_duration(self.period[len(ROLLING) :])

    def to_line(self) -> str:
        """The line as an admin writes it (durations in RFC 5545 form)."""
        value = format_amount(self.value)
        return f"{self.who} {self.measure} {self.period} {value}"


@dataclass(frozen=True)
class Violation:
    """The first limit a request would break, with the figures for a reply.

    ``used`` is what the user (or their group) already holds in the failing
    period or window, ``requested`` what the request adds there; ``start``
    and ``end`` bound that period or window (UTC).
    """

    limit: QuotaLimit
    used: Amount
    requested: Amount
    start: datetime
    end: datetime

    @property
    def allowed(self) -> Amount:
        """The limit's value."""
        return self.limit.value


def format_amount(value: Amount) -> str:
    """``PT10H``-style text for durations (whole seconds), digits for counts."""
    if isinstance(value, int):
        return str(value)
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    text = "P" + (f"{days}D" if days else "") + (f"T{clock}" if clock else "")
    return text if text != "P" else "PT0S"


def parse_period(text: str) -> str:
    """Validate a PERIOD word; returns it. Raises ValueError."""
    if text in CALENDAR_PERIODS or text == "outstanding":
        return text
    if text.startswith(ROLLING):
        if parse_duration(text[len(ROLLING) :]) <= timedelta(0):
            raise ValueError(f"rolling window must be positive: {text!r}")
        return text
    raise ValueError(f"unknown period {text!r} (day, week, month, outstanding, rolling:P7D)")


def parse_value(measure: str, text: str) -> Amount:
    """The VALUE of a limit for ``measure``; raises ValueError."""
    if measure == "count":
        if not text.isdigit():
            raise ValueError(f"count must be a non-negative integer: {text!r}")
        return int(text)
    if measure == "time":
        value = parse_duration(text)
        if value < timedelta(0):
            raise ValueError(f"duration must not be negative: {text!r}")
        return value
    raise ValueError(f"unknown measure {measure!r} (time or count)")


def applicable(limits: Iterable[QuotaLimit], user: str, group: str | None) -> list[QuotaLimit]:
    """The limits binding ``user`` (normalised) in ``group``, in trial order."""
    limits = list(limits)
    own = [limit for limit in limits if limit.who == user]
    pooled = [limit for limit in limits if group and limit.who == GROUP_PREFIX + group]
    default = [] if own else [limit for limit in limits if limit.who == EVERYONE]
    return own + pooled + default


def members_for(limit: QuotaLimit, user: str, members: Collection[str]) -> Collection[str]:
    """Whose bookings a limit counts: the group's ``members`` for ``@group``."""
    if limit.who.startswith(GROUP_PREFIX):
        return {*members, user}
    return {user}


def amount(limit: QuotaLimit, start: datetime, end: datetime) -> Amount:
    """What one booking from ``start`` to ``end`` spends of ``limit``."""
    return end - start if limit.measure == "time" else 1


def _zero(limit: QuotaLimit) -> Amount:
    return timedelta(0) if limit.measure == "time" else 0


def period_bounds(period: str, when: datetime, zone: tzinfo) -> tuple[datetime, datetime]:
    """The calendar period (``day|week|month``) containing ``when`` in ``zone``.

    Returns its bounds as aware datetimes (in ``zone``); local midnights, so
    a day across a DST change is 23 or 25 hours long.
    """
    local = when.astimezone(zone).date()
    if period == "day":
        first, after = local, local + timedelta(days=1)
    elif period == "week":
        first = local - timedelta(days=local.weekday())
        after = first + timedelta(days=7)
    elif period == "month":
        first = local.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
    else:
        raise ValueError(f"not a calendar period: {period!r}")
    return _midnight(first, zone), _midnight(after, zone)


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone)


def window_of(limit: QuotaLimit, when: datetime, zone: tzinfo) -> tuple[datetime, datetime]:
    """The span :func:`usage` measures at ``when``; see the module docstring.

    For ``outstanding`` the span is ``[when, datetime.max)``, matched
    against booking *ends*; for the others against booking *starts*.
    """
    window = limit.window
    if window is not None:
        return when, when + window
    if limit.period == "outstanding":
        return when, datetime.max.replace(tzinfo=when.tzinfo)
    return period_bounds(limit.period, when, zone)


def _spent(
    limit: QuotaLimit, spans: Iterable[tuple[datetime, datetime]], bounds: Sequence[datetime]
) -> Amount:
    """Sum of the spans that fall in ``bounds`` for ``limit``."""
    first, after = bounds
    total = _zero(limit)
    for start, end in spans:
        instant = end if limit.period == "outstanding" else start
        inside = instant > first if limit.period == "outstanding" else first <= instant < after
        if inside:
            total += amount(limit, start, end)  # type: ignore[operator]
    return total


def usage(
    bookings: Iterable[QuotaBooking],
    who: Collection[str],
    limit: QuotaLimit,
    when: datetime,
    zone: tzinfo,
) -> Amount:
    """What the users ``who`` hold of ``limit`` in its span at ``when``.

    ``who`` is one user for a personal or ``*`` limit, the members of the
    group for a pooled one. Returns a timedelta (``time``) or int (``count``).
    """
    spans = [(b.start, b.end) for b in bookings if b.user in who]
    return _spent(limit, spans, window_of(limit, when, zone))


def _spans_to_test(
    limit: QuotaLimit,
    held: Sequence[tuple[datetime, datetime]],
    new: Sequence[tuple[datetime, datetime]],
    now: datetime,
    zone: tzinfo,
) -> list[tuple[datetime, datetime]]:
    """Every span in which ``limit`` must hold for the ``new`` bookings."""
    if limit.period == "outstanding":
        return [window_of(limit, now, zone)]
    window = limit.window
    if window is None:
        return sorted({period_bounds(limit.period, start, zone) for start, _ in new})
    starts = sorted({s for s, _ in (*held, *new)})
    candidates = {t for s, _ in new for t in starts if s - window < t <= s}
    return [(t, t + window) for t in sorted(candidates)]


def _exceeds(limit: QuotaLimit, used: Amount, requested: Amount) -> bool:
    return used + requested > limit.value  # type: ignore[operator]


def check_limit(
    limit: QuotaLimit,
    held: Sequence[tuple[datetime, datetime]],
    new: Sequence[tuple[datetime, datetime]],
    now: datetime,
    zone: tzinfo,
) -> Violation | None:
    """The first span where ``held`` plus ``new`` would exceed ``limit``, or None."""
    for bounds in _spans_to_test(limit, held, new, now, zone):
        requested = _spent(limit, new, bounds)
        if requested and _exceeds(limit, used := _spent(limit, held, bounds), requested):
            return Violation(limit, used, requested, bounds[0], bounds[1])
    return None


def check(
    bookings: Iterable[QuotaBooking],
    limits: Iterable[QuotaLimit],
    user: str,
    group: str | None,
    new: Sequence[tuple[datetime, datetime]],
    now: datetime,
    zone: tzinfo,
    members: Collection[str] = (),
) -> Violation | None:
    """Whether ``user`` may book the ``new`` spans: None, or the first failing limit.

    ``bookings`` are those already in the quota; the caller leaves out the
    records the request replaces (an update of the same UID). ``members``
    are the users of ``group`` (pooled limits count all their bookings).
    Exempt users are the caller's business: do not call this for them.
    """
    bookings = list(bookings)
    for limit in applicable(limits, user, group):
        who = members_for(limit, user, members)
        held = [(b.start, b.end) for b in bookings if b.user in who]
        violation = check_limit(limit, held, new, now, zone)
        if violation is not None:
            return violation
    return None


def expiry_cutoff(limits: Iterable[QuotaLimit], now: datetime, zone: tzinfo) -> datetime:
    """The moment before which an ended booking can no longer count for any limit.

    A booking that ended at or before ``now`` still counts for the calendar
    period under way (this week's bookings count for the week), and for a
    rolling window reaching back from ``now``; :func:`expire` callers drop
    bookings that ended at or before ``now`` and started before the cutoff.
    ``outstanding`` needs nothing past, so with no other limit it is ``now``.
    """
    cutoff = now
    for limit in limits:
        window = limit.window
        if window is not None:
            cutoff = min(cutoff, now - window)
        elif limit.period in CALENDAR_PERIODS:
            cutoff = min(cutoff, period_bounds(limit.period, now, zone)[0])
    return cutoff
