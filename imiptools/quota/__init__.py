"""Quotas: fair use of shared resources, per user and per group (issue 5).

:mod:`imiptools.quota.journal` reads and updates the quota groups under the
journal directory (files an admin can read, atomic updates under flock, a
fixed lock order); :mod:`imiptools.quota.limits` holds the values and the
pure arithmetic (usage per period, which limits apply, the first that
fails); :mod:`imiptools.quota.sync` derives a resource's records from its
store (for ``make-freebusy`` and ``check``). The scheduling functions that
use them are in :mod:`imiptools.scheduling.quota`.
"""

from imiptools.quota.journal import LockOrderError, QuotaJournal
from imiptools.quota.limits import QuotaBooking, QuotaLimit, Violation, check, usage

__all__ = [
    "LockOrderError",
    "QuotaBooking",
    "QuotaJournal",
    "QuotaLimit",
    "Violation",
    "check",
    "usage",
]
