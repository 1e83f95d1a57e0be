"""OpenPGP in MIME (RFC 3156) and Autocrypt (Level 1), in and out.

In: :func:`open_message` parses a message like
:func:`~imiptools.mail.parse.parse_message` and, with the site's
:class:`~imiptools.mail.keyring.Keyring`:

- ``multipart/encrypted; protocol="application/pgp-encrypted"`` (§4) is
  decrypted in memory; the plaintext is a MIME entity whose calendar parts
  are the message's. A signature inside the OpenPGP message (§6.2, what
  ``gpg --encrypt --sign`` and Thunderbird make) or a ``multipart/signed``
  entity inside the plaintext (§6.1) is verified.
- ``multipart/signed; protocol="application/pgp-signature"`` (§5) at the top
  is verified over the first part's bytes as received, line ends made CRLF
  (§5: the signed data is canonical).
- Protected headers (the ``protected-headers="v1"`` parameter Thunderbird
  and Autocrypt clients set on the plaintext's top part): its Subject is
  the message's. From, Message-ID and the threading headers stay the outer
  ones, which the MTA and the envelope checks saw.

A message that cannot be decrypted keeps its outer parts (none of them is
a calendar) and says why in :attr:`~imiptools.mail.parse.Security.problem`;
nothing here raises for a message.

Out: :func:`protect` signs (``multipart/signed``) and encrypts
(``multipart/encrypted``, sign then encrypt, §6.1) a message that
:func:`~imiptools.mail.compose.build_message` made; the headers the MTA and
loop prevention need (From, To, Date, Message-ID, threading,
Auto-Submitted) stay outside, and copies of From, To, Subject, Date and
Message-ID go inside as protected headers. An ``Autocrypt:`` header
advertises the sender's key.
"""

from __future__ import annotations

import base64
import binascii
import email
import logging
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from email.message import Message
from email.utils import parsedate_to_datetime

from imiptools import addresses
from imiptools.digests import token_hex
from imiptools.mail.keyring import Keyring, KeyringError, Signature
from imiptools.mail.parse import ParsedMessage, Security, calendar_parts, parse_message, single_line

__all__ = ["autocrypt_header", "learn_autocrypt", "open_message", "protect"]

log = logging.getLogger(__name__)

ENCRYPTED = "application/pgp-encrypted"
SIGNATURE = "application/pgp-signature"
#: Headers that stay outside the encryption (the MTA, threading, loops).
OUTER = (
    "from",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "auto-submitted",
)
#: Headers copied inside as protected headers (Autocrypt, "Protected Headers").
PROTECTED = ("from", "to", "cc", "subject", "date", "message-id")
_HEADER_END = rb"\r?\n\r?\n"
_LINE_END = rb"\r?\n"
_MAX_KEYDATA = 64 * 1024


# -- in ----------------------------------------------------------------------


def open_message(raw: bytes, keyring: Keyring | None, max_size: int | None = None) -> ParsedMessage:
    """``raw`` parsed, decrypted and verified as the module docstring says;
    a plaintext over ``max_size`` bytes is not decrypted.

    Without a keyring (or for plain mail) this is ``parse_message(raw)``
    with an encrypted message's ``problem`` set."""
    parsed = parse_message(raw)
    kind = _kind(parsed.message)
    if kind is None:
        return parsed
    if keyring is None or not keyring.exists():
        if kind == "encrypted":
            problem = "encrypted, and the site has no keyring"
            return replace(parsed, security=Security(encrypted=True, problem=problem))
        return replace(parsed, security=Security(signed=True, signature_problem="no keyring"))
    try:
        if kind == "encrypted":
            return _decrypted(parsed, keyring, max_size)
        return _verified(parsed, raw, keyring)
    except (KeyringError, OSError, ValueError) as exc:  # never a traceback for a message
        log.warning("OpenPGP: %s", exc)
        return replace(parsed, security=Security(encrypted=kind == "encrypted", problem=str(exc)))


def _kind(message: Message) -> str | None:
    """``encrypted`` or ``signed`` for RFC 3156 messages, else None."""
    content_type = message.get_content_type()
    protocol = str(message.get_param("protocol", "") or "").lower()
    if content_type == "multipart/encrypted" and protocol == ENCRYPTED:
        return "encrypted"
    if content_type == "multipart/signed" and protocol == SIGNATURE:
        return "signed"
    return None


def _decrypted(parsed: ParsedMessage, keyring: Keyring, max_size: int | None) -> ParsedMessage:
    """The plaintext's calendars, with the signature found (RFC 3156 §4, §6)."""
    payload = _encrypted_payload(parsed.message)
    if payload is None:
        return replace(parsed, security=Security(encrypted=True, problem="no OpenPGP data"))
    result = keyring.decrypt(payload, max_size)
    if not result.ok:
        log.warning("OpenPGP: message %s: %s", parsed.message_id[:200], result.problem)
        return replace(parsed, security=Security(encrypted=True, problem=result.problem))
    inner = email.message_from_bytes(result.data)  # compat32, as parse_message reads
    signature = result.signature
    if _kind(inner) == "signed":
        signature = _check_signed(inner, result.data, keyring)
    security = _security(True, signature)
    return _with_inner(parsed, inner, security)


def _encrypted_payload(message: Message) -> bytes | None:
    """The OpenPGP message of a ``multipart/encrypted`` (its second part)."""
    parts = message.get_payload()
    if not isinstance(parts, list) or len(parts) < 2 or not isinstance(parts[1], Message):
        return None
    data = parts[1].get_payload(decode=True)
    return data if isinstance(data, bytes) and data.strip() else None


def _verified(parsed: ParsedMessage, raw: bytes, keyring: Keyring) -> ParsedMessage:
    """A ``multipart/signed`` message: its first part, verified (§5)."""
    signature = _check_signed(parsed.message, raw, keyring)
    parts = parsed.message.get_payload()
    first = parts[0] if isinstance(parts, list) and parts else None
    inner = first if isinstance(first, Message) else parsed.message
    return _with_inner(parsed, inner, _security(False, signature))


def _check_signed(entity: Message, raw: bytes, keyring: Keyring) -> Signature:
    """Verify the ``multipart/signed`` ``entity`` whose bytes are ``raw``."""
    boundary = entity.get_boundary()
    parts = entity.get_payload()
    if not boundary or not isinstance(parts, list) or len(parts) != 2:
        return Signature(False, problem="malformed multipart/signed")
    signed = signed_bytes(raw, boundary)
    signature = parts[1].get_payload(decode=True) if isinstance(parts[1], Message) else None
    if signed is None or not isinstance(signature, bytes):
        return Signature(False, problem="malformed multipart/signed")
    return keyring.verify(signed, signature)


def signed_bytes(raw: bytes, boundary: str) -> bytes | None:
    """The first body part of the multipart entity ``raw`` as it was
    received, line ends made CRLF (RFC 3156 §5, RFC 1847 §2.1): what a
    ``multipart/signed`` signature covers. None when it is not there."""
    end = re.search(_HEADER_END, raw)
    if end is None:
        return None
    body = raw[end.end() :]
    mark = re.escape(b"--" + boundary.encode("ascii", "replace"))
    first = re.compile(rb"(?:\A|\n)" + mark + rb"[ \t]*\r?\n").search(body)
    if first is None:
        return None
    following = re.compile(rb"\r?\n" + mark + rb"(?:--)?[ \t]*(?:\r?\n|\Z)")
    last = following.search(body, first.end())
    if last is None:
        return None
    return re.sub(_LINE_END, b"\r\n", body[first.end() : last.start()])


def _security(encrypted: bool, signature: Signature | None) -> Security:
    if signature is None:
        return Security(encrypted=encrypted)
    if not signature.valid:
        log.warning("OpenPGP: signature not valid: %s", signature.problem)
        return Security(encrypted=encrypted, signed=True, signature_problem=signature.problem)
    return Security(
        encrypted=encrypted,
        signed=True,
        signer=signature.fingerprint,
        signer_addresses=signature.addresses,
    )


def _with_inner(parsed: ParsedMessage, inner: Message, security: Security) -> ParsedMessage:
    """``parsed`` with the calendars and protected Subject of ``inner`` (or
    of its signed part, when it is ``multipart/signed``)."""
    subject = parsed.subject
    first = inner.get_payload(0) if _kind(inner) == "signed" and inner.is_multipart() else None
    top = first if isinstance(first, Message) else inner
    if top.get_param("protected-headers", None) is not None and top.get("Subject"):
        subject = single_line(str(parse_message(_headers_of(top)).subject))
    return replace(
        parsed,
        message=inner,
        parts=calendar_parts(inner),
        subject=subject,
        security=security,
        outer=parsed.message,
    )


def _headers_of(entity: Message) -> bytes:
    lines = [f"{name}: {value}" for name, value in entity.raw_items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


# -- Autocrypt -----------------------------------------------------------------


def autocrypt_header(message: ParsedMessage) -> tuple[str, bytes] | None:
    """(addr, keydata) of the message's one usable ``Autocrypt:`` header
    (Autocrypt Level 1 §2.3), else None: no header or several, ``addr``
    other than From, an unknown critical attribute, bad keydata, or a
    ``multipart/report`` (a bounce)."""
    received = message.outer or message.message
    if received.get_content_type() == "multipart/report" or not message.from_address:
        return None
    values = [str(v) for k, v in received.raw_items() if k.lower() == "autocrypt"]
    if len(values) != 1:
        return None
    attributes: dict[str, str] = {}
    for item in re.sub(r"\s+", " ", values[0]).split(";"):
        name, _, value = item.strip().partition("=")
        attributes[name.strip().lower()] = value.strip()
    if any(
        not a.startswith("_") and a not in ("addr", "prefer-encrypt", "keydata") for a in attributes
    ):
        return None
    address = addresses.normalise(attributes.get("addr", ""))
    if address != message.from_address:
        return None
    try:
        keydata = base64.b64decode(attributes.get("keydata", "").replace(" ", ""), validate=True)
    except (binascii.Error, ValueError):
        return None
    if not keydata or len(keydata) > _MAX_KEYDATA:
        return None
    return address, keydata


def learn_autocrypt(message: ParsedMessage, keyring: Keyring | None, now: datetime) -> str:
    """Keep the key of the message's ``Autocrypt:`` header (for encrypting
    replies only); the fingerprint kept, or ''. Never raises."""
    if keyring is None or not keyring.exists():
        return ""
    found = autocrypt_header(message)
    if found is None:
        return ""
    address, keydata = found
    seen = min(_date_of(message.outer or message.message) or now, now)
    try:
        key = keyring.learn(address, keydata, seen.isoformat())
    except (KeyringError, OSError, ValueError) as exc:
        log.warning("Autocrypt: key of %s not kept: %s", address, exc)
        return ""
    if key is None:
        return ""
    log.info("Autocrypt: learned key %s of %s", key.fingerprint, address)
    return key.fingerprint


def _date_of(message: Message) -> datetime | None:
    try:
        when = parsedate_to_datetime(str(message.get("Date", "")))
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else None


def autocrypt_value(address: str, keydata: bytes) -> str:
    """The value of an ``Autocrypt:`` header for ``address`` (Level 1 §2.1)."""
    encoded = base64.b64encode(keydata).decode("ascii")
    folded = "\r\n ".join(encoded[i : i + 72] for i in range(0, len(encoded), 72))
    return f"addr={address}; keydata=\r\n {folded}"


# -- out -----------------------------------------------------------------------


def protect(
    data: bytes,
    keyring: Keyring,
    *,
    signer: str | None,
    encrypt_to: Sequence[str] = (),
    advertise: str | None = None,
) -> bytes:
    """``data`` (a message from :func:`~imiptools.mail.compose.build_message`)
    signed by ``signer``'s secret key (None: not signed), then encrypted to
    ``encrypt_to`` (empty: not encrypted), with an ``Autocrypt:`` header for
    the key of ``advertise`` (None: none). Raises KeyringError when a key
    is missing."""
    head, body = _split(data)
    extra = []
    if advertise is not None:
        keydata = keyring.autocrypt_keydata(advertise)
        if keydata:
            extra.append(b"Autocrypt: " + autocrypt_value(advertise, keydata).encode("ascii"))
    if signer is None and not encrypt_to:
        return b"\r\n".join([*head, *extra]) + b"\r\n\r\n" + body
    outer, content = _sort_headers(head)
    entity = _protected_entity(head, content, body, protected=bool(encrypt_to))
    if signer is not None:
        entity = _signed(entity, keyring, signer)
    if encrypt_to:
        entity = _encrypted(entity, keyring, encrypt_to)
    lines = [*outer, *extra, b"MIME-Version: 1.0"]
    return b"\r\n".join(lines) + b"\r\n" + entity


def _split(data: bytes) -> tuple[list[bytes], bytes]:
    """The header fields (each with its folded lines) and the body."""
    data = re.sub(_LINE_END, b"\r\n", data)
    head, _, body = data.partition(b"\r\n\r\n")
    fields: list[bytes] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        else:
            fields.append(line)
    return fields, body


def _name(field: bytes) -> str:
    return field.split(b":", 1)[0].strip().decode("ascii", "replace").lower()


def _sort_headers(fields: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """(headers kept outside, the Content-* headers of the body)."""
    outer = [f for f in fields if _name(f) not in ("mime-version",) and not _content(f)]
    return outer, [f for f in fields if _content(f)]


def _content(field: bytes) -> bool:
    return _name(field).startswith("content-")


def _protected_entity(
    head: list[bytes], content: list[bytes], body: bytes, protected: bool
) -> bytes:
    """The body as a MIME entity; with copies of the protected headers and
    ``protected-headers="v1"`` on its Content-Type when ``protected``."""
    fields = list(content)
    if protected:
        fields = [
            f + b'; protected-headers="v1"' if _name(f) == "content-type" else f for f in fields
        ]
        fields += [f for f in head if _name(f) in PROTECTED]
    return b"\r\n".join(fields) + b"\r\n\r\n" + body


def _boundary() -> bytes:
    return f"=-pgp-{token_hex(12)}".encode("ascii")


def _signed(entity: bytes, keyring: Keyring, signer: str) -> bytes:
    """``multipart/signed`` (RFC 3156 §5) around ``entity``."""
    entity = entity.rstrip(b"\r\n") + b"\r\n"
    signature, micalg = keyring.sign(entity, signer)
    mark = _boundary()
    return b"".join(
        [
            b"Content-Type: multipart/signed; micalg=" + micalg.encode("ascii"),
            b'; protocol="application/pgp-signature";\r\n boundary="' + mark + b'"\r\n\r\n',
            b"This is an OpenPGP/MIME signed message (RFC 4880 and 3156)\r\n",
            b"--" + mark + b"\r\n",
            entity,
            b"\r\n--" + mark + b"\r\n",
            b'Content-Type: application/pgp-signature; name="signature.asc"\r\n',
            b"Content-Description: OpenPGP digital signature\r\n",
            b'Content-Disposition: attachment; filename="signature.asc"\r\n\r\n',
            re.sub(_LINE_END, b"\r\n", signature).rstrip(b"\r\n"),
            b"\r\n--" + mark + b"--\r\n",
        ]
    )


def _encrypted(entity: bytes, keyring: Keyring, recipients: Sequence[str]) -> bytes:
    """``multipart/encrypted`` (RFC 3156 §4) holding ``entity``."""
    armored = keyring.encrypt(entity, recipients)
    mark = _boundary()
    return b"".join(
        [
            b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";\r\n',
            b' boundary="' + mark + b'"\r\n\r\n',
            b"This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n",
            b"--" + mark + b"\r\n",
            b"Content-Type: application/pgp-encrypted\r\n",
            b"Content-Description: PGP/MIME version identification\r\n\r\n",
            b"Version: 1\r\n\r\n",
            b"--" + mark + b"\r\n",
            b'Content-Type: application/octet-stream; name="encrypted.asc"\r\n',
            b"Content-Description: OpenPGP encrypted message\r\n",
            b'Content-Disposition: inline; filename="encrypted.asc"\r\n\r\n',
            re.sub(_LINE_END, b"\r\n", armored).rstrip(b"\r\n"),
            b"\r\n--" + mark + b"--\r\n",
        ]
    )
