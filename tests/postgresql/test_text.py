"""Text the database cannot hold (NUL, lone surrogates) is kept exactly."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from imiptools.backends.postgresql.text import from_db, to_db
from imiptools.site import open_site
from tests.pg import settings_of

USER = "mailto:room@example.com"


@given(st.text())
def test_escape_is_reversible(text: str) -> None:
    stored = to_db(text)
    assert from_db(stored) == text
    assert "\x00" not in stored
    stored.encode("utf-8")  # no lone surrogate left


@given(st.text(alphabet=st.characters(blacklist_characters="%\x00", blacklist_categories=["Cs"])))
def test_ordinary_text_is_stored_as_it_is(text: str) -> None:
    assert to_db(text) == text


def test_hostile_text_round_trips_through_the_store(pg_dsn: str, tmp_path: Path) -> None:
    store = open_site(settings_of(pg_dsn, tmp_path)).store
    uid = "nul\x00inside-\udcff-100%25"
    body = "BEGIN:VCALENDAR\r\nSUMMARY:bad \udce9 byte\x00\r\nEND:VCALENDAR\r\n"
    store.set_object(USER, uid, body)
    store.set_recurrence(USER, uid, "20300108T100000Z", body)
    assert store.get_object(USER, uid) == body
    assert list(store.object_uids(USER)) == [uid]
    assert store.get_recurrence(USER, uid, "20300108T100000Z") == body
