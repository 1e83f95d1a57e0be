"""The backend interface: a site's data parts and the hooks only a backend can answer.

A backend module registers a factory in the ``imip_agent.backends``
entry-point group (``file = "imiptools.backends.file:open_backend"`` in
pyproject.toml): called with the site's
:class:`~imiptools.config.Settings`, it returns a :class:`Backend`. Opening
must be cheap and must not write (``imip-admin init`` creates what is
missing); the parts open their files or connections on first use.

Generic code (programs, maintenance, ``imip-admin check``) uses the four
parts through their interfaces and asks the backend, through the hooks
below, for what depends on how the data is kept. Every hook has a default
that suits a backend with nothing of the kind (no layout of its own to
check, no owner to hand data to).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path

from imiptools.config import Settings
from imiptools.deferred import dataclass
from imiptools.preferences import PreferenceSource
from imiptools.quota.base import QuotaLedger
from imiptools.spool import Outbox
from imiptools.stores.base import Store

#: Whether backends keep their connections from one site to the next in
#: this process (see :func:`reuse_connections`).
_REUSE = {"connections": False}


def reuse_connections() -> None:
    """From now on, let backends keep connections open between sites: for a
    long-running process (the LMTP service's workers) that opens a site per
    message, so that a database backend connects once per process instead
    of once per message. Each reuse starts clean (see the backend)."""
    _REUSE["connections"] = True


def reusing_connections() -> bool:
    """Whether :func:`reuse_connections` was called in this process."""
    return _REUSE["connections"]


@dataclass(frozen=True)
class Problem:
    """Something wrong in a backend's own layout, in plain words (for
    ``imip-admin check``).

    ``note``: worth saying, not a fault. ``repair``: what the backend does
    to repair it, when it can alone (remove a stray file). ``rederive``:
    regenerating the user's free/busy from the stored events repairs it.
    """

    text: str
    note: bool = False
    repair: Callable[[], object] | None = None
    rederive: bool = False


class Backend:
    """A site's store, quota ledger, preferences and outbox, and the hooks."""

    #: The name the ``backend`` setting gives (``file``).
    name: str
    settings: Settings
    store: Store
    ledger: QuotaLedger
    preferences: PreferenceSource
    outbox: Outbox

    @property
    def store_location(self) -> str:
        """Where the store is kept, for people (and to tell two stores apart)."""
        return self.name

    # -- imip-admin check ----------------------------------------------------------

    def site_problems(self, users: Collection[str]) -> list[Problem]:
        """Problems outside the records of ``users`` (checked on their own),
        found without reading through anything the agents would refuse."""
        return []

    def user_problems(self, user: str) -> list[Problem]:
        """Problems that stop ``user``'s records from being read at all
        (they are reported alone, and nothing is read or repaired)."""
        return []

    def record_problems(self, user: str) -> list[Problem]:
        """Problems of the layout of ``user``'s records (the caller holds
        the user's lock)."""
        return []

    def preference_problems(self, user: str) -> list[Problem]:
        """Problems of the layout of ``user``'s preferences (not their values)."""
        return []

    def preference_users(self) -> list[str]:
        """The users who have preferences, whether or not the store holds
        records of theirs (``check`` checks their values too); none by default."""
        return []

    # -- calendar users --------------------------------------------------------------

    def create_user(self, user: str) -> None:
        """Make room for ``user``'s records and preferences (idempotent)."""
        with self.store.lock(user, self.settings.lock_timeout):
            pass

    def hand_over(self, user: str, preferences: Collection[str]) -> None:
        """Give what an admin just created for ``user`` (the records, the
        ``preferences`` named) to the site's owner, so the agents can write it."""

    def initialise(self) -> list[str]:
        """Create or upgrade what the backend keeps outside the directories
        (a database's schema) for ``imip-admin init``; idempotent. Returns
        what was done, a line each (none by default)."""
        return []

    def connection_check(self) -> tuple[bool, str] | None:
        """For ``check-install``: whether the backend's data can be reached
        from here, in words (None: nothing to connect to)."""
        return None

    def data_directories(self) -> dict[str, Path]:
        """The directories the agents must be able to write, by setting name
        (``imip-admin init`` creates them, ``check-install`` checks them);
        none by default."""
        return {}

    def missing_locations(self) -> dict[str, str]:
        """What the agents need and does not exist, by setting name
        (``{"store": "/var/lib/imip-agent/store"}``); empty when nothing is
        missing. The agents refuse to run without it (exit 75, see
        :class:`~imiptools.errors.SiteMissing`) and ``imip-admin init``
        creates it. Nothing by default (a backend without directories).
        """
        return {}

    def user_locations(self, user: str) -> list[str]:
        """Where data of ``user`` is kept, for people ([] when none is)."""
        return []
