"""Sites and messages for the benchmarks: a room's store filled with bookings,
daily series or quota records, and the requests a benchmark sends.

Everything goes through the library's composition root
(:func:`imiptools.site.open_site`) and its interfaces (the store, the quota
ledger, the preference source), so the benchmarks measure whichever backend
the settings name. Filling a store with thousands of records is done in a
child process without fsync (:func:`harness.quiet_fsync_child`); what is
measured always runs the real code.
"""

from __future__ import annotations

import re
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from imiptools import agent
from imiptools.config import Settings
from imiptools.dates import FixedClock, format_utc
from imiptools.handlers.common import Envelope
from imiptools.handlers.resource import ResourceHandler
from imiptools.mail.send import DirectorySender
from imiptools.periods import Period
from imiptools.quota.limits import QuotaBooking
from imiptools.site import Site, open_site

ROOM = "mailto:room@example.com"
ORGANISER = "alice@example.com"
NOW = datetime(2030, 1, 1, tzinfo=UTC)
NOW_TEXT = "2030-01-01T00:00:00Z"
BIN = Path(sys.executable).parent
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@dataclass(frozen=True)
class BenchSite:
    """A site under ``root``: ``store``, ``prefs``, ``journal``, ``out``."""

    root: Path

    @property
    def settings(self) -> Settings:
        """The site's settings (everything under ``root``)."""
        return Settings(
            store=str(self.root / "store"),
            preferences=str(self.root / "prefs"),
            journal=str(self.root / "journal"),
            publishing=str(self.root / "published"),
        )

    def open(self, now: datetime = NOW) -> Site:
        """The site, as the programs open it, with the clock at ``now``."""
        return open_site(self.settings, FixedClock(now))

    def options(self) -> list[str]:
        """The store options of the programs for this site."""
        return [
            *("-S", str(self.root / "store"), "-p", str(self.root / "prefs")),
            *("-j", str(self.root / "journal"), "-P", str(self.root / "published")),
        ]

    def copy(self, target: Path) -> BenchSite:
        """A copy of the whole site at ``target`` (replacing what is there)."""
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(self.root, target, symlinks=True)
        return BenchSite(target)


def context(site: Site, out: Path) -> agent.Context:
    """An agent context over ``site`` that "sends" into directory ``out``."""
    return agent.Context(
        settings=site.settings,
        store=site.store,
        preferences=site.preferences,
        clock=site.clock,
        sender=DirectorySender(out),
        spool=site.outbox,
        ledger=site.ledger,
    )


def deliver(site: Site, out: Path, message: bytes, sender: str = ORGANISER) -> None:
    """Run the resource agent on ``message`` in this process (exit 0 or
    AssertionError; whether it was accepted is the caller's to check)."""
    result = agent.run(message, [Envelope(ROOM, sender)], context(site, out), ResourceHandler)
    assert result.code == 0, result


# -- messages ----------------------------------------------------------------------


def event_text(
    uid: str,
    start: datetime,
    end: datetime,
    partstat: str = "ACCEPTED",
    rule: str = "",
    method: str = "",
    attendee: str = ROOM,
) -> str:
    """One event as a calendar (a stored booking, or a request with ``method``)."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//bench//EN",
        *([f"METHOD:{method}"] if method else []),
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20300101T000000Z",
        f"DTSTART:{format_utc(start)}",
        f"DTEND:{format_utc(end)}",
        *([f"RRULE:{rule}"] if rule else []),
        f"SUMMARY:Booking {uid}",
        f"ORGANIZER:mailto:{ORGANISER}",
        f"ATTENDEE;PARTSTAT={partstat}:{attendee}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(line + "\r\n" for line in lines)


def mail(calendar: str, message_id: str) -> bytes:
    """``calendar`` (a REQUEST) as an iMIP message from the organiser."""
    return (
        f"From: {ORGANISER}\r\nTo: room@example.com\r\nSubject: Booking\r\n"
        f"Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/calendar; method=REQUEST; charset=UTF-8\r\n\r\n" + calendar
    ).encode()


def request(index: int, tag: str = "new") -> bytes:
    """A request for a free slot: 17:00-18:00 UTC on day ``index`` from
    2030-03-04 (inside the window, so it is checked and booked)."""
    start = datetime(2030, 3, 4, 17, tzinfo=UTC) + timedelta(days=index)
    uid = f"{tag}-{index}@example.com"
    text = event_text(uid, start, start + timedelta(hours=1), "NEEDS-ACTION", method="REQUEST")
    return mail(text, f"{tag}-{index}@example.com")


def invitation(index: int) -> bytes:
    """``examples/01-alice-books.eml`` (Thunderbird-like: multipart, a
    VTIMEZONE), moved to day ``index`` from its date with a UID of its own."""
    text = (EXAMPLES / "01-alice-books.eml").read_text(encoding="utf-8")
    day = (datetime(2030, 1, 8) + timedelta(days=index)).strftime("%Y%m%d")
    text = text.replace("planning-2030@example.com", f"planning-{index}@example.com")
    text = text.replace("<alice-1@example.com>", f"<alice-{index}@example.com>")
    text = re.sub(r"(DTSTART|DTEND)(;TZID=Europe/Berlin):20300108", rf"\1\2:{day}", text)
    return text.replace("\n", "\r\n").encode()


def calendar_of(message: bytes) -> bytes:
    """The iCalendar text in ``message`` (what the floor parses)."""
    start = message.index(b"BEGIN:VCALENDAR")
    end = message.index(b"END:VCALENDAR") + len(b"END:VCALENDAR\r\n")
    return message[start:end]


def daily_request(index: int) -> bytes:
    """A daily series without end at 23:00-23:10 UTC from 2030-01-02 (free:
    the stored series are earlier in the day); UID per ``index``."""
    start = datetime(2030, 1, 2, 23, tzinfo=UTC)
    uid = f"daily-new-{index}@example.com"
    text = event_text(
        uid, start, start + timedelta(minutes=10), "NEEDS-ACTION", "FREQ=DAILY", "REQUEST"
    )
    return mail(text, uid)


# -- filling a site ----------------------------------------------------------------


def booking_slots(count: int) -> list[datetime]:
    """Six one-hour bookings (09:00-15:00 UTC) a weekday from NOW onwards."""
    slots: list[datetime] = []
    day = NOW
    while len(slots) < count:
        if day.weekday() < 5:
            slots += [day.replace(hour=hour) for hour in range(9, 15)]
        day += timedelta(days=1)
    return slots[:count]


def add_bookings(site: Site, count: int, user: str = ROOM) -> None:
    """``count`` accepted one-hour bookings of ``user`` with their free/busy
    (written at once: the user must have no other free/busy yet)."""
    periods = []
    for index, start in enumerate(booking_slots(count)):
        uid = f"booking-{index}@example.com"
        end = start + timedelta(hours=1)
        site.store.set_object(user, uid, event_text(uid, start, end, attendee=user))
        periods.append(Period(start, end, uid, "", "OPAQUE", f"Booking {uid}", ORGANISER, "BUSY"))
    site.store.replace_freebusy(user, periods)


def add_bookings_by_agents(site: Site, count: int, user: str = ROOM) -> None:
    """The bookings of :func:`add_bookings`, each stored and its free/busy
    derived as the agents do (:meth:`~imiptools.records.UserRecords.refresh_freebusy`,
    which also keeps the event's derivation record)."""
    records = site.records(user, NOW)
    for index, start in enumerate(booking_slots(count)):
        uid = f"booking-{index}@example.com"
        end = start + timedelta(hours=1)
        site.store.set_object(user, uid, event_text(uid, start, end, attendee=user))
        records.refresh_freebusy(uid)


def add_daily_series(site: Site, count: int) -> None:
    """``count`` accepted daily series without end, ten minutes each, one
    after the other from 00:00 UTC; their free/busy derived as the agent does."""
    records = site.records(ROOM, NOW)
    for index in range(count):
        start = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(minutes=10 * index)
        uid = f"daily-{index}@example.com"
        text = event_text(uid, start, start + timedelta(minutes=10), rule="FREQ=DAILY")
        site.store.set_object(ROOM, uid, text)
        records.refresh_freebusy(uid)


QUOTA = "rooms"
QUOTA_USERS = 200


def add_quota(site: Site, count: int) -> None:
    """A quota ``rooms`` for the room (40 hours a week, 500 outstanding) and
    ``count`` one-hour bookings in it by 200 organisers (alice among them)
    across two years."""
    site.preferences.set(ROOM, "scheduling_function", f"check_quota {QUOTA}\nschedule_in_freebusy")
    site.ledger.write_admin_file(QUOTA, "limits", ["* time week PT40H", "* count outstanding 500"])
    items = []
    for index in range(count):
        start = NOW + timedelta(hours=index % (2 * 365 * 24))
        number = index % QUOTA_USERS
        user = f"mailto:user{number}@example.com" if number else f"mailto:{ORGANISER}"
        end = start + timedelta(hours=1)
        items.append(QuotaBooking(user, "mailto:other@example.com", f"q{index}", "", start, end))
    site.ledger.add_bookings(QUOTA, items)


def user_address(number: int) -> str:
    """The ``number``-th room of a site with many users."""
    return f"mailto:room{number}@example.com"


def add_users(site: Site, users: int, bookings: int) -> None:
    """``users`` rooms, each with ``bookings`` bookings and a weekly series
    (whose instances a moving window brings in)."""
    for number in range(users):
        user = user_address(number)
        with site.store.lock(user, 30.0):
            add_bookings(site, bookings, user)
            start = datetime(2030, 1, 7, 16, tzinfo=UTC) + timedelta(minutes=number % 60)
            uid = f"weekly-{number}@example.com"
            end = start + timedelta(minutes=30)
            text = event_text(uid, start, end, rule="FREQ=WEEKLY", attendee=user)
            site.store.set_object(user, uid, text)
            site.records(user, NOW).refresh_freebusy(uid)
