"""What a worker process of ``imip-agent-lmtp`` runs: one delivery, as a pipe
program would run it.

Each worker is started once (:func:`start_worker`: the configuration read,
logging set up; the imports were paid by the supervisor it was forked
from) and then runs one :class:`Job` after another (:func:`run_job`). A
job is what one run of ``imip-resource``, ``imip-person`` or
``imip-person-outgoing`` is: the same options (the daemon's own), the
envelope of the LMTP transaction in place of ``-o``/``-s``/``--queue-id``,
and the message in place of stdin; it goes through
:func:`imip_agent.cli.run_delivery`, which the pipe programs use, so that
both answer alike. The answer is an :class:`Outcome`: the exit code the
pipe program would exit with and its status line.

Per job, what a fresh process would have fresh is made anew: the site
(store, ledger, outbox objects), the senders, and icalendar's cache of the
VTIMEZONEs seen (:func:`imiptools.itip.zones.install`), so that one
message's time zone definitions never reach another's.
"""

from __future__ import annotations

import argparse
import io
import logging
import signal
from collections.abc import Callable

from imip_agent.cli import INTERNAL_ERROR, recipients_envelope, run_delivery, setup_logging
from imip_agent.cli import settings_from as read_settings
from imip_agent.person import deliverer_from
from imip_agent.person_outgoing import sender_envelope
from imiptools import agent, logcontext, site
from imiptools.config import Settings
from imiptools.deferred import dataclass
from imiptools.errors import ExitCode, ImipError
from imiptools.handlers.approval import ApprovingResourceHandler
from imiptools.handlers.common import Envelope
from imiptools.handlers.outgoing import OutgoingHandler
from imiptools.handlers.person import PersonHandler
from imiptools.itip import zones
from imiptools.mail.send import Sender

log = logging.getLogger("imip_agent")

#: How the lines of the daemon and its workers are named in the log.
PROGRAM = "imip-agent-lmtp"


@dataclass(frozen=True)
class Role:
    """What one listener does: the pipe program it stands for.

    ``per_recipient``: each recipient is its own run (``-o RECIPIENT``, as
    Postfix runs ``imip-resource`` with ``_destination_recipient_limit =
    1``); otherwise one run answers every recipient of the transaction
    (``imip-person-outgoing`` records for the sender).
    """

    name: str
    program: str
    factory: agent.HandlerFactory
    deliverer: Callable[[argparse.Namespace, Settings], Sender] | None
    envelope: Callable[[argparse.Namespace, bytes], list[Envelope]]
    per_recipient: bool = True


#: The roles by name: each listener has one (see the manual's install guide).
ROLES: dict[str, Role] = {
    role.name: role
    for role in (
        Role("resource", "imip-resource", ApprovingResourceHandler, None, recipients_envelope),
        Role("person", "imip-person", PersonHandler, deliverer_from, recipients_envelope),
        Role(
            "outgoing",
            "imip-person-outgoing",
            OutgoingHandler,
            None,
            sender_envelope,
            per_recipient=False,
        ),
    )
}


@dataclass(frozen=True)
class Job:
    """One delivery: a role, the message, and its envelope."""

    role: str
    message: bytes
    sender: str
    recipients: tuple[str, ...]
    queue_id: str = ""


@dataclass(frozen=True)
class Outcome:
    """What the pipe program would have done: its exit code and status line."""

    code: int
    status: str


#: The daemon's options and the settings read at start (one pair per worker),
#: or why the configuration could not be read.
_started: tuple[argparse.Namespace, Settings] | ImipError | None = None


def start_worker(args: argparse.Namespace) -> None:
    """The worker's start: read the configuration, set up logging anew (the
    handlers inherited from the supervisor are closed in this process).

    A configuration that cannot be read (changed since the supervisor
    checked it) is remembered: every job then answers as a pipe program
    would, with its status line and 75. A worker ignores SIGINT and SIGHUP
    (the supervisor handles those and tells its workers); SIGTERM drains it
    (:class:`imip_agent.lmtp_server.Worker`).
    """
    global _started
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        settings = read_settings(args)
    except ImipError as exc:
        _started = exc
        return
    reset_logging()
    setup_logging(args, settings, PROGRAM)
    site.keep_connections()  # a database backend connects once per worker
    _started = (args, settings)


def reset_logging() -> None:
    """Close and remove the root logger's handlers (before setting up anew)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()


def run_job(job: Job) -> Outcome:
    """Run ``job`` as its pipe program would; never raises.

    An internal error is logged with its traceback and answered as the pipe
    programs answer it (75, :data:`~imip_agent.cli.INTERNAL_ERROR`).
    """
    if _started is None:
        raise RuntimeError("run_job outside a started worker")
    if isinstance(_started, ImipError):
        return Outcome(int(_started.exit_code), _started.status_line())
    options, settings = _started
    role = ROLES[job.role]
    args = job_options(options, job)
    zones.install()  # an empty cache of VTIMEZONEs, as a new process has
    with logcontext.queue_id(job.queue_id):
        try:
            stream = io.BytesIO(job.message)
            result = run_delivery(
                args, settings, stream, role.factory, role.deliverer, role.envelope
            )
        except Exception:
            log.exception("internal error")
            return Outcome(int(ExitCode.TEMPFAIL), INTERNAL_ERROR)
    return Outcome(int(result.code), result.status)


def job_options(options: argparse.Namespace, job: Job) -> argparse.Namespace:
    """The daemon's options with the job's envelope, as a pipe program's
    ``-o``, ``-s`` and ``--queue-id`` would give them."""
    return argparse.Namespace(
        **{
            **vars(options),
            "recipients": list(job.recipients),
            "sender": job.sender,
            "queue_id": job.queue_id,
            "print_only": False,
        }
    )
