"""Daemon against pipe: the hook for the LMTP service (issue 15 item 2).

When ``imip-agent-lmtp`` exists, :func:`daemon` is to measure messages per
second through it at 1, 2 and 8 concurrent LMTP clients against the same
messages piped through ``imip-resource`` one process each, interleaved as
every scenario is (:func:`harness.compare`); until then it says it was not
measured. A scenario added here is listed in :data:`scenarios.SCENARIOS`
by :mod:`run` like the others.
"""

from __future__ import annotations

from harness import Outcome
from scenarios import Config
from sites import BIN

PROGRAM = "imip-agent-lmtp"


class NotAvailable(Exception):
    """The scenario cannot be measured here (the reason is its text)."""


def daemon(config: Config) -> Outcome:
    """Messages per second, daemon against pipe (not written yet)."""
    if not (BIN / PROGRAM).exists():
        raise NotAvailable(f"{PROGRAM} is not installed in this venv yet")
    raise NotAvailable(f"{PROGRAM} exists, but benchmarks/daemon.py does not measure it yet")
