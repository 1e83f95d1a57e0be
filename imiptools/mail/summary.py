"""What a person's mailbox receives: the message, and perhaps a summary.

The ``incoming`` preference chooses (the original's values):

- ``message-only``: the message as it came;
- ``message-then-summary`` / ``summary-then-message``: the message and a
  short summary of what the agent recorded, as two messages;
- ``summary-only``: the summary instead of the message;
- ``summary-wraps-message``: the summary with the message attached
  (message/rfc822).

A message that changed nothing is always delivered as it came.
"""

from __future__ import annotations

import email
from datetime import datetime
from email import policy
from email.message import EmailMessage
from typing import Protocol

from imiptools.mail.compose import build_message
from imiptools.mail.parse import ParsedMessage


class PreferenceValues(Protocol):
    """A user's effective preferences ('' when unset)."""

    def get(self, name: str) -> str:
        """The value of ``name``."""
        ...


class Recipient(Protocol):
    """What a summary needs of the person and the message (the handlers'
    unit of work is one; mail sits below the handlers and names none of them)."""

    @property
    def preferences(self) -> PreferenceValues:
        """The person's preferences (``incoming``)."""
        ...

    @property
    def message(self) -> ParsedMessage:
        """The message being delivered."""
        ...

    @property
    def address(self) -> str:
        """The person's bare address."""
        ...

    @property
    def calendar_address(self) -> str:
        """Where generated mail comes from."""
        ...

    @property
    def now(self) -> datetime:
        """The time of the run."""
        ...

    def gettext(self, message: str) -> str:
        """``message`` in the person's language."""
        ...


def deliveries_for(unit: Recipient, raw: bytes, notes: list[str]) -> list[bytes]:
    """The messages to deliver for ``raw`` given what was recorded."""
    choice = unit.preferences.get("incoming")
    if not notes or choice == "message-only":
        return [raw]
    if choice == "summary-wraps-message":
        return [wrap(summary_message(unit, notes), raw)]
    summary = summary_message(unit, notes)
    orders = {
        "summary-only": [summary],
        "message-then-summary": [raw, summary],
        "summary-then-message": [summary, raw],
    }
    return orders.get(choice, [raw])


def summary_message(unit: Recipient, notes: list[str]) -> bytes:
    """A short text message to the user listing what changed."""
    title = unit.gettext("Calendar summary")
    subject = unit.message.subject
    footer = unit.gettext("This summary was added by the calendar agent.")
    return build_message(
        from_addr=unit.calendar_address,
        to_addrs=[unit.address],
        subject=f"{title}: {subject}" if subject else title,
        text="\n".join(notes) + "\n\n-- \n" + footer + "\n",
        calendar=None,
        method=None,
        in_reply_to=unit.message.message_id,
        auto_submitted="auto-generated",
        date=unit.now,
        message_id_domain=unit.calendar_address.rpartition("@")[2] or "localhost",
    )


def wrap(summary: bytes, raw: bytes) -> bytes:
    """The summary with the original message attached (message/rfc822)."""
    outer = email.message_from_bytes(summary, policy=policy.default)
    inner = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(outer, EmailMessage)
    outer.add_attachment(inner)
    return outer.as_bytes(policy=policy.SMTP)
