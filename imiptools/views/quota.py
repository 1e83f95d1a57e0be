"""Quota groups as people see them: their lists, their use, their expiry.

:func:`quota_summary` is what ``imip-admin quota show`` prints (the admin
lists as written, how many records), :func:`report_rows` what ``quota
report`` prints (each user's and group's use and remaining allowance for
the period under way, see :mod:`imiptools.quota.limits`), and
:func:`expire_quotas` what ``quota expire`` does (retire records that can
no longer count for any limit).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, tzinfo

from imiptools.deferred import dataclass
from imiptools.quota.base import QuotaLedger
from imiptools.quota.limits import (
    GROUP_PREFIX,
    applicable,
    expiry_cutoff,
    format_amount,
    members_for,
    usage,
    window_of,
)
from imiptools.quota.model import ADMIN_LISTS, QuotaState


@dataclass(frozen=True)
class QuotaSummary:
    """A quota group's admin lists (non-blank lines as written, by list
    name in :data:`~imiptools.quota.model.ADMIN_LISTS` order) and how many
    records it holds."""

    name: str
    location: str
    lists: dict[str, list[str]]
    bookings: int


def quota_summary(ledger: QuotaLedger, state: QuotaState) -> QuotaSummary:
    """The summary of the quota ``state`` was read from."""
    lists = {
        name: [line for line in ledger.admin_lines(state.name, name) if line.strip()]
        for name in ADMIN_LISTS
    }
    return QuotaSummary(state.name, ledger.location(state.name), lists, len(state.bookings))


@dataclass(frozen=True)
class ReportRow:
    """One limit as it applies now: ``who`` (a user, or ``@group`` for a
    pooled allowance), the limit's line, the amounts used and remaining,
    and when the period under way began (ISO 8601 in the quota's zone).
    An exempt user has one row, ``limit`` ``exempt``, the rest empty."""

    who: str
    limit: str
    used: str
    remaining: str
    start: str

    def as_dict(self) -> dict[str, str]:
        """The row as ``quota report --json`` gives it."""
        return {
            "who": self.who,
            "limit": self.limit,
            "used": self.used,
            "remaining": self.remaining,
            "from": self.start,
        }


def report_rows(
    state: QuotaState, now: datetime, users: Sequence[str] | None = None
) -> list[ReportRow]:
    """The rows of ``users`` (default: everyone the quota knows), each
    group's pooled row once, in the quota's zone (UTC without one)."""
    zone = state.zone or UTC
    chosen = known_users(state) if users is None else users
    return _unique(row for user in chosen for row in _rows(state, user, now, zone))


def known_users(state: QuotaState) -> list[str]:
    """Everyone the quota knows: with bookings, in a group, or named in a limit."""
    named = {limit.who for limit in state.limits if limit.who.startswith("mailto:")}
    return sorted({b.user for b in state.bookings} | set(state.groups) | named)


def _unique(rows: Iterable[ReportRow]) -> list[ReportRow]:
    """Rows in order, a group's pooled row once (every member has it)."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for row in rows:
        if (row.who, row.limit) not in seen:
            seen.add((row.who, row.limit))
            unique.append(row)
    return unique


def _rows(state: QuotaState, user: str, now: datetime, zone: tzinfo) -> list[ReportRow]:
    if user in state.exempt:
        return [ReportRow(user, "exempt", "", "", "")]
    group = state.groups.get(user)
    rows = []
    for limit in applicable(state.limits, user, group):
        who = members_for(limit, user, state.members(group))
        used = usage(state.bookings, who, limit, now, zone)
        remaining = limit.value - used  # type: ignore[operator]
        start = window_of(limit, now, zone)[0]
        rows.append(
            ReportRow(
                limit.who if limit.who.startswith(GROUP_PREFIX) else user,
                limit.to_line(),
                format_amount(used),
                format_amount(remaining),
                start.astimezone(zone).isoformat(),
            )
        )
    return rows


def expire_quota(ledger: QuotaLedger, state: QuotaState, now: datetime) -> int:
    """Retire the records of the quota ``state`` was read from that ended
    and can no longer count for any of its limits; how many."""
    cutoff = expiry_cutoff(state.limits, now, state.zone or UTC)
    return ledger.expire(state.name, cutoff, now)
