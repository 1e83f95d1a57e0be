"""imip-agent as a library for mail clients (issue 19): a small facade.

Open a user's calendar, then inspect, apply and answer scheduling
messages, and list what waits, the agenda and free/busy::

    from imiptools.client import open_calendar

    calendar = open_calendar("/path/to/calendar", ["bob@example.com"], create=True)
    seen = calendar.inspect(raw)            # what the message is (changes nothing)
    done = calendar.respond(raw, "ACCEPTED")
    reply = done.outgoing[0].message        # RFC 5322 bytes: the caller sends them

The policy is the agents': :meth:`UserCalendar.apply` runs the handler of
``imip-person`` and :meth:`UserCalendar.respond` that of
``imip-person-outgoing``. Nothing is ever sent by the library. Errors a
client can act on are :class:`imiptools.errors.ClientError` subclasses,
each with a stable ``code`` (:data:`imiptools.errors.CLIENT_ERRORS`).
"""

from __future__ import annotations

from imiptools.client.calendar import (
    PARTSTATS,
    Message,
    UserCalendar,
    as_message,
    default_location,
    local_settings,
    open_calendar,
)
from imiptools.client.model import (
    Applied,
    Change,
    Clash,
    Entry,
    Exported,
    FreeTime,
    Inspection,
    ObjectView,
    Outgoing,
    Participant,
    Waiting,
)
from imiptools.itip.organising import Draft, Invitee, Revision

__all__ = [
    "PARTSTATS",
    "Applied",
    "Change",
    "Clash",
    "Draft",
    "Entry",
    "Exported",
    "FreeTime",
    "Inspection",
    "Invitee",
    "Message",
    "ObjectView",
    "Outgoing",
    "Participant",
    "Revision",
    "UserCalendar",
    "Waiting",
    "as_message",
    "default_location",
    "local_settings",
    "open_calendar",
]
