"""Quotas: fair use of shared resources, per user and per group (issue 5).

:mod:`imiptools.quota.base` is the ledger interface (quota groups, their
admin lists and booking records, locks in a fixed order, writes deferred
into a unit of work's transaction); :mod:`imiptools.quota.journal` is the
file ledger behind it (files an admin can read, atomic updates under
flock) and :mod:`imiptools.quota.overlay` an in-memory overlay for
forecasts. :mod:`imiptools.quota.model` holds the values and their text
forms, :mod:`imiptools.quota.limits` the pure arithmetic (usage per
period, which limits apply, the first that fails);
:mod:`imiptools.quota.sync` derives a resource's records from its store
(for ``make-freebusy`` and ``check``). The scheduling functions that use
them are in :mod:`imiptools.scheduling.quota`.
"""

from imiptools.quota.base import QuotaLedger
from imiptools.quota.limits import QuotaBooking, QuotaLimit, Violation, check, usage
from imiptools.quota.model import LockOrderError, QuotaState

__all__ = [
    "LockOrderError",
    "QuotaBooking",
    "QuotaLedger",
    "QuotaLimit",
    "QuotaState",
    "Violation",
    "check",
    "usage",
]
