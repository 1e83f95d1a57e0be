"""imip-admin outbox: list, retry, drop and flush the messages set aside."""

from __future__ import annotations

from imiptools.spool import Outbox
from tests.admin.conftest import admin_ok
from tests.support import Agent

MESSAGE = b"From: room@example.com\r\nSubject: Accepted: Meeting\r\n\r\nbody\r\n"


def held_two(agent: Agent) -> tuple[Outbox, list[str]]:
    spool = agent.site().outbox
    ids = [spool.put(MESSAGE, "room@example.com", [f"{n}@example.org"]) for n in ("a", "b")]
    for identifier in ids:
        spool.hold(identifier, "permanent SMTP failure 550 no such user")
    return spool, ids


def test_empty_outbox(agent: Agent) -> None:
    assert admin_ok(agent, "outbox", "list") == "0 held, 0 waiting to be sent\n"
    assert admin_ok(agent, "outbox", "retry", "--all") == ""
    assert agent.admin("check").returncode == 0


def test_list_retry_and_drop(agent: Agent) -> None:
    spool, (first, second) = held_two(agent)
    listed = admin_ok(agent, "outbox", "list")
    assert listed.count("reason: permanent SMTP failure 550 no such user") == 2
    assert "from room@example.com to a@example.org" in listed
    assert "subject: Accepted: Meeting" in listed
    assert admin_ok(agent, "outbox", "retry", first) == f"{first}: back in line\n"
    assert [item.id for item in spool.pending()] == [first]
    assert admin_ok(agent, "outbox", "drop", "--all") == f"{second}: dropped\n"
    assert spool.held() == []
    assert admin_ok(agent, "outbox", "list") == "0 held, 1 waiting to be sent\n"


def test_unknown_or_ambiguous_id_is_a_usage_error(agent: Agent) -> None:
    held_two(agent)
    for args in (["drop", "99999"], ["drop", "0"], ["retry"], ["retry", "x", "--all"]):
        result = agent.admin("outbox", *args)
        assert result.returncode == 64, (args, result.stdout)
        assert result.stdout.count("\n") == 1
    assert agent.admin("outbox", "list", "--all").returncode == 64


def test_check_reports_each_held_message(agent: Agent) -> None:
    _, ids = held_two(agent)
    result = agent.admin("check")
    assert result.returncode == 65
    for identifier in ids:
        assert f"outbox: message {identifier} to " in result.stdout
