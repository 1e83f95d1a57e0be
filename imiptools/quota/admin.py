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

from imiptools.quota.base import QuotaLedger
from imiptools.quota.limits import QuotaLimit
from imiptools.quota.model import parse_user


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
