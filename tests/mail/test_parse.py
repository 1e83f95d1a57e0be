"""Tests for imiptools.mail.parse: reading and taking apart incoming iMIP mail."""

from __future__ import annotations

import base64
import csv
import email
import email.policy
import io
import quopri
import random
import re
import subprocess
import sys
from email.message import Message
from pathlib import Path

import icalendar
import pytest
from hypothesis import given
from hypothesis import strategies as st

from imiptools.errors import ExitCode, MessageTooBig
from imiptools.mail.parse import (
    decode_bytes,
    decode_header_value,
    parse_message,
    read_message,
    single_line,
)
from tests.support import INTEROP

CALENDAR = (
    "BEGIN:VCALENDAR\r\n"
    "VERSION:2.0\r\n"
    "PRODID:-//imip-agent//tests//EN\r\n"
    "METHOD:REQUEST\r\n"
    "BEGIN:VEVENT\r\n"
    "UID:event-1@example.org\r\n"
    "DTSTAMP:20240301T090000Z\r\n"
    "DTSTART:20240310T100000Z\r\n"
    "DTEND:20240310T110000Z\r\n"
    "SUMMARY:Café “planning” €\r\n"
    "ORGANIZER:mailto:alice@example.org\r\n"
    "ATTENDEE;RSVP=TRUE:mailto:room@example.com\r\n"
    "END:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)
OTHER_CALENDAR = CALENDAR.replace("event-1@", "event-2@")
HEADERS = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: room@example.com\r\n"
    b"Subject: Invitation\r\n"
    b"Message-ID: <m1@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
)


def part(content_type: str, body: bytes, *extra: str) -> bytes:
    """One MIME part (headers, blank line, body)."""
    lines = [f"Content-Type: {content_type}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def multipart(subtype: str, *parts: bytes, boundary: str = "b-o-u-n-d") -> bytes:
    """A multipart entity (headers and body) holding ``parts``."""
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode()
    delimiter = f"\r\n--{boundary}\r\n".encode()
    body = b"preamble" + b"".join(delimiter + p for p in parts)
    return head + body + f"\r\n--{boundary}--\r\n".encode()


def message(entity: bytes) -> bytes:
    return HEADERS + entity


def utf8(text: str = CALENDAR) -> bytes:
    return text.encode("utf-8")


def b64(data: bytes) -> bytes:
    return base64.encodebytes(data)


PLAIN = part("text/plain; charset=utf-8", b"You are invited.")
HTML = part("text/html; charset=utf-8", b"<p>You are invited.</p>")
INLINE_CALENDAR = part("text/calendar; method=REQUEST; charset=UTF-8", utf8())
ICS_ATTACHMENT = part(
    "application/ics; name=invite.ics",
    b64(utf8()),
    "Content-Transfer-Encoding: base64",
    'Content-Disposition: attachment; filename="invite.ics"',
)


# -- what counts as a calendar part --------------------------------------------


def test_single_text_calendar_with_method() -> None:
    parsed = parse_message(message(INLINE_CALENDAR))
    [found] = parsed.parts
    assert found.text == CALENDAR
    assert found.method == "REQUEST"
    assert found.content_type == "text/calendar"
    assert found.filename is None


def test_single_text_calendar_without_method() -> None:
    [found] = parse_message(message(part("text/calendar; charset=utf-8", utf8()))).parts
    assert found.method is None
    assert found.text == CALENDAR


def test_method_is_upper_cased_and_must_be_a_token() -> None:
    lower = part('text/calendar; method="reply"; charset=utf-8', utf8())
    bad = part("text/calendar; method*=utf-8''%E9; charset=utf-8", utf8())
    assert parse_message(message(lower)).parts[0].method == "REPLY"
    assert parse_message(message(bad)).parts[0].method is None


def test_method_on_a_folded_continuation_line() -> None:
    entity = part("text/calendar;\r\n    charset=utf-8;\r\n    method=REQUEST", utf8())
    assert parse_message(message(entity)).parts[0].method == "REQUEST"


def test_multipart_alternative() -> None:
    parsed = parse_message(message(multipart("alternative", PLAIN, HTML, INLINE_CALENDAR)))
    assert [p.text for p in parsed.parts] == [CALENDAR]


def test_mixed_with_application_ics_attachment() -> None:
    parsed = parse_message(message(multipart("mixed", PLAIN, ICS_ATTACHMENT)))
    [found] = parsed.parts
    assert (found.content_type, found.filename, found.method) == (
        "application/ics",
        "invite.ics",
        None,
    )
    assert found.text == CALENDAR


def test_mixed_with_octet_stream_ics_attachment() -> None:
    attachment = part(
        "application/octet-stream",
        b64(utf8()),
        "Content-Transfer-Encoding: base64",
        "Content-Disposition: attachment; filename=Meeting.ICS",
    )
    [found] = parse_message(message(multipart("mixed", PLAIN, attachment))).parts
    assert found.content_type == "application/octet-stream"
    assert found.filename == "Meeting.ICS"


def test_text_plain_vcs_attachment_named_in_content_type() -> None:
    attachment = part("text/plain; name=old.vcs", utf8())
    [found] = parse_message(message(multipart("mixed", PLAIN, attachment))).parts
    assert found.filename == "old.vcs"


def test_rfc2231_and_rfc2047_file_names() -> None:
    continued = part(
        "application/octet-stream",
        utf8(),
        "Content-Disposition: attachment; filename*0*=utf-8''R%C3%A9union; filename*1=.ics",
    )
    encoded = part(
        "application/octet-stream; name==?utf-8?B?UsOpdW5pb24uaWNz?=",
        utf8(OTHER_CALENDAR),
    )
    parts = parse_message(message(multipart("mixed", continued, encoded))).parts
    assert [p.filename for p in parts] == ["Réunion.ics", "Réunion.ics"]


@pytest.mark.parametrize(
    "content_type", ["application/ics", "text/x-vcalendar", "application/x-ics", "TEXT/Calendar"]
)
def test_other_calendar_types(content_type: str) -> None:
    [found] = parse_message(message(part(content_type, utf8()))).parts
    assert found.content_type == content_type.lower()


@pytest.mark.parametrize(
    "entity",
    [
        pytest.param(part("text/plain", utf8()), id="plain-without-ics-name"),
        pytest.param(
            part("application/octet-stream", utf8(), "Content-Disposition: attachment"),
            id="octet-stream-without-name",
        ),
        pytest.param(part("application/pdf; name=x.ics", utf8()), id="pdf-named-ics"),
        pytest.param(part("text/calendar", b"not a calendar"), id="calendar-type-no-vcalendar"),
    ],
)
def test_not_calendar_parts(entity: bytes) -> None:
    assert parse_message(message(entity)).parts == []


def test_multipart_related_nested_in_alternative() -> None:
    image = part("image/png", b64(b"\x89PNG"), "Content-Transfer-Encoding: base64")
    related = multipart("related", HTML, image, boundary="inner")
    entity = multipart("alternative", PLAIN, related, INLINE_CALENDAR, boundary="outer")
    assert [p.text for p in parse_message(message(entity)).parts] == [CALENDAR]


def test_deep_but_sane_nesting() -> None:
    entity = INLINE_CALENDAR
    for depth in range(6):
        entity = multipart("mixed", PLAIN, entity, boundary=f"level{depth}")
    assert len(parse_message(message(entity)).parts) == 1


def test_attached_message_is_not_descended_into() -> None:
    forwarded = message(INLINE_CALENDAR)
    entity = multipart("mixed", PLAIN, part("message/rfc822", forwarded))
    assert parse_message(message(entity)).parts == []


def test_no_calendar_part_is_an_empty_list() -> None:
    parsed = parse_message(message(multipart("alternative", PLAIN, HTML)))
    assert parsed.parts == []
    assert parsed.subject == "Invitation"


def test_several_distinct_calendars_are_all_returned() -> None:
    second = part("text/calendar; method=REQUEST", utf8(OTHER_CALENDAR))
    parts = parse_message(message(multipart("mixed", INLINE_CALENDAR, second))).parts
    assert [p.text for p in parts] == [CALENDAR, OTHER_CALENDAR]


# -- duplicates ------------------------------------------------------------------


def test_inline_and_attached_duplicate_is_returned_once() -> None:
    entity = multipart("mixed", multipart("alternative", PLAIN, INLINE_CALENDAR), ICS_ATTACHMENT)
    [found] = parse_message(message(entity)).parts
    assert (found.content_type, found.method) == ("text/calendar", "REQUEST")


def test_duplicate_differing_only_in_line_endings_and_folding() -> None:
    folded = CALENDAR.replace("\r\n", "\n").replace("SUMMARY:Café", "SUMMARY:Ca\n fé")
    attachment = part("application/ics; name=invite.ics", utf8(folded + "\n"))
    assert len(parse_message(message(multipart("mixed", INLINE_CALENDAR, attachment))).parts) == 1


def test_duplicate_supplies_a_missing_method() -> None:
    entity = multipart("mixed", ICS_ATTACHMENT, INLINE_CALENDAR)
    [found] = parse_message(message(entity)).parts
    assert (found.content_type, found.method) == ("application/ics", "REQUEST")


# -- transfer encodings and charsets ---------------------------------------------


def test_base64_body() -> None:
    entity = part("text/calendar; method=REQUEST", b64(utf8()), "Content-Transfer-Encoding: base64")
    assert parse_message(message(entity)).parts[0].text == CALENDAR


def test_quoted_printable_body_keeps_crlf() -> None:
    body = quopri.encodestring(utf8(), quotetabs=False).replace(b"\r\n", b"=0D=0A=\r\n")
    entity = part(
        "text/calendar; method=REQUEST; charset=utf-8",
        body,
        "Content-Transfer-Encoding: Quoted-Printable",
    )
    assert parse_message(message(entity)).parts[0].text == CALENDAR


def test_declared_latin_1() -> None:
    latin = CALENDAR.replace("“planning” €", "r\xe9union")
    entity = part(
        "text/calendar; charset=ISO-8859-1",
        latin.encode("latin-1"),
        "Content-Transfer-Encoding: 8bit",
    )
    assert "SUMMARY:Café réunion" in parse_message(message(entity)).parts[0].text


def test_undeclared_8bit_utf8() -> None:
    entity = part("text/calendar", utf8(), "Content-Transfer-Encoding: 8bit")
    assert parse_message(message(entity)).parts[0].text == CALENDAR


def test_undeclared_8bit_cp1252() -> None:
    entity = part("text/calendar", CALENDAR.encode("cp1252"), "Content-Transfer-Encoding: 8bit")
    assert parse_message(message(entity)).parts[0].text == CALENDAR


def test_wrongly_declared_charset_falls_back() -> None:
    entity = part("text/calendar; charset=us-ascii", utf8(), "Content-Transfer-Encoding: 8bit")
    assert parse_message(message(entity)).parts[0].text == CALENDAR


@pytest.mark.parametrize("charset", ["x-unknown", "base64", "utf-8\x00", ""])
def test_unusable_declared_charset(charset: str) -> None:
    entity = part(f'text/calendar; charset="{charset}"', utf8())
    assert parse_message(message(entity)).parts[0].text == CALENDAR


def test_utf8_bom_is_stripped() -> None:
    entity = part("text/calendar; charset=utf-8", b"\xef\xbb\xbf" + utf8())
    assert parse_message(message(entity)).parts[0].text == CALENDAR


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-16-le", "utf-16-be"])
def test_undeclared_utf16_and_utf32(encoding: str) -> None:
    attachment = part(
        "application/octet-stream",
        b64(CALENDAR.encode(encoding)),
        "Content-Transfer-Encoding: base64",
        "Content-Disposition: attachment; filename=export.ics",
    )
    assert parse_message(message(attachment)).parts[0].text == CALENDAR


def test_decode_bytes_never_fails() -> None:
    undecodable = b"\x81\x8d\xff BEGIN"  # invalid UTF-8, undefined in cp1252
    assert decode_bytes(undecodable, "utf-8").endswith(" BEGIN")
    assert "\ufffd" in decode_bytes(undecodable)


# -- broken input ------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(bytes(range(256)) * 64, id="all-bytes"),
        pytest.param(random.Random(6047).randbytes(100_000), id="random"),
        pytest.param(b"\x00" * 1000, id="nul"),
        pytest.param(b"Content-Type: multipart/mixed\r\n\r\nno boundary", id="no-boundary"),
        pytest.param(
            b"From: =?utf-8?B?!!!?= <\r\nSubject: =?bogus?Q?=ZZ?=\r\n\r\n", id="bad-words"
        ),
    ],
)
def test_garbage_never_raises(raw: bytes) -> None:
    parsed = parse_message(raw)
    assert parsed.parts == []
    assert parsed.header("Subject") == parsed.subject


def test_truncated_multipart_after_the_calendar() -> None:
    whole = message(multipart("alternative", PLAIN, INLINE_CALENDAR))
    truncated = whole[: whole.rindex(b"\r\n--b-o-u-n-d--")]
    [found] = parse_message(truncated).parts
    assert found.text.rstrip() == CALENDAR.rstrip()


def test_truncated_inside_the_calendar_still_yields_the_part() -> None:
    whole = message(multipart("alternative", PLAIN, INLINE_CALENDAR))
    truncated = whole[: whole.index(b"BEGIN:VEVENT")]
    [found] = parse_message(truncated).parts
    assert "END:VCALENDAR" not in found.text


def test_hostile_nesting_depth_does_not_raise() -> None:
    head = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(5000)
    )
    parsed = parse_message(HEADERS + head + INLINE_CALENDAR)
    assert parsed.parts == []
    assert parsed.from_address == "alice@example.org"


def test_every_message_is_read_with_the_compat32_policy() -> None:
    """compat32 records defects instead of raising; parse_message relies on
    it being the parsers' default (it does not import email.policy, which a
    run does not need): whole messages, headers only, and the fallback for
    hostile nesting."""
    nested = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(5000)
    )
    cases = ((message(INLINE_CALENDAR), False), (HEADERS, True), (HEADERS + nested, False))
    for raw, only in cases:
        assert parse_message(raw, headers_only=only).message.policy is email.policy.compat32


def test_calendar_written_where_part_headers_belong() -> None:
    """Regression: a Lightning/OBM reply put the calendar before the part headers."""
    body = CALENDAR.replace("METHOD:REQUEST", "METHOD:REPLY") + (
        "Content-type: text/calendar; method=REPLY; charset=UTF-8\r\n"
        "Content-transfer-encoding: 8BIT\r\n\r\n"
    )
    raw = (
        HEADERS
        + b'Content-Type: multipart/mixed; boundary="x"\r\n\r\n--x\r\n'
        + body.encode()
        + b"\r\n--x--\r\n"
    )
    [found] = parse_message(raw).parts
    assert found.method == "REPLY"
    calendar = icalendar.Calendar.from_ical(found.text)
    assert str(calendar.events[0]["SUMMARY"]) == "Café “planning” €"


def test_mutated_messages_never_raise() -> None:
    rng = random.Random(2047)
    seeds = [
        message(
            multipart("mixed", multipart("alternative", PLAIN, INLINE_CALENDAR), ICS_ATTACHMENT)
        ),
        *_corpus_samples(),
    ]
    noise = [b"\r\n", b"=?", b"?=", b";", b'"', b"--", b"=\r\n", b"\xff", b"\x00", b"charset*=x''%"]
    for _ in range(300):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 10)):
            at = rng.randrange(len(data) + 1)
            if rng.random() < 0.5:
                data[at:at] = rng.choice(noise)
            else:
                del data[at : at + rng.randint(1, 100)]
        parsed = parse_message(bytes(data))
        assert all("BEGIN" in p.text.upper() for p in parsed.parts)


# -- headers -----------------------------------------------------------------------


def headers_only(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\nbody\r\n").encode("utf-8", errors="surrogateescape")


@pytest.mark.parametrize(
    ("from_line", "expected"),
    [
        ("From: Alice Smith <Alice@Example.ORG>", "alice@example.org"),
        ("From: bob@example.net", "bob@example.net"),
        ('From: "Smith, Bob" <bob@example.net>', "bob@example.net"),
        ("From: =?utf-8?Q?Ren=C3=A9?= <rene@example.net>", "rene@example.net"),
        ("From: undisclosed-recipients:;", ""),
        ("From: not an address", ""),
        ("From: a@example.org, b@example.org", ""),
        ("X-Nothing: here", ""),
    ],
)
def test_from_address(from_line: str, expected: str) -> None:
    assert parse_message(headers_only(from_line)).from_address == expected


def test_subject_encoded_words_folded_and_split_characters() -> None:
    # "é" is split across two adjacent encoded words; the space between them vanishes.
    raw = headers_only(
        "Subject: =?utf-8?Q?Caf=C3?=\r\n =?utf-8?Q?=A9?= ok =?ISO-8859-1?Q?=E9t=E9?="
    )
    assert parse_message(raw).subject == "Café ok été"


def test_subject_raw_8bit_utf8_and_cp1252() -> None:
    assert parse_message(b"Subject: Caf\xc3\xa9\r\n\r\n").subject == "Café"
    assert parse_message(b"Subject: Caf\xe9\r\n\r\n").subject == "Café"


def test_header_is_one_safe_line() -> None:
    raw = headers_only(
        "Subject: =?utf-8?B?" + base64.b64encode(b"a\r\nBcc: x\x00y").decode() + "?="
    )
    parsed = parse_message(raw)
    assert parsed.subject == "a Bcc: x y"
    assert parsed.header("subject") == parsed.subject
    assert parsed.header("X-Absent") == ""


def test_first_of_repeated_headers() -> None:
    parsed = parse_message(headers_only("Subject: one", "Subject: two"))
    assert parsed.subject == "one"


def test_auto_submitted_precedence_message_id() -> None:
    parsed = parse_message(
        headers_only(
            "Auto-Submitted: Auto-Replied",
            "Precedence: BULK",
            "Message-ID:\r\n <id-1@example.org> (comment)",
        )
    )
    assert parsed.auto_submitted == "auto-replied"
    assert parsed.precedence == "bulk"
    assert parsed.message_id == "<id-1@example.org>"
    assert parse_message(headers_only("X: y")).auto_submitted == ""


def test_references_and_in_reply_to_deduplicated() -> None:
    parsed = parse_message(
        headers_only(
            "References: <a@x> <b@x>\r\n\t<c@x> <a@x>",
            "In-Reply-To: <c@x> (Alice's message)",
        )
    )
    assert parsed.references == ["<a@x>", "<b@x>", "<c@x>"]
    assert parse_message(headers_only("In-Reply-To: bare@x")).references == ["<bare@x>"]


def test_decode_header_value_unknown_charset() -> None:
    assert decode_header_value("=?x-klingon?Q?caf=C3=A9?=") == "café"


# -- reading from the MTA ------------------------------------------------------------


def test_read_message_within_limit() -> None:
    data = message(INLINE_CALENDAR)
    assert read_message(io.BytesIO(data), len(data)) == data


def test_read_message_over_limit_drains_the_stream() -> None:
    stream = io.BytesIO(b"x" * 20_000_000)
    with pytest.raises(MessageTooBig) as caught:
        read_message(stream, 10_000_000)
    assert stream.read() == b""
    assert caught.value.exit_code == ExitCode.DATAERR
    assert caught.value.status_line().startswith("5.3.4 message of 20000000 bytes exceeds")


def test_read_message_over_limit_from_a_pipe_spares_the_writer() -> None:
    """The MTA's side of the pipe must not get EPIPE when we refuse."""
    writer = "import sys; sys.stdout.buffer.write(b'x' * 20_000_000)"
    with subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE) as process:
        assert process.stdout is not None
        with pytest.raises(MessageTooBig):
            read_message(process.stdout, 1_000_000)
        assert process.wait(timeout=30) == 0


def test_read_message_negative_limit() -> None:
    with pytest.raises(ValueError):
        read_message(io.BytesIO(b""), -1)


# -- the interop corpus ---------------------------------------------------------------

CORPUS = INTEROP

#: Corpus files whose calendar does not load, each with the reason.
KNOWN_BROKEN = {
    "james__mailbox-store-calendar-counter.eml": (
        "Outlook COUNTER whose base64 body was spliced in the Apache James fixture: "
        "BEGIN:VEVENT and half the VTIMEZONE are missing, so icalendar finds no component"
    ),
}


#: Corpus files where the general rule does not say it all: parts expected, and why.
SPECIAL = {
    "james__ics_in_header.eml": (1, "calendar written before the part headers: salvaged"),
    "ccs__dsn_failure_with_ics.eml": (0, "calendar only inside the bounced message/rfc822"),
    "tb__meet-meeting-invite.eml": (1, "inline CRLF copy and LF attachment: one calendar"),
    "tine20__calendar_cancel.eml": (1, "attachment lacks a trailing blank line: one calendar"),
    "tine20__calendar_request.eml": (2, "inline and attached copies differ in ATTENDEEs"),
    "james__gmail.eml": (2, "forwarded: inline and attached copies differ in addresses"),
}


def _manifest() -> dict[str, dict[str, str]]:
    with (CORPUS / "MANIFEST.tsv").open(encoding="utf-8", newline="") as stream:
        return {Path(row["path"]).name: row for row in csv.DictReader(stream, delimiter="\t")}


def _corpus_params() -> list[object]:
    if not CORPUS.is_dir():
        return [pytest.param(None, id="corpus-absent")]
    return [pytest.param(p, id=p.name) for p in sorted(CORPUS.rglob("*.eml"))]


def _corpus_samples() -> list[bytes]:
    return [p.read_bytes() for p in sorted(CORPUS.rglob("*.eml"))] if CORPUS.is_dir() else []


def _declared_calendar_leaves(entity: Message) -> list[Message]:
    """Independent oracle: text/calendar or *.ics leaves, skipping message/*."""
    if entity.get_content_maintype() == "message":
        return []
    if entity.is_multipart():
        children = [c for c in entity.get_payload() if isinstance(c, Message)]
        return [leaf for child in children for leaf in _declared_calendar_leaves(child)]
    named_ics = (entity.get_filename() or "").lower().endswith(".ics")
    return [entity] if entity.get_content_type() == "text/calendar" or named_ics else []


def _expects_calendar(raw: bytes) -> bool:
    """The raw bytes hold BEGIN:VCALENDAR inside a text/calendar or .ics part."""
    entity = email.message_from_bytes(raw, policy=email.policy.default)
    for leaf in _declared_calendar_leaves(entity):
        body = leaf.get_payload(decode=True)
        if isinstance(body, bytes) and re.search(rb"(?i)begin:vcalendar", body):
            return True
    return False


def _loads(text: str) -> bool:
    try:
        calendars = icalendar.Calendar.from_ical(text, multiple=True)
    except ValueError:
        return False
    return len(calendars) > 0


@pytest.mark.parametrize("path", _corpus_params())
def test_interop_corpus(path: Path | None) -> None:
    if path is None:
        pytest.skip(f"interop corpus not found at {CORPUS}")
    raw = path.read_bytes()
    parsed = parse_message(raw)
    if _expects_calendar(raw):
        assert parsed.parts, "a declared calendar part was not found"
    if _manifest()[path.name]["parses_icalendar"].startswith("n/a"):
        assert parsed.parts == [], "the manifest says this message has no calendar"
    if path.name in SPECIAL:
        count, reason = SPECIAL[path.name]
        assert len(parsed.parts) == count, reason
    loads = all(_loads(p.text) for p in parsed.parts)
    assert loads == (path.name not in KNOWN_BROKEN), KNOWN_BROKEN.get(path.name, "did not load")


def _corpus_ics_params() -> list[object]:
    if not CORPUS.is_dir():
        return [pytest.param(None, id="corpus-absent")]
    return [pytest.param(p, id=p.name) for p in sorted(CORPUS.rglob("*.ics"))]


@pytest.mark.parametrize("path", _corpus_ics_params())
def test_interop_calendar_as_undeclared_attachment(path: Path | None) -> None:
    """Every corpus calendar, attached without a charset, is found and decoded."""
    if path is None:
        pytest.skip(f"interop corpus not found at {CORPUS}")
    attachment = part(
        "application/octet-stream",
        b64(path.read_bytes()),
        "Content-Transfer-Encoding: base64",
        f'Content-Disposition: attachment; filename="{path.name}"',
    )
    [found] = parse_message(message(multipart("mixed", PLAIN, attachment))).parts
    assert "\x00" not in found.text


def test_listed_corpus_files_exist() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"interop corpus not found at {CORPUS}")
    assert set(KNOWN_BROKEN) | set(SPECIAL) <= {p.name for p in CORPUS.rglob("*.eml")}


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (("Auto-Submitted: no", "Auto-Submitted: auto-generated"), "auto-generated"),
        (("Auto-Submitted: auto-replied", "Auto-Submitted: no"), "auto-replied"),
        (("Auto-Submitted: no", "Auto-Submitted: No (a person wrote this)"), "no"),
        (('Auto-Submitted: auto-replied; owner-email="x@example.org"',), "auto-replied"),
        (("Auto-Submitted: no", "Auto-Submitted: ???"), "unreadable"),
        (("Auto-Submitted:",), "unreadable"),
    ],
)
def test_auto_submitted_counts_every_instance(lines: tuple[str, ...], expected: str) -> None:
    """RFC 3834 §5: any value but "no", in any instance, means automatic."""
    assert parse_message(headers_only(*lines)).auto_submitted == expected


def test_from_address_with_trailing_dot_is_normalised() -> None:
    assert parse_message(headers_only("From: Room <Room@Example.COM.>")).from_address == (
        "room@example.com"
    )


#: What single_line makes a space: C0, DEL, C1, U+2028 and U+2029.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@given(st.text(alphabet=st.characters(max_codepoint=0x3000)))
def test_single_line_makes_every_control_and_break_one_space(text: str) -> None:
    line = single_line(text)
    assert line == " ".join(_CONTROLS.sub(" ", text).split())
    assert not _CONTROLS.search(line) and "  " not in line and line == line.strip()
