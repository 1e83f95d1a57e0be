"""Which scheduling functions exist: names, argument checks, steps, plug-ins.

A function ``(Request, args) -> Decision`` is made known under a name with
the :func:`register` decorator, together with a check of its arguments;
steps that keep records in step with bookings (a quota's, say) are made
known with :func:`register_confirmation` and :func:`register_retraction`.
The built-in functions register themselves when their modules are imported
(:mod:`imiptools.scheduling.builtin` lists them); other packages add theirs
through the ``imip_agent.scheduling`` entry-point group, loaded the first
time a name is not found (:func:`lookup`). Running them is
:mod:`imiptools.scheduling.engine`'s job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from imiptools.functionlines import parse_function_lines
from imiptools.scheduling.model import Booking, Decision, Request

__all__ = [
    "ARGUMENTS",
    "CONFIRMATIONS",
    "ENTRY_POINT_GROUP",
    "FUNCTIONS",
    "RETRACTIONS",
    "ArgumentCheck",
    "Function",
    "Step",
    "any_arguments",
    "check_function_lines",
    "lookup",
    "no_arguments",
    "parse_function_lines",
    "register",
    "register_confirmation",
    "register_retraction",
]

log = logging.getLogger("imiptools.scheduling")

ENTRY_POINT_GROUP = "imip_agent.scheduling"

Function = Callable[[Request, Sequence[str]], Decision]
#: Checks a function line's arguments; raises ValueError saying what is wrong.
ArgumentCheck = Callable[[Sequence[str]], None]
Step = Callable[[Booking, Sequence[str]], None]

FUNCTIONS: dict[str, Function] = {}
ARGUMENTS: dict[str, ArgumentCheck] = {}
#: Run after a booking is accepted / after it is cancelled or given up, for
#: each ``scheduling_function`` line whose name has a step registered.
CONFIRMATIONS: dict[str, Step] = {}
RETRACTIONS: dict[str, Step] = {}
_loaded_entry_points = False


def no_arguments(args: Sequence[str]) -> None:
    """The argument check of a function that takes none."""
    if args:
        raise ValueError("takes no arguments")


def any_arguments(args: Sequence[str]) -> None:
    """The argument check of a function that checks its own when it runs."""


def register(name: str, arguments: ArgumentCheck = any_arguments) -> Callable[[Function], Function]:
    """Decorator: make ``function`` available under ``name``.

    ``arguments`` checks a line's arguments when the preference is set
    (``imip-admin prefs set``) and when it is read: use the parser the
    function itself uses, so that what is accepted is what runs.
    """

    def add(function: Function) -> Function:
        FUNCTIONS[name] = function
        ARGUMENTS[name] = arguments
        return function

    return add


def register_confirmation(name: str) -> Callable[[Step], Step]:
    """Decorator: run ``step`` after ``name`` helped accept a booking."""

    def add(step: Step) -> Step:
        CONFIRMATIONS[name] = step
        return step

    return add


def register_retraction(name: str) -> Callable[[Step], Step]:
    """Decorator: run ``step`` when a booking ``name`` confirmed ends early."""

    def add(step: Step) -> Step:
        RETRACTIONS[name] = step
        return step

    return add


def lookup(name: str) -> Function | None:
    """The function registered as ``name`` (loading entry points once)."""
    global _loaded_entry_points
    if name not in FUNCTIONS and not _loaded_entry_points:
        from importlib.metadata import entry_points  # lazy: start-up

        _loaded_entry_points = True
        for point in entry_points(group=ENTRY_POINT_GROUP):
            try:
                FUNCTIONS.setdefault(point.name, point.load())
            except Exception:  # a broken plug-in must not stop mail
                log.exception("cannot load scheduling function %s", point.name)
    return FUNCTIONS.get(name)


def check_function_lines(text: str) -> list[tuple[str, list[str]]]:
    """:func:`parse_function_lines`, each function known and its arguments
    accepted by its check; ValueError naming the line and the known functions."""
    lines = parse_function_lines(text)
    for number, (name, args) in enumerate(lines, 1):
        if lookup(name) is None:
            known = ", ".join(sorted(FUNCTIONS))
            raise ValueError(f"line {number}: unknown function {name!r} (known: {known})")
        try:
            ARGUMENTS.get(name, any_arguments)(args)
        except ValueError as exc:
            import shlex  # lazy: start-up (only to report a bad line)

            raise ValueError(f"line {number}: {name} {shlex.join(args)}: {exc}") from exc
    return lines
