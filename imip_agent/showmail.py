"""Print a short, readable view of RFC 5322 files written by ``--output``.

Used by the demo: for each message, the headers that matter, the text part,
and the iTIP answer (METHOD, ATTENDEE PARTSTAT, COMMENT, FREEBUSY lines).
"""

from __future__ import annotations

import email
import sys
from collections.abc import Sequence
from email import policy
from email.message import EmailMessage
from pathlib import Path

from icalendar import Calendar


def describe(message: EmailMessage) -> list[str]:
    """Readable lines for one message."""
    lines = [f"{name}: {message[name]}" for name in ("From", "To", "Subject") if message[name]]
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            lines += [f"| {line}" for line in str(part.get_content()).strip().splitlines()]
        elif part.get_content_type() == "text/calendar":
            lines += calendar_lines(Calendar.from_ical(part.get_content()))
    return lines


def calendar_lines(calendar: Calendar) -> list[str]:
    """METHOD and the properties that carry the answer."""
    lines = [f"METHOD:{calendar.get('METHOD')}"]
    for component in calendar.subcomponents:
        for name in ("ATTENDEE", "COMMENT", "FREEBUSY"):
            values = component.get(name, [])
            for value in values if isinstance(values, list) else [values]:
                params = ";".join(f"{k}={v}" for k, v in getattr(value, "params", {}).items())
                text = value.to_ical().decode() if hasattr(value, "to_ical") else str(value)
                lines.append(f"{name}{';' + params if params else ''}:{text}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Print each file named on the command line."""
    for path in sys.argv[1:] if argv is None else argv:
        message = email.message_from_bytes(Path(path).read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        print("\n".join("    " + line for line in describe(message)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
