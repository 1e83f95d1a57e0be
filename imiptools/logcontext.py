"""What every log line of one delivery carries: the MTA's queue id.

A :class:`~contextvars.ContextVar`, not a process global: a pipe program
sets it once for its one message; ``imip-agent-lmtp`` sets it per
transaction, in the asyncio task that serves it and in the worker that runs
the agent, so concurrent deliveries never mix their ids. The logging filter
of :mod:`imip_agent.cli` reads it for each record (``%(queue_id)s``), so
that ``grep QUEUEID`` on the mail log shows the MTA's lines and ours.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

#: The queue id of the delivery being served ('' when none is known).
QUEUE_ID: ContextVar[str] = ContextVar("imip_agent_queue_id", default="")

#: At most this much of a queue id is logged (Postfix: 10 to 16 characters).
MAX_LENGTH = 64
_UNSAFE = re.compile(r"[^\x21-\x7e]+")


def clean(queue_id: str | None) -> str:
    """``queue_id`` as one printable word of at most :data:`MAX_LENGTH`
    characters ('' for None): it comes from the MTA or the message."""
    return _UNSAFE.sub("_", queue_id or "").strip("_")[:MAX_LENGTH]


@contextmanager
def queue_id(value: str | None) -> Iterator[None]:
    """Log with ``value`` as the queue id inside the ``with`` block."""
    token = QUEUE_ID.set(clean(value))
    try:
        yield
    finally:
        QUEUE_ID.reset(token)


def prefix() -> str:
    """``"4F2A1234: "`` for the current queue id, '' without one."""
    current = QUEUE_ID.get()
    return f"{current}: " if current else ""
