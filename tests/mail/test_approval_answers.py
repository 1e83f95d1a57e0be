"""An owner's answer by plain mail (imiptools.mail.approval)."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from imiptools.mail.approval import TextAnswer, subject_token, text_answer


def mail(body: str, *, html: bool = False) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "boss@example.com"
    msg.set_content(body)
    if html:
        msg.add_alternative("<p>ignored</p>", subtype="html")
    return msg


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("approve", TextAnswer("approve", "")),
        ("Approve.\n", TextAnswer("approve", "")),
        ("Decline: being painted\n", TextAnswer("decline", "being painted")),
        (
            "decline - sorry,\nwe need it ourselves\n\n-- \nBoss",
            TextAnswer("decline", "sorry, we need it ourselves"),
        ),
        ("\n  APPROVED for the board\n> quoted approve\n", TextAnswer("approve", "for the board")),
        ("approve\n\nOn Mon, 1 Jan 2030, room@example.com wrote:\n> x", TextAnswer("approve", "")),
    ],
)
def test_answers(body: str, expected: TextAnswer) -> None:
    assert text_answer(mail(body, html=True)) == expected


@pytest.mark.parametrize("body", ["", "Thanks!", "I approve", "> approve", "approvement"])
def test_not_answers(body: str) -> None:
    assert text_answer(mail(body)) is None


def test_subject_token() -> None:
    assert subject_token("Re: Approval needed: Board [approval 0123456789AB]") == "0123456789ab"
    assert subject_token("Re: Approval needed: Board") == ""
