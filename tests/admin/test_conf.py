"""The cron and systemd examples parse and name real subcommands; every
subcommand's --help has an example; the tools/ wrappers run imip-admin."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.admin.conftest import ROOM, admin_ok, answer, book, busy, vevent
from tests.support import BIN, ROOT, Agent

CRON = ROOT / "conf" / "cron" / "imip-agent"
SYSTEMD = ROOT / "conf" / "systemd"
STORE_COMMANDS = ("init", "init-user", "make-freebusy", "expire-offers", "purge", "check",
                  "import", "copy-store", "show")  # fmt: skip

_FIELD = re.compile(r"^(\*|[0-9]+(-[0-9]+)?)(/[0-9]+)?(,(\*|[0-9]+(-[0-9]+)?)(/[0-9]+)?)*$")
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def _subcommands() -> set[str]:
    """The subcommands ``imip-admin --help`` lists."""
    text = subprocess.run([str(BIN / "imip-admin"), "--help"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    return set(re.search(r"\{([a-z,-]+)\}", text).group(1).split(","))  # type: ignore[union-attr]


def _admin_calls(command: str) -> list[list[str]]:
    """The argument lists of each ``imip-admin`` call in a shell command."""
    calls = []
    for part in re.split(r"&&|\|\||;", command):
        words = shlex.split(part)
        if words and Path(words[0]).name == "imip-admin":
            calls.append(words[1:])
    return calls


def _check_time_fields(fields: list[str]) -> None:
    for field, (low, high) in zip(fields, _RANGES, strict=True):
        assert _FIELD.match(field), field
        assert all(low <= int(n) <= high for n in re.findall(r"[0-9]+", field.split("/")[0]))


def _cron_jobs() -> list[tuple[list[str], str, str]]:
    """(time fields, user, command) of each job line, commented-out ones too."""
    jobs = []
    for line in CRON.read_text().splitlines():
        text = line.lstrip("# ").strip() if line.startswith("#") else line.strip()
        fields = text.split(None, 6)
        if len(fields) == 7 and all(_FIELD.match(f) for f in fields[:5]):
            jobs.append((fields[:5], fields[5], fields[6]))
        else:
            assert line.startswith("#") or not line.strip() or re.match(r"^[A-Z_]+=", line), line
    return jobs


def test_cron_file_parses_and_runs_existing_subcommands() -> None:
    known = _subcommands()
    jobs = _cron_jobs()
    assert len(jobs) >= 4
    commands = set()
    for fields, user, command in jobs:
        _check_time_fields(fields)
        assert user == "imip-agent"
        for call in _admin_calls(command):
            assert call[0] in known, call
            commands.add(" ".join(call[:2]))
    assert {"make-freebusy --all", "expire-offers --all", "quota expire", "check"} <= commands


def _units() -> list[Path]:
    return sorted(SYSTEMD.glob("*.service")) + sorted(SYSTEMD.glob("*.timer"))


def test_systemd_units_parse_and_pair_up() -> None:
    known = _subcommands()
    for unit in _units():
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string(unit.read_text())
        assert parser.has_option("Unit", "Description"), unit
        if unit.suffix == ".timer":
            assert parser.has_option("Timer", "OnCalendar")
            assert parser.get("Install", "WantedBy") == "timers.target"
            assert unit.with_suffix(".service").exists()
            continue
        if unit.name == LMTP_UNIT:
            _check_lmtp_service(parser)
            continue
        assert parser.get("Service", "Type") == "oneshot"
        assert parser.get("Service", "User") == "imip-agent"
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                words = shlex.split(line.removeprefix("ExecStart=").lstrip("-"))
                assert words[0].endswith("/imip-admin") and words[1] in known, line


#: The one long-running service (the others are oneshot jobs of a timer).
LMTP_UNIT = "imip-agent-lmtp.service"


def _check_lmtp_service(unit: configparser.ConfigParser) -> None:
    """imip-agent-lmtp's unit: unprivileged, reloaded by SIGHUP, drained by
    SIGTERM to the main process only, its command line one the program takes."""
    from imip_agent.lmtp import parser

    service = unit["Service"]
    assert (service["Type"], service["User"], service["Group"]) == ("exec", *["imip-agent"] * 2)
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["KillMode"] == "mixed"
    assert service["RuntimeDirectory"] == "imip-agent"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    words = shlex.split(service["ExecStart"])
    assert words[0].endswith("/imip-agent-lmtp")
    args = parser().parse_args(words[1:])
    assert all(getattr(args, role).startswith("unix:/run/imip-agent/") for role in
               ("resource", "person", "outgoing"))  # fmt: skip
    assert args.socket_group in service["SupplementaryGroups"].split()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    for unit in _units():  # ExecStart must name an existing program
        text = unit.read_text().replace("/usr/local/bin/imip-admin", str(BIN / "imip-admin"))
        text = text.replace("/opt/imip-agent/venv/bin/", f"{BIN}/")
        (tmp_path / unit.name).write_text(text)
    units = [str(tmp_path / unit.name) for unit in _units()]
    done = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout + done.stderr == ""


@pytest.mark.parametrize("command", STORE_COMMANDS)
def test_every_subcommand_explains_itself_with_an_example(command: str) -> None:
    done = subprocess.run([str(BIN / "imip-admin"), command, "--help"], capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0
    assert "example:" in done.stdout and f"imip-admin {command}" in done.stdout


def test_tools_wrappers_run_imip_admin(agent: Agent) -> None:
    env_args = [*agent.store_options, "--now", "2030-01-15T12:00:00Z"]
    init_user = subprocess.run(["sh", str(ROOT / "tools" / "init_user.sh"), *agent.store_options,
                                ROOM, "--resource"], capture_output=True, text=True,
                               env={"PATH": f"{BIN}:/usr/bin:/bin"}, check=False)  # fmt: skip
    assert init_user.returncode == 0, init_user.stdout + init_user.stderr
    assert answer(book(agent, vevent("weekly", extra="RRULE:FREQ=WEEKLY"))) == "ACCEPTED"
    tool = [sys.executable, str(ROOT / "tools" / "make_freebusy.py"), *env_args]
    assert subprocess.run(tool, check=False).returncode == 0
    span = ("20310101T000000Z", "20310201T000000Z")
    assert "20310107T100000Z" in busy(agent, *span, now="2030-01-15T12:00:00Z")
    update = [sys.executable, str(ROOT / "tools" / "update_quotas.py"), *env_args]
    assert subprocess.run(update, capture_output=True, check=False).returncode == 0
    assert admin_ok(agent, "check", now="2030-01-15T12:00:00Z") == ""
