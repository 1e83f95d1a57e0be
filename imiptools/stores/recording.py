"""The recording store: a unit of work's view of a store, written at commit.

:class:`RecordingStore` is an :class:`~imiptools.stores.overlay.OverlayStore`
(reads see the base with this unit's changes applied; writes stay in
memory) that also records each write, in order, into its
:class:`~imiptools.stores.transaction.Transaction`. :meth:`commit` hands
the transaction to the base (:meth:`~imiptools.stores.base.Store.commit`),
which makes every recorded write and the messages to send happen together;
:meth:`rollback` forgets them. Either way the overlay is emptied, so that
reads see the base again.

Locking is the base's: the unit of work holds the base's lock for the user
(:meth:`lock` passes through, unlike a what-if overlay's).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

from imiptools.stores.base import Store
from imiptools.stores.overlay import OverlayStore
from imiptools.stores.transaction import WRITES, Transaction


def _recorded(name: str) -> Callable[..., None]:
    """The overriding write method ``name``: record the call, then apply it
    to the overlay. Iterables of periods are made lists first (they are
    read twice)."""

    def write(self: RecordingStore, *args: Any) -> None:
        fixed = tuple(
            list(a) if not isinstance(a, str | bytes) and isinstance(a, Iterable) else a
            for a in args
        )
        self.transaction.calls.append((name, fixed))
        getattr(OverlayStore, name)(self, *fixed)

    write.__name__ = name
    write.__doc__ = f"Record ``{name}`` for the commit (see the module docstring)."
    return write


class RecordingStore(OverlayStore):
    """``base`` seen and changed by one unit of work of ``transaction.user``."""

    def __init__(self, base: Store, transaction: Transaction) -> None:
        super().__init__(base)
        self.transaction = transaction

    def lock(self, user: str, timeout: float) -> AbstractContextManager[None]:
        """The base's lock (the unit of work holds it)."""
        return self.base.lock(user, timeout)

    def keeps_derivations(self) -> bool:
        """Whether the base keeps derivation records (see :meth:`set_derivation`)."""
        return self.base.keeps_derivations()

    def get_derivation(self, user: str, uid: str) -> str | None:
        """The record kept for the commit, else the base's."""
        if uid in self.transaction.derivations:
            return self.transaction.derivations[uid]
        return self.base.get_derivation(user, uid)

    def set_derivation(self, user: str, uid: str, text: str | None) -> None:
        """Keep the derivation record for the commit, to be written after
        the store calls (see :attr:`Transaction.derivations`); reads do not
        see it (it only saves ``imip-admin check`` work)."""
        self.transaction.derivations[uid] = text

    def commit(self, transaction: Transaction | None = None) -> None:
        """Commit what was recorded to the base, then read the base again."""
        self.base.commit(self.transaction if transaction is None else transaction)
        self.rollback()

    def rollback(self) -> None:
        """Forget what was recorded (nothing reached the base)."""
        self.transaction.clear()
        OverlayStore.__init__(self, self.base)


for _name in WRITES:
    setattr(RecordingStore, _name, _recorded(_name))
