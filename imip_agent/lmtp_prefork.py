"""The supervisor of ``imip-agent-lmtp``: listening sockets and pre-forked workers.

As Postfix's master(8) does for its services: the supervisor (the process
the service manager starts) opens every listening socket, then forks the
workers, which inherit the sockets, each take connections from them and
deliver each message in their own process (:class:`~imip_agent.lmtp_server.Worker`).
Nothing is handed from process to process, and the workers use every core.
The supervisor itself takes no connection; it waits for signals:

- SIGCHLD: a worker that died is replaced (after :data:`RESTART_PAUSE` if
  it died soon after its start, so that a worker that cannot start does
  not make the supervisor fork in a loop). Its connection is lost; the
  MTA keeps a message whose DATA got no reply and delivers it again.
- SIGHUP: the configuration is read anew (a broken one is refused and the
  workers kept), the log reopened, a new set of workers forked; the old
  ones are sent SIGTERM and finish their transactions under way.
- SIGTERM, SIGINT: the UNIX sockets are removed and the listening sockets
  closed, the workers sent SIGTERM; when every worker has finished its
  transactions and exited, the supervisor exits.

Every import a delivery needs is made before the workers are forked, so
that a new worker costs a ``fork`` and reading the configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Sequence

from imip_agent.cli import settings_from, setup_logging
from imip_agent.lmtp_server import Listener, Worker, remove_socket
from imip_agent.lmtp_work import PROGRAM, reset_logging, start_worker
from imiptools import deferred
from imiptools.errors import ExitCode, ImipError

log = logging.getLogger("imip_agent")

#: The signals the supervisor waits for (blocked, taken by ``sigtimedwait``).
SIGNALS = {signal.SIGCHLD, signal.SIGHUP, signal.SIGTERM, signal.SIGINT}
#: A worker that lived less than this many seconds is replaced only this
#: many seconds after its end.
RESTART_PAUSE = 1.0


def block_signals() -> set[int | signal.Signals]:
    """Block :data:`SIGNALS` (before the first socket answers: whoever sees
    it may signal at once); the signal mask before, for the workers."""
    return signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)


class Supervisor:
    """The workers over ``sockets``, and what the signals do to them.

    :func:`block_signals` must have been called; ``unblocked`` is what it
    returned. ``clock`` is the monotonic clock the restart pauses are
    measured on.
    """

    def __init__(
        self,
        args: argparse.Namespace,
        sockets: Sequence[tuple[Listener, socket.socket]],
        count: int,
        unblocked: set[int | signal.Signals],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.args = args
        self.unblocked = unblocked
        self.sockets = sockets
        self.count = max(1, count)
        self.clock = clock
        self.hostname = socket.getfqdn()  # once, not a resolver query a worker
        #: The current workers: pid -> when each started.
        self.workers: dict[int, float] = {}
        #: Workers of an earlier configuration, finishing their transactions.
        self.retiring: set[int] = set()
        #: When each replacement of a dead worker is due.
        self.due: list[float] = []
        self.stopping = False

    def run(self) -> None:
        """Start the workers and supervise them until stopped and drained.

        :data:`SIGNALS` stay blocked in this process when it returns: a
        second SIGTERM (a service manager's) that came during the drain
        must not end the process, pending, on its way out.
        """
        deferred.settle_all()  # made once, shared by every worker
        for _ in range(self.count):
            self._start()
        while not (self.stopping and not self.workers and not self.retiring):
            received = signal.sigtimedwait(SIGNALS, self._wait())
            if received is not None:
                self._on(received.si_signo)
            self._reap()
            self._replace()
        log.info("stopped")

    def _on(self, signum: int) -> None:
        if signum == signal.SIGHUP:
            self.reload()
        elif signum in (signal.SIGTERM, signal.SIGINT):
            self.stop()

    def _wait(self) -> float:
        """Seconds until the next replacement is due (a minute if none)."""
        if not self.due:
            return 60.0
        return max(0.0, min(self.due) - self.clock())

    # -- workers ----------------------------------------------------------------

    def _start(self) -> None:
        # What was imported before the fork is kept out of the workers'
        # garbage collections (which would also copy its pages).
        gc.freeze()
        try:
            pid = os.fork()
        except OSError as exc:  # out of processes or memory: try again later
            log.error("cannot start a worker: %s", exc.strerror)
            self.due.append(self.clock() + RESTART_PAUSE)
            return
        if pid == 0:  # the worker: never returns
            self._work()
        self.workers[pid] = self.clock()

    def _work(self) -> None:
        code = int(ExitCode.TEMPFAIL)
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.unblocked)
            start_worker(self.args)
            asyncio.run(Worker(self.sockets, self.hostname).serve())
            code = int(ExitCode.OK)
        except BaseException:
            log.exception("worker failed")
        finally:
            logging.shutdown()
            os._exit(code)

    def _reap(self) -> None:
        """Collect every child that ended; a current worker is replaced."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.retiring.discard(pid)
            started = self.workers.pop(pid, None)
            if started is None or self.stopping:
                continue
            lived = self.clock() - started
            pause = RESTART_PAUSE if lived < RESTART_PAUSE else 0.0
            log.error("a worker stopped (%s); starting another", _ending(status))
            self.due.append(self.clock() + pause)

    def _replace(self) -> None:
        now = self.clock()
        for due in [d for d in self.due if d <= now]:
            self.due.remove(due)
            if not self.stopping:
                self._start()

    def _tell(self, pids: set[int] | dict[int, float], signum: int) -> None:
        for pid in list(pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    # -- signals ----------------------------------------------------------------

    def reload(self) -> None:
        """SIGHUP: the configuration read anew (a bad one is refused and the
        old one kept), log files reopened, new workers; the old ones finish
        their transactions and exit."""
        if self.stopping:
            return
        try:
            settings = settings_from(self.args)
        except ImipError as exc:
            log.error("reload refused, configuration kept: %s", exc.status_line())
            return
        reset_logging()
        setup_logging(self.args, settings, PROGRAM)
        old = set(self.workers)
        self.workers, self.due = {}, []
        for _ in range(self.count):
            self._start()
        # Each old worker takes no connection once it has the signal: what
        # connects after the line below goes to the new ones.
        self._tell(old, signal.SIGTERM)
        self.retiring |= old
        log.info("reloaded: configuration read, new workers")

    def stop(self) -> None:
        """SIGTERM, SIGINT: stop listening, let the workers drain."""
        if self.stopping:
            return
        self.stopping = True
        self.due = []
        for listener, listening in self.sockets:
            if listener.path:
                remove_socket(listener.path)
            listening.close()
        log.info("stopping: finishing the deliveries under way")
        self._tell(self.workers, signal.SIGTERM)
        self._tell(self.retiring, signal.SIGTERM)


def _ending(status: int) -> str:
    """How a child ended, for the log."""
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit {os.waitstatus_to_exitcode(status)}"
