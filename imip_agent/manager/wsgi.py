"""The manager for a production WSGI server, configured from the environment.

::

    waitress-serve --listen 127.0.0.1:8081 --call imip_agent.manager.wsgi:make_application
    gunicorn -b 127.0.0.1:8081 'imip_agent.manager.wsgi:make_application()'

``IMIP_AGENT_CONFIG`` names the site's configuration (as for every
program); ``IMIP_MANAGER_AUTH`` where users come from (``remote-user``,
``header`` or ``password``, see :class:`~imip_agent.manager.security.AccessConfig`);
``IMIP_MANAGER_USER_HEADER`` and ``IMIP_MANAGER_TRUSTED_PROXIES``
(space-separated addresses or networks) say how the front server names the
user; ``IMIP_MANAGER_SECRET_KEY_FILE`` holds the key that signs sessions
(the same for every worker process); ``IMIP_MANAGER_ADMINS`` the
administrators, who manage every resource (space-separated addresses).
Mail leaves as the agents send it: the ``smtp`` setting, else the
``sendmail`` command.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from imip_agent.manager.app import create_app
from imip_agent.manager.cli import sender_for
from imip_agent.manager.security import AccessConfig
from imiptools.config import load_settings
from imiptools.dates import SystemClock


def make_application() -> Flask:
    """The manager as the environment configures it (see the module docstring)."""
    settings = load_settings(os.environ.get("IMIP_AGENT_CONFIG") or None)
    access = AccessConfig(
        os.environ.get("IMIP_MANAGER_USER_HEADER", ""),
        tuple(os.environ.get("IMIP_MANAGER_TRUSTED_PROXIES", "").split()),
        os.environ.get("IMIP_MANAGER_AUTH", ""),
        tuple(os.environ.get("IMIP_MANAGER_ADMINS", "").split()),
    )
    key_file = os.environ.get("IMIP_MANAGER_SECRET_KEY_FILE")
    key = Path(key_file).read_bytes().strip() if key_file else None
    return create_app(settings, SystemClock(), sender_for(settings), access, key)
