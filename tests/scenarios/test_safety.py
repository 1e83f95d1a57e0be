"""Scenario tests: loops, spoofing, exit codes, hostile input."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from tests.support import ROOM, Agent, calendar_text, imip_message, partstat_of, vevent


def test_no_reply_to_null_sender(agent: Agent) -> None:
    run = agent.resource(imip_message(calendar_text(vevent())), sender="")
    assert run.code == 0 and run.sent == []


@pytest.mark.parametrize("value", ["auto-replied", "auto-generated", "auto-notified"])
def test_no_reply_to_automatic_mail(agent: Agent, value: str) -> None:
    message = imip_message(calendar_text(vevent()), headers={"Auto-Submitted": value})
    run = agent.resource(message, sender="alice@example.com")
    assert run.code == 0 and run.sent == []


def test_bulk_precedence_invitations_are_still_answered(agent: Agent) -> None:
    message = imip_message(calendar_text(vevent()), headers={"Precedence": "bulk"})
    run = agent.resource(message, sender="alice@example.com")
    assert run.code == 0 and partstat_of(run.replies()[0]) == "ACCEPTED"


def test_no_reply_to_ourselves(agent: Agent) -> None:
    message = imip_message(calendar_text(vevent(organiser=ROOM)), sender=ROOM)
    run = agent.resource(message, sender=ROOM)
    assert run.code == 0 and run.sent == []


def test_spoofed_cancel_changes_nothing(agent: Agent) -> None:
    agent.resource(imip_message(calendar_text(vevent())), sender="alice@example.com")
    cancel = calendar_text(vevent(sequence=5, dtstamp="20300101T100000Z"), method="CANCEL")
    run = agent.resource(
        imip_message(cancel, sender="mallory@example.com", method="CANCEL"),
        sender="mallory@example.com",
    )
    assert run.code == 0 and run.sent == []
    fb = agent.admin("freebusy", ROOM, "--start", "20300101", "--end", "20300201").stdout
    assert "20300108T100000Z/20300108T110000Z" in fb


def test_spoofed_update_from_another_organiser_changes_nothing(agent: Agent) -> None:
    agent.resource(imip_message(calendar_text(vevent())), sender="alice@example.com")
    hijack = vevent(
        organiser="mallory@example.com",
        sequence=3,
        start="20300109T100000Z",
        end="20300109T110000Z",
        dtstamp="20300101T100000Z",
    )
    run = agent.resource(
        imip_message(calendar_text(hijack), sender="mallory@example.com"),
        sender="mallory@example.com",
    )
    assert run.code == 0 and run.sent == []
    fb = agent.admin("freebusy", ROOM, "--start", "20300101", "--end", "20300201").stdout
    assert "20300108T100000Z" in fb and "20300109" not in fb


def test_request_without_organiser_goes_back_to_the_sender(agent: Agent) -> None:
    run = agent.resource(
        imip_message(calendar_text(vevent(organiser=""))), sender="alice@example.com"
    )
    assert run.code == 65
    assert run.stdout.startswith("5.6.0 ") and run.stdout.count("\n") == 1
    assert "ORGANIZER" in run.stdout


def test_garbage_calendar_is_65_with_one_line(agent: Agent) -> None:
    message = imip_message("BEGIN:VCALENDAR\r\nthis is not\r\n\x00garbage\r\n")
    run = agent.resource(message, sender="alice@example.com")
    assert run.code == 65 and run.stdout.startswith("5.6.0 ")
    assert "Traceback" not in run.stdout + run.stderr


def test_garbage_from_null_sender_is_dropped_quietly(agent: Agent) -> None:
    run = agent.resource(imip_message("BEGIN:VCALENDAR\r\nbroken\r\n"), sender="")
    assert run.code == 0


def test_message_without_calendar_is_not_an_error(agent: Agent) -> None:
    run = agent.resource(
        b"From: a@example.com\r\nSubject: hi\r\n\r\nHello room!\r\n", sender="a@example.com"
    )
    assert run.code == 0 and run.sent == []


def test_malformed_mime_gets_a_clear_answer(agent: Agent) -> None:
    broken = (
        b'From: a@example.com\r\nContent-Type: multipart/mixed; boundary="x"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n--x\r\nContent-Type: text/calendar;"
        b" method=REQUEST\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!notbase64"
    )
    run = agent.resource(broken, sender="a@example.com")
    assert run.code in (0, 65)
    assert "Traceback" not in run.stdout + run.stderr


def test_huge_message_is_refused_without_reading_it_all_into_a_traceback(agent: Agent) -> None:
    huge = imip_message(calendar_text(vevent()), headers={"X-Pad": "x"}) + b"x" * (20 << 20)
    run = agent.resource(huge, sender="alice@example.com")
    assert run.code == 65 and run.stdout.startswith("5.3.4 ")


def test_crlf_in_summary_cannot_inject_headers(agent: Agent) -> None:
    evil = vevent(summary="Hi\\nBcc: victim@example.com\\r\\nX-Evil: 1")
    run = agent.resource(imip_message(calendar_text(evil)), sender="alice@example.com")
    assert run.code == 0 and len(run.sent) == 1
    mail = run.sent[0]
    assert mail["Bcc"] is None and mail["X-Evil"] is None
    assert partstat_of(run.replies()[0]) == "ACCEPTED"


@pytest.mark.parametrize(
    "uid",
    ["../../etc/passwd", "a/b/c", "..", ".", "x" * 10_000, "nul\x00inside", "tab\there"],
    ids=["dotdot", "slashes", "parent", "dot", "10kB", "nul", "tab"],
)
def test_hostile_uids_stay_inside_the_store(agent: Agent, uid: str) -> None:
    run = agent.resource(imip_message(calendar_text(vevent(uid=uid))), sender="alice@example.com")
    assert run.code in (0, 65), run.stdout
    store = (agent.root / "store").resolve()
    for path in agent.root.rglob("*"):
        resolved = path.resolve()
        assert resolved.is_relative_to(agent.root.resolve())
        if resolved.is_relative_to(store) and resolved != store:
            assert len(resolved.name) <= 255
    assert not (agent.root / "etc").exists()
    if run.code == 0:
        exported = agent.admin("export", ROOM)
        assert exported.returncode == 0


def test_recurrence_bomb_is_bounded(agent: Agent) -> None:
    bomb = vevent("bomb", "20300108T100000Z", "20300108T100001Z", extra="RRULE:FREQ=SECONDLY")
    run = agent.resource(imip_message(calendar_text(bomb)), sender="alice@example.com")
    assert run.code == 0
    assert partstat_of(run.replies()[0]) == "DECLINED"


def test_impossible_rule_is_bounded(agent: Agent) -> None:
    bomb = vevent("bomb", extra="RRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30")
    run = agent.resource(imip_message(calendar_text(bomb)), sender="alice@example.com")
    assert run.code in (0, 65)
    assert "Traceback" not in run.stdout + run.stderr


def test_bad_command_line_is_75_never_2(agent: Agent) -> None:
    run = agent.resource(imip_message(calendar_text(vevent())), args=("--no-such-option",))
    assert run.code == 75 and run.stdout.startswith("4.3.5 ")


def test_bad_configuration_is_75(
    agent: Agent, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[agent]\nlock_timeout = 'soon'\n")
    run = agent.resource(imip_message(calendar_text(vevent())), args=("-c", str(config)))
    assert run.code == 75 and "lock_timeout" in run.stdout


def test_lock_timeout_is_75_and_a_retry_converges(agent: Agent, tmp_path: Path) -> None:
    config = tmp_path / "quick.toml"
    config.write_text("[agent]\nlock_timeout = 0.5\n")
    agent.resource(imip_message(calendar_text(vevent("first"))), sender="alice@example.com")
    user_dir = next(p for p in (agent.root / "store").iterdir() if p.name.startswith("mailto:"))
    message = imip_message(calendar_text(vevent("second", "20300109T100000Z", "20300109T110000Z")))
    fd = os.open(user_dir / ".lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        held = agent.resource(message, sender="alice@example.com", args=("-c", str(config)))
    finally:
        os.close(fd)
    assert held.code == 75 and held.stdout.startswith("4.")
    retry = agent.resource(message, sender="alice@example.com", args=("-c", str(config)))
    assert retry.code == 0 and partstat_of(retry.replies()[0]) == "ACCEPTED"
