"""The blueprints of the manager's pages beyond the week and the requests:
day and month (:mod:`~imip_agent.manager.calendars`), find a time
(:mod:`~imip_agent.manager.findtime`) and subscriptions
(:mod:`~imip_agent.manager.feeds`), counter-proposals
(:mod:`~imip_agent.manager.negotiation`). The login pages are installed with
the accounts (:func:`imip_agent.manager.login.install`)."""

from __future__ import annotations

from flask import Flask

from imip_agent.manager import calendars, feeds, findtime, negotiation


def install(app: Flask) -> None:
    """Register the blueprints on ``app``."""
    blueprints = (calendars.blueprint, findtime.blueprint, feeds.blueprint, negotiation.blueprint)
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
