"""add-resource, add-person, remove-resource, remove-person without a running MTA.

The store and preferences they create, the lines they print, and ``--apply``
on Exim's lists (plain files Exim reads at each delivery, so no Exim is
needed here). ``--apply`` with Postfix (postmap, postfix reload) and the
first message to a room added this way run against a real private Postfix
and Exim in ``tests/mta/scenarios.py``.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from imip_agent.admin_routes import edit_table
from imiptools.errors import ConfigError
from tests.admin.conftest import admin_ok, book, vevent
from tests.support import BIN, ROOT, Agent, partstat_of

ROOM = "room1@resources.example.org"
ALICE = "alice@example.org"
ADD_ROOM = ("add-resource", ROOM, "--name", "Room 1", "--tz", "Europe/Berlin")


@pytest.fixture
def exim_config(tmp_path: Path) -> Path:
    """An Exim configuration directory holding conf/exim's lists (the file itself
    is only named: the lists are found beside it)."""
    directory = tmp_path / "exim"
    directory.mkdir()
    for name in ("imip-people", "imip-resources"):
        shutil.copy(ROOT / "conf" / "exim" / name, directory / name)
    return directory / "exim.conf"


def lines_for(path: Path, address: str) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.startswith(address)]


def test_add_resource_prints_the_postfix_lines_and_sets_up_the_room(agent: Agent) -> None:
    postfix = ("--mta", "postfix", "--postfix-config", "/pf")
    out = admin_ok(agent, *ADD_ROOM, "--capacity", "2", *postfix)
    assert out == (
        f"resource mailto:{ROOM} ready; preferences set: CN, TZID, scheduling_function\n"
        "Postfix: add these lines (or run this command again with --apply):\n"
        "  /pf/imip-transport:\n"
        f"    {ROOM}     imip-resource:\n"
        "  /pf/imip-resources:\n"
        f"    {ROOM}     resource\n"
        "then:\n"
        "  postmap /pf/imip-transport\n"
        "  postmap /pf/imip-resources\n"
        "  postfix reload\n"
    )
    assert admin_ok(agent, "prefs", "get", ROOM, "CN") == "Room 1\n"
    assert admin_ok(agent, "prefs", "get", ROOM, "TZID") == "Europe/Berlin\n"
    assert admin_ok(agent, "prefs", "get", ROOM, "scheduling_function") == (
        "schedule_in_freebusy 2\n"
    )
    # Capacity 2: two overlapping bookings from different organisers are accepted.
    first = book(agent, vevent("a", attendees=(ROOM,)), recipient=ROOM)
    bob = "bob@example.com"
    second = book(agent, vevent("b", organiser=bob, attendees=(ROOM,)), sender=bob, recipient=ROOM)
    for run in (first, second):
        assert run.code == 0, run.stdout
        assert [partstat_of(reply, ROOM) for reply in run.replies()] == ["ACCEPTED"]


def test_add_resource_twice_changes_nothing_and_a_new_name_is_updated(agent: Agent) -> None:
    admin_ok(agent, *ADD_ROOM, "--mta", "none")
    again = admin_ok(agent, *ADD_ROOM, "--mta", "none")
    assert again.splitlines() == [
        f"resource mailto:{ROOM} ready; preferences unchanged",
        "MTA: none (--mta none): no routing lines",
    ]
    renamed = admin_ok(agent, "add-resource", ROOM, "--name", "Room 1a", "--tz=UTC", "--mta=none")
    assert renamed.splitlines()[0] == f"resource mailto:{ROOM} ready; preferences set: CN, TZID"
    # Without --capacity a chosen scheduling_function is kept.
    assert admin_ok(agent, "prefs", "get", ROOM, "scheduling_function") == "schedule_in_freebusy\n"


def test_add_and_remove_resource_apply_to_exims_list_once(agent: Agent, exim_config: Path) -> None:
    exim = ("--mta", "exim", "--exim-config", str(exim_config))
    resources = exim_config.parent / "imip-resources"
    before = resources.read_text()
    added = admin_ok(agent, *ADD_ROOM, "--apply", *exim)
    assert added.splitlines()[1:] == [
        f"{resources}: {ROOM} added",
        "nothing to rebuild or reload (Exim reads the lists at each delivery)",
    ]
    assert resources.read_text() == before + f"{ROOM}:\n"
    again = admin_ok(agent, *ADD_ROOM, "--apply", *exim)
    assert again.splitlines()[1:] == [f"{resources}: {ROOM} already present"]
    assert lines_for(resources, ROOM) == [f"{ROOM}:"]

    removed = admin_ok(agent, "remove-resource", ROOM, "--apply", *exim)
    assert removed.splitlines()[0] == f"{resources}: {ROOM} removed"
    assert removed.splitlines()[-1].startswith(f"kept: {agent.root / 'store'}/mailto:{ROOM} ")
    assert resources.read_text() == before
    assert admin_ok(agent, "remove-resource", ROOM, "--apply", *exim).splitlines()[0] == (
        f"{resources}: {ROOM} not present"
    )
    assert admin_ok(agent, "prefs", "get", ROOM, "CN") == "Room 1\n"  # the data are kept


def test_add_person_applies_to_exims_people(agent: Agent, exim_config: Path) -> None:
    args = ("add-person", ALICE.upper(), "--name", "Alice", "--lang", "de")
    out = admin_ok(agent, *args, "--apply", "--mta", "exim", "--exim-config", str(exim_config))
    people = exim_config.parent / "imip-people"
    assert out.splitlines()[:2] == [
        f"person mailto:{ALICE} ready; preferences set: CN, LANG",
        f"{people}: {ALICE} already present",  # conf/exim's example lists alice already
    ]
    assert lines_for(people, ALICE) == [f"{ALICE}:"]
    assert admin_ok(agent, "prefs", "get", ALICE, "LANG") == "de\n"


def test_apply_without_the_mtas_tables_fails_before_writing(agent: Agent, tmp_path: Path) -> None:
    missing = tmp_path / "no-exim" / "exim.conf"
    done = agent.admin(*ADD_ROOM, "--apply", "--mta", "exim", "--exim-config", str(missing))
    assert (done.returncode, done.stdout) == (
        75,
        f"4.3.5 {missing.parent}/imip-resources does not exist: install the MTA's tables"
        " from conf/ first\n",
    )
    assert not (agent.root / "store" / f"mailto:{ROOM}").exists()


def test_a_bad_zone_is_refused_before_anything_is_written(agent: Agent) -> None:
    done = agent.admin("add-resource", ROOM, "--name", "Room 1", "--tz", "Mars/Olympus")
    assert done.returncode == 65, done.stdout
    assert done.stdout.startswith("5.6.0 invalid TZID 'Mars/Olympus': ")
    assert not (agent.root / "store" / f"mailto:{ROOM}").exists()
    assert not (agent.root / "prefs" / f"mailto:{ROOM}").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("add-resource", ROOM, "--name", "Room 1"), "the following arguments are required: --tz"),
        ((*ADD_ROOM, "--capacity", "0"), "argument --capacity: not a positive whole number: '0'"),
        ((*ADD_ROOM, "--mta", "sendmail"), "argument --mta: invalid choice: 'sendmail'"),
        (("add-person",), "the following arguments are required: ADDRESS"),
        (("remove-resource", "not-an-address", "--mta", "none"), "not a mail address"),
    ],
)
def test_usage_errors(agent: Agent, args: tuple[str, ...], says: str) -> None:
    done = agent.admin(*args)
    assert says in done.stdout, done.stdout
    assert done.returncode == (65 if "not a mail address" in says else 64)
    assert len(done.stdout.splitlines()) == 1


# -- edit_table ----------------------------------------------------------------------


def test_edit_table_replaces_an_entry_in_place_and_keeps_the_rest(tmp_path: Path) -> None:
    table = tmp_path / "imip-transport"
    table.write_text(
        "# comment naming room1@example.org\n"
        "Room1@Example.org   imip-person:\n"
        "other@example.org   imip-person:\n"
        "room1@example.org   smtp:\n"
        "  continuation of the line above\n"
    )
    table.chmod(0o640)
    line = "room1@example.org    imip-resource:"
    assert edit_table(table, "room1@example.org", line) == "updated"
    assert table.read_text() == (
        "# comment naming room1@example.org\n"
        f"{line}\n"
        "other@example.org   imip-person:\n"
        "  continuation of the line above\n"
    )
    assert stat.S_IMODE(table.stat().st_mode) == 0o640
    assert edit_table(table, "room1@example.org", "room1@example.org imip-resource:") == (
        "already present"  # the same fields, spaced differently
    )
    assert edit_table(table, "new@example.org", "new@example.org: ") == "added"
    assert table.read_text().endswith("new@example.org: \n")
    assert edit_table(table, "ROOM1@example.org", None) == "removed"
    assert "room1@" not in table.read_text().replace("naming room1@", "")
    assert edit_table(table, "room1@example.org", None) == "not present"


def test_edit_table_ends_a_last_line_without_newline(tmp_path: Path) -> None:
    table = tmp_path / "imip-resources"
    table.write_text("a@example.org:")
    assert edit_table(table, "b@example.org", "b@example.org:") == "added"
    assert table.read_text() == "a@example.org:\nb@example.org:\n"


def test_edit_table_needs_the_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        edit_table(tmp_path / "imip-people", "a@example.org", "a@example.org:")
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize(
    "command", ["add-resource", "add-person", "remove-resource", "remove-person"]
)
def test_each_command_explains_itself_with_an_example(command: str) -> None:
    done = subprocess.run(
        [str(BIN / "imip-admin"), command, "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert f"example:\n  imip-admin {command} " in done.stdout
    assert "Exit 0 done, 64 usage" in done.stdout
    assert "--postfix-config DIR" in done.stdout and "--exim-config FILE" in done.stdout


def test_with_imip_agent_lmtp_new_lines_name_the_socket_of_their_role(
    agent: Agent, tmp_path: Path
) -> None:
    """conf/postfix/lmtp/imip-transport: each line names its socket as the
    nexthop; the lines printed for a new user name the same one."""
    shutil.copy(ROOT / "conf" / "postfix" / "lmtp" / "imip-transport", tmp_path / "imip-transport")
    postfix = ("--mta", "postfix", "--postfix-config", str(tmp_path))
    room = admin_ok(agent, *ADD_ROOM, *postfix)
    assert f"    {ROOM}     imip-resource:unix:/run/imip-agent/resource.lmtp\n" in room
    person = admin_ok(agent, "add-person", "carol@example.org", *postfix)
    assert "    carol@example.org               imip-person:unix:/run/imip-agent/person.lmtp\n" in (
        person
    )
