"""The console entry points of the pipe programs: start-up and exit per message.

An MTA's pipe transport starts one process per message, so whatever that
process pays to start and to end, every message pays (issue 15: a run of
``imip-resource`` against the floor, an interpreter that imports icalendar
and parses the invitation). Two of CPython's own costs buy such a process
nothing, and the entry points here leave them out:

- **The cyclic garbage collector during the imports.** Importing the
  programs, the library, icalendar and the standard library's modules makes
  a few hundred thousand objects: classes, functions, code objects. Each
  time allocations pass the collector's threshold it walks the young
  objects, and now and then all of them, looking for unreachable cycles,
  and finds none, since modules are reachable from ``sys.modules``. The
  collector is off while the program's module is imported; then what was
  imported is frozen (:func:`gc.freeze`: moved out of the generations the
  collector walks, never freed) and the collector is on again, with its
  usual thresholds, for the message's own work, so that the garbage of a
  large message is collected as before.
- **The interpreter's teardown.** At exit CPython clears every module's
  namespace, collects all cycles one last time and frees every object, one
  by one: a tenth of a run whose work is a single message, and all of it
  memory the kernel takes back at once when the process ends. When the
  program's ``main`` has exited (:class:`SystemExit` with an integer
  status, as :func:`imip_agent.cli.run_program` raises it), :func:`finish`
  runs what a normal exit runs that can matter outside the process (the
  :mod:`atexit` functions, among them :func:`logging.shutdown`, which
  flushes and closes the log files; then stdout and stderr are flushed),
  and ends the process with :func:`os._exit` and that status.

Nothing the store promises depends on the teardown: the store is written so
that a crash at any point leaves the old or the new state (every record is
written to a temporary file, synced, renamed into place), and this is an
exit after everything was written, synced and renamed. When another thread
is still running (a sender the program started and has not joined, if ever
there is one), or the status is not an integer, the exit is Python's usual
one, which waits for non-daemon threads and prints a string status.

This module imports only what the interpreter's start-up has loaded,
built-in modules, and ``contextlib`` and ``typing``, which every program
loads anyway, so that the collector is off before anything heavy is
imported. pyproject.toml's ``[project.scripts]`` name :func:`resource`,
:func:`person` and :func:`person_outgoing`; the programs' own ``main``
functions stay, for ``python -m`` and tests. The long-running programs
(``imip-agent-lmtp``, ``imip-manager``) pay their start-up and teardown
once, and ``imip-admin`` and ``imip-client`` are not run per message.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import sys
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


def resource() -> NoReturn:
    """Console entry point ``imip-resource`` (:mod:`imip_agent.resource`)."""
    with imports_uncollected():
        from imip_agent.resource import main  # lazy: start-up
    run(main)


def person() -> NoReturn:
    """Console entry point ``imip-person`` (:mod:`imip_agent.person`)."""
    with imports_uncollected():
        from imip_agent.person import main  # lazy: start-up
    run(main)


def person_outgoing() -> NoReturn:
    """Console entry point ``imip-person-outgoing`` (:mod:`imip_agent.person_outgoing`)."""
    with imports_uncollected():
        from imip_agent.person_outgoing import main  # lazy: start-up
    run(main)


@contextlib.contextmanager
def imports_uncollected() -> Iterator[None]:
    """The collector off for the block (the program's imports); then what
    was made so far frozen and the collector on again, even when an import
    failed. The objects of the interpreter's own start-up are frozen too:
    they are as permanent as the modules."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def run(main: Callable[[], object]) -> NoReturn:
    """Run a program's ``main()``, which ends by raising :class:`SystemExit`
    as every program's does, then :func:`finish` with its status; any other
    exception leaves this function as it came (Python's usual exit)."""
    try:
        main()
    except SystemExit as done:
        finish(done.code)
    raise SystemExit(0)  # a main that returned: the usual exit


def finish(status: object) -> NoReturn:
    """End the process with ``status`` as :class:`SystemExit` would, without teardown.

    An integer (or ``None``, 0) ``status`` while this is the only thread:
    the :mod:`atexit` functions run (:func:`logging.shutdown` among them),
    stdout and stderr are flushed, and the originals if a program replaced
    them (a reader that has gone away is ignored, as nothing could be told),
    and :func:`os._exit` ends the process.
    Otherwise ``SystemExit(status)`` is raised: Python's usual exit.
    """
    if status is None:
        status = 0
    if not isinstance(status, int) or other_threads_running():
        raise SystemExit(status)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        flush_quietly(stream)  # the originals too, if a program replaced them
    os._exit(status)


def other_threads_running() -> bool:
    """Whether a thread other than this one is alive (only if :mod:`threading`
    was ever imported: otherwise none was started through it)."""
    threading = sys.modules.get("threading")
    return threading is not None and threading.active_count() > 1


def flush_quietly(stream: object) -> None:
    """Flush ``stream`` if it can be; a closed stream or a gone reader is ignored."""
    flush = getattr(stream, "flush", None)
    if flush is None:
        return
    with contextlib.suppress(OSError, ValueError):
        flush()
