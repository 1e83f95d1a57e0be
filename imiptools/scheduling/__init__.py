"""Scheduling functions: small pure policies that decide a resource's answer.

A resource's ``scheduling_function`` preference holds one function a line,
with arguments (``schedule_in_freebusy 2``). Every function sees the same
:class:`Request` and returns a :class:`Decision`; all must agree (the first
answer that is not ACCEPTED wins, in the order of the lines). Functions are
registered with :func:`register`; third parties add theirs through the
``imip_agent.scheduling`` entry-point group. Functions never write and
never send mail: the handler applies the decision.

This module is the package's face: it only re-exports. The parts are
:mod:`.model` (request, decision and their words), :mod:`.registry`
(names, argument checks, steps, entry points), :mod:`.engine` (limits,
then the functions: :func:`schedule`, :func:`decide`, :func:`run_steps`)
and the built-in functions (:mod:`.builtin` lists their modules, which
register themselves when imported).
"""

from imiptools.scheduling.builtin import MODULES as BUILTIN_MODULES
from imiptools.scheduling.engine import decide, limited, run_steps, schedule
from imiptools.scheduling.model import (
    REQUEST_STATUS,
    STATUS_TEXT,
    Answer,
    Booking,
    BusyBetween,
    BusyUnreadable,
    Count,
    Decision,
    Listing,
    Phrase,
    Request,
    Words,
    add_request_status,
    misconfigured,
)
from imiptools.scheduling.registry import (
    ARGUMENTS,
    CONFIRMATIONS,
    ENTRY_POINT_GROUP,
    FUNCTIONS,
    RETRACTIONS,
    ArgumentCheck,
    Function,
    Step,
    any_arguments,
    check_function_lines,
    lookup,
    no_arguments,
    parse_function_lines,
    register,
    register_confirmation,
    register_retraction,
)

__all__ = [
    "ARGUMENTS",
    "BUILTIN_MODULES",
    "CONFIRMATIONS",
    "ENTRY_POINT_GROUP",
    "FUNCTIONS",
    "REQUEST_STATUS",
    "RETRACTIONS",
    "STATUS_TEXT",
    "Answer",
    "ArgumentCheck",
    "Booking",
    "BusyBetween",
    "BusyUnreadable",
    "Count",
    "Decision",
    "Function",
    "Listing",
    "Phrase",
    "Request",
    "Step",
    "Words",
    "add_request_status",
    "any_arguments",
    "check_function_lines",
    "decide",
    "limited",
    "lookup",
    "misconfigured",
    "no_arguments",
    "parse_function_lines",
    "register",
    "register_confirmation",
    "register_retraction",
    "run_steps",
    "schedule",
]
