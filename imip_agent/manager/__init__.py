"""imip-manager: the web interface over the agents' store (issue 18).

A WSGI application (Flask with Jinja2 templates, autoescaped) in which a
person sees their calendar and answers the requests that need their
attention. It opens the site through the composition root
(:func:`imiptools.site.open_site`, so either backend), computes what it
shows with the library's views (:mod:`imiptools.views.agenda`) and answers
through :mod:`imiptools.answering` (the agents' REPLY, recorded as
``imip-person-outgoing`` records it). The pieces:

- :mod:`~imip_agent.manager.cli`: the ``imip-manager`` command (``serve``);
- :mod:`~imip_agent.manager.app`: the application factory and its pages;
- :mod:`~imip_agent.manager.security`: who the user is (the front web
  server's REMOTE_USER, or a header from trusted proxies only), CSRF
  tokens and the response headers (a strict Content-Security-Policy);
- :mod:`~imip_agent.manager.wsgi`: the application for a production WSGI
  server (waitress, gunicorn), configured from the environment.

Only this package imports Flask: the pipe agents never load it.
"""
