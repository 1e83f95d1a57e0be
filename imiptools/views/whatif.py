"""What a resource would answer to a message, without changing anything.

:func:`what_if` runs the resource agent as ``imip-resource -o RESOURCE``
would, over overlays of the site's store
(:class:`~imiptools.stores.overlay.OverlayStore`) and quota ledger
(:class:`~imiptools.quota.overlay.OverlayLedger`), with an outbox in a
temporary directory and a sender that only collects: the store, the
ledger, the outbox and the mail system are left untouched, and no lock is
waited for. It returns the decisions the run logged and the messages it
would send, in order.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import field
from pathlib import Path

from imiptools import agent
from imiptools.deferred import dataclass
from imiptools.handlers.approval import ApprovingResourceHandler
from imiptools.handlers.common import Envelope
from imiptools.mail.parse import parse_message
from imiptools.quota.overlay import OverlayLedger
from imiptools.site import Site
from imiptools.spool import Spool
from imiptools.stores.names import normalise_user
from imiptools.stores.overlay import OverlayStore
from imiptools.views.decisions import Entry, parse_decisions


@dataclass(frozen=True)
class Sent:
    """A message the run would send: its envelope and RFC 5322 bytes."""

    envelope_from: str
    recipients: list[str]
    message: bytes


@dataclass
class Collector:
    """A :class:`~imiptools.mail.send.Sender` that keeps what it is given."""

    sent: list[Sent] = field(default_factory=list)

    def send(self, envelope_from: str, recipients: Sequence[str], message: bytes) -> None:
        """Keep the message; sends nothing."""
        self.sent.append(Sent(envelope_from, list(recipients), message))


@dataclass(frozen=True)
class Forecast:
    """What :func:`what_if` found: the decisions logged (as the decision
    log holds them), the run's status line, and the messages, in order."""

    decisions: list[Entry]
    status: str
    messages: list[Sent]


def envelope_sender(raw: bytes, sender: str | None) -> str | None:
    """``sender`` if given ('' is the null sender), else the message's From."""
    if sender is not None:
        return sender
    return parse_message(raw).from_address or None


def what_if(site: Site, resource: str, raw: bytes, sender: str | None = None) -> Forecast:
    """What ``resource`` (an envelope recipient: an address or a ``mailto:``
    URI) would decide and send for the message ``raw`` from ``sender``
    (default: its From address); raises as the agent does (unusable data: 65)."""
    store = OverlayStore(site.store)
    collector = Collector()
    with tempfile.TemporaryDirectory(prefix="imip-whatif-") as scratch:
        ctx = agent.Context(
            settings=site.settings,
            store=store,
            preferences=site.preferences,
            clock=site.clock,
            sender=collector,
            spool=Spool(Path(scratch) / "spool"),
            ledger=OverlayLedger(site.ledger),
        )
        envelope = Envelope(resource, envelope_sender(raw, sender))
        result = agent.run(raw, [envelope], ctx, ApprovingResourceHandler)
    decisions = parse_decisions(store.added_decisions(normalise_user(resource)))
    return Forecast(decisions, result.status, collector.sent)
