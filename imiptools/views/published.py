"""Others' published free/busy, fetched from their URLs.

A calendar user outside the site may publish their free/busy as a
VCALENDAR of VFREEBUSY components at a URL (RFC 5545 §3.6.4; the ``.ifb``
files of Outlook, Apple and the agents' own ``freebusy_publishing``; the
address a vCard's FBURL names, RFC 6350 §6.9.3). ``imip-manager``'s "find
a time" reads such URLs with :func:`fetch_busy`.

Contract:

- Only URLs under one of the site's ``freebusy_urls`` prefixes are
  fetched (http or https; every redirect is checked again): a web
  application must not fetch what its users name, or it becomes their
  way into the network behind it.
- At most :data:`MAX_BYTES` are read, within :data:`TIMEOUT` seconds; a
  failure of any kind is an :class:`Unreadable` with a short reason, never
  an exception of the network or the parser.
- The busy periods are those of every VFREEBUSY (FBTYPE other than FREE)
  overlapping [start, end); the label is the publisher's address (the
  VFREEBUSY's ORGANIZER, else ATTENDEE), else the URL.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import datetime
from http.client import HTTPException
from urllib.parse import urlsplit

from icalendar import Component

from imiptools.deferred import dataclass
from imiptools.errors import InputError
from imiptools.handlers.base import freebusy_periods
from imiptools.itip.objects import mail_address_of, parse_calendars
from imiptools.periods import Period

#: The most bytes read from one URL.
MAX_BYTES = 1024 * 1024
#: Seconds to wait for a URL to answer (each read).
TIMEOUT = 5.0


class Unreadable(InputError):
    """The URL is not allowed, did not answer, or holds no free/busy."""


@dataclass(frozen=True)
class Published:
    """What a URL says: whose free/busy it is and their busy periods."""

    label: str
    busy: list[Period]


def prefixes_of(setting: str) -> tuple[str, ...]:
    """The allowed prefixes of a ``freebusy_urls`` setting (http and https only)."""
    return tuple(p for p in setting.split() if urlsplit(p).scheme in ("http", "https"))


def allowed(url: str, prefixes: Sequence[str]) -> bool:
    """Whether ``url`` is an http(s) URL under one of ``prefixes``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.username:
        return False
    return any(url.startswith(prefix) for prefix in prefixes)


def fetch_busy(url: str, prefixes: Sequence[str], start: datetime, end: datetime) -> Published:
    """The free/busy published at ``url`` within [start, end); Unreadable
    when it is not allowed or cannot be read (see the module)."""
    return busy_in(_fetch(url, prefixes), url, start, end)


def busy_in(data: bytes, url: str, start: datetime, end: datetime) -> Published:
    """The busy periods of the VFREEBUSYs in ``data`` within [start, end)."""
    try:
        calendars = parse_calendars(data.decode("utf-8", "replace"))
    except InputError as exc:
        raise Unreadable(f"not iCalendar: {exc}") from exc
    components = [c for calendar in calendars for c in calendar.walk("VFREEBUSY")]
    if not components:
        raise Unreadable("no free/busy in it")
    label, busy = "", []
    for component in components:
        label = label or _publisher(component)
        busy += [
            p for p in freebusy_periods(component) if p.status != "FREE" and p.overlaps(start, end)
        ]
    return Published(label or url, sorted(busy, key=lambda p: (p.start, p.end)))


def _publisher(component: Component) -> str:
    """The address of whoever published ``component``, or ''."""
    for name in ("ORGANIZER", "ATTENDEE"):
        value = component.get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        if value is not None and mail_address_of(value):
            return mail_address_of(value)
    return ""


class _Checked(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to an allowed URL."""

    def __init__(self, prefixes: Sequence[str]) -> None:
        self.prefixes = prefixes

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if not allowed(newurl, self.prefixes):
            raise Unreadable("redirected outside the allowed addresses")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _fetch(url: str, prefixes: Sequence[str]) -> bytes:
    if not allowed(url, prefixes):
        raise Unreadable("not an allowed address (the site's freebusy_urls)")
    opener = urllib.request.build_opener(_Checked(prefixes))
    request = urllib.request.Request(url, headers={"Accept": "text/calendar"})
    try:
        with opener.open(request, timeout=TIMEOUT) as answer:
            data: bytes = answer.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise Unreadable(f"the server answered {exc.code}") from exc
    except (urllib.error.URLError, HTTPException, OSError, ValueError) as exc:
        raise Unreadable(f"no answer: {getattr(exc, 'reason', exc)}") from exc
    if len(data) > MAX_BYTES:
        raise Unreadable(f"larger than {MAX_BYTES} bytes")
    return data
