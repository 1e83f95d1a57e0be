"""iMIP in: read a message from the MTA and find its calendar parts.

Contracts:

- :func:`read_message` reads at most ``max_size`` bytes; a bigger message is
  drained to EOF (so the MTA writing into our pipe never sees EPIPE) and
  refused with :class:`~imiptools.errors.MessageTooBig` (exit 65, 5.3.4).
- :func:`parse_message` never raises on malformed MIME: it uses the
  ``compat32`` policy, which records defects instead of raising, and decodes
  every header and body with a fallback chain that cannot fail.

RFC 6047 §2.4 says the iCalendar object travels in a ``text/calendar`` body
part whose ``method`` parameter repeats the METHOD property, and §3 allows
any MIME structure around it (``multipart/alternative`` beside a text part,
``multipart/mixed``, ``multipart/related``). Real clients also send the
calendar as ``application/ics`` or as an ``.ics`` attachment, often twice in
one message (inline and attached); :func:`calendar_parts` accepts all of
these and returns each distinct calendar once. Embedded ``message/rfc822``
parts (forwards, bounces quoting the original) are not descended into: their
calendars are not addressed to us.
"""

from __future__ import annotations

import binascii
import codecs
import email
import re
from collections.abc import Iterator
from dataclasses import replace
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import collapse_rfc2231_value, getaddresses
from typing import IO

from imiptools.addresses import normalise
from imiptools.deferred import dataclass
from imiptools.errors import MessageTooBig

__all__ = [
    "CalendarPart",
    "ParsedMessage",
    "Security",
    "calendar_parts",
    "decode_bytes",
    "decode_header_value",
    "parse_message",
    "read_message",
    "single_line",
]

#: Content types whose body is a calendar whatever their name (RFC 5545 §8.1
#: registers text/calendar; the others are what clients send in practice).
CALENDAR_TYPES = frozenset(
    {"text/calendar", "application/ics", "text/x-vcalendar", "application/x-ics"}
)
#: Generic types that hold a calendar only when their file name says so.
GENERIC_TYPES = frozenset({"application/octet-stream", "text/plain"})
CALENDAR_SUFFIXES = (".ics", ".vcs")

_READ_CHUNK = 1 << 16
_MAX_DEPTH = 20  # MIME nesting we descend; real clients use 3 or 4
_BOM = "\ufeff"
#: Control characters (C0, DEL, C1) and the Unicode line and paragraph
#: separators, each made a space by :func:`single_line` (a translation table:
#: as a regular expression, this one character class took half a
#: millisecond to compile at every start-up).
_CONTROL_SPACES = dict.fromkeys([*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029], " ")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=")
_TOKEN = re.compile(r"[A-Z0-9-]+")  # RFC 5545 §3.1 iana-token / x-name
_MSG_ID = re.compile(r"<[^<>\s]+>")
_KEYWORD = r"\s*([A-Za-z0-9-]+)\s*(?:$|[;(])"
_ADDR_SPEC = re.compile(r"[^\s@<>,;:\"()\[\]\\]+@[^\s@<>,;:\"()\[\]\\]+")
_BEGIN = re.compile(r"BEGIN\s*:\s*VCALENDAR", re.IGNORECASE)
_END = r"END\s*:\s*VCALENDAR"


# -- reading ---------------------------------------------------------------


def read_message(stream: IO[bytes], max_size: int | None) -> bytes:
    """Read the whole message from ``stream``, at most ``max_size`` bytes.

    Raises MessageTooBig after draining the rest of the stream when the
    message is bigger. ``max_size`` None reads everything (the MTA's own
    size limit applies).
    """
    if max_size is None:
        return stream.read()
    if max_size < 0:
        raise ValueError(f"max_size must not be negative: {max_size}")
    chunks: list[bytes] = []
    total = 0
    while total <= max_size:
        chunk = stream.read(min(_READ_CHUNK, max_size + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
    total += _drain(stream)
    raise MessageTooBig(f"message of {total} bytes exceeds the limit of {max_size} bytes")


def _drain(stream: IO[bytes]) -> int:
    """Read and discard the rest of ``stream``; return how many bytes."""
    count = 0
    while chunk := stream.read(_READ_CHUNK):
        count += len(chunk)
    return count


# -- text decoding -----------------------------------------------------------


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decode ``data``: declared charset, else UTF-8, else cp1252; never fails.

    A declared charset that Python does not know, or that does not fit the
    bytes, is ignored; a UTF-16 or UTF-32 byte order mark is honoured next.
    The last resort is UTF-8 with replacement characters.
    """
    for candidate in (charset, _sniff_utf16_32(data), "utf-8", "cp1252"):
        if not candidate:
            continue
        try:
            return data.decode(candidate)
        except (LookupError, ValueError):
            continue
    return data.decode("utf-8", errors="replace")


def _sniff_utf16_32(data: bytes) -> str | None:
    """A UTF-16/32 encoding named by a byte order mark, or by the NUL
    bytes of UTF-16 ASCII text without one (some Windows exports)."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    head = data[:64]
    even, odd = head[0::2], head[1::2]
    if len(head) >= 16 and not odd.strip(b"\x00") and b"\x00" not in even:
        return "utf-16-le"
    if len(head) >= 16 and not even.strip(b"\x00") and b"\x00" not in odd:
        return "utf-16-be"
    return None


def single_line(text: str) -> str:
    """``text`` with control characters and line breaks made single spaces."""
    return " ".join(text.translate(_CONTROL_SPACES).split())


def decode_header_value(raw: str) -> str:
    """Decode a raw header value (RFC 2047 encoded words, 8-bit bytes).

    The result is one line without control characters. Raw 8-bit bytes
    (kept by the parser as surrogate escapes) are read as UTF-8 or cp1252;
    encoded words in unknown charsets fall back the same way.
    """
    text = _unescape_8bit(raw)
    return single_line(_decode_encoded_words(text))


def _unescape_8bit(raw: str) -> str:
    """Turn surrogate-escaped raw bytes back into text."""
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        return decode_bytes(raw.encode("utf-8", errors="surrogateescape"))
    return raw


def _decode_encoded_words(text: str) -> str:
    """Decode RFC 2047 encoded words; adjacent words share one byte run.

    Whitespace between adjacent encoded words is dropped (RFC 2047 §6.2),
    and their bytes are joined before decoding so that a character split
    across two words survives.
    """
    pieces: list[str] = []
    run: list[bytes] = []
    run_charset = ""
    position = 0
    for match in _ENCODED_WORD.finditer(text):
        between = text[position : match.start()]
        charset = match.group(1).split("*", 1)[0].lower()
        joined = bool(run) and not between.strip()
        if not (joined and charset == run_charset):
            pieces.append(decode_bytes(b"".join(run), run_charset))
            run = []
        if not joined:
            pieces.append(between)
        run.append(_word_bytes(match.group(2), match.group(3)))
        run_charset = charset
        position = match.end()
    pieces.append(decode_bytes(b"".join(run), run_charset))
    pieces.append(text[position:])
    return "".join(pieces)


def _word_bytes(encoding: str, payload: str) -> bytes:
    """The bytes of one encoded word's payload ("B" or "Q")."""
    data = payload.encode("utf-8", errors="surrogateescape")
    if encoding in "Qq":
        return binascii.a2b_qp(data, header=True)
    try:
        return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
    except binascii.Error:
        return data


# -- the message -------------------------------------------------------------


@dataclass(frozen=True)
class CalendarPart:
    """One calendar found in a message (RFC 6047 §2.4)."""

    text: str  # decoded iCalendar text, BOM stripped
    method: str | None  # Content-Type ``method`` parameter, upper-cased; None if no token
    content_type: str  # lower-cased, e.g. "text/calendar"
    filename: str | None


@dataclass(frozen=True)
class Security:
    """What OpenPGP (RFC 3156) did for a message: all empty for plain mail.

    ``encrypted``: it came encrypted; ``problem``: why it could not be
    decrypted (it then holds no calendar data for the agent). ``signer``:
    the primary key fingerprint of a valid signature by a key of the site's
    keyring, ``signer_addresses`` that key's addresses; ``signature_problem``:
    why a signature present did not verify.
    """

    encrypted: bool = False
    problem: str = ""
    signed: bool = False
    signer: str = ""
    signer_addresses: tuple[str, ...] = ()
    signature_problem: str = ""

    def signed_by(self, address: str) -> bool:
        """Whether a valid signature binds ``address`` (normalised)."""
        return bool(self.signer) and normalise(address) in self.signer_addresses


@dataclass(frozen=True)
class ParsedMessage:
    """A parsed message: its calendar parts and the headers the agent uses."""

    message: Message
    parts: list[CalendarPart]
    from_address: str  # bare address of From (imiptools.addresses.normalise); "" if unusable
    message_id: str
    subject: str
    auto_submitted: str  # RFC 3834 §5 keyword, lower-cased; see _auto_submitted
    precedence: str  # lower-cased; "" if absent
    references: list[str]  # References then In-Reply-To, deduplicated
    #: Decryption and signatures (:mod:`imiptools.mail.openpgp`).
    security: Security = Security()
    #: The message as received, when :attr:`message` is its decrypted or
    #: signed content (the headers above are always the received ones).
    outer: Message | None = None

    def header(self, name: str) -> str:
        """The first ``name`` header, decoded to one safe line ("" if absent)."""
        return _header(self.message, name)


def parse_message(raw: bytes, headers_only: bool = False) -> ParsedMessage:
    """Parse ``raw`` (RFC 5322 bytes); never raises on malformed input.

    A message nested too deeply for the standard parser (thousands of
    multipart levels: hostile, never a real client) keeps its headers and
    yields no calendar parts; so does every message with ``headers_only``
    (one too big to read: its body is not parsed).
    """
    headers = BytesHeaderParser()  # compat32, the parsers' default: see _parse_all
    try:
        message = headers.parsebytes(raw) if headers_only else _parse_all(raw)
    except RecursionError:
        message = headers.parsebytes(raw)
    return ParsedMessage(
        message=message,
        parts=[] if headers_only else calendar_parts(message),
        from_address=_from_address(message),
        message_id=_first_id(_header(message, "Message-ID")),
        subject=_header(message, "Subject"),
        auto_submitted=_auto_submitted(message),
        precedence=_header(message, "Precedence").lower(),
        references=_references(message),
    )


def _raw_headers(message: Message, name: str) -> list[str]:
    """Every raw (undecoded) value of header ``name``, in message order."""
    wanted = name.lower()
    return [str(value) for key, value in message.raw_items() if key.lower() == wanted]


def _auto_submitted(message: Message) -> str:
    """The Auto-Submitted keyword (RFC 3834 §5), lower-cased.

    '' when there is no such header, ``no`` when every instance says
    ``no``; otherwise the first keyword that is not ``no``: a message that
    says it is automatic in *any* instance is automatic, so a leading
    ``Auto-Submitted: no`` cannot open the door to a loop. Parameters and
    comments after the keyword (``auto-replied; owner-email=...``) are not
    part of it; a value without a keyword counts as automatic
    (``unreadable``).
    """
    keywords = [
        _keyword(decode_header_value(raw)) for raw in _raw_headers(message, "Auto-Submitted")
    ]
    if not keywords:
        return ""
    return next((keyword for keyword in keywords if keyword != "no"), "no")


def _keyword(value: str) -> str:
    found = re.match(_KEYWORD, value)
    return found.group(1).lower() if found else "unreadable"


def _parse_all(raw: bytes) -> Message:
    """``raw`` parsed with ``email.policy.compat32``, the parsers' documented
    default (not named here: ``email.policy`` brings the header registry and
    its parser, about 0.7 MiB and 3 ms that a run reading with ``compat32``
    does not use; ``tests/mail/test_parse.py`` checks the policy)."""
    return email.message_from_bytes(raw)


def _raw_header(message: Message, name: str) -> str | None:
    """The first raw (undecoded) value of header ``name``."""
    wanted = name.lower()
    for key, value in message.raw_items():
        if key.lower() == wanted:
            return str(value)
    return None


def _header(message: Message, name: str) -> str:
    raw = _raw_header(message, name)
    return "" if raw is None else decode_header_value(raw)


def _from_address(message: Message) -> str:
    """The one address of From, normalised; "" if none, several or bad."""
    raw = _raw_header(message, "From")
    if raw is None:
        return ""
    pairs = [pair for pair in getaddresses([single_line(_unescape_8bit(raw))]) if any(pair)]
    if len(pairs) != 1:
        return ""
    address = normalise(pairs[0][1])
    return address if _ADDR_SPEC.fullmatch(address) else ""


def _message_ids(value: str) -> list[str]:
    """Message ids in ``value``: ``<...>`` tokens, else bare ``x@y`` words."""
    ids = _MSG_ID.findall(value)
    if ids:
        return ids
    return [f"<{word}>" for word in value.split() if _ADDR_SPEC.fullmatch(word)]


def _first_id(value: str) -> str:
    ids = _message_ids(value)
    return ids[0] if ids else value


def _references(message: Message) -> list[str]:
    ids = _message_ids(_header(message, "References"))
    ids += _message_ids(_header(message, "In-Reply-To"))
    return list(dict.fromkeys(ids))


# -- calendar parts ------------------------------------------------------------


def calendar_parts(message: Message) -> list[CalendarPart]:
    """The distinct calendars in ``message``, in message order.

    A duplicate (same text once normalised) is dropped; if the first copy
    had no ``method`` parameter, the duplicate's is kept.
    """
    found: dict[str, CalendarPart] = {}
    for leaf in _leaves(message, 0):
        part = _calendar_part(leaf)
        if part is None:
            continue
        key = _normalised(part.text)
        first = found.get(key)
        if first is None:
            found[key] = part
        elif first.method is None and part.method is not None:
            found[key] = replace(first, method=part.method)
    return list(found.values())


def _leaves(message: Message, depth: int) -> Iterator[Message]:
    """The non-multipart parts, not descending into ``message/*``."""
    if not message.is_multipart():
        yield message
        return
    if message.get_content_maintype() == "message" or depth >= _MAX_DEPTH:
        return
    for child in message.get_payload():
        if isinstance(child, Message):
            yield from _leaves(child, depth + 1)


def _calendar_part(leaf: Message) -> CalendarPart | None:
    """The calendar in ``leaf`` if it is a calendar part holding one."""
    content_type = leaf.get_content_type()
    filename = _filename(leaf)
    if not _is_calendar_type(content_type, filename):
        return None
    text = _body_text(leaf)
    if not _BEGIN.search(text):
        text = _calendar_in_headers(leaf) or text
    if not _BEGIN.search(text):
        return None
    return CalendarPart(
        text=text, method=_method(leaf), content_type=content_type, filename=filename
    )


def _is_calendar_type(content_type: str, filename: str | None) -> bool:
    if content_type in CALENDAR_TYPES:
        return True
    named = filename is not None and filename.lower().endswith(CALENDAR_SUFFIXES)
    return named and content_type in GENERIC_TYPES


def _param(leaf: Message, name: str, header: str = "content-type") -> str | None:
    """A parameter of ``header`` (RFC 2231 continuations collapsed)."""
    value = leaf.get_param(name, None, header)
    if value is None:
        return None
    return collapse_rfc2231_value(value) if isinstance(value, tuple) else str(value)


def _filename(leaf: Message) -> str | None:
    """The part's file name (Content-Disposition, else Content-Type name)."""
    name = _param(leaf, "filename", "content-disposition") or _param(leaf, "name")
    if not name:
        return None
    return decode_header_value(name) or None


def _method(leaf: Message) -> str | None:
    method = (_param(leaf, "method") or "").strip().upper()
    return method if _TOKEN.fullmatch(method) else None


def _charset(leaf: Message) -> str | None:
    return single_line(_unescape_8bit(_param(leaf, "charset") or "")) or None


def _body_text(leaf: Message) -> str:
    """The decoded body of a leaf part as text, BOM stripped."""
    try:
        data = leaf.get_payload(decode=True)
    except (ValueError, LookupError):  # uuencode and other odd encodings
        data = None
    if not isinstance(data, bytes):
        return ""
    return decode_bytes(data, _charset(leaf)).removeprefix(_BOM)


def _calendar_in_headers(leaf: Message) -> str:
    """Salvage a calendar written where the part's headers belong.

    Some Lightning/OBM replies put the iCalendar lines straight after the
    MIME boundary, so the parser reads ``BEGIN:VCALENDAR`` and the lines
    after it as header fields. Content lines are rebuilt from the fields
    from BEGIN to END:VCALENDAR; without that END, the body follows them.
    """
    fields = [f"{name}:{value}" for name, value in leaf.raw_items()]
    begins = [i for i, field in enumerate(fields) if _BEGIN.fullmatch(field.strip())]
    if not begins:
        return ""
    lines = fields[begins[0] :]
    ends = [
        i for i, line in enumerate(lines) if re.fullmatch(_END, line.strip(), flags=re.IGNORECASE)
    ]
    payload = leaf.get_payload()
    if ends:
        lines = lines[: ends[0] + 1]
    elif isinstance(payload, str):
        lines.append(payload)
    text = "\r\n".join(lines) + "\r\n"
    return decode_bytes(text.encode("utf-8", errors="surrogateescape"), _charset(leaf))


def _normalised(text: str) -> str:
    """A comparison key: unfolded lines, no line-end differences or blanks."""
    unix = text.replace("\r\n", "\n").replace("\r", "\n")
    unfolded = re.sub(r"\n[ \t]", "", unix)
    return "\n".join(line.rstrip() for line in unfolded.split("\n") if line.strip())
