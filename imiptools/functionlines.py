"""The text form of a list of function calls: one call a line.

The ``scheduling_function`` preference holds one scheduling function a
line, its name followed by its arguments, words split as the shell splits
them (``shlex``: quotes group words, ``#`` starts a comment, blank lines
are skipped)::

    check_quota rooms
    access_control_list "accept domain example.com"
    schedule_in_freebusy 2   # two bookings may overlap

Only the syntax lives here, below every layer that reads the preference:
the scheduling registry (:mod:`imiptools.scheduling.registry`) checks the
names and arguments, the quota records (:mod:`imiptools.quota.sync`) find
the quotas a resource records in.
"""

from __future__ import annotations

import functools
import shlex

__all__ = ["parse_function_lines"]


def parse_function_lines(text: str) -> list[tuple[str, list[str]]]:
    """Split ``text`` into (name, arguments) lines; ValueError on bad quoting.

    Each call returns new lists (callers may change them); the splitting of
    a text is remembered (a few texts per process: one preference read by
    several steps of every message, and by each message of an LMTP worker).
    """
    return [(name, list(arguments)) for name, arguments in _split(text)]


@functools.lru_cache(maxsize=64)
def _split(text: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """:func:`parse_function_lines` of ``text``, frozen (an error is not
    remembered: it is raised again each time)."""
    lines = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            lines.append((words[0], tuple(words[1:])))
    return tuple(lines)
