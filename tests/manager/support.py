"""What the manager's tests share: a site where alice was invited (through
the real ``imip-person``) to a weekly series organised by bob, and the
application over it."""

from __future__ import annotations

import email
import re
from email import policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

from flask import Flask
from icalendar import Calendar
from werkzeug.datastructures import MultiDict

from imip_agent.manager.app import create_app
from imip_agent.manager.security import AccessConfig
from imiptools.config import Settings, load_settings
from imiptools.dates import FixedClock, parse_datetime
from imiptools.mail.send import DirectorySender
from tests.support import Agent, calendar_text, imip_message, vevent

NOW = "2030-01-01T12:00:00Z"
ALICE = "alice@example.com"
BOB = "bob@example.com"
UID = "weekly-sync@example.com"
#: Markup in the summary: it must be shown as text, never as HTML.
SUMMARY = "Team <b>sync</b> & <script>alert(1)</script>"
#: The second of the four instances (Tuesdays 10:00 UTC from 8 January 2030).
SECOND = "20300115T100000Z"


def invited(root: Path) -> Agent:
    """A site where alice got bob's weekly invitation through imip-person."""
    return invite(Agent(root, now=NOW))


def invitation() -> bytes:
    """Bob's invitation of alice to the weekly series, as mail (RFC 6047)."""
    event = vevent(
        UID,
        "20300108T100000Z",
        "20300108T110000Z",
        organiser=BOB,
        attendees=(ALICE,),
        summary=SUMMARY,
        extra="RRULE:FREQ=WEEKLY;COUNT=4\nLOCATION:Room 3",
    )
    return imip_message(calendar_text(event), sender=BOB, to=ALICE)


def invite(agent: Agent) -> Agent:
    """``agent``'s site, where alice got bob's weekly invitation through imip-person."""
    run = agent.person(invitation(), ALICE)
    assert run.code == 0, run.stdout + run.stderr
    assert agent.requests(ALICE) == [(UID, "", "REQUEST")]
    return agent


def settings_of(agent: Agent) -> Settings:
    """The settings of the agent's site (as its programs are given them)."""
    r = agent.root
    return load_settings(str(agent.config) if agent.config else None).updated(
        store=str(r / "store"),
        preferences=str(r / "prefs"),
        journal=str(r / "journal"),
        publishing=str(r / "published"),
    )


def manager(agent: Agent, sent: Path, access: AccessConfig | None = None) -> Flask:
    """The application over the agent's site at NOW, mail written into ``sent``."""
    clock = FixedClock(parse_datetime(NOW))
    return create_app(
        settings_of(agent), clock, DirectorySender(sent), access, secure_cookies=False
    )


TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def token_in(page: str) -> str:
    """The form token a page carries."""
    found = TOKEN.search(page)
    assert found, "the page has a form token"
    return found.group(1)


class _FormReader(HTMLParser):
    """The fields of the first form posting to ``action``, as a browser
    would post them untouched: inputs (checkboxes only when checked),
    the selected option of each list (else its first), textareas."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action, self.inside, self.done = action, False, False
        self.fields: MultiDict[str, str] = MultiDict()
        self.select: str | None = None
        self.options: list[tuple[str, bool]] = []
        self.area: str | None = None
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and not self.done and a.get("action") == self.action:
            self.inside = True
        if not self.inside:
            return
        if tag == "input" and "name" in a and a.get("type") not in ("submit", "button"):
            if a.get("type") not in ("checkbox", "radio") or "checked" in a:
                self.fields.add(a["name"], a.get("value", ""))
        elif tag == "select":
            self.select, self.options = a.get("name"), []
        elif tag == "option" and self.select is not None:
            self.options.append((a.get("value", ""), "selected" in a))
        elif tag == "textarea":
            self.area, self.text = a.get("name"), ""

    def handle_data(self, data: str) -> None:
        if self.area is not None:
            self.text += data

    def handle_endtag(self, tag: str) -> None:
        if not self.inside:
            return
        if tag == "select" and self.select is not None:
            chosen = [v for v, selected in self.options if selected] or [self.options[0][0]]
            self.fields.add(self.select, chosen[0])
            self.select = None
        elif tag == "textarea" and self.area is not None:
            self.fields.add(self.area, self.text.removeprefix("\n"))
            self.area = None
        elif tag == "form":
            self.inside, self.done = False, True


def form_fields(page: str, action: str) -> MultiDict[str, str]:
    """What a browser posts of the form of ``page`` whose action is ``action``
    (unchanged; the submit button's name and value not included)."""
    reader = _FormReader(action)
    reader.feed(page)
    assert reader.done, f"no form posting to {action}"
    return reader.fields


def sent_messages(directory: Path) -> list[EmailMessage]:
    """The messages written into ``directory`` (DirectorySender), in order."""
    files = sorted(p for p in directory.rglob("*") if p.is_file()) if directory.exists() else []
    return [
        email.message_from_bytes(p.read_bytes(), policy=policy.default)  # type: ignore[misc]
        for p in files
    ]


def calendar_of(message: EmailMessage) -> tuple[bytes, Calendar]:
    """The text/calendar part of ``message``: its bytes and icalendar's reading."""
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            data = part.get_payload(decode=True)
            assert isinstance(data, bytes)
            return data, Calendar.from_ical(data)
    raise AssertionError("no calendar part")
