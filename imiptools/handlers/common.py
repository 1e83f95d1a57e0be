"""What every handler shares: the unit of work for one recipient.

A :class:`Unit` is built per (message, recipient) by the agent while the
recipient's lock is held. Handlers read the message's scheduling objects,
consult policies, update records through ``unit.records`` (the one
repository of the user's records) and queue the
messages to send with :meth:`Unit.send`. Both are kept in the unit's
transaction until the agent commits it (after each scheduling object), so
that a message is spooled exactly when the decision it reports is stored;
the agent sends after the lock is released.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import field
from datetime import datetime, tzinfo
from types import MappingProxyType

from icalendar import Calendar

from imiptools import addresses
from imiptools.config import Settings
from imiptools.deferred import dataclass
from imiptools.digests import sha256_hex
from imiptools.i18n import Translator, translator
from imiptools.mail.keyring import Keyring
from imiptools.mail.parse import ParsedMessage
from imiptools.outcomes import Decided, Recorder
from imiptools.preferences import Preferences
from imiptools.quota.base import QuotaLedger
from imiptools.quota.model import QuotaState
from imiptools.records import UserRecords
from imiptools.stores.recording import RecordingStore
from imiptools.stores.transaction import Transaction

log = logging.getLogger("imiptools.decisions")

#: Auto-Submitted values that mean "a human sent this" (RFC 3834 §5).
HUMAN = ("", "no")


@dataclass(frozen=True)
class Envelope:
    """The envelope the MTA passed: ``sender`` None = unknown, '' = null sender."""

    recipient: str
    sender: str | None


@dataclass(frozen=True)
class Held:
    """What the agent holds while one scheduling object is handled and
    committed (a handler's ``scope``): the quota ledger whose locks are held
    (None when no quota is named or the site has no ledger) and the states
    of those quotas read under the locks. A value, passed to the handler
    method; a handler never keeps it."""

    ledger: QuotaLedger | None = None
    quotas: Mapping[str, QuotaState] = field(default_factory=lambda: MappingProxyType({}))


@dataclass
class Outgoing:
    """A message to send: the iTIP object and its human-readable text."""

    key: str
    recipients: list[str]
    subject: str
    text: str
    #: None: a short text without calendar data (an unreadable message).
    calendar: Calendar | None
    method: str
    #: Further calendars to attach: (calendar, METHOD, file name).
    attachments: list[tuple[Calendar, str, str]] = field(default_factory=list)


@dataclass
class Unit:
    """One recipient's unit of work for one message."""

    user: str
    settings: Settings
    #: The store of the unit of work: its writes wait for the agent's commit.
    #: For the agent; handlers read and write through :attr:`records`.
    store: RecordingStore
    #: The user's records (over :attr:`store`): the handlers' one repository.
    records: UserRecords
    preferences: Preferences
    message: ParsedMessage
    envelope: Envelope
    now: datetime
    zone: tzinfo
    #: Keeps an outgoing message for the commit of the unit's transaction.
    spool: Callable[[Unit, Outgoing], None]
    #: Translates generated texts into the user's language (LANG).
    translator: Translator = field(default_factory=lambda: translator("en"))
    #: The site's quota ledger (None when the program gave none).
    ledger: QuotaLedger | None = None
    #: What the current scheduling object led to, until the agent takes it.
    outcomes: Recorder = field(default_factory=Recorder)
    #: The site's OpenPGP keys (None: nothing is signed or encrypted).
    keyring: Keyring | None = None

    @property
    def transaction(self) -> Transaction:
        """What the current scheduling object changes, until the agent commits it."""
        return self.store.transaction

    def commit(self) -> None:
        """Commit what the unit changed so far (a handler that decides
        outside :meth:`Handler.handle`, under locks it holds itself)."""
        self.store.commit()

    def gettext(self, message: str) -> str:
        """``message`` in the user's language."""
        return self.translator.gettext(message)

    @property
    def address(self) -> str:
        """The user's bare address."""
        return self.user.removeprefix("mailto:")

    @property
    def calendar_address(self) -> str:
        """Where generated mail comes from (the user's own address by default)."""
        return addresses.normalise(self.settings.calendar_address) or self.address

    @property
    def sent_by(self) -> str:
        """SENT-BY for our ATTENDEE/ORGANIZER when acting as the system address."""
        return "" if self.calendar_address == self.address else self.calendar_address

    def senders(self) -> set[str]:
        """Addresses the message claims to come from (envelope and From)."""
        found = {self.message.from_address}
        if self.envelope.sender:
            found.add(addresses.normalise(self.envelope.sender))
        return {a for a in found if a}

    def may_answer(self, to: str, forwarded: bool = False) -> bool:
        """No answers to bounces, automatic mail (RFC 3834 §2), ourselves, or
        an address no sender can use (:func:`imiptools.addresses.check`: it
        is refused here, before anything is spooled).

        ``Precedence: bulk`` is not a reason to stay silent: iTIP answers go
        to the ORGANIZER who asked for them (RSVP), not to a list, and some
        groupware marks every invitation bulk (Tine 2.0 does). ``forwarded``:
        the message is an automatic delegation from a trusted resource, and
        the answer goes to the organiser, not back to it (no loop).
        """
        if self.envelope.sender == "":
            return self._refuse("null sender")
        if self.message.auto_submitted not in HUMAN and not forwarded:
            return self._refuse(f"Auto-Submitted: {self.message.auto_submitted}")
        if not to or to in (self.address, self.calendar_address):
            return self._refuse("no one else to answer")
        why = addresses.problem(to)
        if why:
            return self._refuse(f"no usable e-mail address: {to[:100]!r} ({why})")
        return True

    def _refuse(self, why: str) -> bool:
        log.info("user=%s no-reply reason=%r", self.user, why)
        return False

    def send(self, outgoing: Outgoing) -> None:
        """Spool ``outgoing`` when the unit's transaction commits (it is sent
        after the unit of work)."""
        self.spool(self, outgoing)

    def key(self, *parts: object) -> str:
        """A stable key for an outgoing message: reprocessing replaces, not adds."""
        text = "\0".join(str(p) for p in (self.user, self.message.message_id, *parts))
        return sha256_hex(text.encode("utf-8", "replace"))[:32]

    def decision(
        self, uid: str, rid: str, outcome: str, code: str, reason: str, level: int = logging.INFO
    ) -> None:
        """Log one structured line per decision (at ``level``), and keep the
        decision for the object's outcome."""
        self.outcomes.decisions.append(Decided(uid, rid, str(outcome), code, reason))
        log.log(
            level,
            "user=%s uid=%r rid=%s outcome=%s code=%s reason=%r",
            self.user,
            uid[:200],
            rid or "-",
            outcome,
            code,
            reason,
        )
