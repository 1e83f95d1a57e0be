"""The blueprints of the manager's pages beyond the week and the requests:
day and month (:mod:`~imip_agent.manager.calendars`), find a time
(:mod:`~imip_agent.manager.findtime`) and subscriptions
(:mod:`~imip_agent.manager.feeds`). The login pages are installed with
the accounts (:func:`imip_agent.manager.login.install`)."""

from __future__ import annotations

from flask import Flask

from imip_agent.manager import calendars, feeds, findtime


def install(app: Flask) -> None:
    """Register the blueprints on ``app``."""
    for blueprint in (calendars.blueprint, findtime.blueprint, feeds.blueprint):
        app.register_blueprint(blueprint)
