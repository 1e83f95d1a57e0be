"""Who is asking, whether a form is theirs, and the headers every answer has.

Where users come from is configured (:class:`AccessConfig`, ``source``):

- ``remote-user`` (the default): the front web server authenticates
  (Apache or nginx, see ``conf/``) and passes the user on as the WSGI
  ``REMOTE_USER`` (mod_wsgi, or any server that sets it);
- ``header``: as well, a header that is believed only from the proxies
  configured as trusted: from anyone else it is ignored, so a client that
  reaches the application directly cannot name a user;
- ``password``: the application's own login form against the password
  file (:mod:`imip_agent.manager.login`); what the front server says is
  ignored.

Forms carry a token tied to the session (:func:`csrf_token`), compared in
constant time (:func:`csrf_valid`); the session cookie is ``SameSite=Strict``
and ``HttpOnly``. Every answer has a strict Content-Security-Policy (no
script, no inline style, no frames, forms only to this site).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Mapping, MutableMapping
from typing import Any

from imiptools.deferred import dataclass
from imiptools.errors import ImipError
from imiptools.stores.names import normalise_user

#: The Content-Security-Policy of every answer: nothing but this site's
#: own style sheets, images and scripts (the week's grid: static/grid.js
#: and the event-calendar it loads, which fetches the week's JSON from
#: here); no inline script or style; forms post only here; never in a frame.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
    "img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

#: Headers on every answer.
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

#: The session key holding a form token, and the form field carrying it.
CSRF_KEY = "csrf"
CSRF_FIELD = "csrf_token"


#: Where users may come from (:attr:`AccessConfig.source`).
SOURCES = ("remote-user", "header", "password")


@dataclass(frozen=True)
class AccessConfig:
    """Where users come from (``source``, one of :data:`SOURCES`; empty:
    ``header`` when ``user_header`` is given, else ``remote-user``).

    ``user_header`` (say ``X-Remote-User``), believed only when the request
    comes from one of ``trusted_proxies`` (addresses or networks); the WSGI
    ``REMOTE_USER`` is believed unless the source is ``password`` (only the
    server can set it). ``admins`` (addresses) manage every resource of the
    site (:mod:`imiptools.views.resources`).
    """

    user_header: str = ""
    trusted_proxies: tuple[str, ...] = ()
    source: str = ""
    admins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.source:
            object.__setattr__(self, "source", "header" if self.user_header else "remote-user")
        if self.source not in SOURCES:
            raise ValueError(f"users come from one of {', '.join(SOURCES)}, not {self.source!r}")
        if self.source == "header" and not self.user_header:
            raise ValueError("users from a header need the header's name")
        for each in self.trusted_proxies:
            try:
                ipaddress.ip_network(each, strict=False)
            except ValueError as exc:
                raise ValueError(f"not an address or network: {each!r}") from exc
        try:
            admins = tuple(normalise_user(a).removeprefix("mailto:") for a in self.admins)
        except (ImipError, ValueError) as exc:
            raise ValueError(f"an administrator is not an address: {exc}") from exc
        object.__setattr__(self, "admins", admins)

    def trusts(self, address: str) -> bool:
        """Whether ``address`` (the peer's) is a trusted proxy."""
        try:
            peer = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(
            peer in ipaddress.ip_network(each, strict=False) for each in self.trusted_proxies
        )


def authenticated_user(environ: Mapping[str, Any], access: AccessConfig) -> str | None:
    """The calendar user (``mailto:`` URI) the front server authenticated,
    or None: ``REMOTE_USER``, else the configured header from a trusted
    proxy. A name that is not a usable address is None too, and so is
    every name when users log in with a password."""
    if access.source == "password":
        return None
    name = str(environ.get("REMOTE_USER") or "")
    peer = str(environ.get("REMOTE_ADDR", ""))
    if not name and access.source == "header" and access.trusts(peer):
        key = "HTTP_" + access.user_header.upper().replace("-", "_")
        name = str(environ.get(key) or "")
    if not name:
        return None
    try:
        return normalise_user(name)
    except (ImipError, ValueError):
        return None


def csrf_token(session: MutableMapping[str, Any]) -> str:
    """The form token of ``session`` (made on first use)."""
    token = session.get(CSRF_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_KEY] = token
    return token


def csrf_valid(session: Mapping[str, Any], submitted: str | None) -> bool:
    """Whether ``submitted`` is the session's form token."""
    token = session.get(CSRF_KEY)
    if not isinstance(token, str) or not token or not submitted:
        return False
    return hmac.compare_digest(token.encode(), submitted.encode())
