"""Calendar user names and safe path components (imiptools.stores.names)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from imiptools.dates import format_recurrence_id
from imiptools.errors import UnsafeName
from imiptools.stores.names import (
    hashed_component,
    is_hashed,
    is_safe_component,
    is_verbatim,
    normalise_user,
    safe_component,
    user_component,
)


@pytest.mark.parametrize(
    "value",
    [
        "room@example.com",
        "MAILTO:Room@Example.com",
        "mailto:room@example.com",
        "<room@example.com>",
        "<mailto:ROOM@example.com>",
        "  room@example.com\n",
    ],
)
def test_normalise_user(value: str) -> None:
    assert normalise_user(value) == "mailto:room@example.com"


def test_normalise_user_keeps_plausible_addresses() -> None:
    assert (
        normalise_user("first.last+tag@sub.example.org") == "mailto:first.last+tag@sub.example.org"
    )
    assert normalise_user("Jöran@Exämple.org") == "mailto:jöran@exämple.org"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "mailto:",
        "room",
        "@example.com",
        "room@",
        "a@b@c",
        "room @example.com",
        "room@exa\tmple.com",
        "../room@example.com",
        "room/x@example.com",
        "room\\x@example.com",
        "room\x00@example.com",
        "room\x1b@example.com",
        ".room@example.com",
        "<room@example.com",
        "Room <room@example.com>",
        "a,b@example.com",
        "mailto:mailto:room@example.com",
        "r" * 250 + "@example.com",
    ],
)
def test_normalise_user_refuses(value: str) -> None:
    with pytest.raises(UnsafeName):
        normalise_user(value)


def test_longest_address_is_accepted() -> None:
    address = "r" * (254 - len("@example.com")) + "@example.com"
    assert normalise_user(address) == "mailto:" + address


@pytest.mark.parametrize(
    "text",
    [
        "mailto:room@example.com",
        "040000008200E00074C5B7101A82E00800000000",
        "a",
        "20300108T100000Z",
        "x=y+z_w:v-u@t.s",
        "a" * 150,
    ],
)
def test_verbatim_components(text: str) -> None:
    assert safe_component(text) == text
    assert is_verbatim(text) and is_safe_component(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        ".",
        "..",
        "a..b",
        ".hidden",
        "_underscore",
        "-dash",
        "a/b",
        "../../etc/passwd",
        "a\\b",
        "nul\x00",
        "new\nline",
        "space here",
        "ünïcödé",
        "a" * 151,
        "_h_" + "0" * 64,
    ],
)
def test_hashed_components(text: str) -> None:
    name = safe_component(text)
    assert name == hashed_component(text)
    assert is_hashed(name) and is_safe_component(name)
    assert len(name) == 67 and "/" not in name and not name.startswith(".")


def test_safe_component_is_deterministic_and_distinct() -> None:
    assert safe_component("a/b") == safe_component("a/b")
    assert safe_component("a/b") != safe_component("a/c")


def test_lone_surrogates_are_hashed() -> None:
    assert is_hashed(safe_component("bad\udcff"))


@pytest.mark.parametrize("name", [".lock", ".user", ".x.tmp", "_h_abc", "a b", "", ".."])
def test_not_safe_components(name: str) -> None:
    assert not is_safe_component(name)


def test_user_component() -> None:
    assert user_component("MAILTO:Room@Example.com") == "mailto:room@example.com"
    long_user = "r" * 200 + "@example.com"
    assert is_hashed(user_component(long_user))


def test_normalised_recurrence_ids_are_verbatim() -> None:
    for value in (datetime(2030, 1, 8, 10, tzinfo=UTC), date(2030, 1, 8)):
        rid = format_recurrence_id(value)
        assert safe_component(rid) == rid
