"""iMIP out: build the RFC 5322 message that carries an iTIP reply or request.

Contract of :func:`build_message` (RFC 6047):

- With a calendar: ``multipart/alternative`` holding ``text/plain;
  charset=UTF-8`` then ``text/calendar; method=<METHOD>; charset=UTF-8``
  (§2.4: the ``method`` parameter is required and mirrors METHOD; §3 puts a
  human-readable alternative first). The calendar is base64-encoded so its
  CRLF line endings (RFC 5545 §3.1) survive any transport unchanged.
- Without a calendar: a single ``text/plain`` part.
- Headers: From, To, Subject, Date (from the caller, never the clock),
  Message-ID (:func:`email.utils.make_msgid`), In-Reply-To/References
  (threading with the request), Auto-Submitted (RFC 3834 §5, so that
  agents do not answer each other forever), MIME-Version.
- Untrusted values (a SUMMARY in the subject, message ids from the incoming
  mail) can never add a header: control characters become spaces, the
  subject is cut to :data:`MAX_SUBJECT` characters, invalid message ids are
  dropped, and non-ASCII text is RFC 2047-encoded by ``email.policy.SMTP``.
  Addresses must pass :func:`imiptools.addresses.check` or
  :class:`~imiptools.errors.UnusableAddress` (a ValueError) is raised: the
  agent checks them before composing, so a bad one here is a bug.
- The result uses CRLF line endings (``email.policy.SMTP``).
"""

from __future__ import annotations

import binascii
import random
import re
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from email import quoprimime
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from types import MappingProxyType

from imiptools import addresses
from imiptools.mail.parse import single_line

__all__ = [
    "MAX_SUBJECT",
    "address_of",
    "build_message",
    "check_address",
    "clean_subject",
    "message_ids",
]

MAX_SUBJECT = 200
MAX_HEADER = 2000  # extra header values are cut here
MAX_REFERENCES = 20  # RFC 5322 §3.6.4 lets us shorten: keep the first and the latest

_NEWLINE = re.compile(r"\r\n|\r|\n")
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})
_DOMAIN = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_MSG_ID = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]{1,250}>")  # printable ASCII but < and >
_TOKEN = re.compile(r"[A-Za-z0-9-]+")
_FIELD_NAME = r"[\x21-\x39\x3b-\x7e]+"  # RFC 5322 §3.6.8 ftext
_RESERVED = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "auto-submitted",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
    }
)


def address_of(uri_or_address: str) -> str:
    """``mailto:Room@Example.COM`` -> ``room@example.com`` (no validation).

    :func:`imiptools.addresses.normalise`, the one parser of addresses.
    """
    return addresses.normalise(uri_or_address)


def check_address(address: str) -> str:
    """Return ``address`` if every sender can use it, else raise
    :class:`~imiptools.errors.UnusableAddress` (a ValueError).

    :func:`imiptools.addresses.check`, the one check of addresses (``=?``
    is refused there: the header parser would take it for the start of an
    RFC 2047 encoded word).
    """
    return addresses.check(address)


def build_message(
    *,
    from_addr: str,
    to_addrs: Sequence[str],
    subject: str,
    text: str,
    calendar: bytes | None,
    method: str | None,
    in_reply_to: str = "",
    references: Sequence[str] = (),
    auto_submitted: str = "auto-replied",
    date: datetime,
    message_id_domain: str,
    extra_headers: Mapping[str, str] = _NO_HEADERS,
    attachments: Sequence[tuple[bytes, str, str]] = (),
    message_id: str = "",
) -> bytes:
    """Build an iMIP message (RFC 6047 §2) and return its bytes (CRLF).

    ``message_id``: the Message-ID, as :func:`new_message_id` makes it (a
    caller that must know it); by default a new one at ``message_id_domain``.

    ``attachments`` are further calendars, (data, METHOD, filename), added
    as ``text/calendar`` attachments after the alternative (e.g. the
    sender's free/busy, ``freebusy_bundling``).

    Raises ValueError for a bad address, a naive ``date``, a calendar that is
    not UTF-8 or lacks a METHOD token, a bad Auto-Submitted keyword, a bad
    message-id domain, or an extra header that is malformed or reserved.
    """
    sender = check_address(from_addr)
    recipients = ", ".join(_recipients(to_addrs))
    headers = [
        ("From", sender),
        ("To", recipients),
        ("Subject", _encoded_text(clean_subject(subject), "Subject")),
        ("Date", _date(date)),
        ("Message-ID", message_id or new_message_id(message_id_domain)),
        *_threading(in_reply_to, references),
    ]
    if auto_submitted:
        headers.append(("Auto-Submitted", _token(auto_submitted, "Auto-Submitted").lower()))
    for name, value in extra_headers.items():
        name = _field_name(name)
        headers.append((name, _encoded_text(single_line(value)[:MAX_HEADER], name)))
    if (calendar is None) != (method is None):
        raise ValueError(
            "method given without a calendar"
            if calendar is None
            else "a calendar needs its METHOD (RFC 6047 §2.4)"
        )
    if calendar is not None and method is not None:
        calendar, method = _crlf_utf8(calendar), _token(method, "METHOD").upper()
    if not attachments and _plain_addresses(sender, to_addrs):
        return _direct(headers, text, calendar, method)
    return _email_package(headers, text, calendar, method, attachments)


def new_message_id(domain: str) -> str:
    """A new Message-ID (RFC 5322 §3.6.4) at ``domain``; ValueError for a
    bad domain."""
    return make_msgid(domain=_domain(domain))


def _email_package(
    headers: list[tuple[str, str]],
    text: str,
    calendar: bytes | None,
    method: str | None,
    attachments: Sequence[tuple[bytes, str, str]] = (),
) -> bytes:
    """The message as ``email.message.EmailMessage`` writes it (any
    addresses, attachments)."""
    import email.policy  # lazy: start-up (the header registry: see _fold)

    message = EmailMessage(policy=email.policy.SMTP)
    for name, value in headers:
        if name in _PARSED:
            message[name] = value
        else:
            message.set_raw(name, value)
    _set_body(message, text, calendar, method)
    for data, part_method, filename in attachments:
        _attach_calendar(message, data, _token(part_method, "METHOD").upper(), filename)
    return message.as_bytes()


#: The headers ``email.policy`` parses into structured values (the others
#: are set raw, as :func:`_encoded_text` made them, or are unstructured).
_PARSED = frozenset(
    {"From", "To", "Date", "Message-ID", "In-Reply-To", "References", "Auto-Submitted"}
)
#: An address every header parser writes back as it is (a dot-atom local
#: part, RFC 5322 §3.4.1): the only kind :func:`_direct` writes itself.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
)


def _plain_addresses(sender: str, recipients: Sequence[str]) -> bool:
    return all(_PLAIN_ADDRESS.fullmatch(a) for a in (sender, *recipients))


def _direct(
    headers: list[tuple[str, str]], text: str, calendar: bytes | None, method: str | None
) -> bytes:
    """The bytes ``email.message.EmailMessage`` with ``email.policy.SMTP``
    writes for these headers, ``text`` and ``calendar`` (no attachments,
    plain addresses), written directly: the email package's header objects
    and generator cost about a millisecond a message (issue 15: the LMTP
    service's CPU per message). Each header goes through the policy's own
    ``fold`` (a long one is refolded as the email package refolds it);
    ``tests/mail/test_compose.py`` compares the two byte for byte."""
    lines = [_fold(name, value) for name, value in headers]
    text_part = _text_part(text)
    if calendar is None or method is None:
        lines += [text_part[0], text_part[1], "MIME-Version: 1.0\r\n", "\r\n", text_part[2]]
        return "".join(lines).encode("ascii")
    boundary = _make_boundary(text_part[2])
    lines += ["MIME-Version: 1.0\r\n", _alternative_content_type(boundary), "\r\n"]
    lines += [f"--{boundary}\r\n", text_part[0], text_part[1], "\r\n", text_part[2]]
    lines += ["\r\n", f"--{boundary}\r\n"]
    lines.append(_fold("Content-Type", f'text/calendar; method="{method}"; charset="UTF-8"'))
    lines += ["Content-Transfer-Encoding: base64\r\n", "\r\n"]
    lines += [_base64_lines(calendar), "\r\n", f"--{boundary}--\r\n"]
    return "".join(lines).encode("ascii")


#: ``email.policy.SMTP``'s ``max_line_length`` (its default, RFC 5322 §2.1.1).
_MAX_LINE = 78


def _fold(name: str, value: str) -> str:
    """``email.policy.SMTP.fold(name, value)``: the header line(s), CRLF.

    The policy leaves a value alone (``refold_source = "long"``) when no
    line of it is longer than :data:`_MAX_LINE` (the first counted with
    ``name: ``) and it carries no undecodable bytes; it then joins the lines
    with CRLF, as done here for such a value in ASCII. Any other value goes
    to the policy itself, whose module (with the header registry and its
    parser, about 0.7 MiB and 3 ms) is imported only then.
    """
    lines = value.splitlines()
    short = not lines or (
        len(lines[0]) + len(name) + 2 <= _MAX_LINE
        and all(len(line) <= _MAX_LINE for line in lines[1:])
    )
    if short and value.isascii():
        return name + ": " + "\r\n".join(lines) + "\r\n"
    import email.policy  # lazy: start-up

    folded: str = email.policy.SMTP.fold(name, value)
    return folded


def _alternative_content_type(boundary: str) -> str:
    """The Content-Type line of ``multipart/alternative`` with ``boundary``
    (one of :func:`_make_boundary`'s, always 36 characters), as
    ``email.policy.SMTP`` folds it: too long for one line, it is refolded
    at the parameter (``tests/mail/test_compose.py`` compares the two)."""
    return f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'


def _text_part(text: str) -> tuple[str, str, str]:
    """The text part's Content-Type and Content-Transfer-Encoding lines and
    its body (CRLF), as ``set_content`` and the generator write them."""
    cte = _text_cte(text)
    lines = text.encode("utf-8").splitlines()
    body = b"\n".join(lines).decode("latin-1") + "\n"
    if cte == "quoted-printable":
        body = quoprimime.body_encode(body, _MAX_LINE)
    return (
        'Content-Type: text/plain; charset="UTF-8"\r\n',
        f"Content-Transfer-Encoding: {cte}\r\n",
        _crlf_lines(body),
    )


def _crlf_lines(text: str) -> str:
    """``text`` with CRLF line ends, as the generator writes a payload."""
    lines = _NEWLINE.split(text)
    return "".join(line + "\r\n" for line in lines[:-1]) + lines[-1]


def _base64_lines(data: bytes) -> str:
    """``data`` in base64 lines of 76 characters, CRLF (as ``set_content``)."""
    encoded = binascii.b2a_base64(data, newline=False).decode("ascii")
    return "".join(encoded[i : i + 76] + "\r\n" for i in range(0, len(encoded), 76))


def _make_boundary(text: str) -> str:
    """A random multipart boundary of the email package's form, not
    opening any line of ``text`` (RFC 2046 §5.1.1)."""
    while True:
        boundary = "=" * 15 + f"{random.randrange(sys.maxsize):019d}" + "=="
        if f"--{boundary}" not in text:
            return boundary


def _attach_calendar(message: EmailMessage, data: bytes, method: str, filename: str) -> None:
    """A text/calendar attachment (multipart/mixed around the alternative)."""
    message.add_attachment(
        _crlf_utf8(data), maintype="text", subtype="calendar", filename=_safe_filename(filename)
    )
    *_, part = message.iter_parts()
    del part["MIME-Version"]
    part.replace_header("Content-Type", f"text/calendar; method={method}; charset=UTF-8")


def _safe_filename(name: str) -> str:
    return "".join(c for c in name if c.isalnum() or c in "._-")[:64] or "calendar.ics"


def _encoded_text(value: str, name: str) -> str:
    """A free-text header's value, RFC 2047-encoded by us, to be set raw
    (never re-parsed).

    ``email.policy`` parses a value set with ``message[name] = value``
    and decodes any encoded word in it; unpatched Pythons (3.11.7 here) then
    write the decoded text out raw, so a SUMMARY such as
    ``=?utf-8?Q?x=0D=0ABcc:_y?=`` injects a header (CPython gh-121650,
    CVE-2024-6923; gh-144125 for BytesGenerator). Here the value is
    encoded with :class:`email.header.Header` (any ``=?`` in it ends up
    inside an encoded word) and stored with ``set_raw``; the folded lines are
    short, so the generator writes them unchanged.
    """
    plain = value.isascii() and "=?" not in value
    header = Header(value, "us-ascii" if plain else "utf-8", header_name=name)
    return header.encode(linesep="\n")


def clean_subject(subject: str) -> str:
    """One line, no control characters, at most :data:`MAX_SUBJECT` chars."""
    line = single_line(subject)
    if len(line) <= MAX_SUBJECT:
        return line
    return line[: MAX_SUBJECT - 1].rstrip() + "…"


def _recipients(to_addrs: Sequence[str]) -> list[str]:
    if isinstance(to_addrs, str) or not to_addrs:
        raise ValueError("to_addrs must be a non-empty sequence of addresses")
    return [check_address(address) for address in to_addrs]


def _date(date: datetime) -> str:
    if date.tzinfo is None or date.utcoffset() is None:
        raise ValueError("date must be timezone-aware")
    return format_datetime(date)


def _domain(domain: str) -> str:
    if not _DOMAIN.fullmatch(domain):
        raise ValueError(f"bad message-id domain: {domain!r}")
    return domain


def _token(value: str, what: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"bad {what} value: {value!r}")
    return value


def _field_name(name: str) -> str:
    if not re.fullmatch(_FIELD_NAME, name) or name.lower() in _RESERVED:
        raise ValueError(f"bad or reserved extra header name: {name!r}")
    return name


def message_ids(value: str) -> list[str]:
    """The well-formed ``<id>`` tokens in an untrusted header value.

    Ids containing ``=?`` are dropped (see :func:`check_address`).
    """
    return [found for found in _MSG_ID.findall(single_line(value)) if "=?" not in found]


def _threading(in_reply_to: str, references: Sequence[str]) -> list[tuple[str, str]]:
    """In-Reply-To and References (RFC 5322 §3.6.4), invalid ids dropped."""
    parent = message_ids(in_reply_to)[:1]
    ids = [found for value in references for found in message_ids(value)]
    ids = list(dict.fromkeys(ids + parent))
    if len(ids) > MAX_REFERENCES:
        ids = ids[:1] + ids[-(MAX_REFERENCES - 1) :]
    headers = [("In-Reply-To", parent[0])] if parent else []
    if ids:
        headers.append(("References", " ".join(ids)))
    return headers


def _set_body(message: EmailMessage, text: str, calendar: bytes | None, method: str | None) -> None:
    if calendar is None:
        if method is not None:
            raise ValueError("method given without a calendar")
        _set_text(message, text)
        return
    if method is None:
        raise ValueError("a calendar needs its METHOD (RFC 6047 §2.4)")
    _set_text(message, text)
    _add_calendar(message, calendar, _token(method, "METHOD").upper())


def _set_text(part: EmailMessage, text: str) -> None:
    part.set_content(text, subtype="plain", charset="utf-8", cte=_text_cte(text))
    part.replace_header("Content-Type", "text/plain; charset=UTF-8")


def _add_calendar(message: EmailMessage, calendar: bytes, method: str) -> None:
    """Append the calendar alternative (RFC 6047 §2.4), base64 to keep CRLF."""
    message.add_alternative(_crlf_utf8(calendar), maintype="text", subtype="calendar")
    *_, part = message.iter_parts()
    del part["MIME-Version"]
    part.replace_header("Content-Type", f"text/calendar; method={method}; charset=UTF-8")


def _text_cte(text: str) -> str:
    return "7bit" if text.isascii() and _short_lines(text) else "quoted-printable"


def _short_lines(text: str) -> bool:
    return all(len(line) <= 78 for line in text.splitlines())


def _crlf_utf8(calendar: bytes) -> bytes:
    """``calendar`` with CRLF line endings; ValueError unless it is UTF-8."""
    try:
        calendar.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("the calendar is not UTF-8") from exc
    return re.sub(rb"\r?\n", b"\r\n", calendar)
