"""A ledger overlay: another ledger seen with changes kept in memory (what-if).

:class:`OverlayLedger` reads its base and keeps every write to itself, as
:class:`~imiptools.stores.overlay.OverlayStore` does for a store, so that
``imip-admin whatif`` can run the quota functions and their confirmation
steps without changing the real ledger. It takes no lock (nothing is
written to the base, and a forecast must not wait for the agents) and
ignores :meth:`OverlayLedger.defer`: its writes are in memory at once and
go nowhere when the run ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext

from imiptools.quota.base import Change, QuotaLedger
from imiptools.quota.limits import QuotaBooking
from imiptools.quota.model import booking_order, check_quota_name
from imiptools.stores.transaction import Transaction


class OverlayLedger(QuotaLedger):
    """``base`` with this instance's writes applied in memory."""

    def __init__(self, base: QuotaLedger) -> None:
        self.base = base
        self.timeout = base.timeout
        self._bookings: dict[tuple[str, str], tuple[QuotaBooking, ...]] = {}
        self._admin: dict[tuple[str, str], str] = {}

    def locked(self, quotas: Iterable[str], timeout: float) -> AbstractContextManager[None]:
        """A no-op (quota names are still checked)."""
        for quota in quotas:
            check_quota_name(quota)
        return nullcontext()

    def defer(self, transaction: Transaction | None) -> None:
        """Ignored: writes stay in memory."""

    def quotas(self) -> list[str]:
        """The base's quotas, and those written to here."""
        return sorted(set(self.base.quotas()) | {q for q, _ in self._admin})

    def exists(self, quota: str) -> bool:
        """Whether the base has ``quota``, or it was written to here."""
        return self.base.exists(quota) or any(q == quota for q, _ in self._admin)

    def location(self, quota: str | None = None, name: str | None = None) -> str:
        """The base's."""
        return self.base.location(quota, name)

    def admin_lines(self, quota: str, name: str) -> list[str]:
        """As written here, else the base's."""
        text = self._admin.get((check_quota_name(quota), name))
        return self.base.admin_lines(quota, name) if text is None else text.splitlines()

    def store_admin_text(self, quota: str, name: str, text: str) -> None:
        """Kept in memory."""
        self._admin[(check_quota_name(quota), name)] = text

    def booking_users(self, quota: str) -> list[str]:
        """The base's users, with those written here added or taken away."""
        users = set(self.base.booking_users(quota))
        for (q, user), found in self._bookings.items():
            if q == quota:
                users = users | {user} if found else users - {user}
        return sorted(users)

    def user_bookings(self, quota: str, user: str) -> tuple[QuotaBooking, ...]:
        """As written here, else the base's."""
        found = self._bookings.get((quota, user))
        return self.base.user_bookings(quota, user) if found is None else found

    def update_user(self, quota: str, user: str, change: Change) -> int:
        """Apply ``change`` in memory; returns how many records differ."""
        old = self.user_bookings(check_quota_name(quota), user)
        new = change(old)
        differ = len(set(old) ^ set(new))
        if differ:
            self._bookings[(quota, user)] = tuple(sorted(new, key=booking_order))
        return differ
