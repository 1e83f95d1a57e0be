"""Quota scheduling functions: fair use of shared resources (issue 5).

Configured in a resource's ``scheduling_function`` preference, each with the
name of a quota group as its argument (see :mod:`imiptools.quota.journal`
for the files and :mod:`imiptools.quota.limits` for the arithmetic)::

    check_quota rooms              # the organiser's allowance in "rooms"
    schedule_across_quota rooms    # one resource of "rooms" at a time
    schedule_for_delegate rooms    # busy? hand over to a free one of "rooms"
    schedule_in_freebusy

- ``check_quota QUOTA`` costs the instances to book (every future instance
  in the window; the records this request replaces are left out) against
  every limit that applies to the organiser. Over a limit it declines,
  naming the limit; under ``limit_action counter`` it proposes the part
  that fits: a single event shortened to the time that remains, a series
  cut to the instances that fit (COUNT). Accepting, it remarks what remains.
- ``schedule_across_quota QUOTA`` declines when the organiser already holds
  another resource of the quota at an overlapping time; a series with a few
  such instances is accepted with those declined, within the resource's
  ``max_conflict_instances`` and ``max_conflict_percent`` (as for clashes).
- ``schedule_for_delegate QUOTA``: when this resource is busy for some
  instance, it delegates (RFC 5546 §3.2.2.3) to the first resource in the
  quota's ``delegates`` that is free for every instance and not already an
  attendee; the delegate then decides for itself, under its own lock, so
  the pool as a whole never double-books.

Exempt users (the quota's ``exempt`` file) pass every function.

The handler reads each named quota into :attr:`Request.quotas` under the
quota's lock and keeps the locks until the confirmation steps have run, so
check and record happen in one critical section. Confirmation and
retraction (``add_to_quota`` and ``remove_from_quota``) make the quota's
records of the (resource, UID) equal to the resource's busy periods after
the message: idempotent, so a redelivered message converges.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo

from imiptools.i18n import N_, N_plural
from imiptools.itip.recurrence import Instance
from imiptools.periods import Timeline, busy_only
from imiptools.quota.limits import (
    Amount,
    QuotaBooking,
    QuotaLimit,
    Violation,
    applicable,
    check,
    members_for,
    usage,
    window_of,
)
from imiptools.quota.model import (
    ACROSS_QUOTA,
    CHECK_QUOTA,
    DELEGATE_QUOTA,
    RECORDING_FUNCTIONS,
    QuotaState,
    parse_user,
)
from imiptools.scheduling.freebusy import clashes, describe, tolerated
from imiptools.scheduling.model import (
    Answer,
    Booking,
    Count,
    Decision,
    Phrase,
    Request,
    Words,
    add_request_status,
)
from imiptools.scheduling.registry import register, register_confirmation, register_retraction
from imiptools.stores.names import is_verbatim

CHECK = CHECK_QUOTA
ACROSS = ACROSS_QUOTA
DELEGATE = DELEGATE_QUOTA
#: The functions whose first argument names a quota group.
QUOTA_FUNCTIONS = frozenset({CHECK, ACROSS, DELEGATE})
#: The shortest instance a quota counter-proposal offers.
SHORTEST_OFFER = timedelta(minutes=15)

#: REQUEST-STATUS numbers (RFC 5546 §3.6) of this module's declines, by code.
REQUEST_STATUS: dict[str, str] = {"quota": "3.8", "quota-overlap": "3.8"}
add_request_status(REQUEST_STATUS)

BOOKINGS = N_plural("{count} booking", "{count} bookings")
YOU = N_("you")
DECLINE = N_(
    "the booking would exceed the {allowed} {span} allowed for {whom} in {quota}"
    " ({used} already booked)"
)
REMAINING = N_("{remaining} of the {allowed} {span} allowed for {whom} in {quota} remain")
SHORTER = N_(
    "the booking would exceed the {allowed} {span} allowed for {whom} in {quota};"
    " the resource offers {period}"
)
SERIES = N_plural(
    "the series would exceed the {allowed} {span} allowed for {whom} in {quota};"
    " the resource offers its first {count} instance",
    "the series would exceed the {allowed} {span} allowed for {whom} in {quota};"
    " the resource offers its first {count} instances",
)


def check_quota_name(args: Sequence[str]) -> None:
    """The argument check of the quota functions: the name of one quota, a
    plain name that is a directory of the journal (``rooms``, not ``../x``)."""
    if len(args) != 1:
        raise ValueError("expected the name of a quota")
    if not is_verbatim(args[0]):
        raise ValueError(f"not a usable quota name: {args[0]!r}")


def quotas_named(lines: Sequence[tuple[str, list[str]]]) -> list[str]:
    """The quota groups the configured function lines name (sorted, once
    each); a name that cannot be a quota is left out (its function then
    answers "misconfigured")."""
    return sorted(
        {
            args[0]
            for name, args in lines
            if name in QUOTA_FUNCTIONS and args and is_verbatim(args[0])
        }
    )


def _state(request: Request, args: Sequence[str]) -> QuotaState:
    """The quota named by the single argument; ValueError (misconfigured) else."""
    if len(args) != 1:
        raise ValueError("expected the name of a quota")
    state = request.quotas.get(args[0])
    if state is None:
        raise ValueError(f"quota {args[0]!r} is not available")
    return state


def _user(request: Request) -> str:
    return parse_user(request.organiser)


def _replaced(request: Request, booking: QuotaBooking) -> bool:
    """Whether ``request`` replaces this record (an update of the same booking)."""
    if (booking.resource, booking.uid) != (request.resource, request.uid):
        return False
    if request.component is not None and "RECURRENCE-ID" in request.component:
        return booking.rid in {i.recurrenceid for i in request.instances}
    return True


def _new(request: Request, user: str) -> list[QuotaBooking]:
    """The records the request would add."""
    return [
        QuotaBooking(user, request.resource, request.uid, i.recurrenceid, i.start, i.end)
        for i in request.instances
        if i.end > i.start
    ]


# -- check_quota ---------------------------------------------------------------


@register(CHECK, check_quota_name)
def check_quota(request: Request, args: Sequence[str]) -> Decision:
    """Decline (or counter) a booking that would break a limit of the quota."""
    state = _state(request, args)
    user = _user(request)
    if user in state.exempt:
        return _exempt(state, CHECK)
    zone = state.zone or request.zone
    held = [b for b in state.bookings if not _replaced(request, b)]
    new = _new(request, user)
    group = state.groups.get(user)
    spans = [(b.start, b.end) for b in new]
    violation = check(
        held, state.limits, user, group, spans, request.now, zone, state.members(group)
    )
    if violation is None:
        return _remaining(request, state, [*held, *new], user, zone)
    declined = Decision(
        Answer.DECLINED, "quota", DECLINE, CHECK, _violation_params(state, violation, zone)
    )
    if request.preference("limit_action") == "counter":
        return _fitting(request, state, held, new, zone, declined) or declined
    return declined


def _q(state: QuotaState) -> dict[str, object]:
    return {"quota": state.name}


def _exempt(state: QuotaState, function: str) -> Decision:
    """ACCEPTED: the organiser is in the quota's ``exempt`` file."""
    reason = N_("{quota} does not limit you")
    return Decision(Answer.ACCEPTED, "quota-exempt", reason, function, _q(state))


def _whom(limit: QuotaLimit) -> object:
    if limit.who.startswith("@"):
        return Phrase(N_("your group {group}"), {"group": limit.who[1:]})
    return Words(YOU)


def _amount(value: Amount) -> object:
    if isinstance(value, int):
        return Count(value, *BOOKINGS)
    return value


def _span(limit: QuotaLimit, start: datetime, zone: tzinfo) -> object:
    """The period of a limit in words (``for the week of 2030-01-07``)."""
    local = start.astimezone(zone).date()
    if limit.period == "day":
        return Phrase(N_("for {date}"), {"date": local.isoformat()})
    if limit.period == "week":
        return Phrase(N_("for the week of {date}"), {"date": local.isoformat()})
    if limit.period == "month":
        return Phrase(N_("for {month}"), {"month": f"{local:%Y-%m}"})
    if limit.window is not None:
        return Phrase(N_("in any {window}"), {"window": limit.window})
    return Words(N_("booked ahead at any one time"))


def _violation_params(state: QuotaState, violation: Violation, zone: tzinfo) -> dict[str, object]:
    limit = violation.limit
    return {
        **_q(state),
        "allowed": _amount(limit.value),
        "used": _amount(violation.used),
        "span": _span(limit, violation.start, zone),
        "whom": _whom(limit),
        "limit": limit.to_line(),
    }


def _remaining(
    request: Request, state: QuotaState, bookings: list[QuotaBooking], user: str, zone: tzinfo
) -> Decision:
    """ACCEPTED, remarking what remains of the tightest limit after the booking."""
    limits = applicable(state.limits, user, state.groups.get(user))
    if not limits or not request.instances:
        return Decision(Answer.ACCEPTED, "quota", N_("{quota} has room"), CHECK, _q(state))
    first = min(i.start for i in request.instances)
    members = state.members(state.groups.get(user))
    figures = []
    for limit in limits:
        when = request.now if limit.period == "outstanding" else first
        used = usage(bookings, members_for(limit, user, members), limit, when, zone)
        left = limit.value - used  # type: ignore[operator]
        share = _share(left, limit.value)
        figures.append((share, limit, left, window_of(limit, when, zone)[0]))
    _, limit, left, start = min(figures, key=lambda f: f[0])
    params = {
        **_q(state),
        "remaining": _amount(left),
        "allowed": _amount(limit.value),
        "span": _span(limit, start, zone),
        "whom": _whom(limit),
    }
    return Decision(Answer.ACCEPTED, "quota", REMAINING, CHECK, params, remark=True)


def _share(left: Amount, value: Amount) -> float:
    """``left`` as a fraction of ``value`` (0 for a zero limit)."""
    if isinstance(left, timedelta) and isinstance(value, timedelta):
        return left / value if value else 0.0
    return int(left) / int(value) if value else 0.0  # type: ignore[arg-type]


def _fitting(
    request: Request,
    state: QuotaState,
    held: list[QuotaBooking],
    new: list[QuotaBooking],
    zone: tzinfo,
    declined: Decision,
) -> Decision | None:
    """The part of the request that fits the quota, as a COUNTER; None if none."""
    from imiptools.scheduling.alternatives import (  # lazy: start-up (only a counter)
        shortened,
        truncated,
    )

    user = _user(request)
    group = state.groups.get(user)
    members = state.members(group)

    def fits(part: Sequence[QuotaBooking]) -> bool:
        spans = [(b.start, b.end) for b in part]
        return check(held, state.limits, user, group, spans, request.now, zone, members) is None

    if request.component is not None and "RRULE" in request.component:
        ordered = sorted(new, key=lambda b: b.start)
        count = _most_that_fit(len(ordered), lambda k: fits(ordered[:k]))
        return truncated(request, declined, count, SERIES) if count else None
    if len(new) != 1:
        return None
    booking = new[0]
    end = _longest_end(booking, lambda end: fits([_with_end(booking, end)]))
    if end is None or end - booking.start < SHORTEST_OFFER:
        return None
    return shortened(request, declined, SHORTER, end)


def _most_that_fit(total: int, fits: Callable[[int], bool]) -> int:
    """The largest k <= total with fits(k) (fits is monotone; fits(0) holds)."""
    low, high = 0, total
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _with_end(booking: QuotaBooking, end: datetime) -> QuotaBooking:
    return QuotaBooking(
        booking.user, booking.resource, booking.uid, booking.rid, booking.start, end
    )


def _longest_end(booking: QuotaBooking, fits: Callable[[datetime], bool]) -> datetime | None:
    """The latest end on a minute boundary that still fits (None if none does)."""
    minutes = int((booking.end - booking.start).total_seconds() // 60)
    best = _most_that_fit(minutes, lambda m: m == 0 or fits(booking.start + timedelta(minutes=m)))
    return booking.start + timedelta(minutes=best) if best else None


# -- schedule_across_quota -----------------------------------------------------


@register(ACROSS, check_quota_name)
def schedule_across_quota(request: Request, args: Sequence[str]) -> Decision:
    """Decline when the organiser holds another resource of the quota at the time."""
    state = _state(request, args)
    user = _user(request)
    if user in state.exempt:
        return _exempt(state, ACROSS)
    others = [b for b in state.bookings if b.user == user and b.resource != request.resource]
    held = {i.recurrenceid: _held(i, others) for i in request.instances}
    overlapping = [i for i in request.instances if held[i.recurrenceid] is not None]
    if not overlapping:
        reason = N_("you hold nothing else of {quota} then")
        return Decision(Answer.ACCEPTED, "quota-free", reason, ACROSS, _q(state))
    return _overlapping(request, state, overlapping, held)


def _overlapping(
    request: Request,
    state: QuotaState,
    overlapping: Sequence[Instance],
    held: Mapping[str, QuotaBooking | None],
) -> Decision:
    """A few overlapping instances of a series declined, else the whole request."""
    if tolerated(request, len(overlapping)):
        periods = ", ".join(describe(i.start, i.end, request.zone) for i in overlapping)
        reason = N_("you hold another resource of {quota} at {periods}, which are declined")
        params = {**_q(state), "periods": periods}
        declined = tuple(i.recurrenceid for i in overlapping)
        return Decision(
            Answer.ACCEPTED, "quota-partly", reason, ACROSS, params, declined=declined, remark=True
        )
    booking = held[overlapping[0].recurrenceid]
    assert booking is not None
    params = {
        **_q(state),
        "holding": booking.resource.removeprefix("mailto:"),
        "period": describe(booking.start, booking.end, request.zone),
    }
    reason = N_("you already hold {holding} of {quota} at {period}")
    return Decision(Answer.DECLINED, "quota-overlap", reason, ACROSS, params)


def _held(instance: Instance, others: Sequence[QuotaBooking]) -> QuotaBooking | None:
    """The first of ``others`` overlapping ``instance``, or None."""
    for booking in others:
        if booking.start < instance.end and instance.start < booking.end:
            return booking
    return None


# -- schedule_for_delegate -----------------------------------------------------


@register(DELEGATE, check_quota_name)
def schedule_for_delegate(request: Request, args: Sequence[str]) -> Decision:
    """Delegate to a free resource of the quota when this one is busy."""
    state = _state(request, args)
    busy = clashes(request, 1)
    if not busy:
        return Decision(Answer.ACCEPTED, "free", N_("the resource is free"), DELEGATE)
    taken = {request.resource, *(parse_user(a) for a in request.attendees if a)}
    for delegate in state.delegates:
        if delegate not in taken and _free(request, delegate):
            reason = N_("the resource is booked then; it has passed the request to {delegate}")
            found = {"delegate": delegate.removeprefix("mailto:")}
            return Decision(Answer.DELEGATED, "delegated", reason, DELEGATE, found)
    params: dict[str, object] = {
        **_q(state),
        "period": describe(busy[0].start, busy[0].end, request.zone),
    }
    reason = N_("the resource and every other resource of {quota} are booked at {period}")
    return Decision(Answer.DECLINED, "conflict", reason, DELEGATE, params)


def _free(request: Request, resource: str) -> bool:
    """Whether ``resource`` has nothing busy during any instance (capacity 1)."""
    start = min(i.start for i in request.instances)
    end = max(i.end for i in request.instances)
    busy = Timeline(busy_only(request.busy_of(resource, start, end)))
    return all(busy.peak(i.start, i.end) < 1 for i in request.instances)


# -- confirmation and retraction -----------------------------------------------


def record(booking: Booking, args: Sequence[str]) -> None:
    """``add_to_quota`` / ``remove_from_quota``: the quota's records of
    (resource, UID) become the resource's busy periods for it after the
    message (none after a cancellation). Idempotent."""
    if booking.journal is None or not args:
        return
    user = parse_user(booking.organiser)
    items = [
        QuotaBooking(user, booking.resource, booking.uid, p.recurrenceid, p.start, p.end)
        for p in booking.periods
    ]
    journal, quota = booking.journal, args[0]
    journal.replace_event(quota, booking.resource, booking.uid, items, booking.now, {user})


add_to_quota = record
remove_from_quota = record
for _name in sorted(RECORDING_FUNCTIONS):
    register_confirmation(_name)(add_to_quota)
    register_retraction(_name)(remove_from_quota)
