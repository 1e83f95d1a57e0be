"""Approvals from the shell and from cron: list, decide, time out.

The services behind ``imip-admin approvals [RESOURCE]``, ``imip-admin
approve|decline RESOURCE UID [--reason TEXT]`` and the timeouts
``make-freebusy`` applies. Each decision runs as the agents' unit of work
(:func:`imiptools.agent.make_unit`, the resource's lock, one transaction
with its mail) through :class:`~imiptools.handlers.approval.ApprovingResourceHandler`;
the mail is spooled, and leaves at the next ``imip-admin outbox flush`` or
agent run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from imiptools import agent
from imiptools.dates import FixedClock, format_utc
from imiptools.deferred import dataclass
from imiptools.handlers.approval import APPROVAL, ApprovingResourceHandler, pending_entries
from imiptools.handlers.common import Envelope
from imiptools.mail.parse import parse_message
from imiptools.mail.send import Sender
from imiptools.site import Site

T = TypeVar("T")

#: Who decided, in texts, when an administrator did.
ADMINISTRATOR = "the administrator"


@dataclass(frozen=True)
class Waiting:
    """A pending request as ``imip-admin approvals`` lists it."""

    resource: str
    uid: str
    organiser: str
    approvers: tuple[str, ...]
    deadline: datetime
    assessment: str


def waiting(site: Site, users: Sequence[str]) -> list[Waiting]:
    """The pending requests of ``users`` (read without the lock: each file
    is replaced atomically)."""
    found: list[Waiting] = []
    for user in users:
        queued = {u for u, rid, kind in site.store.get_requests(user) if kind == APPROVAL}
        if not queued:
            continue
        for uid, each in sorted(pending_entries(site.store.decisions(user)).items()):
            if uid in queued:
                found.append(
                    Waiting(
                        user,
                        uid,
                        each.organiser,
                        each.approvers,
                        each.deadline,
                        each.assessment,
                    )
                )
    return found


def decide(site: Site, user: str, uid: str, verdict: str, reason: str, now: datetime) -> bool:
    """Approve or decline ``uid`` at ``user`` as the administrator; whether
    it was pending."""
    return _run(
        site,
        user,
        now,
        f"{verdict}\0{uid}",
        lambda h: h.decide(uid, verdict, reason, ADMINISTRATOR),
    )


def send_spooled(site: Site, sender: Sender) -> int:
    """Send what waits in the site's outbox with ``sender``, as an agent run
    does after its work (:func:`imiptools.agent.flush`; ``imip-admin outbox
    flush``): for a front end that decides and sends at once. How many were
    sent; DeliveryFailed (75) leaves the rest waiting."""
    return agent.flush(site.agent_context(sender))


def time_out(site: Site, user: str, now: datetime) -> list[str]:
    """Apply the approval timeouts of ``user`` at ``now``; the UIDs decided."""
    if not any(kind == APPROVAL for _, _, kind in site.store.get_requests(user)):
        return []
    return _run(site, user, now, "timeout", lambda h: h.expire())


def _run(
    site: Site,
    user: str,
    now: datetime,
    what: str,
    action: Callable[[ApprovingResourceHandler], T],
) -> T:
    """``action`` on the resource's handler, in a unit of work of its own
    (under the resource's lock; committed)."""
    digest = hashlib.sha256(f"{user}\0{what}\0{format_utc(now)}".encode()).hexdigest()[:24]
    raw = f"Message-ID: <approval-{digest}@imip-agent.invalid>\r\n\r\n".encode()
    ctx = site.agent_context(_NotSent(), clock=FixedClock(now))
    with site.store.lock(user, site.settings.lock_timeout):
        unit = agent.make_unit(user, Envelope(user, None), parse_message(raw), ctx)
        handler = ApprovingResourceHandler(unit)
        result = action(handler)
        unit.store.commit()
    return result


class _NotSent:
    """The sender of these units: they only spool (never flushed here)."""

    def send(self, envelope_from: str, recipients: Sequence[str], message: bytes) -> None:
        raise AssertionError("approvals only spool their mail")
