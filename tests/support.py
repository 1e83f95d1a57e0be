"""Test support: build iMIP messages, run the programs as an MTA does, and
check what they send with two independent parsers (icalendar and vobject).
"""

from __future__ import annotations

import email
import os
import subprocess
import sys
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path

import vobject
from icalendar import Calendar

from imiptools.config import load_settings
from imiptools.site import Site, open_site

ROOT = Path(__file__).resolve().parents[1]
#: What every checkout has beside it (``../shared``); IMIP_SHARED_DIR moves it.
SHARED = Path(os.environ.get("IMIP_SHARED_DIR", ROOT.parent / "shared"))
INTEROP = SHARED / "interop"
PEER_ITIP = SHARED / "peer-itip"
#: In CI (``CI=true``) the shared corpora must be there: a missing one fails.
IN_CI = os.environ.get("CI", "").lower() == "true"
BIN = Path(sys.executable).parent
ROOM = "room@example.com"
#: Pass the message's From address as the envelope sender.
FROM_HEADER = "<From>"


def open_descriptors() -> set[str]:
    """What this process has open (the targets of ``/proc/self/fd``)."""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            found.add(os.readlink(f"/proc/self/fd/{name}"))
        except FileNotFoundError:  # the listing's own descriptor, closed meanwhile
            continue
    return found


def calendar_text(*components: str, method: str = "REQUEST", extra: str = "") -> str:
    """A VCALENDAR around ``components`` (content lines joined by CRLF)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//tests//EN"]
    if method:
        lines.append(f"METHOD:{method}")
    body = "\r\n".join(lines) + "\r\n" + extra
    for component in components:
        body += component.strip().replace("\r\n", "\n").replace("\n", "\r\n") + "\r\n"
    return body + "END:VCALENDAR\r\n"


def vevent(
    uid: str = "event-1@example.com",
    start: str = "20300108T100000Z",
    end: str = "20300108T110000Z",
    *,
    organiser: str = "alice@example.com",
    attendees: tuple[str, ...] = (ROOM,),
    sequence: int = 0,
    dtstamp: str = "20300101T090000Z",
    summary: str = "Meeting",
    extra: str = "",
) -> str:
    """A VEVENT as text; ``extra`` adds content lines (RRULE, RECURRENCE-ID...)."""
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"SEQUENCE:{sequence}",
        f"DTSTAMP:{dtstamp}",
        f"DTSTART:{start}" if ":" not in start and ";" not in start else f"DTSTART{start}",
        f"DTEND:{end}" if ":" not in end and ";" not in end else f"DTEND{end}",
        f"SUMMARY:{summary}",
    ]
    if organiser:
        lines.append(f"ORGANIZER:mailto:{organiser}")
    lines += [f"ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{a}" for a in attendees]
    lines += [line for line in extra.strip().splitlines() if line]
    lines.append("END:VEVENT")
    return "\n".join(lines)


def imip_message(
    calendar: str,
    *,
    sender: str = "alice@example.com",
    to: str = ROOM,
    method: str | None = "REQUEST",
    subject: str = "Invitation",
    message_id: str = "<m1@example.com>",
    headers: dict[str, str] | None = None,
) -> bytes:
    """An RFC 6047 message carrying ``calendar`` (multipart/alternative)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content("An invitation.")
    params = {"method": method} if method else {}
    msg.add_alternative(
        calendar.encode("utf-8"), maintype="text", subtype="calendar", params=params
    )
    return msg.as_bytes(policy=policy.SMTP)


@dataclass
class Run:
    """What one program run did: exit code, output, the messages it sent."""

    code: int
    stdout: str
    stderr: str
    sent: list[EmailMessage] = field(default_factory=list)
    #: The message piped in, and the bytes of each file written to --output.
    given: bytes = b""
    files: list[bytes] = field(default_factory=list)

    def replies(self) -> list[Calendar]:
        """The calendar parts of the messages sent, parsed and checked."""
        return [parse_calendar_part(m) for m in self.generated()]

    def _delivered(self, index: int) -> bool:
        """The original, byte for byte, or a summary for the mailbox."""
        summary = self.sent[index].get("Auto-Submitted", "") == "auto-generated"
        return self.files[index] == self.given or summary

    def delivered(self) -> list[EmailMessage]:
        """Messages for the mailbox: the original or a summary (imip-person)."""
        return [m for i, m in enumerate(self.sent) if self._delivered(i)]

    def generated(self) -> list[EmailMessage]:
        """Messages the agent sent to others."""
        return [m for i, m in enumerate(self.sent) if not self._delivered(i)]


@dataclass
class Agent:
    """A site (a store on disk, or a database) and a way to run the programs
    against it."""

    root: Path
    now: str = "2030-01-01T12:00:00Z"
    runs: int = 0
    #: A configuration file every program is given (``-c``): the backend's,
    #: for a site in a database (see tests/scenarios/conftest.py).
    config: Path | None = None
    #: Make the site as ``imip-admin init`` does: the store and preferences
    #: directories of a file site (the agents refuse to run without them);
    #: nothing for a database site, whose schema the tests' database already
    #: has (tests/pg.py). False: a site that was never set up (or whose
    #: directories the test makes itself).
    make_site: bool = True

    def __post_init__(self) -> None:
        self.set_up()

    @property
    def in_database(self) -> bool:
        """Whether the configuration puts the site in a database."""
        return self.config is not None and load_settings(str(self.config)).backend != "file"

    def set_up(self) -> None:
        """The site's store and preferences directories, when ``make_site``
        and the site is in files (idempotent: tests that build parts of the
        site call it again)."""
        if self.make_site and not self.in_database:
            for name in ("store", "prefs"):
                (self.root / name).mkdir(parents=True, exist_ok=True)

    @property
    def store_options(self) -> list[str]:
        """``-S``, ``-p``, ``-j``, ``-P`` naming the site under ``root``."""
        r = self.root
        config = ["-c", str(self.config)] if self.config else []
        return [
            *config,
            "-S",
            str(r / "store"),
            "-p",
            str(r / "prefs"),
            "-j",
            str(r / "journal"),
            "-P",
            str(r / "published"),
        ]

    def site(self) -> Site:
        """The site the programs use, opened here (to look at its records)."""
        r = self.root
        settings = load_settings(str(self.config) if self.config else None).updated(
            store=str(r / "store"),
            preferences=str(r / "prefs"),
            journal=str(r / "journal"),
            publishing=str(r / "published"),
        )
        return open_site(settings)

    def resource(
        self,
        message: bytes,
        *,
        recipient: str = ROOM,
        sender: str | None = FROM_HEADER,
        args: tuple[str, ...] = (),
        now: str | None = None,
    ) -> Run:
        """Pipe ``message`` through imip-resource as Postfix does.

        ``sender`` is the envelope sender: by default the From address; ''
        is the null sender; None passes no ``-s`` at all."""
        self.set_up()
        self.runs += 1
        out = self.root / "out" / str(self.runs)
        argv = [
            str(BIN / "imip-resource"),
            *self.store_options,
            "--now",
            now or self.now,
            "-o",
            recipient,
            "--output",
            str(out),
            *args,
        ]
        if sender is not None:
            argv += ["-s", _from_of(message) if sender == FROM_HEADER else sender]
        return _run(argv, message, out)

    def person(
        self,
        message: bytes,
        recipient: str,
        *,
        sender: str | None = FROM_HEADER,
        args: tuple[str, ...] = (),
        now: str | None = None,
    ) -> Run:
        """Pipe ``message`` to ``recipient`` through imip-person (deliveries to --output)."""
        return self._program("imip-person", message, ["-o", recipient], sender, args, now)

    def outgoing(
        self, message: bytes, sender: str, *, args: tuple[str, ...] = (), now: str | None = None
    ) -> Run:
        """Pipe a copy of what ``sender`` sent through imip-person-outgoing."""
        return self._program(
            "imip-person-outgoing", message, ["-o", "outgoing@example.com"], sender, args, now
        )

    def _program(
        self,
        name: str,
        message: bytes,
        extra: list[str],
        sender: str | None,
        args: tuple[str, ...],
        now: str | None,
    ) -> Run:
        self.set_up()
        self.runs += 1
        out = self.root / "out" / str(self.runs)
        argv = [
            str(BIN / name),
            *self.store_options,
            "--now",
            now or self.now,
            *extra,
            "--output",
            str(out),
            *args,
        ]
        if sender is not None:
            argv += ["-s", _from_of(message) if sender == FROM_HEADER else sender]
        return _run(argv, message, out)

    def requests(self, user: str) -> list[tuple[str, str, str]]:
        """The user's queue of items awaiting attention."""
        return self.site().store.get_requests(f"mailto:{user}")

    def exported(self, user: str, check_vobject: bool = True) -> Calendar:
        """The user's calendar through imip-admin export (also read by vobject)."""
        result = self.admin("export", user)
        assert result.returncode == 0, result.stdout + result.stderr
        if check_vobject:
            vobject.readOne(result.stdout)
        return Calendar.from_ical(result.stdout)

    def admin(self, *args: str, now: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run imip-admin with this store."""
        self.set_up()
        argv = [str(BIN / "imip-admin"), *self.store_options, "--now", now or self.now, *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)

    def set_pref(self, user: str, name: str, value: str) -> None:
        """Set a preference through imip-admin (validated)."""
        result = self.admin("prefs", "set", user, name, value)
        assert result.returncode == 0, result.stdout + result.stderr


def _from_of(message: bytes) -> str:
    parsed = email.message_from_bytes(message)
    return email.utils.parseaddr(str(parsed.get("From", "")))[1]


def _run(argv: list[str], message: bytes, out: Path) -> Run:
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}  # what Postfix pipe(8) passes
    if "IMIP_AGENT_CONFIG" in os.environ:
        env["IMIP_AGENT_CONFIG"] = os.environ["IMIP_AGENT_CONFIG"]
    done = subprocess.run(
        argv, input=message, capture_output=True, timeout=120, env=env, check=False, cwd="/"
    )
    paths = sorted(out.glob("*")) if out.exists() else []
    files = [path.read_bytes() for path in paths]
    return Run(
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
        [_parse_mail(data) for data in files],
        message,
        files,
    )


def _parse_mail(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def parse_calendar_part(message: EmailMessage) -> Calendar:
    """The text/calendar part of a sent message, read by icalendar and vobject."""
    parts = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1, "exactly one calendar part"
    method = parts[0].get_param("method")
    data = parts[0].get_payload(decode=True)
    assert isinstance(data, bytes)
    text = data.decode("utf-8")
    calendar = Calendar.from_ical(text)
    assert str(calendar["METHOD"]) == str(method).upper()
    parsed = vobject.readOne(text)
    assert parsed.method.value == str(method).upper()
    return calendar


def partstat_of(reply: Calendar, who: str = ROOM) -> str:
    """The PARTSTAT of ``who`` in a REPLY, after checking RFC 5546 §3.2.3."""
    check_reply(reply, who)
    event = reply.walk("VEVENT")[0]
    return str(event["ATTENDEE"].params["PARTSTAT"])


def check_reply(reply: Calendar, who: str = ROOM) -> None:
    """RFC 5546 §3.2.3: METHOD:REPLY; per VEVENT one ATTENDEE (the replier),
    DTSTAMP, ORGANIZER, UID; all VEVENTs share the UID."""
    assert str(reply["METHOD"]) == "REPLY"
    events = reply.walk("VEVENT")
    assert events, "a REPLY holds at least one VEVENT"
    assert len({str(e["UID"]) for e in events}) == 1
    for event in events:
        attendee = event["ATTENDEE"]
        assert not isinstance(attendee, list), "exactly one ATTENDEE"
        assert str(attendee).lower() == f"mailto:{who}"
        assert "PARTSTAT" in attendee.params
        for name in ("DTSTAMP", "ORGANIZER", "UID"):
            assert name in event, name
