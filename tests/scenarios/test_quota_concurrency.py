"""Concurrent deliveries never overspend a quota (issue 5).

Twenty imip-resource processes start at once, each booking a different
slot of one of two resources that share the quota ``rooms``, all for the
same organiser, whose limit allows exactly five bookings. Whatever the
interleaving, exactly five are accepted and recorded, over repeated runs,
with each backend (the file journal's flock, the database's advisory locks).
"""

from __future__ import annotations

import email
import subprocess
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.support import BIN, Agent, calendar_text, imip_message, parse_calendar_part, vevent

ROOMS = ("room1@example.com", "room2@example.com")
PROCESSES = 20
ALLOWED = 5


def _message(index: int, room: str) -> bytes:
    start = f"203001{8 + index // 8:02d}T{8 + index % 8:02d}0000Z"
    end = f"203001{8 + index // 8:02d}T{8 + index % 8:02d}3000Z"
    event = vevent(f"slot-{index}", start, end, attendees=(room,))
    return imip_message(calendar_text(event), to=room, message_id=f"<slot-{index}@t>")


def _start(agent: Agent, index: int) -> tuple[subprocess.Popen[bytes], Path]:
    room = ROOMS[index % 2]
    out = agent.root / "out" / str(index)
    argv = [
        str(BIN / "imip-resource"),
        *agent.store_options,
        "--now",
        agent.now,
        "-o",
        room,
        "-s",
        "alice@example.com",
        "--output",
        str(out),
    ]
    process = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdin is not None
    process.stdin.write(_message(index, room))
    process.stdin.close()
    return process, out


def _answers(outs: list[Path]) -> dict[str, str]:
    """PARTSTAT by request Message-ID, over every --output directory: a run
    sends whatever the outbox holds, so one may send another's reply."""
    found: dict[str, str] = {}
    for path in sorted(p for out in outs if out.exists() for p in out.iterdir()):
        mail = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(mail, EmailMessage)
        event = parse_calendar_part(mail).walk("VEVENT")[0]
        request = str(mail["In-Reply-To"])
        assert request not in found, f"two answers to {request}"
        found[request] = str(event["ATTENDEE"].params["PARTSTAT"])
    return found


@pytest.mark.parametrize("attempt", range(3))
def test_twenty_processes_book_exactly_the_allowance(agent: Agent, attempt: int) -> None:
    for room in ROOMS:
        agent.set_pref(room, "scheduling_function", "check_quota rooms\nschedule_in_freebusy")
    result = agent.admin("quota", "set-limit", "rooms", "alice@example.com", str(ALLOWED))
    assert result.returncode == 0, result.stdout
    started = [_start(agent, i) for i in range(PROCESSES)]
    for process, _ in started:
        assert process.wait(timeout=120) == 0, process.stdout.read() if process.stdout else ""
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    by_request = _answers([out for _, out in started])
    answers = [by_request[f"<slot-{i}@t>"] for i in range(PROCESSES)]
    assert answers.count("ACCEPTED") == ALLOWED
    assert answers.count("DECLINED") == PROCESSES - ALLOWED
    records = agent.site().ledger.bookings("rooms")
    assert len(records) == ALLOWED
    accepted = {f"slot-{i}" for i, a in enumerate(answers) if a == "ACCEPTED"}
    assert {r.uid for r in records} == accepted
