"""The agents' command line (imip_agent.cli): what the MTA passes is read as meant."""

from __future__ import annotations

import pytest

from imip_agent.cli import bind_address_values, build_parser


@pytest.mark.parametrize(
    ("argv", "recipients", "sender"),
    [
        (["-o", "room@a.example", "-s", "-x@example.org"], ["room@a.example"], "-x@example.org"),
        (["-o", "-room@example.com", "-s", ""], ["-room@example.com"], ""),
        (["--sender", "-", "-o", "a@example.com"], ["a@example.com"], "-"),
        (["-o", "a@a.example", "-o", "-b@a.example"], ["a@a.example", "-b@a.example"], None),
        (["--original-recipient=a@example.com"], ["a@example.com"], None),
    ],
)
def test_envelope_address_starting_with_dash_is_a_value(
    argv: list[str], recipients: list[str], sender: str | None
) -> None:
    """Python's argparse reads ``-s -x@example.com`` as two options (bpo-9334);
    Postfix's ``-s ${sender}`` and Exim's ``-s "$SENDER"`` pass exactly that."""
    args = build_parser("imip-resource", "", "").parse_args(bind_address_values(argv))
    assert args.recipients == recipients and args.sender == sender


def test_words_after_double_dash_are_left_alone() -> None:
    assert bind_address_values(["--", "-o", "x"]) == ["--", "-o", "x"]
    assert bind_address_values(["-s"]) == ["-s"]
