"""What the manager's blueprints share with the application, without
importing it (it imports them): the services :func:`create_app` keeps,
the site opened per request, the user's own calendar, public views.

The application (:mod:`imip_agent.manager.app`) keeps its services in
``app.extensions["imip_manager"]`` and the site of a request in
``g.site``; these functions read the same places.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, Protocol, TypeVar

from flask import abort, current_app, g

from imip_agent.manager.security import AccessConfig
from imiptools.config import Settings
from imiptools.dates import Clock
from imiptools.errors import ImipError
from imiptools.mail.send import Sender
from imiptools.site import Site, open_site
from imiptools.stores.names import normalise_user

View = TypeVar("View", bound=Callable[..., Any])


class Services(Protocol):
    """What the application was made with."""

    settings: Settings
    clock: Clock
    sender: Sender
    access: AccessConfig


def services() -> Services:
    """The application's services."""
    found: Services = current_app.extensions["imip_manager"]
    return found


def site() -> Site:
    """The site, opened once per request."""
    if "site" not in g:
        made = services()
        g.site = open_site(made.settings, made.clock)
    opened: Site = g.site
    return opened


def own(address: str) -> str:
    """The calendar user of ``address`` if it is the user's own, else 403
    (404 when it is no address)."""
    try:
        user = normalise_user(address)
    except (ImipError, ValueError):
        abort(404)
    if user != g.get("user"):
        abort(403)
    return user


def day_argument(text: str | None, default: date) -> date:
    """The day a query argument names (ISO 8601), ``default`` when it is
    absent; 404 when it is no date."""
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        abort(404)


def public(view: View) -> View:
    """Mark ``view`` as open to anyone (no login: the login form, feeds)."""
    view.imip_public = True  # type: ignore[attr-defined]
    return view


def is_public(view: Callable[..., Any] | None) -> bool:
    """Whether ``view`` was marked with :func:`public`."""
    return bool(getattr(view, "imip_public", False))
