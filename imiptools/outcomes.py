"""What a run did, as values: decisions, store writes, quota records, mail.

:func:`imiptools.agent.run` returns, with its exit code and status line,
one :class:`RecipientOutcome` per envelope recipient, and in it one
:class:`ObjectOutcome` per scheduling object: its METHOD, component, UID
and RECURRENCE-IDs; what was decided and why (:class:`Decided`, one per
structured decision line the run logs); what its transaction changed in
the store (:class:`StoreWrite`, in the order of the writes) and in the
quota ledger (:class:`QuotaChange`); and the mail it queued
(:class:`Queued`, sent after the unit of work).

Frozen values of text and numbers, so that a program can log them, a
library caller read them and a JSON interface send them:
``as_dict()`` gives JSON-ready dictionaries. This module imports nothing
of the project, so that every layer may build or read its values.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, field
from typing import Any

from imiptools.deferred import dataclass


@dataclass(frozen=True)
class Decided:
    """One decision about an object or one of its instances.

    ``outcome`` is a resource's answer (``ACCEPTED``, ``DECLINED``,
    ``COUNTER``, ``DELEGATED``, RFC 5546 §3.2.3 and §3.2.7) or what was
    done (``ignored``, ``cancelled``, ``recorded``, ``merged``, ``step``...);
    ``code`` the reason's code (``free``, ``busy``, ``stale``,
    ``not-invited``...); ``reason`` the reason as text (English, as logged).
    ``recurrence_id`` is '' for the whole event.
    """

    uid: str
    recurrence_id: str
    outcome: str
    code: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass(frozen=True)
class StoreWrite:
    """One write of the committed transaction: the store operation
    (``set_object``, ``cancel_recurrence``, ``set_freebusy_for_uid``...,
    :data:`imiptools.stores.transaction.WRITES`) and what it was about.

    ``other`` is the other calendar user (``set_freebusy_other``), the
    attendee (counters) or the kind of queued item (``queue_request``);
    ``periods`` how many free/busy or offered periods were written (None
    for writes of other records). A rewrite with unchanged content counts.
    """

    operation: str
    uid: str = ""
    recurrence_id: str = ""
    other: str = ""
    periods: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass(frozen=True)
class QuotaChange:
    """How a quota's records of one event changed (confirmation and
    retraction steps): ``recorded`` records added or changed, ``removed``
    records dropped, for ``user`` (the organiser) booking ``resource``."""

    quota: str
    user: str
    resource: str
    uid: str
    recorded: int
    removed: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass(frozen=True)
class Queued:
    """A message queued with the commit (the outbox), and sent after the
    unit of work: its iTIP METHOD (RFC 5546 §1.4), recipients, subject,
    Message-ID and outbox key (the same key on a rerun replaces it)."""

    method: str
    recipients: tuple[str, ...]
    subject: str
    message_id: str
    key: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass(frozen=True)
class ObjectOutcome:
    """Everything one scheduling object led to, for one recipient.

    ``recurrence_ids`` has one entry per component of the object: '' for
    the master, the normalised RECURRENCE-ID for an instance. ``error`` is
    why the object was unusable ('' when it was used): then nothing else
    was done for it.
    """

    method: str
    component: str
    uid: str
    recurrence_ids: tuple[str, ...]
    decisions: tuple[Decided, ...] = ()
    writes: tuple[StoreWrite, ...] = ()
    quota: tuple[QuotaChange, ...] = ()
    sent: tuple[Queued, ...] = ()
    error: str = ""

    @property
    def decision(self) -> Decided | None:
        """The first decision (a resource's answer to a request), if any."""
        return self.decisions[0] if self.decisions else None

    def written(self, operation: str) -> list[StoreWrite]:
        """The writes of one store ``operation``, in order."""
        return [w for w in self.writes if w.operation == operation]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)

    def summary(self) -> str:
        """One log line (untrusted texts quoted and cut; repeated decisions,
        as for the instances of a series, counted)."""
        rids = [r or "-" for r in self.recurrence_ids]
        shown = ",".join(rids[:3]) + (f",+{len(rids) - 3}" if len(rids) > 3 else "")
        counts = Counter(f"{d.outcome}/{d.code}" for d in self.decisions)
        decided = ",".join(k if n == 1 else f"{k}*{n}" for k, n in counts.items())
        quota = ",".join(f"{q.quota}:+{q.recorded}-{q.removed}" for q in self.quota)
        sent = ",".join(f"{m.method}{m.message_id}->{'/'.join(m.recipients)}" for m in self.sent)
        return (
            f"method={self.method} component={self.component} uid={self.uid[:200]!r} "
            f"rid={shown or '-'} decided={decided or '-'} writes={len(self.writes)} "
            f"quota={quota or '-'} sent={sent[:500] or '-'}"
            + (f" error={self.error[:200]!r}" if self.error else "")
        )


@dataclass(frozen=True)
class RecipientOutcome:
    """What a run did for one envelope recipient (a calendar user URI):
    each scheduling object's outcome, in order, and how many messages it
    delivered to the user's mailbox (a person's agent)."""

    user: str
    objects: tuple[ObjectOutcome, ...] = ()
    delivered: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass
class Recorder:
    """Collects, while one scheduling object is handled, what becomes its
    :class:`ObjectOutcome` (the unit of work's, emptied by :meth:`take`)."""

    decisions: list[Decided] = field(default_factory=list)
    quota: list[QuotaChange] = field(default_factory=list)
    sent: list[Queued] = field(default_factory=list)

    def take(
        self,
        method: str,
        component: str,
        uid: str,
        recurrence_ids: tuple[str, ...],
        writes: tuple[StoreWrite, ...],
        error: str = "",
    ) -> ObjectOutcome:
        """The outcome of the object just handled; starts afresh."""
        outcome = ObjectOutcome(
            method,
            component,
            uid,
            recurrence_ids,
            tuple(self.decisions),
            writes,
            tuple(self.quota),
            tuple(self.sent),
            error,
        )
        self.decisions.clear()
        self.quota.clear()
        self.sent.clear()
        return outcome
