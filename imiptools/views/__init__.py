"""Views: what the front ends show, computed by the library.

Each module answers one question about a site as typed values, leaving
only the wording to a program (``imip-admin``) or any other front end (a
web interface, a mail client): :mod:`~imiptools.views.overview` (a user's
events and pending items: ``show``), :mod:`~imiptools.views.decisions`
(a resource's decision log: ``log``), :mod:`~imiptools.views.freebusy`
(a user's free/busy as VFREEBUSY), :mod:`~imiptools.views.agenda` (a
user's instances over a span and their pending requests, for
``imip-manager``), :mod:`~imiptools.views.quota` (quota
groups and their use: ``quota show``, ``quota report``, ``quota
expire``) and :mod:`~imiptools.views.whatif` (what a resource would
answer). A user's calendar as one iCalendar object is
:func:`imiptools.transfer.export_calendar`.
"""
