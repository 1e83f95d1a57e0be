"""Tests for imiptools.mail.compose: building outgoing iMIP messages."""

from __future__ import annotations

import email
import email.policy
import random
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage, Message
from typing import Any, cast

import icalendar
import pytest
import vobject

from imiptools.mail import compose as compose_module
from imiptools.mail.compose import (
    MAX_SUBJECT,
    address_of,
    build_message,
    check_address,
    clean_subject,
)
from imiptools.mail.parse import parse_message, single_line

DATE = datetime(2024, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=1)))
CALENDAR = (
    "BEGIN:VCALENDAR\r\n"
    "VERSION:2.0\r\n"
    "PRODID:-//imip-agent//tests//EN\r\n"
    "METHOD:REPLY\r\n"
    "BEGIN:VEVENT\r\n"
    "UID:event-1@example.org\r\n"
    "DTSTAMP:20240301T083000Z\r\n"
    "DTSTART:20240310T100000Z\r\n"
    "DTEND:20240310T110000Z\r\n"
    "SUMMARY:Réunion\r\n"
    "ORGANIZER:mailto:alice@example.org\r\n"
    "ATTENDEE;PARTSTAT=ACCEPTED:mailto:room@example.com\r\n"
    "END:VEVENT\r\n"
    "END:VCALENDAR\r\n"
).encode()


def build(**changes: Any) -> bytes:
    arguments: dict[str, Any] = {
        "from_addr": "room@example.com",
        "to_addrs": ["alice@example.org"],
        "subject": "Accepted: Réunion",
        "text": "The room accepted your invitation.",
        "calendar": CALENDAR,
        "method": "REPLY",
        "in_reply_to": "<m1@example.org>",
        "references": ["<m0@example.org>"],
        "date": DATE,
        "message_id_domain": "agent.example.com",
    }
    arguments.update(changes)
    return build_message(**arguments)


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def calendar_part(message: EmailMessage) -> Message:
    [part] = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    return part


def calendar_bytes(message: EmailMessage) -> bytes:
    data = calendar_part(message).get_payload(decode=True)
    assert isinstance(data, bytes)
    return data


# -- structure (RFC 6047 §2) ---------------------------------------------------------


def test_structure_is_text_then_calendar() -> None:
    message = parsed(build())
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/calendar"]
    assert message["MIME-Version"] == "1.0"
    [text] = [p for p in message.iter_parts() if p.get_content_type() == "text/plain"]
    assert text.get_content_charset() == "utf-8"
    assert cast(EmailMessage, text).get_content().strip() == "The room accepted your invitation."


def test_calendar_part_parameters() -> None:
    part = calendar_part(parsed(build(method="reply")))
    assert part.get_param("method") == "REPLY"
    assert part.get_content_charset() == "utf-8"
    assert part.get("MIME-Version") is None


def test_calendar_keeps_crlf_and_loads_with_icalendar_and_vobject() -> None:
    data = calendar_bytes(parsed(build()))
    assert data == CALENDAR
    text = data.decode("utf-8")
    assert str(icalendar.Calendar.from_ical(text).events[0]["SUMMARY"]) == "Réunion"
    assert vobject.readOne(text).vevent.summary.value == "Réunion"


def test_calendar_with_lf_line_endings_gets_crlf() -> None:
    data = calendar_bytes(parsed(build(calendar=CALENDAR.replace(b"\r\n", b"\n"))))
    assert data == CALENDAR


def test_headers() -> None:
    message = parsed(build())
    assert message["From"] == "room@example.com"
    assert message["To"] == "alice@example.org"
    assert message["Subject"] == "Accepted: Réunion"
    assert message["Date"].datetime == DATE
    assert message["Message-ID"].endswith("@agent.example.com>")
    assert message["In-Reply-To"] == "<m1@example.org>"
    assert message["References"] == "<m0@example.org> <m1@example.org>"
    assert message["Auto-Submitted"] == "auto-replied"


def test_several_recipients_and_extra_headers() -> None:
    message = parsed(
        build(to_addrs=["a@example.org", "b@example.org"], extra_headers={"X-Imip-Agent": "1"})
    )
    assert message["To"] == "a@example.org, b@example.org"
    assert message["X-Imip-Agent"] == "1"


def test_without_calendar_is_plain_text() -> None:
    message = parsed(build(calendar=None, method=None, text="Ünïcode\nline two"))
    assert message.get_content_type() == "text/plain"
    assert message.get_content().replace("\r\n", "\n") == "Ünïcode\nline two\n"


def test_auto_submitted_can_be_changed_or_left_out() -> None:
    assert parsed(build(auto_submitted="auto-generated"))["Auto-Submitted"] == "auto-generated"
    assert parsed(build(auto_submitted=""))["Auto-Submitted"] is None


def test_output_is_smtp_ready() -> None:
    raw = build(
        subject="x" * 150 + " é" * 40, references=[f"<r{i}@example.org>" for i in range(50)]
    )
    assert raw.endswith(b"\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    head = raw[: raw.index(b"\r\n\r\n")]
    assert head.isascii()


def test_round_trip_through_our_parser() -> None:
    incoming = parse_message(build())
    [part] = incoming.parts
    assert (part.method, part.text) == ("REPLY", CALENDAR.decode())
    assert incoming.from_address == "room@example.com"
    assert incoming.subject == "Accepted: Réunion"
    assert incoming.auto_submitted == "auto-replied"


# -- untrusted values never inject headers ---------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        "Hi\r\nBcc: evil@x",
        "Hi\nBcc: evil@x",
        "Hi\rBcc: evil@x",
        "Hi\x00\r\n\r\nBcc: evil@x",
        "Hi\u2028Bcc: evil@x\x85",
        "=?utf-8?Q?Hi=0D=0ABcc=3A_evil=40x?=",
    ],
)
def test_subject_cannot_inject_headers(subject: str) -> None:
    raw = build(subject=subject)
    assert not re.search(rb"(?im)^bcc", raw)
    message = parsed(raw)
    assert len(message.get_all("Subject") or []) == 1
    assert message["Bcc"] is None
    assert message.defects == []
    assert "\n" not in message["Subject"]
    assert "Hi" in message["Subject"]


def test_encoded_word_lookalike_subject_stays_literal() -> None:
    """Regression: CPython gh-121650 decoded it on output, injecting "Bcc:"."""
    lookalike = "=?utf-8?Q?Hi=0D=0ABcc=3A_evil=40x?="
    assert parsed(build(subject=lookalike))["Subject"] == lookalike
    assert parse_message(build(subject=lookalike)).subject == lookalike


def test_long_subject_is_cut() -> None:
    subject = parsed(build(subject="Réunion " * 100))["Subject"]
    assert len(subject) <= MAX_SUBJECT
    assert subject.startswith("Réunion Réunion")


@pytest.mark.parametrize(
    ("in_reply_to", "references"),
    [
        ("<a@x>\r\nBcc: evil@x", ["<b@x>\r\nBcc: evil@x"]),
        ("<a@x>\x00", ["<b@x> <junk\r\n@x>"]),
    ],
)
def test_message_ids_cannot_inject_headers(in_reply_to: str, references: Sequence[str]) -> None:
    message = parsed(build(in_reply_to=in_reply_to, references=references))
    assert message["Bcc"] is None
    assert message["In-Reply-To"] == "<a@x>"
    assert message["References"] == "<b@x> <a@x>"


def test_invalid_message_ids_are_dropped() -> None:
    message = parsed(build(in_reply_to="no id here", references=["<>", "<" + "x" * 300 + ">"]))
    assert message["In-Reply-To"] is None
    assert message["References"] is None


@pytest.mark.parametrize("value", ["a\r\nBcc: evil@x", "=?utf-8?Q?a=0D=0ABcc:_evil@x?="])
def test_extra_header_value_cannot_inject(value: str) -> None:
    raw = build(extra_headers={"X-Note": value})
    assert not re.search(rb"(?im)^bcc", raw)
    assert parsed(raw)["X-Note"] in ("a Bcc: evil@x", value)


def test_encoded_word_lookalike_message_ids_are_dropped() -> None:
    raw = build(in_reply_to="<=?utf-8?Q?a=0D=0ABcc:_e?=@x>", references=["<=?x?Q?=0A?=@y>"])
    assert not re.search(rb"(?im)^bcc", raw)
    assert parsed(raw)["In-Reply-To"] is None


# -- refused input -------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "",
        "room",
        "room@example.com\r\nBcc: evil@x",
        "a@x, b@x",
        "Room <room@example.com>",
        "mailto:room@example.com",
        "room@exa mple.com",
        "rööm@example.com",
        "@example.com",
        "=?utf-8?Q?a=0D=0ABcc:_evil?=@example.com",
    ],
)
def test_bad_addresses_are_refused(address: str) -> None:
    with pytest.raises(ValueError):
        build(from_addr=address)
    with pytest.raises(ValueError):
        build(to_addrs=[address])
    with pytest.raises(ValueError):
        check_address(address)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"to_addrs": []}, id="no-recipients"),
        pytest.param({"to_addrs": "alice@example.org"}, id="recipients-as-str"),
        pytest.param({"date": datetime(2024, 3, 1, 9, 30)}, id="naive-date"),
        pytest.param({"method": None}, id="calendar-without-method"),
        pytest.param({"calendar": None}, id="method-without-calendar"),
        pytest.param({"method": "REPLY\r\nBcc: x"}, id="bad-method"),
        pytest.param({"calendar": b"SUMMARY:caf\xe9"}, id="calendar-not-utf8"),
        pytest.param({"auto_submitted": "yes\r\nBcc: x"}, id="bad-auto-submitted"),
        pytest.param({"message_id_domain": "x>\r\nBcc: y"}, id="bad-domain"),
        pytest.param({"extra_headers": {"Bcc": "evil@x"}}, id="reserved-header"),
        pytest.param({"extra_headers": {"X Bad": "1"}}, id="bad-header-name"),
        pytest.param({"extra_headers": {"X-A:\r\nBcc": "1"}}, id="injecting-header-name"),
    ],
)
def test_invalid_arguments(changes: Mapping[str, Any]) -> None:
    with pytest.raises(ValueError):
        build(**changes)


# -- address_of ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("mailto:Room@Example.COM", "room@example.com"),
        ("MAILTO:room@example.com", "room@example.com"),
        ("  MailTo: Room@Example.com \r\n", "room@example.com"),
        ("Room@Example.com", "room@example.com"),
        ("mailto:", ""),
    ],
)
def test_address_of(value: str, expected: str) -> None:
    assert address_of(value) == expected


def test_random_subjects_round_trip_without_injection() -> None:
    rng = random.Random(6047)
    alphabet = [
        "a",
        "Z",
        " ",
        "é",
        "€",
        "𝄞",
        "=?",
        "?=",
        "utf-8?Q?",
        "=0D=0A",
        "\r\n",
        ":",
        "Bcc: x",
    ]
    for _ in range(200):
        subject = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
        subject += "w" * rng.choice([0, 0, 90])
        raw = build(subject=subject)
        head = raw[: raw.index(b"\r\n\r\n")]
        assert not re.search(rb"(?im)^bcc", head)
        assert all(len(line) <= 78 for line in head.split(b"\r\n"))
        assert parse_message(raw).subject == clean_subject(subject)


def _same_boundary(data: bytes) -> bytes:
    return re.sub(rb"={15}\d{19}==", b"=BOUNDARY=", data)


def test_direct_writing_is_the_email_packages_byte_for_byte() -> None:
    """build_message writes a message without attachments itself (issue 15:
    the email package's header objects and generator cost about a
    millisecond a message); it must be the very bytes the email package
    writes for the same headers and parts, whatever the text, subject,
    recipients, threading and calendar."""
    rng = random.Random(2046)
    pieces = ["a", "Z", " ", "é", "€", "=?", "\r\n", "\n", "\r", "\x0b", "\x0c", ".", "From "]
    long_calendar = CALENDAR.replace(b"SUMMARY:R", b"DESCRIPTION:" + b"x" * 300 + b"\r\nSUMMARY:R")
    for case in range(300):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        text += rng.choice(["", "w" * 90, "\n\n", "=" * 80])
        subject = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 30)))
        subject += "v" * rng.choice([0, 90])
        recipients = [f"user{n}.name@sub{n}.example.org" for n in range(rng.choice([1, 2, 6]))]
        ids = [f"<id{n}.{'q' * rng.randint(1, 60)}@example.org>" for n in range(rng.randint(0, 25))]
        extra = {"X-Note": subject[:20]} if case % 3 == 0 else {}
        calendar = rng.choice([None, CALENDAR, long_calendar, CALENDAR.replace(b"\r\n", b"\n")])
        arguments: dict[str, Any] = {
            "from_addr": "room@example.com",
            "to_addrs": recipients,
            "subject": subject,
            "text": text,
            "calendar": calendar,
            "method": None if calendar is None else rng.choice(["REPLY", "request"]),
            "in_reply_to": ids[-1] if ids else "",
            "references": ids[:-1],
            "date": DATE + timedelta(minutes=rng.randint(-10_000, 10_000)),
            "message_id_domain": "agent.example.com",
            "extra_headers": extra,
        }
        direct = build_message(**arguments)
        head = direct[: direct.index(b"\r\n\r\n")].decode("ascii")
        message_id = re.search(r"(?m)^Message-ID: (.*)$", head)
        assert message_id is not None
        headers = [
            (name, value) for name, value in _headers_given(arguments) if name != "Message-ID"
        ]
        headers.insert(4, ("Message-ID", message_id.group(1).strip()))
        via_package = compose_module._email_package(
            headers,
            text,
            None if calendar is None else compose_module._crlf_utf8(calendar),
            None if calendar is None else arguments["method"].upper(),
        )
        assert _same_boundary(direct) == _same_boundary(via_package), case


def _headers_given(arguments: dict[str, Any]) -> list[tuple[str, str]]:
    """The headers build_message makes of ``arguments`` (Message-ID aside)."""
    headers = [
        ("From", arguments["from_addr"]),
        ("To", ", ".join(arguments["to_addrs"])),
        ("Subject", compose_module._encoded_text(clean_subject(arguments["subject"]), "Subject")),
        ("Date", compose_module._date(arguments["date"])),
        *compose_module._threading(arguments["in_reply_to"], arguments["references"]),
        ("Auto-Submitted", "auto-replied"),
    ]
    for name, value in arguments["extra_headers"].items():
        single = single_line(value)[: compose_module.MAX_HEADER]
        headers.append((name, compose_module._encoded_text(single, name)))
    return headers


def test_header_folding_is_the_policys() -> None:
    """The direct writer folds a header itself when the policy would leave
    it as it is (short lines of ASCII), and leaves every other value to
    ``email.policy.SMTP`` (issue 15: its module is 0.7 MiB a plain reply
    does not need); either way the lines are the policy's."""
    rng = random.Random(1550)
    pieces = ["a", "Z", " ", "é", "=?", "\n", "\r\n", "\r", "\x0b", "\x1c", "\x85", "\udcff", ";"]
    names = ["To", "Subject", "References", "X-A-Rather-Long-Header-Name"]
    values = ["", " ", "x" * 62, "x" * 63, "x" * 78, "x" * 79, "a\n " + "b" * 78, "a\n " + "b" * 77]
    values += ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 90))) for _ in range(400)]
    for name in names:
        for value in values:
            expected = _outcome(email.policy.SMTP.fold, name, value)
            assert _outcome(compose_module._fold, name, value) == expected, (name, value)


def _outcome(fold: Callable[[str, str], str], name: str, value: str) -> str | type[Exception]:
    """What ``fold`` returns, or the kind of error it raises (the policy
    cannot encode some undecodable bytes)."""
    try:
        return fold(name, value)
    except Exception as exc:
        return type(exc)


def test_the_alternatives_content_type_is_folded_as_the_policy_folds_it() -> None:
    boundaries = ["=" * 15 + f"{0:019d}==", "=" * 15 + f"{sys.maxsize - 1:019d}=="]
    boundaries += [compose_module._make_boundary("") for _ in range(50)]
    for boundary in boundaries:
        content = f'multipart/alternative; boundary="{boundary}"'
        expected = email.policy.SMTP.fold("Content-Type", content)
        assert compose_module._alternative_content_type(boundary) == expected
