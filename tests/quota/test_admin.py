"""Changing a quota's admin lists through the library (what quota set-* does)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from imiptools.config import Settings
from imiptools.quota import admin
from imiptools.quota.base import QuotaLedger
from imiptools.quota.limits import QuotaLimit
from imiptools.site import open_site

ALICE = "mailto:alice@example.com"
BOB = "mailto:bob@example.com"


@pytest.fixture
def ledger(tmp_path: Path) -> QuotaLedger:
    return open_site(Settings(journal=str(tmp_path / "journal"))).ledger


def test_set_limit_replaces_the_line_of_the_same_kind(ledger: QuotaLedger) -> None:
    weekly = QuotaLimit("*", "time", "week", timedelta(hours=10))
    admin.set_limit(ledger, "rooms", weekly)
    admin.set_limit(ledger, "rooms", QuotaLimit("*", "count", "week", 3))
    admin.set_limit(ledger, "rooms", QuotaLimit("*", "time", "week", timedelta(hours=6)))
    assert ledger.limits("rooms") == [
        QuotaLimit("*", "count", "week", 3),
        QuotaLimit("*", "time", "week", timedelta(hours=6)),
    ]
    admin.set_limit(ledger, "rooms", weekly, remove=True)
    assert ledger.limits("rooms") == [QuotaLimit("*", "count", "week", 3)]


def test_set_group_moves_a_user_and_takes_them_out(ledger: QuotaLedger) -> None:
    admin.set_group(ledger, "rooms", ALICE, "staff")
    admin.set_group(ledger, "rooms", BOB, "staff")
    admin.set_group(ledger, "rooms", ALICE, "guests")
    assert ledger.groups("rooms") == {BOB: "staff", ALICE: "guests"}
    admin.set_group(ledger, "rooms", BOB, None)
    assert ledger.groups("rooms") == {ALICE: "guests"}


def test_exempt_delegates_and_zone(ledger: QuotaLedger) -> None:
    admin.set_exempt(ledger, "rooms", [BOB, ALICE], remove=False)
    assert ledger.admin_lines("rooms", "exempt") == [ALICE, BOB]
    admin.set_exempt(ledger, "rooms", [BOB], remove=True)
    assert ledger.exempt("rooms") == {ALICE}
    admin.set_delegates(ledger, "rooms", ["mailto:room1@example.com"])
    assert ledger.delegates("rooms") == ["mailto:room1@example.com"]
    admin.set_zone(ledger, "rooms", "Europe/Oslo")
    assert ledger.admin_lines("rooms", "tzid") == ["Europe/Oslo"]


def test_a_bad_value_writes_nothing(ledger: QuotaLedger) -> None:
    with pytest.raises(ValueError, match="tzid:1: unknown time zone"):
        admin.set_zone(ledger, "rooms", "Mars/Olympus")
    assert ledger.admin_lines("rooms", "tzid") == []


@pytest.mark.parametrize(
    ("words", "line"),
    [
        (("*", "PT10H", "week"), "* time week PT10H"),
        (("Bob@Example.com", "3", "outstanding"), "mailto:bob@example.com count outstanding 3"),
        (("staff", "20", "month"), "@staff count month 20"),
        (("@staff", "PT6H", "p7d"), "@staff time rolling:P7D PT6H"),
    ],
)
def test_limit_of_reads_the_words_of_set_limit(words: tuple[str, str, str], line: str) -> None:
    assert admin.limit_of(*words).to_line() == line


@pytest.mark.parametrize(
    ("words", "said"),
    [
        (("*", "four hours", "week"), "bad limit: "),
        (("*", "3", "fortnight"), "bad --per 'fortnight'"),
        (("*", "3", "P0D"), "a rolling window must be positive"),
        (("bad group!", "3", "week"), "bad group name: "),
        (("a b@example.com", "3", "week"), "bad address: "),
    ],
)
def test_limit_of_says_which_word_is_bad(words: tuple[str, str, str], said: str) -> None:
    with pytest.raises(ValueError) as raised:
        admin.limit_of(*words)
    assert said in str(raised.value)
