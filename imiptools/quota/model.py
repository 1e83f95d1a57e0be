"""Quota values and their text forms: no I/O, shared by every ledger.

What a quota group holds (:class:`QuotaState`) and how its parts are
written as text, whatever keeps them (see :class:`imiptools.quota.base.QuotaLedger`):

* the admin lists, one entry a line (blank lines and ``#`` comments are
  ignored)::

      limits     WHO MEASURE PERIOD VALUE      (see imiptools.quota.limits)
      groups     ADDRESS GROUP                 one user a line
      exempt     ADDRESS                       one user a line
      delegates  RESOURCE-URI                  one resource a line
      tzid       ZONE                          calendar periods' zone (optional)

* a booking record, one line
  ``USER<TAB>RESOURCE<TAB>UID<TAB>RID<TAB>START<TAB>END``: fields from
  event data are percent-escaped as in :mod:`imiptools.periods`, times are
  UTC (``20300108T100000Z``).

Users are normalised ``mailto:`` URIs (:func:`parse_user`); group and
quota names are verbatim safe components (``staff``, ``rooms``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import field
from datetime import datetime, tzinfo
from urllib.parse import quote, unquote

from imiptools.dates import format_utc, parse_utc, resolve_zone
from imiptools.deferred import dataclass
from imiptools.errors import UnsafeName
from imiptools.quota.limits import (
    EVERYONE,
    GROUP_PREFIX,
    QuotaBooking,
    QuotaLimit,
    parse_period,
    parse_value,
)
from imiptools.stores.names import is_verbatim, normalise_user

#: The scheduling functions that use a quota (imiptools.scheduling.quota),
#: each with the name of a quota group as its argument.
CHECK_QUOTA = "check_quota"
ACROSS_QUOTA = "schedule_across_quota"
DELEGATE_QUOTA = "schedule_for_delegate"
#: Those that record each booking of the resource in their quota (their
#: confirmation steps write the records; imiptools.quota.sync derives the
#: same records from the store).
RECORDING_FUNCTIONS = frozenset({CHECK_QUOTA, ACROSS_QUOTA})

BOOKING_FIELDS = 6
#: The admin lists of a quota group, in the order ``quota show`` prints them.
ADMIN_LISTS = ("limits", "groups", "exempt", "delegates", "tzid")
_SAFE = " !\"#$&'()*+,-./:;<=>?@[]^_`{|}~"
#: Text that quote() with _SAFE leaves unchanged (ASCII letters, digits, _SAFE).
_PLAIN = r"[A-Za-z0-9" + re.escape(_SAFE) + r"]+"


class LockOrderError(RuntimeError):
    """A quota lock was requested out of the documented order (a bug)."""


def check_quota_name(quota: str) -> str:
    """``quota`` if it is a usable quota name; raises :class:`UnsafeName` else."""
    if not is_verbatim(quota):
        raise UnsafeName(f"bad quota name {quota!r}")
    return quota


def _escape(text: str) -> str:
    """Percent-escape as :mod:`imiptools.periods` does; '' becomes '-'."""
    if not text:
        return "-"
    if text == "-":
        return "%2D"
    if re.fullmatch(_PLAIN, text):  # the common case, without quote()'s cost
        return text
    return quote(text, safe=_SAFE, errors="surrogatepass")


def _unescape(text: str) -> str:
    if text == "-":
        return ""
    return unquote(text, errors="surrogatepass") if "%" in text else text


def booking_line(booking: QuotaBooking) -> str:
    """One booking record as a line (no newline)."""
    fields = (booking.user, booking.resource, booking.uid, booking.rid)
    times = (format_utc(booking.start), format_utc(booking.end))
    return "\t".join((*map(_escape, fields), *times))


def parse_booking(line: str) -> QuotaBooking:
    """Inverse of :func:`booking_line`; raises ValueError."""
    parts = line.split("\t")
    if len(parts) != BOOKING_FIELDS:
        raise ValueError(f"expected {BOOKING_FIELDS} tab-separated fields")
    user, resource, uid, rid = map(_unescape, parts[:4])
    start, end = parse_utc(parts[4]), parse_utc(parts[5])
    if not start < end:
        raise ValueError("start must be before end")
    return QuotaBooking(user, resource, uid, rid, start, end)


def booking_order(booking: QuotaBooking) -> tuple[datetime, tuple[str, str, str, str]]:
    """The order a user's records are kept in: by start, then identity."""
    return (booking.start, booking.key)


def parse_who(text: str) -> str:
    """WHO of a limit: ``*``, ``@group`` or an address (normalised)."""
    if text == EVERYONE:
        return text
    if text.startswith(GROUP_PREFIX):
        return GROUP_PREFIX + parse_group(text[1:])
    return parse_user(text)


def parse_user(text: str) -> str:
    """A user address, normalised to ``mailto:...``; ValueError if unusable."""
    try:
        return normalise_user(text)
    except UnsafeName as exc:
        raise ValueError(str(exc)) from exc


def parse_group(text: str) -> str:
    """A group name: a verbatim safe component (``staff``); ValueError else."""
    if not is_verbatim(text):
        raise ValueError(f"bad group name {text!r}")
    return text


def parse_limit(line: str) -> QuotaLimit:
    """One ``limits`` line ``WHO MEASURE PERIOD VALUE``; raises ValueError."""
    words = line.split()
    if len(words) != 4:
        raise ValueError("expected WHO MEASURE PERIOD VALUE")
    who, measure, period, value = words
    return QuotaLimit(parse_who(who), measure, parse_period(period), parse_value(measure, value))


def parse_group_line(line: str) -> tuple[str, str]:
    """One ``groups`` line ``ADDRESS GROUP``; raises ValueError."""
    words = line.split()
    if len(words) != 2:
        raise ValueError("expected ADDRESS GROUP")
    return parse_user(words[0]), parse_group(words[1])


def parse_tzid(line: str) -> str:
    """The ``tzid`` line: a zone name :func:`imiptools.dates.resolve_zone` knows."""
    if resolve_zone(line) is None:
        raise ValueError(f"unknown time zone {line!r}")
    return line


#: The parser of each admin list's lines.
ADMIN_PARSERS: dict[str, Callable[[str], object]] = {
    "limits": parse_limit,
    "groups": parse_group_line,
    "exempt": parse_user,
    "delegates": parse_user,
    "tzid": parse_tzid,
}


def content_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, stripped line) of lines that are not blank or comments."""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield number, line


def validate_admin_text(name: str, text: str) -> None:
    """Raise ValueError (``name:LINE: why``) for the first bad line of the
    admin list ``name`` (KeyError for a name that is not one)."""
    parse = ADMIN_PARSERS[name]
    for number, line in content_lines(text):
        try:
            parse(line)
        except ValueError as exc:
            raise ValueError(f"{name}:{number}: {exc}") from exc


def same_event(
    booking: QuotaBooking, resource: str, uid: str, since: datetime, keys: Collection[object]
) -> bool:
    """Whether ``booking`` is a record of (resource, uid) that a replacement drops:
    one that has not ended at ``since``, or one that a new record replaces."""
    if (booking.resource, booking.uid) != (resource, uid):
        return False
    return booking.end > since or booking.key in keys


@dataclass(frozen=True)
class QuotaState:
    """A consistent reading of one quota group (taken under its lock).

    ``zone`` is the zone of the ``tzid`` list, None when there is none
    (the deciding resource's zone applies then).
    """

    name: str
    limits: tuple[QuotaLimit, ...] = ()
    groups: Mapping[str, str] = field(default_factory=dict)
    exempt: frozenset[str] = frozenset()
    delegates: tuple[str, ...] = ()
    bookings: tuple[QuotaBooking, ...] = ()
    zone: tzinfo | None = None

    def members(self, group: str | None) -> set[str]:
        """The users of ``group`` (none for None)."""
        return {user for user, name in self.groups.items() if group and name == group}
