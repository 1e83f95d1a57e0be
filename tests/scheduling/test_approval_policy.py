"""Which requests go to a resource's owners (imiptools.scheduling.approval)."""

from __future__ import annotations

import pytest

from imiptools.scheduling import Answer, Decision
from imiptools.scheduling.approval import (
    ApprovalPolicy,
    approvable,
    needs_approval,
    parse_approval,
    parse_approvers,
)

FREE = Decision(Answer.ACCEPTED, "free", "free")
LONG = Decision(Answer.DECLINED, "max-duration", "too long")
CLASH = Decision(Answer.DECLINED, "conflict", "booked")
PAST = Decision(Answer.DECLINED, "past", "past")
COUNTER = Decision(Answer.COUNTER, "max-duration", "shorter")


def no_group(quota: str, organiser: str) -> str | None:
    return None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ApprovalPolicy("never")),
        ("never", ApprovalPolicy("never")),
        ("Always", ApprovalPolicy("always")),
        ("out_of_policy", ApprovalPolicy("out_of_policy")),
        (
            "alice@example.com, *@Board.example.com group:rooms/staff",
            ApprovalPolicy(
                "list", ("alice@example.com", "*@board.example.com"), (("rooms", "staff"),)
            ),
        ),
    ],
)
def test_approval_values(value: str, expected: ApprovalPolicy) -> None:
    assert parse_approval(value) == expected


@pytest.mark.parametrize(
    "value", ["sometimes", "always alice@example.com", "group:rooms", "group:/x", "a@b@"]
)
def test_bad_approval_values(value: str) -> None:
    with pytest.raises(ValueError):
        parse_approval(value)


def test_approvers() -> None:
    assert parse_approvers("Boss@Example.com, mailto:deputy@example.com boss@example.com") == (
        "boss@example.com",
        "deputy@example.com",
    )
    for bad in ("boss", "*@example.com", "boss@localhost"):
        with pytest.raises(ValueError):
            parse_approvers(bad)


@pytest.mark.parametrize(
    ("mode", "decision", "expected"),
    [
        ("never", LONG, False),
        ("always", FREE, True),
        ("always", LONG, True),
        ("always", CLASH, False),
        ("always", PAST, False),
        ("out_of_policy", FREE, False),
        ("out_of_policy", LONG, True),
        ("out_of_policy", COUNTER, True),
        ("out_of_policy", CLASH, False),
    ],
)
def test_which_requests_need_approval(mode: str, decision: Decision, expected: bool) -> None:
    policy = ApprovalPolicy(mode)
    assert needs_approval(policy, decision, "alice@example.com", no_group) is expected


def test_listed_organisers_and_groups_book_directly() -> None:
    policy = parse_approval("*@board.example.com group:rooms/staff")
    staff = {("rooms", "bob@example.com"): "staff"}

    def group_of(quota: str, organiser: str) -> str | None:
        return staff.get((quota, organiser))

    assert not needs_approval(policy, LONG, "ceo@board.example.com", group_of)
    assert not needs_approval(policy, FREE, "bob@example.com", group_of)
    assert needs_approval(policy, FREE, "carol@example.com", group_of)


def test_what_an_approval_may_book() -> None:
    assert approvable("max-duration", FREE)
    assert approvable("max-duration", LONG)  # the rule the owners were shown
    assert not approvable("free", LONG)  # a rule broken since
    assert not approvable("max-duration", CLASH)
    assert not approvable("free", PAST)
