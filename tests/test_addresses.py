"""The one parser and the one check of mail addresses (imiptools.addresses)."""

from __future__ import annotations

import pytest
from icalendar import vCalAddress

from imiptools import addresses
from imiptools.errors import ExitCode, InputError, UnusableAddress
from imiptools.itip.objects import address, uri
from imiptools.mail.compose import address_of, check_address
from imiptools.stores.names import normalise_user


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("room@example.com", "room@example.com"),
        ("  MAILTO:Room@Example.COM ", "room@example.com"),
        ("<mailto:room@example.com>", "room@example.com"),
        ("room@example.com.", "room@example.com"),
        ("mailto:jane%2Edoe@example.net?subject=x", "jane.doe@example.net"),
        ("mailto:jane.doe@example.net?subject=x&body=y", "jane.doe@example.net"),
        ("mailto:r%C3%B6om@example.com", "röom@example.com"),
        ("mailto:bad%FFutf8@example.com", "bad%ffutf8@example.com"),
        ("jane%2Edoe@example.net", "jane%2edoe@example.net"),  # bare: % is atext
        ("room@.", "room@"),
        ("x@..", "x@."),
        ("", ""),
        (None, ""),
    ],
)
def test_normalise(value: object, expected: str) -> None:
    assert addresses.normalise(value) == expected


def test_normalise_remembers_only_what_its_text_gives() -> None:
    """Remembered by text (issue 15): an address property and its text, asked
    again or not, long or not, normalise alike."""
    prop = vCalAddress("MAILTO:Room@Example.COM")
    prop.params["CN"] = "Room"
    long = "mailto:" + "r" * 400 + "@Example.com?subject=" + "x" * 100
    for _ in range(2):
        assert addresses.normalise(prop) == addresses.normalise(str(prop)) == "room@example.com"
        assert addresses.normalise(long) == "r" * 400 + "@example.com"


def test_every_parser_is_the_one_parser() -> None:
    """objects.address, compose.address_of and names.normalise_user agree."""
    value = "MAILTO:Jane%2EDoe@Example.NET.?subject=x"
    assert address(value) == address_of(value) == "jane.doe@example.net"
    assert uri(value) == normalise_user(value) == "mailto:jane.doe@example.net"


@pytest.mark.parametrize(
    "value",
    [
        "room@example.com",
        "first.last+tag@sub.example.org",
        "o'brien@example.ie",
        "x_y@host-1.example",
        "root@localhost",
        "/etc/passwd@x",
        "a" * 64 + "@example.com",
    ],
)
def test_check_accepts(value: str) -> None:
    assert addresses.check(value) == value and check_address(value) == value


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("-oQevil@example.com", "starts with '-'"),
        ("-x@example.com", "starts with '-'"),
        ("röom@example.com", "not ASCII"),
        ("room@exämple.org", "not ASCII"),
        ("room@", "local@domain"),
        ("room@.", "host name"),
        ("x@.", "host name"),
        ("x@..", "host name"),
        ("room@example.com.", "host name"),
        ("room@-example.com", "host name"),
        ("room@[192.0.2.1]", "host name"),
        ("jane%2edoe@example.net?subject=x", "host name"),
        ("a..b@example.com", "local part"),
        (".a@example.com", "local part"),
        ('"quoted"@example.com', "local part"),
        ("a b@example.com", "local part"),
        ("a@b@example.com", "local part"),
        ("a\n@example.com", "local part"),
        ("a" * 65 + "@example.com", "local part"),
        ("a@" + "b" * 64 + ".com", "host name"),
        ("a@" + ("b" * 60 + ".") * 5 + "com", "longer than 254"),
        ("=?utf-8?q?x?=@example.com", "'=?'"),
        ("", "empty"),
    ],
)
def test_check_refuses(value: str, why: str) -> None:
    assert why in addresses.problem(value)
    with pytest.raises(UnusableAddress) as caught:
        addresses.check(value)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, InputError)
    assert caught.value.exit_code == ExitCode.DATAERR
    assert caught.value.status_line().startswith("5.1.3 ")


def test_check_envelope() -> None:
    addresses.check_envelope("", ["room@example.com"])  # the null reverse path
    addresses.check_envelope("room@example.com", ["a@example.org", "b@example.org"])
    for sender, recipients in [
        ("room@example.com", []),
        ("room@example.com", "a@example.org"),
        ("-f@example.com", ["a@example.org"]),
        ("room@example.com", ["a@example.org", "-oQ/tmp"]),
    ]:
        with pytest.raises(UnusableAddress):
            addresses.check_envelope(sender, recipients)
