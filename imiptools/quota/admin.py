"""Changing a quota group's admin lists: what ``imip-admin quota set-*`` does.

Each function takes values already parsed (normalised users, a
:class:`~imiptools.quota.limits.QuotaLimit`), rewrites one admin list of
the ledger, validated and atomic under the quota's lock (see
:meth:`~imiptools.quota.base.QuotaLedger.write_admin_file`), and raises
ValueError (``LIST:LINE: why``) when a line would be bad or a stored list
cannot be read; nothing is written then.
"""

from __future__ import annotations

from collections.abc import Iterable

from imiptools.config import parse_duration
from imiptools.quota.base import QuotaLedger
from imiptools.quota.limits import EVERYONE, GROUP_PREFIX, QuotaLimit, parse_value
from imiptools.quota.model import parse_group, parse_user, parse_who

#: The calendar periods and ``outstanding``, as ``set-limit --per`` names them.
PERIOD_WORDS = ("day", "week", "month", "outstanding")


def limit_of(who: str, limit: str, per: str = "outstanding") -> QuotaLimit:
    """The limit ``imip-admin quota set-limit QUOTA WHO LIMIT --per PER``
    sets, from those words as an admin types them (the manager's quota form
    reads them with this too): WHO is ``*``, an address or a group name
    (``staff`` or ``@staff``); LIMIT a number of bookings (``20``) or booked
    time (``PT6H``, RFC 5545 §3.3.6); PER ``day``, ``week``, ``month``,
    ``outstanding`` or a duration for a rolling window (``P7D``).
    Raises ValueError saying which word is bad and why."""
    chosen, period = _who(who), _period(per)
    measure = "count" if limit.isdigit() else "time"
    try:
        value = parse_value(measure, limit)
    except ValueError as exc:
        raise ValueError(f"bad limit: {exc}") from exc
    return QuotaLimit(chosen, measure, period, value)


def _who(text: str) -> str:
    """WHO: '*', an address, or a group name (``staff`` or ``@staff``)."""
    try:
        if text == EVERYONE or "@" in text.lstrip(GROUP_PREFIX):
            return parse_who(text)
    except ValueError as exc:
        raise ValueError(f"bad address: {exc}") from exc
    try:
        return GROUP_PREFIX + parse_group(text.lstrip(GROUP_PREFIX))
    except ValueError as exc:
        raise ValueError(f"bad group name: {exc}") from exc


def _period(text: str) -> str:
    """PER: a word of :data:`PERIOD_WORDS`, or ``rolling:`` a positive duration."""
    if text in PERIOD_WORDS:
        return text
    try:
        window = parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"bad --per {text!r}: day, week, month, outstanding or P7D") from exc
    if window.total_seconds() <= 0:
        raise ValueError(f"bad --per {text!r}: a rolling window must be positive")
    return f"rolling:{text.upper()}"


def set_limit(ledger: QuotaLedger, quota: str, limit: QuotaLimit, remove: bool = False) -> None:
    """Add the line of ``limit``, replacing any for the same (WHO, measure,
    period); with ``remove``, only take that line out."""
    same = [limit.who, limit.measure, limit.period]
    kept = [line for line in ledger.admin_lines(quota, "limits") if line.split()[:3] != same]
    ledger.write_admin_file(quota, "limits", kept if remove else [*kept, limit.to_line()])


def set_group(ledger: QuotaLedger, quota: str, user: str, group: str | None) -> None:
    """Put ``user`` (normalised) in ``group`` (one group per user in a
    quota); None takes them out. Lines naming the user, comments and lines
    that name no usable user are dropped; blank lines stay."""
    kept = [
        line
        for line in ledger.admin_lines(quota, "groups")
        if not line.split() or _same_user(line.split()[0], user) is False
    ]
    if group is not None:
        kept.append(f"{user} {group}")
    ledger.write_admin_file(quota, "groups", kept)


def _same_user(word: str, user: str) -> bool | None:
    """Whether ``word`` names ``user`` (None for a comment or a bad word)."""
    if word.startswith("#"):
        return None
    try:
        return parse_user(word) == user
    except ValueError:
        return None


def set_delegates(ledger: QuotaLedger, quota: str, resources: Iterable[str]) -> None:
    """Make ``resources`` (normalised URIs) the ones that stand in for each other."""
    ledger.write_admin_file(quota, "delegates", list(resources))


def set_exempt(ledger: QuotaLedger, quota: str, users: Iterable[str], remove: bool) -> None:
    """Add ``users`` (normalised) to the exempt ones, or with ``remove`` take
    them out; the list is written sorted. The whole quota must be readable
    (as :meth:`~imiptools.quota.base.QuotaLedger.snapshot` reads it)."""
    current = ledger.snapshot(quota).exempt
    chosen = set(users)
    ledger.write_admin_file(
        quota, "exempt", sorted(current - chosen if remove else current | chosen)
    )


def set_zone(ledger: QuotaLedger, quota: str, tzid: str) -> None:
    """Count days, weeks and months in the zone ``tzid``."""
    ledger.write_admin_file(quota, "tzid", [tzid])
