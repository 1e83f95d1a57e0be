"""Backends: where a site keeps its data, chosen by the ``backend`` setting.

A backend (:class:`~imiptools.backends.base.Backend`) provides the four
parts of a site's data behind their interfaces: the calendar store
(:class:`~imiptools.stores.base.Store`), the quota ledger
(:class:`~imiptools.quota.base.QuotaLedger`), the preference source
(:class:`~imiptools.preferences.PreferenceSource`) and the outbox
(:class:`~imiptools.spool.Spool`), plus the hooks through which
maintenance reaches what only that backend knows (its own layout, its
users' places). :func:`imiptools.site.open_site` chooses one by name
through the ``imip_agent.backends`` entry-point group; the built-in
``file`` backend is :mod:`imiptools.backends.file`.
"""
