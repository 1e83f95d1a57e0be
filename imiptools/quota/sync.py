"""Quota records derived from a resource's store: regenerate and verify.

A resource whose ``scheduling_function`` has ``check_quota QUOTA`` or
``schedule_across_quota QUOTA`` lines records each booked instance in the
quota (see :mod:`imiptools.scheduling.quota`). The records of its events
that have not ended are derived data: they equal the resource's stored
free/busy periods. :func:`sync_resource` compares them and, asked to,
rewrites them: ``imip-admin make-freebusy`` regenerates them (so instances of
indefinite series that enter the window are counted), ``imip-admin check``
reports differences and ``--repair`` fixes them.

The caller holds the resource's store lock; the quota locks are taken here,
after it, in name order (the documented lock order).
"""

from __future__ import annotations

from collections.abc import Callable

from imiptools.functionlines import parse_function_lines
from imiptools.quota.base import QuotaLedger
from imiptools.quota.limits import QuotaBooking
from imiptools.quota.model import RECORDING_FUNCTIONS, parse_user
from imiptools.records import UserRecords
from imiptools.stores.base import ALL_TIME

#: The functions whose bookings are recorded in their quota.
RECORDING = RECORDING_FUNCTIONS


def recorded_quotas(preference: Callable[[str], str]) -> list[str]:
    """The quotas in which the resource records its bookings (sorted)."""
    try:
        lines = parse_function_lines(preference("scheduling_function"))
    except ValueError:
        return []
    return sorted({args[0] for name, args in lines if name in RECORDING and args})


def expected(records: UserRecords) -> dict[str, list[QuotaBooking]]:
    """The records the resource's stored free/busy calls for, by UID: one per
    period that has not ended (free/busy is itself derived from the stored
    events by the agents and ``make-freebusy``; ``check`` verifies that)."""
    wanted: dict[str, list[QuotaBooking]] = {}
    for period in records.store.get_freebusy(records.user, records.now, ALL_TIME[1]):
        if period.end <= records.now or not period.organiser:
            continue
        user = parse_user(period.organiser)
        booking = QuotaBooking(
            user, records.user, period.uid, period.recurrenceid, period.start, period.end
        )
        wanted.setdefault(period.uid, []).append(booking)
    return wanted


def sync_resource(
    records: UserRecords,
    preference: Callable[[str], str],
    ledger: QuotaLedger,
    repair: bool,
) -> list[str]:
    """Differences between the resource's quota records and its store, one
    plain sentence each; with ``repair``, the records are made to match.

    Only records that have not ended are compared (past ones stay for period
    limits until ``quota expire``).
    """
    quotas = recorded_quotas(preference)
    if not quotas:
        return []
    wanted = expected(records)
    findings = []
    with ledger.locked(quotas, ledger.timeout):
        for quota in quotas:
            current = _current(ledger, quota, records)
            for uid in sorted(set(wanted) | set(current)):
                want = sorted(wanted.get(uid, []), key=_key)
                if want != sorted(current.get(uid, []), key=_key):
                    findings.append(
                        f"quota {quota}: the records of {uid!r} at {records.user} do not"
                        f" match its bookings ({len(current.get(uid, []))} recorded,"
                        f" {len(want)} booked)"
                    )
                    if repair:
                        ledger.replace_event(quota, records.user, uid, want, records.now)
    return findings


def _current(
    ledger: QuotaLedger, quota: str, records: UserRecords
) -> dict[str, list[QuotaBooking]]:
    found: dict[str, list[QuotaBooking]] = {}
    for booking in ledger.bookings(quota):
        if booking.resource == records.user and booking.end > records.now:
            found.setdefault(booking.uid, []).append(booking)
    return found


def _key(booking: QuotaBooking) -> tuple[object, ...]:
    return (booking.start, booking.key)
