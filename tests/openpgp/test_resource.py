"""A room with its own key: encrypted and signed invitations, forged
cancellations, unreadable mail, signed and encrypted replies (issue 20).

Real GnuPG throughout (see conftest.py); the room's replies are decrypted
and verified with the organiser's own gpg home, then read with icalendar
and vobject as every scenario test does.
"""

from __future__ import annotations

import json
import tempfile
from email.message import EmailMessage
from pathlib import Path

from imiptools.mail.keyring import Keyring
from tests.openpgp.conftest import ALICE, MALLORY, Parties, Party
from tests.openpgp.messages import (
    as_email,
    clear_signed,
    gpg_encrypted,
    thunderbird_encrypted,
)
from tests.support import (
    ROOM,
    Agent,
    calendar_text,
    imip_message,
    parse_calendar_part,
    partstat_of,
    vevent,
)

UID = "board-2030@example.com"


def invitation(
    sequence: int = 0, method: str = "REQUEST", message_id: str = "<i1@example.com>"
) -> bytes:
    from tests.support import vevent

    event = vevent(UID, sequence=sequence, summary="Board meeting")
    if method == "CANCEL":
        event = event.replace("BEGIN:VEVENT", "BEGIN:VEVENT\nSTATUS:CANCELLED")
    return imip_message(calendar_text(event, method=method), method=method, message_id=message_id)


def fingerprint(party: Party) -> str:
    (key,) = Keyring(party.home).keys(party.address)
    return key.fingerprint


def decisions(agent: Agent) -> list[dict[str, object]]:
    return [json.loads(line) for line in agent.site().store.decisions(f"mailto:{ROOM}")]


def booked(agent: Agent) -> bool:
    """Whether the room holds the board meeting (not cancelled)."""
    return agent.site().records(f"mailto:{ROOM}").stored(UID) is not None


def opened(reply: EmailMessage, reader: Party, signer: Party) -> EmailMessage:
    """The reply decrypted with ``reader``'s key, its multipart/signed
    checked with ``signer``'s public key; the signed entity."""
    assert reply.get_content_type() == "multipart/encrypted"
    assert reply.get_param("protocol") == "application/pgp-encrypted"
    version, payload = reply.iter_parts()
    assert version.get_content_type() == "application/pgp-encrypted"
    plaintext = reader.gpg("--decrypt", data=payload.get_payload(decode=True))
    return verified(plaintext, reader, signer)


def verified(entity: bytes, reader: Party, signer: Party) -> EmailMessage:
    """``entity`` (a multipart/signed) verified in ``reader``'s home as
    signed by ``signer``; its first part."""
    message = as_email(entity)
    assert message.get_content_type() == "multipart/signed"
    boundary = message.get_boundary()
    assert boundary
    from imiptools.mail.openpgp import signed_bytes

    signed = signed_bytes(entity, boundary)
    assert signed is not None
    signature = list(message.iter_parts())[1].get_payload(decode=True)
    with tempfile.NamedTemporaryFile(suffix=".asc") as sig:
        sig.write(signature)
        sig.flush()
        status = reader.gpg("--status-fd", "1", "--verify", sig.name, "-", data=signed)
    assert f"VALIDSIG {fingerprint(signer)}".encode() in status or b"GOODSIG" in status
    assert fingerprint(signer).encode() in status
    first = next(iter(message.iter_parts()))
    assert isinstance(first, EmailMessage)
    return first


def test_an_encrypted_signed_invitation_is_accepted_and_answered_encrypted(
    site: Agent, parties: Parties
) -> None:
    message = gpg_encrypted(invitation(), parties.alice, parties.room)
    log = site.root / "agent.log"
    run = site.resource(message, args=("--log", str(log)))
    assert run.code == 0, run.stdout + run.stderr
    (reply,) = run.generated()
    assert reply["To"] == ALICE and reply["Auto-Submitted"] == "auto-replied"
    # the outcome names the Message-ID the encrypted reply carries outside
    assert f" sent=REPLY{reply['Message-ID']}->{ALICE}" in log.read_text(encoding="utf-8")
    assert "addr=room@example.com; keydata=" in " ".join(reply.get_all("Autocrypt", []))
    inner = opened(reply, parties.alice, parties.room)
    assert inner.get_param("protected-headers") == "v1"
    assert inner["Subject"] == reply["Subject"]
    assert partstat_of(parse_calendar_part(inner)) == "ACCEPTED"
    assert booked(site)
    (entry,) = decisions(site)
    assert entry["answer"] == "ACCEPTED"
    assert entry["signed_by"] == fingerprint(parties.alice) and entry["encrypted"] is True


def test_thunderbird_layout_with_protected_headers_and_autocrypt(
    site: Agent, parties: Parties, tmp_path: Path
) -> None:
    """Thunderbird's layout; here the site does not know Alice's key from
    the admin: it learns it from her Autocrypt header and encrypts the reply
    to it, but a learned key proves nothing (the signature is not "valid")."""
    assert site.admin("key", "remove", ALICE).returncode == 0
    calendar = calendar_text(vevent_of("Board meeting"))
    message = thunderbird_encrypted(calendar, parties.alice, parties.room, "Invitation: Board")
    run = site.resource(message)
    assert run.code == 0, run.stdout + run.stderr
    (reply,) = run.generated()
    assert "Board" in reply["Subject"]  # from the protected headers, not "..."
    inner = opened(reply, parties.alice, parties.room)
    assert partstat_of(parse_calendar_part(inner)) == "ACCEPTED"
    listed = site.admin("key", "list", ALICE)
    assert "\tpublic\tautocrypt\t" in listed.stdout
    assert "signed_by" not in decisions(site)[0]


def vevent_of(summary: str) -> str:
    return vevent(UID, summary=summary)


def test_gpg_encrypt_sign_layout_from_a_person_without_signature(
    site: Agent, parties: Parties
) -> None:
    """Encrypted but not signed: read and accepted (require_signature no)."""
    run = site.resource(gpg_encrypted(invitation(), parties.alice, parties.room, sign=False))
    assert run.code == 0
    (reply,) = run.generated()
    inner = opened(reply, parties.alice, parties.room)
    assert partstat_of(parse_calendar_part(inner)) == "ACCEPTED"
    assert "signed_by" not in decisions(site)[0]


def test_forged_cancel_changes_nothing_under_require_signature_changes(
    site: Agent, parties: Parties
) -> None:
    site.set_pref(ROOM, "require_signature", "changes")
    mallory = site.root / "mallory.asc"
    mallory.write_bytes(parties.mallory.public())
    assert site.admin("key", "import", MALLORY, str(mallory)).returncode == 0
    request = clear_signed(invitation(), parties.alice)
    assert site.resource(request).code == 0 and booked(site)
    cancel = invitation(1, "CANCEL", "<c1@example.com>")
    forgeries = {
        "unsigned": cancel,
        "signed by mallory": clear_signed(cancel, parties.mallory),
        "tampered": clear_signed(cancel, parties.alice, tamper=True),
        "encrypted, signed by mallory": gpg_encrypted(cancel, parties.mallory, parties.room),
    }
    for what, forged in forgeries.items():
        run = site.resource(forged)
        assert run.code == 0 and not run.generated(), what
        assert booked(site), what
    refused = [e for e in decisions(site) if e["answer"] == "refused"]
    assert [e["code"] for e in refused] == ["signature"] * 4
    assert "not signed" in str(refused[0]["reason"])
    assert "not bound to alice@example.com" in str(refused[1]["reason"])
    assert "signature not valid" in str(refused[2]["reason"])
    assert site.resource(clear_signed(cancel, parties.alice)).code == 0
    assert not booked(site)


def test_require_signature_all_refuses_an_unsigned_request(site: Agent, parties: Parties) -> None:
    site.set_pref(ROOM, "require_signature", "all")
    run = site.resource(invitation())
    assert run.code == 0 and not booked(site)
    (declined,) = run.generated()
    assert partstat_of(parse_calendar_part(declined)) == "DECLINED"
    assert "not signed with its organiser's key" in declined.get_body(("plain",)).get_content()
    run = site.resource(clear_signed(invitation(), parties.mallory))
    assert not booked(site)
    run = site.resource(clear_signed(invitation(), parties.alice))
    (reply,) = run.generated()
    assert partstat_of(parse_calendar_part(reply)) == "ACCEPTED" and booked(site)
    assert decisions(site)[-1]["signed_by"] == fingerprint(parties.alice)


def test_an_undecryptable_message_gets_a_short_answer_and_no_loop(
    site: Agent, parties: Parties
) -> None:
    """Encrypted to a key the site does not hold: no calendar data, logged,
    one short text to the sender; never to automatic mail or a bounce."""
    message = gpg_encrypted(invitation(), parties.alice, parties.nobody)
    run = site.resource(message)
    assert run.code == 0, run.stdout
    (answer,) = run.generated()
    assert answer["To"] == ALICE and answer.get_content_type() == "text/plain"
    assert "could not read your message" in answer.get_content()
    assert answer["Auto-Submitted"] == "auto-replied"
    assert not booked(site)
    automatic = message.replace(b"From:", b"Auto-Submitted: auto-replied\r\nFrom:", 1)
    assert site.resource(automatic).code == 0
    assert not site.resource(automatic).generated()
    bounce = site.resource(message, sender="")
    assert bounce.code == 0 and not bounce.generated()


def test_a_person_gets_undecryptable_mail_unchanged(site: Agent, parties: Parties) -> None:
    message = gpg_encrypted(invitation(), parties.alice, parties.nobody, recipient=MALLORY)
    message = message.replace(b"To: room@example.com", b"To: bob@example.com")
    run = site.person(message, "bob@example.com")
    assert run.code == 0, run.stdout
    assert run.files == [message] and not run.generated()


def test_sign_outgoing_signs_a_reply_in_clear(site: Agent, parties: Parties) -> None:
    site.set_pref(ROOM, "sign_outgoing", "yes")
    run = site.resource(invitation())
    (reply,) = run.generated()
    assert reply.get_content_type() == "multipart/signed"
    inner = verified(run.files[0], parties.alice, parties.room)
    assert partstat_of(parse_calendar_part(inner)) == "ACCEPTED"


def test_plain_mail_gets_a_plain_reply_advertising_the_key(site: Agent) -> None:
    run = site.resource(invitation())
    (reply,) = run.generated()
    assert reply.get_content_type() == "multipart/alternative"
    assert reply["Autocrypt"].startswith("addr=room@example.com; keydata=")
    assert partstat_of(parse_calendar_part(reply)) == "ACCEPTED"


def test_admin_keys(site: Agent, parties: Parties) -> None:
    listed = json.loads(site.admin("key", "list", "--json").stdout)["keys"]
    assert {(k["addresses"][0], k["secret"], k["source"]) for k in listed} == {
        (ROOM, True, "keyring"),
        (ALICE, False, "keyring"),
    }
    exported = site.admin("key", "export", ROOM)
    assert exported.returncode == 0
    assert "PUBLIC KEY" in exported.stdout and "PRIVATE KEY" not in exported.stdout
    wrong = site.root / "mallory.asc"
    wrong.write_bytes(parties.mallory.public())
    refused = site.admin("key", "import", ALICE, str(wrong))
    assert refused.returncode == 65 and "mallory@example.com" in refused.stdout
    assert site.admin("key", "generate", ROOM).returncode == 64  # has one already
    assert site.admin("key", "remove", ALICE).returncode == 0
    assert site.admin("key", "export", ALICE).returncode == 67
    assert site.admin("key", "generate", "car@example.com").returncode == 0
    listed = json.loads(site.admin("key", "list", "car@example.com", "--json").stdout)["keys"]
    assert listed[0]["secret"] is True
