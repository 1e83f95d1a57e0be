"""The admin jobs and quotas: make-freebusy counts instances that enter the
window, check verifies (and repairs) the quota records, quota expire and
tools/update_quotas.py retire what no longer counts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from imiptools.quota.base import QuotaLedger
from tests.admin.conftest import ROOM, admin_ok, answer, book, vevent
from tests.support import ROOT, Agent

LATER = "2030-01-15T12:00:00Z"


def quota_room(agent: Agent) -> QuotaLedger:
    agent.set_pref(ROOM, "scheduling_function", "check_quota rooms\nschedule_in_freebusy")
    return agent.site().ledger


def ends(journal: QuotaLedger) -> list[str]:
    return sorted(f"{b.end:%Y%m%dT%H%M%SZ}" for b in journal.bookings("rooms"))


def test_make_freebusy_records_instances_entering_the_window(agent: Agent) -> None:
    journal = quota_room(agent)
    assert answer(book(agent, vevent("weekly", extra="RRULE:FREQ=WEEKLY"))) == "ACCEPTED"
    assert "20310107T110000Z" not in ends(journal)
    admin_ok(agent, "make-freebusy", "--all", now=LATER)
    assert "20310107T110000Z" in ends(journal)
    assert admin_ok(agent, "check", now=LATER) == ""


@pytest.mark.files
def test_check_finds_and_repairs_quota_records(agent: Agent) -> None:
    journal = quota_room(agent)
    book(agent, vevent("one"))
    book(agent, vevent("two", "20300109T100000Z", "20300109T110000Z"))
    bookings = agent.root / "journal" / "rooms" / "bookings" / "mailto:alice@example.com"
    lines = bookings.read_text().splitlines(keepends=True)
    bookings.write_text(lines[0] + lines[0].replace("\tone\t", "\tghost\t"))
    result = agent.admin("check")
    assert result.returncode == 65, result.stdout
    assert "quota rooms: the records of 'two'" in result.stdout
    assert "quota rooms: the records of 'ghost'" in result.stdout
    repaired = agent.admin("check", "--repair")
    assert repaired.returncode == 0, repaired.stdout
    assert sorted(b.uid for b in journal.bookings("rooms")) == ["one", "two"]
    assert admin_ok(agent, "check") == ""


@pytest.mark.files
def test_a_bad_quota_file_is_reported(agent: Agent) -> None:
    quota_room(agent)
    limits = agent.root / "journal" / "rooms" / "limits"
    limits.parent.mkdir(parents=True)
    limits.write_text("* time fortnight PT1H\n")
    result = agent.admin("check")
    assert result.returncode == 65
    assert "quota rooms:" in result.stdout and "fortnight" in result.stdout


def test_update_quotas_tool_expires_and_refreshes(agent: Agent) -> None:
    journal = quota_room(agent)
    admin_ok(agent, "quota", "set-limit", "rooms", "*", "5", "--per", "week")
    book(agent, vevent("past"))
    assert len(journal.bookings("rooms")) == 1
    tool = ROOT / "tools" / "update_quotas.py"
    argv = [sys.executable, str(tool), *agent.store_options, "--now", "2030-02-01T12:00:00Z"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert journal.bookings("rooms") == []


def test_the_tools_say_so_when_imip_admin_is_missing(agent: Agent) -> None:
    for name in ("update_quotas.py", "make_freebusy.py"):
        argv = ["/usr/bin/python3", str(ROOT / "tools" / name), *agent.store_options]
        env = {"PATH": "/nonexistent", "IMIP_ADMIN": "/nonexistent/imip-admin"}
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
        assert result.returncode == 75
        assert result.stdout.startswith("4.3.0 cannot run imip-admin") and not result.stderr
