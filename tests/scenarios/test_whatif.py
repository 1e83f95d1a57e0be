"""Scenario tests: ``imip-admin whatif`` forecasts imip-resource, changing nothing.

Each test books through imip-resource as Postfix would, takes a snapshot
of every file under the test's root (store, spool, preferences), asks
``whatif`` about a message on stdin, and checks the forecast (decision
line, readable REPLY) and that the snapshot is unchanged.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from icalendar import Calendar

from imiptools.mail.send import SEPARATOR
from tests.support import BIN, ROOM, Agent, calendar_text, imip_message, partstat_of, vevent

REPLY_LABEL = "[text/calendar; method=REPLY]"


def whatif(agent: Agent, message: bytes, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``imip-admin whatif ROOM`` with ``message`` on stdin."""
    argv = [
        str(BIN / "imip-admin"),
        *agent.store_options,
        "--now",
        agent.now,
        "whatif",
        ROOM,
        *args,
    ]
    return subprocess.run(
        argv, input=message.decode(), capture_output=True, text=True, timeout=120, check=False
    )


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every entry under ``root``: file bytes, None for a directory."""
    return {
        str(path.relative_to(root)): None if path.is_dir() else path.read_bytes()
        for path in sorted(root.rglob("*"))
    }


def invitation(uid: str, start: str = "20300108T100000Z", end: str = "20300108T110000Z") -> bytes:
    return imip_message(calendar_text(vevent(uid, start, end)), message_id=f"<{uid}>")


def replies_in(output: str) -> list[Calendar]:
    """The REPLY calendars printed by whatif (text after each REPLY label)."""
    chunks = output.split(REPLY_LABEL)[1:]
    return [Calendar.from_ical(chunk.split(SEPARATOR)[0].strip()) for chunk in chunks]


def booked(agent: Agent) -> dict[str, bytes | None]:
    """Book event-1 for real, then return the snapshot of the whole root."""
    run = agent.resource(invitation("event-1@example.com"))
    assert run.code == 0, run.stdout
    assert len(run.sent) == 1
    return snapshot(agent.root)


def test_clash_is_forecast_as_declined_and_changes_nothing(agent: Agent) -> None:
    before = booked(agent)
    result = whatif(agent, invitation("event-2@example.com"))
    assert result.returncode == 0, result.stdout + result.stderr
    decision = result.stdout.split("\n")[0]
    assert "DECLINED" in decision and "event-2@example.com" in decision
    (reply,) = replies_in(result.stdout)
    assert "METHOD:REPLY" in result.stdout
    assert partstat_of(reply) == "DECLINED"
    assert snapshot(agent.root) == before


def test_free_slot_is_forecast_as_accepted_and_changes_nothing(agent: Agent) -> None:
    before = booked(agent)
    message = invitation("event-3@example.com", "20300108T120000Z", "20300108T130000Z")
    result = whatif(agent, message)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ACCEPTED" in result.stdout.split("\n")[0]
    assert [partstat_of(reply) for reply in replies_in(result.stdout)] == ["ACCEPTED"]
    assert snapshot(agent.root) == before


def test_forecast_matches_what_the_resource_then_does(agent: Agent) -> None:
    booked(agent)
    message = invitation("event-3@example.com", "20300108T103000Z", "20300108T113000Z")
    forecast = whatif(agent, message)
    run = agent.resource(message)
    assert [partstat_of(r) for r in replies_in(forecast.stdout)] == ["DECLINED"]
    assert [partstat_of(r) for r in run.replies()] == ["DECLINED"]


def test_whatif_for_a_resource_without_a_store_creates_nothing(tmp_path: Path) -> None:
    agent = Agent(tmp_path, make_site=False)
    result = whatif(agent, invitation("event-1@example.com"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert [partstat_of(reply) for reply in replies_in(result.stdout)] == ["ACCEPTED"]
    assert list(agent.root.iterdir()) == []


def test_null_sender_gets_a_decision_and_no_reply(agent: Agent) -> None:
    result = whatif(agent, invitation("event-1@example.com"), "--sender", "")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ACCEPTED" in result.stdout.split("\n")[0]
    assert result.stdout.endswith(SEPARATOR + "\nnothing would be sent\n")


def test_no_calendar_data_means_no_decision(tmp_path: Path) -> None:
    agent = Agent(tmp_path, make_site=False)
    result = whatif(agent, b"From: alice@example.com\r\nSubject: hi\r\n\r\nhello\r\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("no decision (2.0.0 no calendar data)\n")
    assert list(agent.root.iterdir()) == []


def test_unusable_calendar_data_exits_65_and_changes_nothing(agent: Agent) -> None:
    before = booked(agent)
    result = whatif(agent, imip_message("BEGIN:VCALENDAR\r\nnot a content line\r\n"))
    assert result.returncode == 65, result.stdout + result.stderr
    assert result.stdout.startswith("5.6.0 ")
    assert snapshot(agent.root) == before


def test_raw_prints_the_mail_as_it_would_be_sent(agent: Agent) -> None:
    result = whatif(agent, invitation("event-1@example.com"), "--raw")
    assert result.returncode == 0, result.stdout + result.stderr
    mail = result.stdout.split(SEPARATOR + "\n")[1]
    assert mail.startswith("From: room@example.com\n")
    assert 'Content-Type: text/calendar; method="REPLY"' in mail
