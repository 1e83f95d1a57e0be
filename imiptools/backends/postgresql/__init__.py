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

Needs psycopg2 (``pip install 'imip-agent[postgresql]'``, which installs
``psycopg2-binary``, or Debian's ``python3-psycopg2``); it is imported only
when a site uses this backend. psycopg2 rather than psycopg 3 because a
pipe program imports the driver for every message: psycopg2's C module
costs about 14 ms of CPU, psycopg 3 about 85 ms (its package imports
asyncio, its type adapters and the installed packages' metadata), which
alone put the database's per-message cost at 1.5 times the files' (see
``docs/development/performance.md``).
"""
