"""Bounded expansion of one event into its instances (RFC 5545 §3.8.5).

:func:`expand` takes the master VEVENT of one UID (the one without
RECURRENCE-ID), the overridden instances (RFC 5545 §3.8.4.4) and the
normalised RECURRENCE-IDs of cancelled instances, and lists the instances
that overlap a window, in UTC, each with the component that describes it.

The recurrence set (RFC 5545 §3.8.5.3) is DTSTART, the RRULE instances
(expanded by dateutil in DTSTART's own zone, so a daily 10:00 stays 10:00
across DST), RDATE values (a PERIOD value brings its own end), less EXDATE
values. A local time that a DST change skips is read with the offset before
the gap (RFC 5545 §3.3.5: 02:30 becomes 03:30), as most clients do, although
§3.3.10 says to ignore such instances: for free/busy, erring towards busy is
safer. If that puts it on the time of the next instance, it is listed once.
Floating values and dates are read in the calendar user's zone;
floating RDATE, EXDATE and UNTIL values of an event whose DTSTART has a zone
are read in DTSTART's zone. A DATE EXDATE of a DATE-TIME event removes every
instance of that day. An override replaces the generated instance with the
same RECURRENCE-ID; an override that matches none is an instance of its own;
an override whose RECURRENCE-ID is excluded or cancelled is dropped. With
``RANGE=THISANDFUTURE`` an override moves every later instance by its own
offset (in wall-clock time) and lends them its duration and data.

Recurrence data comes from untrusted mail, so the work is bounded; hitting
any bound gives ``truncated=True`` with a reason, never an exception:

(a) at most ``Limits.max_instances`` (default 2000) instances are kept
    (``"instance cap 2000"``);
(b) at most ``ITERATIONS_PER_INSTANCE`` (50) times that many instances are
    generated, counting those before the window (``"iteration cap 100000"``),
    which bounds rules with a huge COUNT far before the window;
(c) rules whose set does not depend on where counting starts (no COUNT, no
    BYSETPOS, FREQ from SECONDLY to WEEKLY) are restarted just before the
    window (:func:`imiptools.itip.rules.fast_forward`), so a MINUTELY rule
    from 1990 costs nothing for a window in 2030; rules that can never
    match (``BYMONTH=2;BYMONTHDAY=30``) are not expanded at all;
(d) a wall-clock budget, ``Limits.budget_seconds`` (default 2 s), checked
    after each generated instance and, in the main thread, enforced by
    ``SIGALRM`` for rules that search for long without yielding
    (:mod:`imiptools.itip.budget`) (``"time budget"``).

A result is also truncated (``"window"``) when an instance exists that
starts at or after the window's end. Invalid rules (``BYHOUR=25``) and
unreadable dates raise :class:`CalendarDataError`.

The parts: :mod:`~imiptools.itip.timing` (start, length, :class:`Instance`),
:mod:`~imiptools.itip.rules` (one RRULE for dateutil),
:mod:`~imiptools.itip.overrides`, :mod:`~imiptools.itip.recurrence_set` (the
master's set, prepared) and :mod:`~imiptools.itip.budget`; this module walks
the set and applies the bounds.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import field
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING

from icalendar import Event

from imiptools.deferred import dataclass
from imiptools.errors import CalendarDataError
from imiptools.itip.overrides import latest_overrides
from imiptools.itip.timing import Instance, instance_of, recurs

if TYPE_CHECKING:
    from imiptools.itip.budget import Deadline
    from imiptools.itip.recurrence_set import MasterSet

__all__ = ["ITERATIONS_PER_INSTANCE", "Expansion", "Instance", "Limits", "expand"]

ITERATIONS_PER_INSTANCE = 50


@dataclass(frozen=True)
class Expansion:
    """The instances of one event in a window, and whether that is all.

    ``instances`` overlap the window, sorted by start. ``indefinite``: some
    RRULE has neither COUNT nor UNTIL. ``truncated``: instances may exist
    that are not listed, at or after the window's end or beyond a bound;
    ``reason`` says which (``"window"``, ``"instance cap N"``,
    ``"iteration cap N"``, ``"time budget"``), '' when not truncated.
    Instances that ended before the window are never reported.
    """

    instances: list[Instance]
    indefinite: bool
    truncated: bool
    reason: str


@dataclass(frozen=True)
class Limits:
    """The window asked for (aware, ``[window_start, window_end)``) and the
    bounds on the work: bound (a) ``max_instances`` and bound (d)
    ``budget_seconds`` (see the module docstring)."""

    window_start: datetime
    window_end: datetime
    max_instances: int = 2000
    budget_seconds: float = 2.0


def expand(
    master: Event | None,
    overrides: Sequence[Event],
    zone: tzinfo,
    limits: Limits,
    cancelled: Collection[str] = (),
) -> Expansion:
    """The instances of one event overlapping ``[window_start, window_end)``.

    ``master`` may be None when only overridden instances are known (an
    instance-only invitation). See the module docstring for the recurrence
    semantics and the bounds. Raises :class:`CalendarDataError` for data
    that cannot be expanded (RFC 5545 §3.3.10 violations, unreadable dates).
    """
    if limits.window_start.tzinfo is None or limits.window_end.tzinfo is None:
        raise ValueError("the window must be given as aware datetimes")
    try:
        if master is None or overrides or limits.max_instances < 1 or recurs(master):
            return _walked(master, overrides, zone, limits, frozenset(cancelled))
        return _single(instance_of(master, zone, ""), limits)
    except OverflowError as exc:
        raise CalendarDataError("date out of range") from exc


def _single(instance: Instance, limits: Limits) -> Expansion:
    """The expansion of an event that is this one ``instance`` (a master
    that does not recur, without overrides): what :func:`_walked` gives
    for it (``tests/itip`` compares the two), without setting up a walk
    (issue 15: most stored events are single, and check derives each).
    Needs ``limits.max_instances`` of one at least."""
    if instance.start >= limits.window_end:
        return Expansion([], False, True, "window")
    start = limits.window_start
    kept = [instance] if instance.end > start or instance.start >= start else []
    return Expansion(kept, False, False, "")


def _walked(
    master: Event | None,
    overrides: Sequence[Event],
    zone: tzinfo,
    limits: Limits,
    cancelled: frozenset[str],
) -> Expansion:
    """Any event: its overrides chosen, its master's set walked (see the
    module docstring)."""
    run = _Run(limits)
    chosen = latest_overrides(overrides, zone)
    plan = None
    if master is not None and recurs(master):
        window = (limits.window_start, limits.window_end)
        from imiptools.itip.recurrence_set import master_set  # lazy: start-up (a series only)

        plan = master_set(master, chosen, zone, window, cancelled)
    elif master is not None:
        run.offer(instance_of(master, zone, ""))  # a single event has no RECURRENCE-ID
    for override in chosen.values():
        if override.rid not in cancelled and not (plan and plan.drops(override)):
            run.offer(override.instance)
    if plan is None:
        return run.result(indefinite=False)
    from imiptools.itip.budget import run_within  # lazy: start-up (only a recurring event)

    if not run.reason and not run_within(limits.budget_seconds, lambda d: _walk(plan, run, d)):
        run.stop("time budget")
    return run.result(plan.indefinite)


# -- collecting -------------------------------------------------------------


@dataclass
class _Run:
    """The instances kept so far and why generation stopped, if it did."""

    limits: Limits
    kept: list[Instance] = field(default_factory=list)
    iterated: int = 0
    reason: str = ""
    beyond: bool = False
    previous: datetime | None = None  # the last generated start, in UTC

    @property
    def iteration_cap(self) -> int:
        """Bound (b): generated starts allowed, those before the window included."""
        return ITERATIONS_PER_INSTANCE * self.limits.max_instances

    def offer(self, instance: Instance) -> bool:
        """Keep ``instance`` if it overlaps the window; False once over the cap.

        A zero-length instance at the window's start overlaps it.
        """
        if instance.start >= self.limits.window_end:
            self.beyond = True
        elif instance.end > self.limits.window_start or instance.start >= self.limits.window_start:
            self.kept.append(instance)
            if len(self.kept) > self.limits.max_instances:
                self.stop(f"instance cap {self.limits.max_instances}")
                return False
        return True

    def stop(self, reason: str) -> None:
        """Record the first reason for stopping."""
        self.reason = self.reason or reason

    def result(self, indefinite: bool) -> Expansion:
        """The sorted instances, cut to the cap, with the truncation reason."""
        cap = self.limits.max_instances
        instances = sorted(self.kept, key=lambda i: (i.start, i.end, i.recurrenceid))
        reason = self.reason
        if len(instances) > cap:
            instances, reason = instances[:cap], reason or f"instance cap {cap}"
        if not reason and self.beyond:
            reason = "window"
        return Expansion(instances, indefinite, bool(reason), reason)


# -- generating --------------------------------------------------------------


def _walk(plan: MasterSet, run: _Run, deadline: Deadline) -> None:
    """Generate instances in order until the set, the window or a bound ends."""
    for original in plan.starts():
        if not _step(plan, run, deadline, original):
            return


def _step(plan: MasterSet, run: _Run, deadline: Deadline, original: datetime) -> bool:
    """Handle one generated start; False to stop generating."""
    run.iterated += 1
    if run.iterated > run.iteration_cap:
        run.stop(f"iteration cap {run.iteration_cap}")
        return False
    if deadline.expired():
        run.stop("time budget")
        return False
    local = plan.local(original)
    moment = local.astimezone(UTC)
    if moment >= plan.stop_at:
        run.beyond = True
        return False
    if moment < plan.skip_before or moment == run.previous:
        return True
    run.previous = moment
    instance = plan.instance(original, local)
    return instance is None or run.offer(instance)
