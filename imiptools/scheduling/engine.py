"""Running the scheduling functions: a request in, one decision out.

:func:`schedule` is what a resource's handler calls for each request
(RFC 5546 §3.2.3): the event limits first (:mod:`.limits`, :mod:`.hours`),
a broken one answered with a decline or, under ``limit_action counter``, a
compliant counter-proposal (:mod:`.alternatives`); then a request whose
expansion was cut short is declined; then :func:`decide` runs the
configured function lines. After the store is written, :func:`run_steps`
runs the confirmation or retraction steps of the configured functions.

Functions are looked up in :mod:`.registry`; the built-in ones have
registered themselves by the time anything here runs (the package face
imports :mod:`.builtin`, and importing any module of the package runs the
face first).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from imiptools.i18n import N_
from imiptools.scheduling.counter import delegated_limits
from imiptools.scheduling.limits import check_limits
from imiptools.scheduling.model import (
    Answer,
    Booking,
    BusyUnreadable,
    Decision,
    Request,
    misconfigured,
)
from imiptools.scheduling.registry import Step, lookup, parse_function_lines

__all__ = ["decide", "limited", "run_steps", "schedule"]

Lines = Sequence[tuple[str, list[str]]]


def schedule(request: Request, lines: Lines | None = None) -> Decision:
    """The resource's answer to ``request`` (RFC 5546 §3.2.3).

    In order: the event limits (those a configured counter function applies
    itself are left to it, see :func:`~.counter.delegated_limits`), a broken
    one decided by :func:`limited`; a ``truncated`` request declined
    (``too-many-instances``: its instances could not all be checked); then
    :func:`decide` over ``lines``, by default the ``scheduling_function``
    preference (validated when read, so that it parses). An error fetching
    busy periods (``request.busy_between``) is raised as it was raised there,
    never turned into a decision.
    """
    try:
        return _schedule(request, lines)
    except BusyUnreadable as exc:
        raise exc.error  # noqa: B904 (the error itself, with its own traceback)


def _schedule(request: Request, lines: Lines | None) -> Decision:
    broken = check_limits(request, skip=delegated_limits(request))
    if broken is not None:
        return limited(request, broken)
    if request.truncated:
        return Decision(
            Answer.DECLINED,
            "too-many-instances",
            N_("the event recurs too often to be checked ({reason})"),
            params={"reason": request.truncation},
        )
    if lines is None:
        lines = parse_function_lines(request.preference("scheduling_function"))
    return decide(request, lines)


def limited(request: Request, broken: Decision) -> Decision:
    """A broken event limit: its decline, or under ``limit_action counter``
    a compliant alternative (:func:`~.alternatives.alternative`) when there
    is one. The verdict names the limit, as a function line's would."""
    if request.preference("limit_action") == "counter":
        from imiptools.scheduling.alternatives import alternative  # lazy: start-up

        offer = alternative(request, broken)
        if offer is not None:
            return replace(offer, verdicts=((broken.function, "COUNTER", offer.code),))
    return replace(broken, verdicts=((broken.function, "DECLINED", broken.code),))


def decide(request: Request, lines: Lines) -> Decision:
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


def run_steps(steps: Mapping[str, Step], booking: Booking, lines: Lines) -> list[str]:
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
