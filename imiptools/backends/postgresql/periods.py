"""Period records in the database: free/busy, others' free/busy, offers.

:class:`PeriodRecords` is the part of
:class:`~imiptools.backends.postgresql.store.PgStore` that keeps
:class:`~imiptools.periods.Period` values (tables ``freebusy``,
``freebusy_other`` and ``offers``), as Radicale composes its storage from
one small module per concern. As in the file store, periods are kept from
1900 on (:func:`~imiptools.stores.file.clamped`) and a uid's periods are a
set. A free/busy query reads the periods that start in the span or up to
:data:`~imiptools.backends.postgresql.schema.LONG_PERIOD` before it, and
the few longer ones, so its cost follows the span.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from imiptools.backends.postgresql.schema import LONG_PERIOD
from imiptools.backends.postgresql.session import PgSession
from imiptools.backends.postgresql.text import from_db, to_db, user_key
from imiptools.periods import Period
from imiptools.stores.file import clamped

PERIOD_COLUMNS = "start_at, end_at, uid, rid, transp, summary, organiser, status"
_PLACES = "%s, %s, %s, %s, %s, %s, %s, %s"


def utc(value: datetime) -> datetime:
    """``value`` (aware, from the database) in UTC."""
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def period_row(period: Period) -> tuple[Any, ...]:
    """The values of :data:`PERIOD_COLUMNS` for ``period``."""
    texts = (
        period.uid,
        period.recurrenceid,
        period.transp,
        period.summary,
        period.organiser,
        period.status,
    )
    return (period.start, period.end, *map(to_db, texts))


def period_of(row: Iterable[Any]) -> Period:
    """The period of a row of :data:`PERIOD_COLUMNS`."""
    start, end, *texts = row
    uid, rid, transp, summary, organiser, status = map(from_db, texts)
    return Period(utc(start), utc(end), uid, rid, transp, summary, organiser, status)


def stored_periods(uid: str, periods: Iterable[Period]) -> list[Period]:
    """``periods`` as stored for ``uid``: clamped, their uid set, each once."""
    found = {p if p.uid == uid else replace(p, uid=uid) for p in clamped(periods)}
    return sorted(found, key=Period.key)


class PeriodRecords:
    """The period-keeping methods of the database store (a mixin: the store
    provides ``db``)."""

    db: PgSession

    def _texts(self, query: str, *params: str) -> list[str]:
        return [from_db(row[0]) for row in self.db.rows(query, params)]

    # -- the user's own free/busy -----------------------------------------------------

    def get_freebusy(self, user: str, start: datetime, end: datetime) -> list[Period]:
        """The periods overlapping ``[start, end)``: those starting in the span
        or up to LONG_PERIOD before it, and the long ones (see the module)."""
        if end <= start:
            return []
        rows = self.db.rows(
            f"SELECT {PERIOD_COLUMNS} FROM freebusy WHERE usr = %s AND start_at < %s"
            " AND end_at > %s AND (is_long OR start_at > %s::timestamptz - %s)",
            (user_key(user), end, start, start, LONG_PERIOD),
        )
        return sorted(map(period_of, rows), key=Period.key)

    def set_freebusy_for_uid(self, user: str, uid: str, periods: Iterable[Period]) -> None:
        """Replace the periods of ``uid`` (their ``uid`` field set to it), at once."""
        usr = user_key(user)
        rows = [
            (usr, p.end - p.start > LONG_PERIOD, *period_row(p))
            for p in stored_periods(uid, periods)
        ]
        with self.db.transaction():
            self.db.write("DELETE FROM freebusy WHERE usr = %s AND uid = %s", (usr, to_db(uid)))
            self._insert_freebusy(rows)

    def _insert_freebusy(self, rows: list[tuple[Any, ...]]) -> None:
        self.db.execute_many(
            f"INSERT INTO freebusy (usr, is_long, {PERIOD_COLUMNS}) VALUES (%s, %s, {_PLACES})",
            rows,
        )

    def replace_freebusy(self, user: str, periods: Iterable[Period]) -> None:
        """Make the user's free/busy exactly ``periods``, at once."""
        usr = user_key(user)
        by_uid: dict[str, list[Period]] = {}
        for period in periods:
            by_uid.setdefault(period.uid, []).append(period)
        rows = [
            (usr, p.end - p.start > LONG_PERIOD, *period_row(p))
            for uid, group in by_uid.items()
            for p in stored_periods(uid, group)
        ]
        with self.db.transaction():
            self.db.write("DELETE FROM freebusy WHERE usr = %s", (usr,))
            self._insert_freebusy(rows)

    def freebusy_uids(self, user: str) -> Iterator[str]:
        return iter(self._texts("SELECT DISTINCT uid FROM freebusy WHERE usr = %s", user_key(user)))

    # -- others' free/busy --------------------------------------------------------------

    def get_freebusy_other(
        self, user: str, other: str, start: datetime, end: datetime
    ) -> list[Period]:
        if end <= start:
            return []
        rows = self.db.rows(
            f"SELECT {PERIOD_COLUMNS} FROM freebusy_other WHERE usr = %s AND other = %s"
            " AND start_at < %s AND end_at > %s",
            (user_key(user), to_db(other), end, start),
        )
        return sorted(map(period_of, rows), key=Period.key)

    def set_freebusy_other(self, user: str, other: str, periods: Iterable[Period]) -> None:
        """Replace what is known of ``other``'s free/busy (each period once), at once."""
        usr, key = user_key(user), to_db(other)
        found = sorted(set(clamped(periods)), key=Period.key)
        with self.db.transaction():
            self.db.write("DELETE FROM freebusy_other WHERE usr = %s AND other = %s", (usr, key))
            self.db.execute_many(
                f"INSERT INTO freebusy_other (usr, other, {PERIOD_COLUMNS})"
                f" VALUES (%s, %s, {_PLACES})",
                [(usr, key, *period_row(p)) for p in found],
            )

    def freebusy_other_users(self, user: str) -> list[str]:
        return sorted(
            self._texts("SELECT DISTINCT other FROM freebusy_other WHERE usr = %s", user_key(user))
        )

    # -- offers -----------------------------------------------------------------------

    def _offers(
        self, user: str, condition: str = "", *params: Any
    ) -> list[tuple[datetime, Period]]:
        rows = self.db.rows(
            f"SELECT expires, {PERIOD_COLUMNS} FROM offers WHERE usr = %s{condition}",
            (user_key(user), *params),
        )
        return sorted((utc(row[0]), period_of(row[1:])) for row in rows)

    def get_offers(self, user: str, now: datetime) -> list[Period]:
        return sorted(period for _, period in self._offers(user, " AND expires > %s", now))

    def set_offers(self, user: str, uid: str, periods: Iterable[Period], expires: datetime) -> None:
        """Hold ``periods`` for ``uid`` until ``expires`` (replacing its offers), at once."""
        usr, key = user_key(user), to_db(uid)
        offered = [replace(p, uid=uid) for p in clamped(periods)]
        with self.db.transaction():
            self.db.write("DELETE FROM offers WHERE usr = %s AND uid = %s", (usr, key))
            self.db.execute_many(
                f"INSERT INTO offers (usr, expires, {PERIOD_COLUMNS}) VALUES (%s, %s, {_PLACES})",
                [(usr, expires, *period_row(p)) for p in offered],
            )

    def remove_offers(self, user: str, uid: str) -> None:
        self.db.write(
            "DELETE FROM offers WHERE usr = %s AND uid = %s", (user_key(user), to_db(uid))
        )

    def all_offers(self, user: str) -> list[tuple[datetime, Period]]:
        return self._offers(user)
