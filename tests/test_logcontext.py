"""The queue id on log lines: a context variable, per delivery, never shared."""

from __future__ import annotations

import asyncio
import logging

from imip_agent.cli import MailLogFilter
from imiptools import logcontext


def formatted(message: str) -> str:
    record = logging.LogRecord("imip_agent", logging.INFO, __file__, 1, message, None, None)
    MailLogFilter("imip-agent-lmtp").filter(record)
    return logging.Formatter("%(queue_id)s%(message)s").format(record)


def test_no_queue_id_no_prefix() -> None:
    assert formatted("hello") == "hello"


def test_the_queue_id_of_the_block_and_none_after() -> None:
    with logcontext.queue_id("4F2A1234"):
        assert formatted("hello") == "4F2A1234: hello"
    assert formatted("hello") == "hello"


def test_unprintable_queue_ids_are_one_short_word() -> None:
    assert logcontext.clean("4F2A\r\nX: y") == "4F2A_X:_y"
    assert len(logcontext.clean("A" * 500)) == logcontext.MAX_LENGTH
    assert logcontext.clean(None) == ""


def test_concurrent_deliveries_keep_their_own_queue_ids() -> None:
    """asyncio tasks (one per LMTP transaction) interleave and never mix ids."""

    async def deliver(queue_id: str) -> list[str]:
        lines = []
        with logcontext.queue_id(queue_id):
            for step in range(3):
                await asyncio.sleep(0)
                lines.append(formatted(f"step {step}"))
        return lines

    async def both() -> list[list[str]]:
        return list(await asyncio.gather(deliver("AAA1"), deliver("BBB2")))

    first, second = asyncio.run(both())
    assert first == [f"AAA1: step {n}" for n in range(3)]
    assert second == [f"BBB2: step {n}" for n in range(3)]
