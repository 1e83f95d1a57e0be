"""The blueprints of the manager's pages beyond the week and the requests:
day and month (:mod:`~imip_agent.manager.calendars`), find a time
(:mod:`~imip_agent.manager.findtime`), subscriptions
(:mod:`~imip_agent.manager.feeds`), counter-proposals
(:mod:`~imip_agent.manager.negotiation`) and the resources' pages
(:mod:`~imip_agent.manager.resources`). The login pages are installed with
the accounts (:func:`imip_agent.manager.login.install`)."""

from __future__ import annotations

from flask import Flask

from imip_agent.manager import calendars, feeds, findtime, negotiation, resources


def install(app: Flask) -> None:
    """Register the blueprints on ``app``."""
    blueprints = (
        calendars.blueprint,
        findtime.blueprint,
        feeds.blueprint,
        negotiation.blueprint,
        resources.blueprint,
    )
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
