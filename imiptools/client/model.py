"""The values :mod:`imiptools.client` returns: what a message is, what was
done, what to send. Frozen dataclasses of text, numbers and lists, each
with ``as_dict()`` giving the JSON form ``imip-client`` prints (see
``imiptools/schema/imip-client.schema.json``)."""

from __future__ import annotations

from dataclasses import asdict, field
from typing import Any

from imiptools.deferred import dataclass


@dataclass(frozen=True)
class Participant:
    """An ORGANIZER or ATTENDEE (RFC 5545 §3.8.4.1, §3.8.4.3): its address
    (bare, lower-cased domain), CN, ROLE, PARTSTAT, RSVP and delegation."""

    address: str
    name: str = ""
    role: str = ""
    partstat: str = ""
    rsvp: bool = False
    delegated_to: tuple[str, ...] = ()
    delegated_from: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return _json(self)


@dataclass(frozen=True)
class Clash:
    """A busy period of the user's that an instance of the event overlaps
    (times in UTC, iCalendar form)."""

    uid: str
    summary: str
    start: str
    end: str
    status: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass(frozen=True)
class ObjectView:
    """One scheduling object of a message as the user's calendar sees it.

    ``state``: ``new`` (not stored, or stored and not answered yet),
    ``update`` (newer than the stored copy; ``changes`` names the
    properties that differ), ``outdated`` (older than the stored copy),
    ``answered`` (this version is stored and answered), ``cancelled`` (a
    CANCEL, or an event the organiser cancelled). ``actions`` are what a
    client may offer (``accept``, ``tentative``, ``decline``, ``apply``);
    ``reply_required``: the user is an attendee asked to answer (RSVP).
    """

    method: str
    kind: str
    uid: str
    sequence: int
    recurrence_ids: tuple[str, ...]
    summary: str
    start: str
    end: str
    location: str
    organiser: Participant | None
    attendees: tuple[Participant, ...]
    user: str
    user_partstat: str
    state: str
    changes: tuple[str, ...] = ()
    clashes: tuple[Clash, ...] = ()
    actions: tuple[str, ...] = ()
    reply_required: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return _json(self)


@dataclass(frozen=True)
class SecurityView:
    """Encryption and signature of a message, as the mail client that
    decrypted and verified it said (``--encrypted``, ``--signed-by``):
    ``signed_by_organiser`` when a signer address is an object's organiser;
    ``problem`` when it could not be read or verified."""

    encrypted: bool = False
    signed: bool = False
    signer: str = ""
    signer_addresses: tuple[str, ...] = ()
    signed_by_organiser: bool = False
    problem: str = ""


@dataclass(frozen=True)
class Inspection:
    """What a message is: its sender and objects (see :class:`ObjectView`).

    ``sender_is_organiser`` is None when the input had no From (a bare
    calendar part) or no object has an organiser."""

    sender: str
    message_id: str
    subject: str
    sender_is_organiser: bool | None
    objects: tuple[ObjectView, ...]
    errors: tuple[str, ...] = ()
    security: SecurityView = SecurityView()

    @property
    def method(self) -> str:
        """The METHOD of the first object ('' when there is none)."""
        return self.objects[0].method if self.objects else ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (with ``method``)."""
        return {"method": self.method, **_json(self)}


@dataclass(frozen=True)
class Outgoing:
    """A message for the calling program to send (the library never sends):
    envelope, headers, the parts, and the whole RFC 5322 message."""

    envelope_from: str
    recipients: tuple[str, ...]
    from_header: str
    to: str
    subject: str
    message_id: str
    in_reply_to: str
    references: str
    method: str
    calendar: str
    text: str
    message: bytes = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (the message as text: it is 7-bit or UTF-8)."""
        data = _json(self)
        data["message"] = self.message.decode("utf-8", "replace")
        return data


@dataclass(frozen=True)
class Change:
    """One write to the user's store (``operation`` as in
    :class:`imiptools.outcomes.StoreWrite`) and for which identity."""

    user: str
    operation: str
    uid: str
    recurrence_id: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass(frozen=True)
class Applied:
    """What :meth:`~imiptools.client.UserCalendar.apply` or ``respond``
    did: the decisions the handlers logged (``outcome/code: reason``), the
    store writes, and the messages to send."""

    user: str
    decisions: tuple[str, ...]
    changes: tuple[Change, ...]
    outgoing: tuple[Outgoing, ...]
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "user": self.user,
            "decisions": list(self.decisions),
            "changes": [c.as_dict() for c in self.changes],
            "outgoing": [o.as_dict() for o in self.outgoing],
            "dry_run": self.dry_run,
        }


@dataclass(frozen=True)
class Entry:
    """An instance in the agenda, or a busy period (times in UTC)."""

    user: str
    start: str
    end: str
    uid: str
    recurrence_id: str
    summary: str
    organiser: str
    status: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass(frozen=True)
class FreeTime:
    """What :meth:`~imiptools.client.UserCalendar.free_time` found: the
    free slots (UTC, iCalendar form), and the people whose free/busy the
    calendar does not hold (the slots cannot account for them)."""

    slots: tuple[tuple[str, str], ...]
    unknown: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "slots": [{"start": start, "end": end} for start, end in self.slots],
            "unknown": list(self.unknown),
        }


@dataclass(frozen=True)
class Waiting:
    """An item waiting for the user's answer or attention."""

    user: str
    uid: str
    recurrence_id: str
    kind: str
    summary: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


@dataclass(frozen=True)
class Exported:
    """What an export to a vdir did: the directory, and how many items were
    written, left as they were, and removed."""

    directory: str
    written: int
    unchanged: int
    removed: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def _json(value: Any) -> dict[str, Any]:
    """``asdict`` with tuples as lists (JSON arrays)."""
    return _lists(asdict(value))  # type: ignore[no-any-return]


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    return value
