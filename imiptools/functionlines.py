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

import shlex

__all__ = ["parse_function_lines"]


def parse_function_lines(text: str) -> list[tuple[str, list[str]]]:
    """Split ``text`` into (name, arguments) lines; ValueError on bad quoting."""
    lines = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            lines.append((words[0], words[1:]))
    return lines
