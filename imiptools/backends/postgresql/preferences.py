"""Preferences in the database: :class:`PgPreferences`.

A :class:`~imiptools.preferences.PreferenceSource` over the table
``preferences`` (user, name, value). Names are checked
(:func:`~imiptools.stores.names.check_preference_name`) before any query;
values are kept as text without their trailing line ends, like the files'.
"""

from __future__ import annotations

from imiptools.backends.postgresql.session import PerTransaction, PgSession
from imiptools.backends.postgresql.text import from_db, to_db, user_key
from imiptools.stores.names import check_preference_name


class PgPreferences:
    """Per-user preferences in the database of ``session``."""

    def __init__(self, session: PgSession) -> None:
        self.db = session
        self._values: PerTransaction[str, dict[str, str]] = PerTransaction(session)

    @staticmethod
    def _key(user: str, name: str) -> tuple[str, str]:
        return user_key(user), check_preference_name(name)

    def get(self, user: str, name: str) -> str | None:
        """The value of ``name`` for ``user``, or None if it is not set.

        Inside a transaction (a unit of work) the user's values are read
        once, all together; outside one, each read is a query."""
        usr, name = self._key(user, name)
        if not self.db.in_transaction():
            found = self.db.value(
                "SELECT value FROM preferences WHERE usr = %s AND name = %s", (usr, name)
            )
            return None if found is None else from_db(found)
        return self._values.get(usr, lambda: self._all(usr)).get(name)

    def _all(self, usr: str) -> dict[str, str]:
        rows = self.db.rows("SELECT name, value FROM preferences WHERE usr = %s", (usr,))
        return {name: from_db(value) for name, value in rows}

    def set(self, user: str, name: str, value: str) -> None:
        """Set ``name`` to ``value`` for ``user``."""
        self._values.forget(user_key(user))
        self.db.write(
            "INSERT INTO preferences (usr, name, value) VALUES (%s, %s, %s)"
            " ON CONFLICT (usr, name) DO UPDATE SET value = EXCLUDED.value",
            (*self._key(user, name), to_db(value.rstrip("\r\n"))),
        )

    def unset(self, user: str, name: str) -> None:
        """Remove ``name`` for ``user``; unset already is fine."""
        self._values.forget(user_key(user))
        self.db.write("DELETE FROM preferences WHERE usr = %s AND name = %s", self._key(user, name))

    def names(self, user: str) -> list[str]:
        """The preference names set for ``user``, sorted."""
        rows = self.db.rows("SELECT name FROM preferences WHERE usr = %s", (user_key(user),))
        return sorted(row[0] for row in rows)

    def values(self, user: str) -> dict[str, str]:
        """Every value set for ``user``: one query (inside a transaction,
        the one :meth:`get` makes)."""
        usr = user_key(user)
        if not self.db.in_transaction():
            return self._all(usr)
        return dict(self._values.get(usr, lambda: self._all(usr)))

    def users(self) -> list[str]:
        """The users with any preference, sorted."""
        return sorted(
            from_db(row[0]) for row in self.db.rows("SELECT DISTINCT usr FROM preferences")
        )
