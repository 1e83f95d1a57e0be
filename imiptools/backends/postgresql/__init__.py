"""The PostgreSQL backend: one database that several mail hosts share.

Every part of a site's data lives in one database reached through one
connection per process (:mod:`~imiptools.backends.postgresql.session`):
the calendar records (:mod:`.store`), the quota ledger (:mod:`.ledger`),
the preferences (:mod:`.preferences`) and the outbox (:mod:`.outbox`).
Chosen by ``backend = "postgresql"`` in ``[agent]``, with the connection
string in ``dsn``, in the file ``dsn_file`` or in ``$IMIP_AGENT_DSN``
(:mod:`.backend`). The schema is created and upgraded by ``imip-admin
init`` (:mod:`.schema`).

Concurrency between hosts (see :mod:`.session`): a unit of work is one
database transaction, from taking the user's lock to releasing it; the
user's and the quotas' locks are transaction-scoped advisory locks, taken
in one global order (the user, then the quotas by name) with the
configured deadline, so a crash or a lost connection leaves the old state
or the new, and every lock goes with the transaction. The replies the unit
decides are rows of the outbox committed in that same transaction.

Needs psycopg 3 (``pip install 'imip-agent[postgresql]'`` or Debian's
``python3-psycopg``); it is imported only when a site uses this backend.
"""
