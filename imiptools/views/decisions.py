"""A resource's decision log, read back: one :class:`LoggedDecision` per line.

The resource handler appends one JSON object per scheduling decision to
the user's log (:meth:`~imiptools.stores.base.Store.log_decision`): time,
message id, resource, organiser, UID, RECURRENCE-ID, SEQUENCE, the
verdict of each function, answer, code and reason. A line that is not
such an object (an admin's edit, a truncated write) is kept as
:class:`UnreadableLine`, never an error.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from imiptools.deferred import dataclass
from imiptools.stores.base import Store

#: The keys every logged decision has.
REQUIRED = ("time", "answer", "code", "uid", "organiser", "reason")


@dataclass(frozen=True)
class LoggedDecision:
    """One decision as logged (every field as text; ``recurrence_id`` '' for
    the whole event)."""

    time: str
    answer: str
    code: str
    uid: str
    recurrence_id: str
    organiser: str
    reason: str
    line: str


@dataclass(frozen=True)
class UnreadableLine:
    """A log line that is not a decision."""

    line: str


Entry = LoggedDecision | UnreadableLine


def _word(value: object) -> str:
    """A short field as text; TypeError for a value no log writer gives."""
    if value is None or isinstance(value, list | dict):
        raise TypeError("not a word")
    return str(value)


def parse_decision(line: str) -> Entry:
    """The decision a log line holds, or :class:`UnreadableLine`."""
    try:
        entry = json.loads(line)
        if not isinstance(entry, dict):
            raise TypeError("not an object")
        fields = {key: entry[key] for key in REQUIRED}
        return LoggedDecision(
            time=str(fields["time"]),
            answer=_word(fields["answer"]),
            code=_word(fields["code"]),
            uid=str(fields["uid"]),
            recurrence_id=str(entry.get("recurrence_id") or ""),
            organiser=str(fields["organiser"]),
            reason=str(fields["reason"]),
            line=line,
        )
    except (ValueError, KeyError, TypeError):
        return UnreadableLine(line)


def parse_decisions(lines: Iterable[str]) -> list[Entry]:
    """Every line read (see :func:`parse_decision`), oldest first."""
    return [parse_decision(line) for line in lines]


def decision_log(store: Store, user: str) -> list[Entry]:
    """``user``'s decision log, oldest first."""
    return parse_decisions(store.decisions(user))
