"""Errors and the exit-code table (sysexits, as every MTA understands them).

Each exception class maps to exactly one row of :data:`EXIT_CODES`. Programs
catch :class:`ImipError` at their boundary, print ``exc.status_line()`` (an
RFC 3463 enhanced status code and a one-line reason) and exit with
``exc.exit_code``. Anything else that escapes is an internal bug: it is
logged with its traceback (never printed) and mapped to 75 so the MTA keeps
the message and retries (see ``imip_agent.cli.run_program``).

Postfix ``pipe(8)`` and Exim's pipe transport defer on 75 (EX_TEMPFAIL) and
bounce on the others; the bounce carries what we printed on stdout.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The exit codes our programs use (a subset of BSD ``sysexits.h``)."""

    OK = 0  # done, including "nothing to do" and "declined"
    USAGE = 64  # imip-admin only: wrong command line (agents use TEMPFAIL)
    DATAERR = 65  # the sender should get the message back
    NOUSER = 67  # imip-admin: no such calendar user
    TEMPFAIL = 75  # transient trouble, configuration error, internal bug


class ImipError(Exception):
    """Base class: an error with an exit code and an RFC 3463 status."""

    exit_code: ExitCode = ExitCode.TEMPFAIL
    status: str = "4.3.0"
    #: Lines for a person at a terminal (``imip-admin``'s usage and "try
    #: --help"), printed on stderr after the status line; agents never set it.
    hint: str = ""

    def status_line(self) -> str:
        """One line for the MTA: ``"<status> <reason>"`` without CR/LF."""
        reason = " ".join(str(self).split()) or type(self).__name__
        return f"{self.status} {reason}"[:400]


class TransientError(ImipError):
    """Something that may work later: the MTA must retry (75)."""

    exit_code = ExitCode.TEMPFAIL
    status = "4.3.0"


class LockTimeout(TransientError):
    """A user's lock could not be taken before the deadline."""

    status = "4.3.0"


class StoreUnavailable(TransientError):
    """The store cannot be read or written (disk full, permissions, down)."""

    status = "4.3.0"


class SymlinkRefused(StoreUnavailable):
    """A symlink was met below a configured directory (store, outbox,
    preferences, quota journal, publishing): it is refused, never followed.

    Not transient in the usual sense, but an admin's problem, not the
    sender's: the agents exit 75 so that the MTA keeps the mail until an
    admin removes the link (``imip-admin check`` lists every one), and the
    ERROR line logged where it is met names the path. RFC 3463 X.3.5:
    system incorrectly configured.
    """

    status = "4.3.5"


class DeliveryFailed(TransientError):
    """Sending or delivering a message failed transiently (4xx, socket down)."""

    status = "4.4.0"


class DeliveryRefused(DeliveryFailed):
    """The mail system refused a message for good (SMTP 5xx for every
    recipient or for the message, sendmail EX_DATAERR/EX_NOUSER/EX_NOHOST).

    Still 75 where it ends a run (a person's delivery is retried as
    before), but the outbox sets such a spooled message aside instead of
    retrying it before every other (see ``imiptools.agent.send_spooled``).
    """

    status = "4.4.0"


class ConfigError(TransientError):
    """Bad configuration or command line under the MTA: keep the mail, retry."""

    status = "4.3.5"


class SiteMissing(ConfigError):
    """A directory the agents need (the store, the preferences) does not
    exist: a mistyped path, or a site not set up. The agents never create
    it (they would scatter a new, empty store wherever a typo points): they
    exit 75, so the MTA keeps the mail, and say how to create it
    (``imip-admin init``). RFC 3463 X.3.5: system incorrectly configured.
    """

    status = "4.3.5"


class InputError(ImipError):
    """Unusable input that should go back to its sender (65)."""

    exit_code = ExitCode.DATAERR
    status = "5.6.0"


class MessageTooBig(InputError):
    """The message exceeds the configured maximum size (RFC 3463 5.3.4)."""

    status = "5.3.4"


class CalendarDataError(InputError):
    """The calendar data is unusable (RFC 3463 5.6.0: bad content)."""

    status = "5.6.0"


class UnsafeName(InputError):
    """A calendar user name that cannot be mapped to a store location."""

    status = "5.1.3"


class UnusableAddress(InputError, ValueError):
    """An address no sender can use (see :mod:`imiptools.addresses`): 5.1.3,
    "bad destination mailbox address syntax" (RFC 3463). Also a ValueError,
    as the senders' envelope checks always raised."""

    status = "5.1.3"


class UsageError(ImipError):
    """Wrong command line for an interactive tool (imip-admin)."""

    exit_code = ExitCode.USAGE
    status = "5.5.4"


class NoSuchUser(ImipError):
    """imip-admin was asked about a calendar user the store does not hold."""

    exit_code = ExitCode.NOUSER
    status = "5.1.1"


#: The one table tests check: exception class -> exit code.
EXIT_CODES: dict[type[ImipError], ExitCode] = {
    cls: cls.exit_code
    for cls in (
        TransientError,
        LockTimeout,
        StoreUnavailable,
        SymlinkRefused,
        DeliveryFailed,
        DeliveryRefused,
        ConfigError,
        SiteMissing,
        InputError,
        MessageTooBig,
        CalendarDataError,
        UnsafeName,
        UnusableAddress,
        UsageError,
        NoSuchUser,
    )
}


class ClientError(Exception):
    """A request ``imip-client`` (and :mod:`imiptools.client`) cannot carry
    out for a reason the calling program can act on.

    Not an :class:`ImipError`: the agents never raise it and it has no
    RFC 3463 status. Each subclass has a stable ``code`` (the ``error.code``
    of the JSON output) and its own exit status, in :data:`CLIENT_ERRORS`.
    """

    code: str = "client_error"


class ClientParseError(ClientError):
    """The input is no message or calendar that can be read."""

    code = "parse_error"


class NoCalendar(ClientError):
    """The message holds no usable scheduling object."""

    code = "no_calendar"


class MissingMethod(ClientError):
    """Neither the calendar nor its MIME part says its METHOD."""

    code = "missing_method"


class NotAttendee(ClientError):
    """None of the user's identities is an attendee of the event."""

    code = "not_attendee"


class OutOfSequence(ClientError):
    """The stored copy is newer than the message (RFC 5546 §2.1.5)."""

    code = "out_of_sequence"


class SenderNotParticipant(ClientError):
    """The message's sender is neither the organiser (or its SENT-BY) nor
    an attendee it speaks for."""

    code = "sender_not_participant"


class NotARequest(ClientError):
    """An answer was asked for an object that is not a REQUEST."""

    code = "not_request"


class UnknownRecurrence(ClientError):
    """The recurrence id names no instance of the event."""

    code = "unknown_recurrence"


class UnknownEvent(ClientError):
    """The calendar holds no event with that UID."""

    code = "unknown_event"


class NotOrganiser(ClientError):
    """None of the user's identities organises the event, and only its
    organiser may cancel it or decline a counter-proposal (RFC 5546 §3.2)."""

    code = "not_organiser"


class NotACounter(ClientError):
    """A DECLINECOUNTER was asked for an object that is not a COUNTER."""

    code = "not_counter"


#: ``imip-client``'s error codes and their exit statuses (documented in the
#: manual and in ``imiptools/schema/imip-client.schema.json``). The codes
#: of the library's own errors are here too: ``usage`` (a wrong command
#: line), ``unavailable`` (a store or lock that may work later: 75, as
#: for the agents) and ``internal_error`` (a bug, EX_SOFTWARE).
CLIENT_ERRORS: dict[str, int] = {
    "no_calendar": 3,
    "missing_method": 4,
    "not_attendee": 5,
    "out_of_sequence": 6,
    "sender_not_participant": 7,
    "not_request": 8,
    "unknown_recurrence": 9,
    "send_failed": 10,
    "unknown_event": 11,
    "not_organiser": 12,
    "not_counter": 13,
    "usage": 64,
    "parse_error": 65,
    "no_input": 66,
    "internal_error": 70,
    "unavailable": 75,
}
