"""Published free/busy: a static ``.ifb`` file per user, for a web server.

``freebusy_publishing=publish`` makes the agent write the user's free/busy
(RFC 5545 §3.6.4 VFREEBUSY, METHOD:PUBLISH per RFC 5546 §3.3.1) to
``PUBLISHING_DIR/<URL-encoded URI>.ifb`` (e.g.
``mailto%3Aalice%40example.com.ifb``) whenever it changes, atomically.
The directory may be reached through symlinks (it is resolved); a symlink
in it is replaced, never followed.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from icalendar import Calendar

from imiptools.config import Settings
from imiptools.fileutil import atomic_write, resolve_root
from imiptools.itip import replies
from imiptools.itip.objects import make_calendar, to_text
from imiptools.records import UserRecords


class Publisher(Protocol):
    """Whose free/busy to publish, and where (the handlers' unit of work is one)."""

    @property
    def user(self) -> str:
        """The user's ``mailto:`` URI."""
        ...

    @property
    def records(self) -> UserRecords:
        """The user's records (their free/busy)."""
        ...

    @property
    def settings(self) -> Settings:
        """The site's settings (``publishing``: the directory)."""
        ...

    @property
    def now(self) -> datetime:
        """The time of the run."""
        ...


def published_path(directory: Path, user: str) -> Path:
    """Where ``user``'s free/busy is published."""
    return directory / f"{quote(user, safe='')}.ifb"


def freebusy_calendar(unit: Publisher) -> Calendar:
    """The user's VFREEBUSY for the window (METHOD:PUBLISH)."""
    limits = unit.records.limits()
    start, end = limits.window_start, limits.window_end
    periods = unit.records.busy_between(start, end)
    component = replies.freebusy_component(periods, start, end, unit.now)
    component.add("ORGANIZER", unit.user)
    component.add("UID", f"freebusy-{unit.user}")
    return make_calendar([component], "PUBLISH")


def freebusy_text(unit: Publisher) -> str:
    """:func:`freebusy_calendar` as iCalendar text."""
    return to_text(freebusy_calendar(unit))


def publish_freebusy(unit: Publisher) -> Path:
    """Write the user's .ifb file; return its path."""
    path = published_path(resolve_root(Path(unit.settings.publishing)), unit.user)
    atomic_write(path, freebusy_text(unit))
    return path
