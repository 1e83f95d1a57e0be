"""Encrypted and signed messages as mail clients make them, built with gpg.

- :func:`gpg_encrypted`: RFC 3156 §6.2 ``multipart/encrypted`` whose
  OpenPGP message was made by ``gpg --encrypt --sign`` (the signature
  inside), as mutt, Evolution and scripts send.
- :func:`thunderbird_encrypted`: Thunderbird's layout: the outer Subject is
  ``...``; the plaintext is a ``multipart/mixed`` with
  ``protected-headers="v1"`` carrying the real headers, a legacy display
  part, the invitation and its ``.ics`` attachment; an ``Autocrypt:``
  header outside.
- :func:`clear_signed`: RFC 3156 §5 ``multipart/signed`` (a detached
  signature over the first part's canonical bytes).
"""

from __future__ import annotations

import base64
import re
from email import policy
from email.message import EmailMessage

from tests.openpgp.conftest import Party
from tests.support import ROOM, imip_message

CRLF = b"\r\n"


def _split(message: bytes) -> tuple[list[bytes], bytes]:
    head, _, body = re.sub(rb"\r?\n", CRLF, message).partition(CRLF + CRLF)
    fields: list[bytes] = []
    for line in head.split(CRLF):
        if line[:1] in (b" ", b"\t"):
            fields[-1] += CRLF + line
        else:
            fields.append(line)
    return fields, body


def _is_content(field: bytes) -> bool:
    return field.lower().startswith(b"content-")


def body_entity(message: bytes) -> bytes:
    """The MIME entity of a message's body: its Content-* headers and body."""
    fields, body = _split(message)
    return CRLF.join(f for f in fields if _is_content(f)) + CRLF + CRLF + body


def outer_headers(message: bytes, subject: str | None = None) -> list[bytes]:
    """The headers of ``message`` that are not Content-* or MIME-Version."""
    fields, _ = _split(message)
    kept = [f for f in fields if not _is_content(f) and not f.lower().startswith(b"mime-version")]
    if subject is not None:
        kept = [f for f in kept if not f.lower().startswith(b"subject:")]
        kept.append(b"Subject: " + subject.encode())
    return kept


def multipart_encrypted(headers: list[bytes], armored: bytes) -> bytes:
    """RFC 3156 §4 around an armored OpenPGP message."""
    parts = [
        *headers,
        b"MIME-Version: 1.0",
        b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";'
        b' boundary="enc-b"',
        b"",
        b"This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)",
        b"--enc-b",
        b"Content-Type: application/pgp-encrypted",
        b"Content-Description: PGP/MIME version identification",
        b"",
        b"Version: 1",
        b"",
        b"--enc-b",
        b'Content-Type: application/octet-stream; name="encrypted.asc"',
        b'Content-Disposition: inline; filename="encrypted.asc"',
        b"",
        armored.strip(),
        b"--enc-b--",
        b"",
    ]
    return CRLF.join(parts)


def gpg_encrypted(
    message: bytes, sender: Party, to: Party | None, *, sign: bool = True, recipient: str = ROOM
) -> bytes:
    """``message`` encrypted to ``to`` (``recipient``'s key in ``sender``'s
    home) and signed by ``sender``: ``gpg --encrypt --sign``."""
    args = ["--armor", "--encrypt", "-r", recipient if to is None else to.address]
    if sign:
        args += ["--sign", "-u", sender.address]
    armored = sender.gpg(*args, data=body_entity(message))
    return multipart_encrypted(outer_headers(message), armored)


def thunderbird_encrypted(calendar: str, sender: Party, to: Party, subject: str) -> bytes:
    """A REQUEST as Thunderbird sends it encrypted and signed."""
    invitation = imip_message(calendar, sender=sender.address, to=to.address, subject=subject)
    headers = [
        f"From: Alice <{sender.address}>".encode(),
        f"To: {to.address}".encode(),
        b"Message-ID: <tb-1@example.com>",
        f"Subject: {subject}".encode(),
    ]
    attachment = base64.encodebytes(calendar.encode()).replace(b"\n", CRLF)
    inner = CRLF.join(
        [
            b'Content-Type: multipart/mixed; boundary="------------tb-mixed";'
            b' protected-headers="v1"',
            *headers,
            b"",
            b"This is a multi-part message in MIME format.",
            b"--------------tb-mixed",
            b'Content-Type: text/plain; charset=UTF-8; protected-headers="v1"',
            b"Content-Disposition: inline",
            b"",
            f"Subject: {subject}".encode(),
            b"",
            b"--------------tb-mixed",
            body_entity(invitation),
            b"--------------tb-mixed",
            b'Content-Type: application/ics; name="invite.ics"',
            b'Content-Disposition: attachment; filename="invite.ics"',
            b"Content-Transfer-Encoding: base64",
            b"",
            attachment,
            b"--------------tb-mixed--",
            b"",
        ]
    )
    armored = sender.gpg(
        "--armor", "--encrypt", "--sign", "-r", to.address, "-u", sender.address, data=inner
    )
    keydata = base64.b64encode(
        sender.gpg("--export", "--export-options", "export-minimal", sender.address)
    )
    folded = CRLF.join(b" " + keydata[i : i + 76] for i in range(0, len(keydata), 76))
    outer = [
        f"From: Alice <{sender.address}>".encode(),
        f"To: {to.address}".encode(),
        b"Message-ID: <tb-1@example.com>",
        b"Subject: ...",
        b"Date: Tue, 01 Jan 2030 09:00:00 +0000",
        f"Autocrypt: addr={sender.address}; keydata=".encode() + CRLF + folded,
    ]
    return multipart_encrypted(outer, armored)


def clear_signed(message: bytes, signer: Party, *, tamper: bool = False) -> bytes:
    """``message`` with its body in RFC 3156 §5 ``multipart/signed`` by
    ``signer``; ``tamper`` changes the signed part after signing."""
    entity = body_entity(message).rstrip(CRLF) + CRLF
    signature = signer.gpg("--armor", "--detach-sign", "-u", signer.address, data=entity)
    if tamper:
        tampered = entity.replace(b"An invitation.", b"An invitation!", 1)
        assert tampered != entity
        entity = tampered
    parts = [
        *outer_headers(message),
        b"MIME-Version: 1.0",
        b"Content-Type: multipart/signed; micalg=pgp-sha256;"
        b' protocol="application/pgp-signature"; boundary="sig-b"',
        b"",
        b"--sig-b",
        entity,  # signed with its last CRLF; the CRLF before the boundary is the boundary's
        b"--sig-b",
        b'Content-Type: application/pgp-signature; name="signature.asc"',
        b"",
        signature.strip(),
        b"--sig-b--",
        b"",
    ]
    return CRLF.join(parts)


def as_email(data: bytes) -> EmailMessage:
    """``data`` parsed with the modern policy."""
    from email import message_from_bytes

    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message
