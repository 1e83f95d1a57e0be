"""The parts: RFC 3156 reading with line ends as an MTA pipe gives them,
Autocrypt Level 1's header rules and key updates, the plaintext bound."""

from __future__ import annotations

import base64
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from imiptools.mail.keyring import Keyring
from imiptools.mail.openpgp import autocrypt_header, learn_autocrypt, open_message
from imiptools.mail.parse import parse_message
from tests.openpgp.conftest import ALICE, MALLORY, Parties
from tests.openpgp.messages import clear_signed, gpg_encrypted
from tests.openpgp.test_resource import fingerprint, invitation

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)


@pytest.fixture
def keyring(parties: Parties) -> Iterator[Keyring]:
    """A keyring with the room's secret key and Alice's public key."""
    home = Path(tempfile.mkdtemp(prefix="u-", dir="/tmp"))
    ring = Keyring(home)
    ring.create()
    ring.import_keys("room@example.com", parties.room.secret())
    ring.import_keys(ALICE, parties.alice.public())
    yield ring
    ring.stop_agents()
    shutil.rmtree(home, ignore_errors=True)


def test_a_signed_message_with_lf_line_ends_verifies(keyring: Keyring, parties: Parties) -> None:
    """Postfix's pipe gives LF: the signed part is made canonical (CRLF) first."""
    message = clear_signed(invitation(), parties.alice).replace(b"\r\n", b"\n")
    parsed = open_message(message, keyring)
    assert parsed.security.signer == fingerprint(parties.alice)
    assert parsed.security.signed_by(ALICE) and len(parsed.parts) == 1


def test_an_encrypted_message_with_lf_line_ends_decrypts(
    keyring: Keyring, parties: Parties
) -> None:
    message = gpg_encrypted(invitation(), parties.alice, parties.room).replace(b"\r\n", b"\n")
    parsed = open_message(message, keyring)
    assert parsed.security.encrypted and not parsed.security.problem
    assert parsed.security.signed_by(ALICE) and len(parsed.parts) == 1


def test_signed_then_encrypted_is_read_and_verified(keyring: Keyring, parties: Parties) -> None:
    """RFC 3156 §6.1: a multipart/signed inside the encryption (Enigmail,
    and what the agent itself sends)."""
    signed = clear_signed(invitation(), parties.alice)
    message = gpg_encrypted(signed, parties.alice, parties.room, sign=False)
    parsed = open_message(message, keyring)
    assert parsed.security.encrypted and parsed.security.signed_by(ALICE)
    assert len(parsed.parts) == 1 and parsed.parts[0].method == "REQUEST"


def test_a_plaintext_over_the_limit_is_not_decrypted(keyring: Keyring, parties: Parties) -> None:
    message = gpg_encrypted(invitation(), parties.alice, parties.room)
    parsed = open_message(message, keyring, max_size=200)
    assert parsed.security.problem == "the plaintext exceeds 200 bytes"
    assert parsed.parts == []


def test_without_a_keyring_an_encrypted_message_has_no_calendar(parties: Parties) -> None:
    parsed = open_message(gpg_encrypted(invitation(), parties.alice, parties.room), None)
    assert parsed.security.problem == "encrypted, and the site has no keyring"
    assert parsed.parts == []


def autocrypt(value: str, sender: str = ALICE) -> bytes:
    return f"From: {sender}\r\nAutocrypt: {value}\r\nSubject: x\r\n\r\nbody\r\n".encode()


def test_autocrypt_header_rules(parties: Parties) -> None:
    """Autocrypt Level 1 §2.3: addr must be the From address; one header;
    unknown attributes without a leading underscore make it unusable."""
    keydata = base64.b64encode(parties.alice.public()).decode()
    good = f"addr={ALICE}; prefer-encrypt=mutual; _extra=1; keydata={keydata}"
    assert autocrypt_header(parse_message(autocrypt(good))) is not None
    for bad in (
        f"addr={MALLORY}; keydata={keydata}",
        f"addr={ALICE}; critical=1; keydata={keydata}",
        f"addr={ALICE}; keydata=not base64!",
        f"addr={ALICE}",
    ):
        assert autocrypt_header(parse_message(autocrypt(bad))) is None, bad
    twice = autocrypt(good).replace(b"Subject", f"Autocrypt: {good}\r\nSubject".encode())
    assert autocrypt_header(parse_message(twice)) is None


def test_learned_keys_update_by_date_and_never_over_the_admins(
    keyring: Keyring, parties: Parties
) -> None:
    mallory = base64.b64encode(parties.mallory.gpg("--export", MALLORY)).decode()
    message = parse_message(autocrypt(f"addr={MALLORY}; keydata={mallory}", MALLORY))
    assert learn_autocrypt(message, keyring, NOW) == fingerprint(parties.mallory)
    (learned,) = keyring.keys(MALLORY)
    assert learned.source == "autocrypt" and keyring.public_key(MALLORY) == learned
    # Alice's key is the admin's: a header cannot put another one beside it.
    alice = parse_message(autocrypt(f"addr={ALICE}; keydata={mallory}"))
    assert learn_autocrypt(alice, keyring, NOW) == ""
    assert [k.source for k in keyring.keys(ALICE)] == ["keyring"]
    # An older message does not replace a newer key.
    assert keyring.learn(MALLORY, parties.mallory.public(), "2000-01-01T00:00:00+00:00") is None


HOSTILE = [
    b'Content-Type: multipart/signed; protocol="application/pgp-signature"\r\n\r\nno boundary\r\n',
    b'Content-Type: multipart/signed; protocol="application/pgp-signature"; boundary=x\r\n\r\n'
    b"--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x--\r\n",
    b'Content-Type: multipart/signed; protocol="application/pgp-signature"; boundary=x\r\n\r\n'
    b"--x\r\nContent-Type: text/plain\r\n\r\nhi\r\n--x\r\nContent-Type: application/pgp-signature"
    b"\r\n\r\n-----BEGIN PGP SIGNATURE-----\r\n\r\nAAAA\r\n"
    b"-----END PGP SIGNATURE-----\r\n--x--\r\n",
    b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"\r\n\r\n',
    b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary=x\r\n\r\n'
    b"--x\r\n\r\nVersion: 1\r\n--x\r\n\r\ngarbage\r\n--x--\r\n",
    b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary=x\r\n\r\n'
    b"--x\r\n\r\nVersion: 1\r\n--x\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nhF4DAAAA\r\n"
    b"-----END PGP MESSAGE-----\r\n--x--\r\n",
]


@pytest.mark.parametrize("raw", HOSTILE)
def test_malformed_openpgp_never_raises(keyring: Keyring, raw: bytes) -> None:
    """No boundary, no signature part, garbage for an OpenPGP message: a
    problem, never an exception, no calendar."""
    parsed = open_message(raw, keyring)
    assert parsed.security.problem or parsed.security.signature_problem
    assert not parsed.security.signer and parsed.parts == []
