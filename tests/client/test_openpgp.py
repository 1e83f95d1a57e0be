"""imip-client for a person whose key lives in their mail client (issue 20
item 5): the client decrypts and verifies, and tells imip-client so
(``--encrypted``, ``--signed-by``, ``--signer-key``); the inspection says
it, and the user's ``require_signature`` is applied to what the client
vouches for."""

from __future__ import annotations

from pathlib import Path

from imiptools.client import open_calendar
from tests.client.test_cli import BOB, client, invitation
from tests.support import calendar_text, imip_message, vevent

FINGERPRINT = "8DA48EBF1FF08DDC7A771C3231419B46EB49717D"


def cancel() -> bytes:
    event = vevent(attendees=(BOB,), sequence=1, dtstamp="20300102T090000Z")
    event = event.replace("BEGIN:VEVENT", "BEGIN:VEVENT\nSTATUS:CANCELLED")
    return imip_message(calendar_text(event, method="CANCEL"), to=BOB, method="CANCEL")


def signed(*argv: str) -> tuple[str, ...]:
    return ("--encrypted", "--signed-by", "alice@example.com", "--signer-key", FINGERPRINT, *argv)


def test_the_inspection_says_what_the_client_found(tmp_path: Path) -> None:
    status, document = client(tmp_path, *signed("inspect"), message=invitation())
    assert status == 0
    assert document["inspection"]["security"] == {
        "encrypted": True,
        "signed": True,
        "signer": FINGERPRINT,
        "signer_addresses": ["alice@example.com"],
        "signed_by_organiser": True,
        "problem": "",
    }
    status, document = client(tmp_path, "inspect", message=invitation())
    assert document["inspection"]["security"]["signed"] is False


def test_require_signature_reads_what_the_client_vouches_for(tmp_path: Path) -> None:
    assert client(tmp_path, "apply", message=invitation())[0] == 0
    calendar = open_calendar(tmp_path / "cal", [BOB])
    calendar.site.preferences.set(f"mailto:{BOB}", "require_signature", "changes")
    status, document = client(tmp_path, "apply", message=cancel())
    assert status == 0 and document["result"]["changes"] == []
    assert any(d.startswith("refused/signature") for d in document["result"]["decisions"])
    assert calendar.site.records(f"mailto:{BOB}").stored("event-1@example.com") is not None
    mallory = ("--signed-by", "mallory@example.com", "apply")
    status, document = client(tmp_path, *mallory, message=cancel())
    assert document["result"]["changes"] == []
    status, document = client(tmp_path, *signed("apply"), message=cancel())
    assert status == 0 and document["result"]["changes"]
    assert any(d.startswith("verified/signature") for d in document["result"]["decisions"])
    assert calendar.site.records(f"mailto:{BOB}").stored("event-1@example.com") is None


def test_signer_key_needs_an_address(tmp_path: Path) -> None:
    status, document = client(
        tmp_path, "--signer-key", FINGERPRINT, "inspect", message=invitation()
    )
    assert status == 64 and document["error"]["code"] == "usage"
