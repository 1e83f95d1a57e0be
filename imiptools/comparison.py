"""Comparing two sites: what ``imip-admin check --compare`` reports.

After ``imip-admin copy-store`` moved a site from one backend to another
(files to PostgreSQL, or back), :func:`site_differences` says, one plain
sentence each, where the two differ: a user's records (objects, overridden
instances, cancellations, counters, free/busy, others' free/busy, offers,
the request queue, the decision log), their preferences, and the quota
groups (admin lists and booking records). Everything is read through the
interfaces only, so any two backends can be compared; an empty list means
the copy is exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from imiptools.preferences import PreferenceSource
from imiptools.quota.base import QuotaLedger
from imiptools.quota.model import ADMIN_LISTS
from imiptools.site import Site
from imiptools.stores.base import ALL_TIME, Store

#: One aspect of a user's records: a name and how to read it from a store.
Aspect = tuple[str, Callable[[Store, str], Any]]


def _events(store: Store, user: str) -> dict[str, tuple[Any, ...]]:
    """Each UID (current or cancelled) with everything kept of it."""
    uids = set(store.object_uids(user)) | set(store.cancelled_object_uids(user))
    return {uid: _event(store, user, uid) for uid in sorted(uids)}


def _event(store: Store, user: str, uid: str) -> tuple[Any, ...]:
    overrides = {
        rid: store.get_recurrence(user, uid, rid) for rid in store.recurrence_ids(user, uid)
    }
    cancelled = {
        rid: store.get_cancelled_recurrence(user, uid, rid)
        for rid in store.cancelled_recurrence_ids(user, uid)
    }
    counters = sorted(store.get_counters(user, uid).items())
    return (
        store.get_object(user, uid),
        overrides,
        store.get_cancelled_object(user, uid),
        cancelled,
        counters,
    )


def _others(store: Store, user: str) -> dict[str, Any]:
    return {
        other: store.get_freebusy_other(user, other, *ALL_TIME)
        for other in store.freebusy_other_users(user)
    }


ASPECTS: list[Aspect] = [
    ("free/busy", lambda store, user: store.all_freebusy(user)),
    ("free/busy of others", _others),
    ("offers", lambda store, user: store.all_offers(user)),
    ("request queue", lambda store, user: store.get_requests(user)),
    ("decision log", lambda store, user: list(store.decisions(user))),
]


def record_differences(a: Store, b: Store, user: str) -> list[str]:
    """Where ``user``'s records in ``a`` and ``b`` differ."""
    found = []
    events_a, events_b = _events(a, user), _events(b, user)
    for uid in sorted(events_a.keys() | events_b.keys()):
        if uid not in events_b:
            found.append(f"{user}: event {uid!r} only in the first site")
        elif uid not in events_a:
            found.append(f"{user}: event {uid!r} only in the second site")
        elif events_a[uid] != events_b[uid]:
            found.append(f"{user}: event {uid!r} differs")
    for name, read in ASPECTS:
        if read(a, user) != read(b, user):
            found.append(f"{user}: the {name} differs")
    return found


def preference_differences(a: PreferenceSource, b: PreferenceSource, user: str) -> list[str]:
    """Where ``user``'s preferences differ."""
    names = sorted(set(a.names(user)) | set(b.names(user)))
    return [
        f"{user}: preference {name} differs"
        for name in names
        if a.get(user, name) != b.get(user, name)
    ]


def quota_differences(a: QuotaLedger, b: QuotaLedger) -> list[str]:
    """Where the quota groups differ (their lists and records)."""
    found = []
    quotas_a, quotas_b = set(a.quotas()), set(b.quotas())
    for quota in sorted(quotas_a ^ quotas_b):
        where = "first" if quota in quotas_a else "second"
        found.append(f"quota {quota}: only in the {where} site")
    for quota in sorted(quotas_a & quotas_b):
        found += [
            f"quota {quota}: list {name} differs"
            for name in ADMIN_LISTS
            if a.admin_lines(quota, name) != b.admin_lines(quota, name)
        ]
        users = sorted(set(a.booking_users(quota)) | set(b.booking_users(quota)))
        found += [
            f"quota {quota}: the records of {user} differ"
            for user in users
            if a.user_bookings(quota, user) != b.user_bookings(quota, user)
        ]
    return found


def site_differences(a: Site, b: Site, users: Iterable[str] | None = None) -> list[str]:
    """Where sites ``a`` and ``b`` differ: the users' records and preferences
    (default: every user either holds) and, for every user, the quotas."""
    chosen = sorted(set(a.store.users()) | set(b.store.users())) if users is None else users
    found = []
    everyone = users is None
    for user in chosen:
        found += record_differences(a.store, b.store, user)
        found += preference_differences(a.preferences, b.preferences, user)
    if everyone:
        found += quota_differences(a.ledger, b.ledger)
    return found
