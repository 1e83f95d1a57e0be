"""The composition root: one place that assembles a site from its settings.

:func:`open_site` reads the ``backend`` setting (``[agent] backend``,
default ``file``), finds the backend of that name in the
``imip_agent.backends`` entry-point group (the mechanism third-party
scheduling functions use too: see :mod:`imiptools.scheduling`) and returns
a :class:`Site`: the calendar store, the quota ledger, the preference
source, the outbox and the clock, with the settings and the backend's
hooks. Programs (the agents, ``imip-admin``), :mod:`imiptools.check`,
:mod:`imiptools.maintenance` and the views take everything from a site;
nothing outside a backend names a backend's classes.

As with scheduling functions, the built-in backends (``file``, and
``postgresql``, loaded only when named since it needs psycopg2) are found
first, without scanning the installed packages' metadata (a cost every
delivery would pay), and an entry point is loaded only for another name.
A name nobody provides is a :class:`~imiptools.errors.ConfigError` (exit
75: the MTA keeps the mail while the admin fixes the configuration) that
names the known ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import field
from datetime import datetime
from pathlib import Path

from imiptools import agent
from imiptools.backends import file
from imiptools.backends.base import Backend, reuse_connections
from imiptools.config import Settings
from imiptools.dates import Clock, SystemClock, zone_or_utc
from imiptools.deferred import dataclass
from imiptools.errors import ConfigError
from imiptools.mail.keyring import Keyring
from imiptools.mail.send import Sender
from imiptools.preferences import Preferences, PreferenceSource
from imiptools.quota.base import QuotaLedger
from imiptools.records import UserRecords, Window
from imiptools.spool import Outbox
from imiptools.stores.base import Store

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "imip_agent.backends"

#: A backend factory: the site's settings -> its backend.
Factory = Callable[[Settings], Backend]

#: The backends that come with imip-agent (also declared as entry points).
BUILT_IN: dict[str, Factory] = {"file": file.open_backend}


def _postgresql() -> Factory:
    """The PostgreSQL backend's factory (its import needs psycopg2)."""
    from imiptools.backends.postgresql.backend import open_backend  # lazy: start-up (psycopg2)

    return open_backend


#: Those that need an optional dependency (psycopg2): a function importing
#: the factory, called only when a site names them (no metadata scanned).
OPTIONAL: dict[str, Callable[[], Factory]] = {"postgresql": _postgresql}


@dataclass(frozen=True)
class Site:
    """Everything a program or a job needs of the installation.

    ``store``, ``ledger``, ``preferences`` and ``outbox`` are the backend's
    parts (a caller may put others in their place with
    :func:`dataclasses.replace`, say overlays); ``backend`` answers the
    hooks of :class:`~imiptools.backends.base.Backend`. The agent's
    :class:`~imiptools.agent.Context` is built from these parts by the
    program that runs it.
    """

    settings: Settings
    backend: Backend
    store: Store
    ledger: QuotaLedger
    preferences: PreferenceSource
    outbox: Outbox
    clock: Clock = field(default_factory=SystemClock)
    #: The OpenPGP keys of the site's calendar users and their correspondents
    #: (nothing runs until a key is needed; no directory: no keys).
    keyring: Keyring | None = None

    def preferences_of(self, user: str) -> Preferences:
        """The effective preferences of ``user``."""
        return Preferences(user, self.preferences, self.settings.preference_defaults)

    def agent_context(
        self,
        sender: Sender,
        *,
        deliverer: Sender | None = None,
        settings: Settings | None = None,
        clock: Clock | None = None,
    ) -> agent.Context:
        """What an agent run needs of this site (with ``settings`` or
        ``clock`` instead of the site's, when given), sending with
        ``sender`` through the site's outbox, delivering with ``deliverer``."""
        return agent.Context(
            settings=settings or self.settings,
            store=self.store,
            preferences=self.preferences,
            clock=clock or self.clock,
            sender=sender,
            spool=self.outbox,
            deliverer=deliverer,
            ledger=self.ledger,
            keyring=self.keyring,
        )

    def records(self, user: str, now: datetime | None = None) -> UserRecords:
        """``user``'s records as the agents see them at ``now`` (default:
        the site's clock), in the user's zone and window."""
        preferences = self.preferences_of(user)
        zone = zone_or_utc(preferences.get("TZID"))
        window = Window.for_user(self.settings, preferences)
        when = self.clock.now() if now is None else now
        return UserRecords(self.store, user, zone, window, when)


def known_backends() -> list[str]:
    """The names of every backend: built in, or by entry point."""
    from importlib.metadata import entry_points  # lazy: start-up (metadata scanned only when asked)

    found = {point.name for point in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(found | set(BUILT_IN) | set(OPTIONAL))


def backend_factory(name: str) -> Factory:
    """The factory of backend ``name``: a built-in one, else the entry point
    of that name (loaded only then, as scheduling functions are).

    Raises ConfigError (75) for an unknown name (naming the known ones) or
    an entry point that cannot be loaded.
    """
    if name in BUILT_IN:
        return BUILT_IN[name]
    if name in OPTIONAL:
        return _loaded(name, OPTIONAL[name])
    from importlib.metadata import entry_points  # lazy: start-up (only when named)

    for point in entry_points(group=ENTRY_POINT_GROUP, name=name):
        return _loaded(name, point.load)
    known = ", ".join(known_backends())
    raise ConfigError(f"unknown backend {name!r} in [agent] backend (known: {known})")


def _loaded(name: str, load: Callable[[], Factory]) -> Factory:
    """The factory ``load`` returns for backend ``name``; ConfigError (75)
    when it cannot be loaded (a missing optional dependency, a broken
    plug-in: mail waits)."""
    try:
        return load()
    except Exception as exc:  # the admin must act; mail waits
        log.exception("cannot load backend %s", name)
        hint = ""
        if isinstance(exc, ModuleNotFoundError) and exc.name == "psycopg2":
            hint = " (install psycopg2: pip install 'imip-agent[postgresql]')"
        raise ConfigError(f"backend {name!r} cannot be loaded: {exc}{hint}") from exc


def keep_connections() -> None:
    """For a long-running process that opens a site per message (the LMTP
    service's workers): backends may keep their connections from one site
    to the next (see :func:`imiptools.backends.base.reuse_connections`)."""
    reuse_connections()


def keyring_home(settings: Settings) -> Path:
    """The GnuPG home of the site: ``[agent] keyring``, else ``keys``
    beside the store directory."""
    if settings.keyring:
        return Path(settings.keyring)
    return Path(settings.store).parent / "keys"


def open_site(settings: Settings, clock: Clock | None = None) -> Site:
    """The site ``settings`` describe, with ``clock`` (default: the system clock)."""
    backend = backend_factory(settings.backend)(settings)
    return Site(
        settings=settings,
        backend=backend,
        store=backend.store,
        ledger=backend.ledger,
        preferences=backend.preferences,
        outbox=backend.outbox,
        clock=clock or SystemClock(),
        keyring=Keyring(keyring_home(settings)),
    )
