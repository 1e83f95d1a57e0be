"""imip-client, the JSON process interface (issue 19 item 2): every document
it prints is checked against the published schema, every REPLY it returns
is read by icalendar and by vobject, and each error has its code and exit
status. Run in process (``run``) and, for the exit boundary, as a program."""

from __future__ import annotations

import email
import json
import subprocess
from email import policy
from email.message import EmailMessage
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from imip_agent.client import run
from imiptools.errors import CLIENT_ERRORS
from tests.support import (
    BIN,
    IN_CI,
    INTEROP,
    ROOT,
    calendar_text,
    check_reply,
    imip_message,
    parse_calendar_part,
    vevent,
)

SCHEMA = ROOT / "imiptools" / "schema" / "imip-client.schema.json"
BOB = "bob@example.com"
NOW = "2030-01-01T12:00:00Z"
OUTLOOK = INTEROP / "outlook" / "tine20__invite_outlook.eml"


@cache
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)  # type: ignore[no-any-return]


def checked(text: str) -> dict[str, Any]:
    """The document, valid by the schema; its REPLYs valid for two parsers."""
    document = json.loads(text)
    validator().validate(document)
    for outgoing in document.get("result", {}).get("outgoing", []):
        message = email.message_from_string(outgoing["message"], policy=policy.default)
        assert isinstance(message, EmailMessage)
        calendar = parse_calendar_part(message)
        if outgoing["method"] == "REPLY":
            check_reply(calendar, outgoing["envelope_from"])
    return document


def client(tmp_path: Path, *argv: str, message: bytes | None = None) -> tuple[int, dict[str, Any]]:
    args = ["--calendar", str(tmp_path / "cal"), "--identity", BOB, "--now", NOW, *argv]
    if message is not None:
        path = tmp_path / "message.eml"
        path.write_bytes(message)
        args.append(str(path))
    status, text = run(args)
    return status, checked(text)


def invitation(sequence: int = 0) -> bytes:
    event = vevent(attendees=(BOB,), sequence=sequence, dtstamp=f"2030010{1 + sequence}T090000Z")
    return imip_message(calendar_text(event), to=BOB)


def test_inspect_respond_pending_agenda_freebusy(tmp_path: Path) -> None:
    status, document = client(tmp_path, "inspect", message=invitation())
    assert status == 0 and document["inspection"]["objects"][0]["reply_required"]
    status, document = client(tmp_path, "apply", message=invitation())
    assert status == 0 and document["result"]["changes"]
    status, document = client(tmp_path, "pending")
    assert [w["uid"] for w in document["pending"]] == ["event-1@example.com"]
    status, document = client(
        tmp_path, "respond", "--partstat", "declined", "--comment", "Away", message=invitation()
    )
    (reply,) = document["result"]["outgoing"]
    assert reply["subject"] == "Declined: Meeting" and "COMMENT:Away" in reply["calendar"]
    assert reply["in_reply_to"] == "<m1@example.com>" and reply["to"] == "alice@example.com"
    assert client(tmp_path, "pending")[1]["pending"] == []
    span = ("--from", "2030-01-08T00:00Z", "--to", "2030-01-09T00:00Z")
    assert client(tmp_path, "agenda", *span)[1]["agenda"] == []  # declined: free
    assert client(tmp_path, "freebusy", *span)[1]["freebusy"] == []
    status, document = client(tmp_path, "respond", "--partstat", "accepted", message=invitation())
    assert [e["status"] for e in client(tmp_path, "freebusy", *span)[1]["freebusy"]] == ["BUSY"]
    assert (
        client(tmp_path, "inspect", message=invitation())[1]["inspection"]["objects"][0]["state"]
        == "answered"
    )


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    status, document = client(
        tmp_path, "--dry-run", "respond", "--partstat", "tentative", message=invitation()
    )
    assert status == 0 and document["result"]["dry_run"] and document["result"]["outgoing"]
    assert client(tmp_path, "pending")[1]["pending"] == []


def test_inspect_text_for_a_mailcap_view(tmp_path: Path) -> None:
    path = tmp_path / "m.eml"
    path.write_bytes(invitation())
    status, text = run(
        ["--calendar", str(tmp_path), "--identity", BOB, "inspect", "--text", str(path)]
    )
    assert status == 0 and "REQUEST Meeting" in text and "actions:   accept" in text


@pytest.mark.parametrize(
    ("argv", "message", "code"),
    [
        (["respond", "--partstat", "accepted"], "carol", "not_attendee"),
        (["respond", "--partstat", "accepted"], "outdated", "out_of_sequence"),
        (["apply"], "forged", "sender_not_participant"),
        (["inspect"], "no-method", "missing_method"),
        (["inspect"], "garbage", "parse_error"),
        (["inspect"], "plain", "no_calendar"),
        (["respond", "--partstat", "accepted"], "cancel", "not_request"),
        (
            ["respond", "--partstat", "accepted", "--recurrence-id", "20300109"],
            "ok",
            "unknown_recurrence",
        ),
        (["respond", "--partstat", "maybe"], "ok", "usage"),
        (["inspect", "/nonexistent/message.eml"], None, "no_input"),
    ],
)
def test_errors_have_codes_and_exit_statuses(
    tmp_path: Path, argv: list[str], message: str | None, code: str
) -> None:
    if message == "outdated":
        client(tmp_path, "apply", message=invitation(2))
    data = {
        "ok": invitation(),
        "outdated": invitation(),
        "carol": imip_message(calendar_text(vevent(attendees=("carol@example.com",)))),
        "forged": imip_message(calendar_text(vevent(attendees=(BOB,))), sender="eve@example.com"),
        "no-method": calendar_text(vevent(attendees=(BOB,)), method="").encode(),
        "garbage": b"BEGIN:VCALENDAR\r\nnonsense\r\n",
        "plain": b"From: alice@example.com\r\nSubject: hi\r\n\r\nhello\r\n",
        "cancel": imip_message(calendar_text(vevent(attendees=(BOB,)), method="CANCEL")),
        None: None,
    }[message]
    status, document = client(tmp_path, *argv, message=data)
    assert not document["ok"] and document["error"]["code"] == code
    assert status == CLIENT_ERRORS[code] == document["error"]["exit_status"]


def test_each_error_code_has_its_own_exit_status() -> None:
    assert len(set(CLIENT_ERRORS.values())) == len(CLIENT_ERRORS)
    assert 0 not in CLIENT_ERRORS.values()
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert set(schema["$defs"]["error"]["properties"]["code"]["enum"]) == set(CLIENT_ERRORS)


def test_the_program_on_a_real_outlook_invitation(tmp_path: Path) -> None:
    if not OUTLOOK.exists():
        if IN_CI:
            pytest.fail(f"the interop corpus is missing: {OUTLOOK}")
        pytest.skip(f"the interop corpus is missing: {OUTLOOK}")
    argv = [str(BIN / "imip-client"), "--calendar", str(tmp_path), "--now", "2012-11-10T00:00Z"]
    argv += ["--identity", "Oliver@Roth.MyFTP.org"]
    done = subprocess.run(
        [*argv, "respond", "--partstat", "accepted"],
        input=OUTLOOK.read_bytes(),
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout
    (reply,) = checked(done.stdout.decode())["result"]["outgoing"]
    assert reply["recipients"] == ["oliver.roth@mobi.ch"]
    refused = subprocess.run([*argv, "apply", str(OUTLOOK)], capture_output=True, check=False)
    assert checked(refused.stdout.decode())["error"]["code"] == "sender_not_participant"
    assert refused.returncode == CLIENT_ERRORS["sender_not_participant"]


def test_options_after_the_command_and_a_wrong_command_line(tmp_path: Path) -> None:
    path = tmp_path / "m.eml"
    path.write_bytes(invitation())
    status, text = run(["inspect", "--identity", BOB, "--calendar", str(tmp_path), str(path)])
    assert status == 0 and checked(text)["inspection"]["objects"][0]["user"] == BOB
    status, text = run(["--identity", BOB, "--calendar", str(tmp_path), "inspect", "--bogus"])
    document = checked(text)
    assert (status, document["error"]["code"]) == (64, "usage")
    assert "--bogus" in document["error"]["message"]
    status, text = run(["--calendar", str(tmp_path), "pending"])
    assert (status, checked(text)["error"]["code"]) == (64, "usage")


def test_send_hands_the_reply_to_sendmail(tmp_path: Path) -> None:
    sent = tmp_path / "sent"
    sendmail = tmp_path / "sendmail"
    sendmail.write_text(f'#!/bin/sh\necho "$@" > {sent}.args\ncat > {sent}\n')
    sendmail.chmod(0o755)
    status, document = client(
        tmp_path, "--send", "--sendmail", str(sendmail), "respond", "--partstat", "accepted",
        message=invitation(),
    )  # fmt: skip
    assert status == 0 and document["result"]["outgoing"] == []
    (message_id,) = document["result"]["sent"]
    assert f"Message-ID: {message_id}" in sent.read_text()
    assert "alice@example.com" in (tmp_path / "sent.args").read_text()
