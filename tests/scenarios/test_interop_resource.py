"""Every file of the interop corpus fed to imip-resource.

Bare ``.ics`` files are wrapped into an iMIP message from their organiser;
``.eml`` files are piped as they are. The room is the first attendee of the
file that is not its organiser (so that REQUESTs really invite it). Every
outcome must be a defined exit code without a traceback; every usable
REQUEST that invites the room gets a REPLY that icalendar and vobject read
and that satisfies RFC 5546 §3.2.3.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email import policy
from email.message import Message
from pathlib import Path

import pytest
from icalendar import Calendar

from tests.support import INTEROP, ROOM, Agent, check_reply, imip_message

FILES = (
    sorted(p for p in INTEROP.rglob("*") if p.suffix in (".ics", ".eml"))
    if INTEROP.is_dir()
    else []
)


@dataclass
class Expectation:
    """What the file asks of the room, read with icalendar directly."""

    room: str
    organiser: str
    invites_room: bool


def calendars_of(path: Path) -> list[tuple[str | None, str]]:
    """(MIME method, calendar text) pairs of a file."""
    data = path.read_bytes()
    if path.suffix == ".ics":
        return [(None, data.decode("utf-8", "replace"))]
    message = email.message_from_bytes(data, policy=policy.compat32)
    found = []
    for part in own_parts(message):
        if part.get_content_type() in ("text/calendar", "application/ics"):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                found.append((part.get_param("method"), payload.decode("utf-8", "replace")))
    return found


#: What an MTA can pass as an envelope recipient (``-o``).
PLAIN_ADDRESS = re.compile(r"[^@\s;:,<>\"]+@[^@\s;:,<>\"]+")


def own_parts(message: Message) -> list[Message]:
    """The parts of a message, not descending into attached messages."""
    if message.get_content_maintype() == "message":
        return [message]
    payload = message.get_payload()
    if not message.is_multipart() or not isinstance(payload, list):
        return [message]
    return [message] + [p for child in payload for p in own_parts(child)]


def mail_address(prop: object) -> str:
    """mailto: value, else the EMAIL parameter (CalDAV principals)."""
    if isinstance(prop, list):  # a broken file with the property twice
        prop = prop[0]
    value = str(prop).lower().strip()
    if value.startswith("mailto:"):
        return value.removeprefix("mailto:")
    return str(getattr(prop, "params", {}).get("EMAIL", value)).lower()


def expectation(path: Path) -> Expectation:
    for mime_method, text in calendars_of(path):
        try:
            calendars = Calendar.from_ical(text, multiple=True)
        except Exception:  # an unreadable file: the agent must cope, we expect nothing
            continue
        for calendar in calendars:
            method = str(calendar.get("METHOD", mime_method or "")).upper()
            for event in calendar.walk("VEVENT"):
                organiser = mail_address(event.get("ORGANIZER", ""))
                attendees = event.get("ATTENDEE", [])
                attendees = attendees if isinstance(attendees, list) else [attendees]
                for attendee in attendees:
                    who = mail_address(attendee)
                    if PLAIN_ADDRESS.fullmatch(who) and who != organiser:
                        usable = bool(organiser and event.get("UID"))
                        return Expectation(who, organiser, method == "REQUEST" and usable)
    return Expectation(ROOM, "", False)


def message_for(path: Path, expect: Expectation) -> bytes:
    data = path.read_bytes()
    if path.suffix == ".eml":
        return data
    text = data.decode("utf-8", "replace")
    return imip_message(
        text, sender=expect.organiser or "someone@example.com", to=expect.room, method=None
    )


@pytest.mark.skipif(not FILES, reason="shared/interop is not present")
@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(INTEROP)) for p in FILES])
def test_interop_file_through_resource(agent: Agent, path: Path) -> None:
    expect = expectation(path)
    run = agent.resource(
        message_for(path, expect),
        recipient=expect.room,
        sender=expect.organiser or "someone@example.com",
        now="2026-11-27T12:00:00Z",
    )
    assert run.code in (0, 65), run.stdout
    assert "Traceback" not in run.stdout + run.stderr
    if run.code == 65:
        assert run.stdout.startswith("5.") and run.stdout.count("\n") == 1
    for calendar in run.replies():
        if str(calendar["METHOD"]) == "REPLY" and calendar.walk("VEVENT"):
            check_reply(calendar, expect.room)
    if expect.invites_room and run.code == 0:
        methods = [str(c["METHOD"]) for c in run.replies()]
        assert "REPLY" in methods, f"no REPLY for a REQUEST inviting {expect.room}"
        assert all(m["To"].lower() == expect.organiser for m in run.sent)
