"""No silent misconfiguration (issue 14 item 2): what an admin gets wrong is
refused or reported, in one clear line, and ``check`` says what the agents
really do with a bad value."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.admin.conftest import ROOM, answer, book, vevent
from tests.support import BIN, Agent, calendar_text, imip_message

KNOWN = "known: access_control_list, check_quota, same_domain_only, schedule_across_quota"
USER_DIR = f"mailto:{ROOM}"


def _hand_edit(agent: Agent, name: str, text: str, directory: str = USER_DIR) -> None:
    folder = agent.root / "prefs" / directory
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def _comment(agent: Agent, uid: str, start: str = "20300108T100000Z") -> tuple[str, str]:
    """Book ``uid`` and return the room's answer and its COMMENT."""
    run = book(agent, vevent(uid, start, start[:9] + "110000Z"))
    partstat = answer(run)
    return partstat, str(run.replies()[0].walk("VEVENT")[0].get("COMMENT", ""))


# -- prefs set -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("", f"names no function ({KNOWN}"),
        ("# only a comment", f"names no function ({KNOWN}"),
        ("schedule_whenever", f"unknown function 'schedule_whenever' ({KNOWN}"),
        ("schedule_in_freebusy\nschedule_whenever 2", "line 2: unknown function"),
        ("schedule_in_freebusy two", "expected one positive number (the capacity), not two"),
        ('schedule_in_freebusy "2', "unbalanced quoting: no closing quotation"),
    ],
)
def test_prefs_set_refuses_a_scheduling_function_the_agent_cannot_run(
    agent: Agent, value: str, says: str
) -> None:
    result = agent.admin("prefs", "set", ROOM, "scheduling_function", "--", value)
    assert result.returncode == 64, result.stdout + result.stderr
    assert result.stdout.startswith("5.5.4 invalid value for scheduling_function: ")
    assert says in result.stdout and result.stdout.count("\n") == 1
    assert "int()" not in result.stdout and "Traceback" not in result.stderr
    assert not (agent.root / "prefs" / USER_DIR / "scheduling_function").exists()


# -- check agrees with the agent -----------------------------------------------------------


def test_check_and_agent_agree_on_an_unknown_function_the_room_declines(agent: Agent) -> None:
    _hand_edit(agent, "scheduling_function", "schedule_whenever\n")
    assert _comment(agent, "a") == ("DECLINED", "the resource is misconfigured")
    result = agent.admin("check")
    assert result.returncode == 65
    assert (
        f"{USER_DIR}: preference scheduling_function is invalid (line 1: unknown function "
        f"'schedule_whenever' ({KNOWN}"
    ) in result.stdout
    assert "a resource with this value declines every request as misconfigured" in result.stdout
    assert "default" not in result.stdout


def test_check_and_agent_agree_on_bad_arguments(agent: Agent) -> None:
    _hand_edit(agent, "scheduling_function", "schedule_in_freebusy two\n")
    assert _comment(agent, "a")[0] == "DECLINED"
    result = agent.admin("check")
    assert result.returncode == 65
    assert "declines every request as misconfigured" in result.stdout


@pytest.mark.parametrize("text", ["\n", 'schedule_in_freebusy "2\n'])
def test_check_and_agent_agree_on_a_value_replaced_by_the_default(agent: Agent, text: str) -> None:
    """An empty file (or one that cannot be split into words) is read as
    unset: the built-in schedule_in_freebusy decides, so a clash is declined."""
    _hand_edit(agent, "scheduling_function", text)
    assert answer(book(agent, vevent("a"))) == "ACCEPTED"
    assert answer(book(agent, vevent("b"), sender="bob@example.com")) == "DECLINED"
    result = agent.admin("check")
    assert result.returncode == 65
    assert (
        "preference scheduling_function is invalid (" in result.stdout
        and "); the agents use the built-in default instead: 'schedule_in_freebusy'"
        in result.stdout
    )


def test_check_names_the_site_default_that_replaces_a_bad_value(agent: Agent) -> None:
    config = agent.root / "site.toml"
    config.write_text('[preferences]\nTZID = "Europe/Berlin"\n')
    _hand_edit(agent, "TZID", "Mars/Olympus_Mons\n")
    result = agent.admin("-c", str(config), "check")
    assert result.returncode == 65
    assert (
        f"{USER_DIR}: preference TZID is invalid (unknown time zone); the agents use the "
        "site default instead: 'Europe/Berlin'\n"
    ) in result.stdout


def test_check_reports_the_configuration_s_bad_site_defaults(agent: Agent) -> None:
    config = agent.root / "site.toml"
    config.write_text(
        '[preferences]\nscheduling_function = "nope"\nTZID = "Mars/Base"\nTZIDD = "UTC"\n'
    )
    result = agent.admin("-c", str(config), "check")
    assert result.returncode == 65
    lines = result.stdout.splitlines()
    assert (
        "configuration: [preferences] TZID is invalid (unknown time zone); "
        "the agents use the built-in default instead: 'UTC'"
    ) in lines
    assert any(
        line.startswith("configuration: [preferences] scheduling_function is invalid")
        and line.endswith("a resource with this value declines every request as misconfigured")
        for line in lines
    ), lines
    assert "configuration: note: [preferences] TZIDD: unknown preference (ignored)" in lines
    assert lines[-1] == "5.6.0 check: 2 problem(s), 0 repaired, 1 note(s)"


def test_check_reads_the_preferences_of_a_room_that_has_had_no_mail(agent: Agent) -> None:
    """Preferences set up before the first booking are checked too (the
    store holds no records of the room yet)."""
    _hand_edit(agent, "max_duration", "forever\n")
    result = agent.admin("check")
    assert result.returncode == 65
    assert f"{USER_DIR}: preference max_duration is invalid" in result.stdout
    assert agent.admin("check", ROOM).returncode == 65
    assert not (agent.root / "store" / USER_DIR).exists()  # check created nothing


@pytest.mark.parametrize("root", ["prefs", "store"])
def test_check_reports_a_directory_not_named_as_the_agents_read_it(agent: Agent, root: str) -> None:
    misnamed = agent.root / root / "mailto:Room@Example.com"
    misnamed.mkdir(parents=True)
    (agent.root / root / "README").write_text("not a user\n")  # no address: left alone
    result = agent.admin("check")
    assert result.returncode == 65, result.stdout
    expected = agent.root / root / USER_DIR
    assert result.stdout.splitlines()[0] == (
        f"{misnamed} is ignored: the agents read {USER_DIR}'s data from {expected}; "
        f"rename it: mv '{misnamed}' '{expected}'"
    )
    misnamed.rename(expected)
    assert agent.admin("check").returncode == 0


def test_check_says_to_merge_when_both_spellings_exist(agent: Agent) -> None:
    _hand_edit(agent, "CN", "Room 1\n", "mailto:ROOM@example.com")
    _hand_edit(agent, "TZID", "UTC\n")
    result = agent.admin("check")
    assert result.returncode == 65
    assert f"move what it holds into {agent.root / 'prefs' / USER_DIR}, which exists" in (
        result.stdout
    )


# -- unknown users, mistyped stores ---------------------------------------------------------


@pytest.mark.parametrize("command", ["export", "freebusy", "log", "show"])
def test_a_user_the_store_does_not_hold_is_67_naming_the_store(agent: Agent, command: str) -> None:
    assert answer(book(agent, vevent("a"))) == "ACCEPTED"
    result = agent.admin(command, "roon@example.com")
    assert result.returncode == 67, result.stdout + result.stderr
    assert result.stdout == (
        f"5.1.1 the store {agent.root / 'store'} holds no calendar user mailto:roon@example.com\n"
    )
    assert agent.admin(command, ROOM).returncode == 0


@pytest.mark.parametrize("command", ["export", "freebusy", "log", "show", "check"])
def test_a_mistyped_store_is_67_saying_it_does_not_exist(agent: Agent, command: str) -> None:
    assert answer(book(agent, vevent("a"))) == "ACCEPTED"
    wrong = agent.root / "stroe"
    result = agent.admin(command, ROOM, "-S", str(wrong))
    assert result.returncode == 67, result.stdout + result.stderr
    assert result.stdout == (
        f"5.1.1 no calendar user {USER_DIR}: the store {wrong} does not exist (check "
        "-S/--store, -c/--config and IMIP_AGENT_CONFIG; 'imip-admin init' creates it)\n"
    )
    assert not wrong.exists()


# -- the agents never create a store ---------------------------------------------------------


@pytest.mark.parametrize("program", ["imip-resource", "imip-person", "imip-person-outgoing"])
@pytest.mark.parametrize("missing", ["store", "prefs"])
def test_an_agent_given_a_missing_directory_defers_and_says_how_to_create_it(
    tmp_path: Path, program: str, missing: str
) -> None:
    agent = Agent(tmp_path, make_site=False)
    (tmp_path / {"store": "prefs", "prefs": "store"}[missing]).mkdir()  # the other one
    log = tmp_path / "agent.log"
    message = imip_message(calendar_text(vevent("a")))
    if program == "imip-resource":
        run = agent.resource(message, args=("--log", str(log)))
    elif program == "imip-person":
        run = agent.person(message, "bob@example.com", args=("--log", str(log)))
    else:
        run = agent.outgoing(message, "alice@example.com", args=("--log", str(log)))
    name = {"store": "store", "prefs": "preferences"}[missing]
    said = (
        f"the {name} directory {tmp_path / missing} does not exist: create it with "
        "'imip-admin init' (given the same -c, -S and -p options) or correct the path; "
        "the agents never create it"
    )
    assert (run.code, run.stdout, run.stderr) == (75, f"4.3.5 {said}\n", "")
    assert not (tmp_path / missing).exists() and not run.sent
    assert f"ERROR imip_agent: {said}\n" in log.read_text()


def test_imip_admin_init_makes_what_the_agent_asked_for(tmp_path: Path) -> None:
    agent = Agent(tmp_path, make_site=False)
    message = imip_message(calendar_text(vevent("a")))
    assert agent.resource(message).code == 75
    assert agent.admin("init", "--no-config").returncode == 0
    assert answer(agent.resource(message)) == "ACCEPTED"


def test_the_default_store_is_not_created_either(tmp_path: Path) -> None:
    """Without -S or a configuration the store is /var/lib/imip-agent/store;
    where that does not exist the agent says so (it is not made here)."""
    default = Path("/var/lib/imip-agent")
    if (default / "store").exists() or (default / "preferences").exists():
        pytest.skip("this machine has an imip-agent site at the default path")
    done = subprocess.run(
        [str(BIN / "imip-resource"), "-o", ROOM, "-s", "alice@example.com", "-d"],
        input=imip_message(calendar_text(vevent("a"))),
        capture_output=True,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 75
    assert done.stdout.decode().startswith(
        "4.3.5 the store directory /var/lib/imip-agent/store and the preferences directory "
        "/var/lib/imip-agent/preferences do not exist: create them with 'imip-admin init'"
    )
    assert not (default / "store").exists() and not (default / "preferences").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ("check",),
        ("make-freebusy", "--all"),
        ("expire-offers", "--all"),
        ("purge", "--before", "P1D", "--all"),
        ("copy-store", "--all", "--to"),
    ],
)
def test_a_job_over_every_user_of_a_missing_store_is_67_not_done_for_none(
    agent: Agent, argv: tuple[str, ...]
) -> None:
    wrong = agent.root / "stroe"
    if argv[-1] == "--to":
        argv = (*argv, str(agent.root / "copy"))
    result = agent.admin(*argv, "-S", str(wrong))
    assert result.returncode == 67, result.stdout + result.stderr
    assert result.stdout == (
        f"5.1.1 the store directory {wrong} does not exist (check -S/--store, -c/--config "
        "and IMIP_AGENT_CONFIG; 'imip-admin init' creates it)\n"
    )
    assert not wrong.exists()


@pytest.mark.parametrize("action", ["set", "unset"])
def test_prefs_set_into_a_missing_preferences_directory_is_67(agent: Agent, action: str) -> None:
    wrong = agent.root / "perfs"
    value = ("Europe/Berlin",) if action == "set" else ()
    result = agent.admin("prefs", action, ROOM, "TZID", *value, "-p", str(wrong))
    assert result.returncode == 67, result.stdout + result.stderr
    assert result.stdout == (
        f"5.1.1 the preferences directory {wrong} does not exist (check -p/--preferences, "
        "-c/--config and IMIP_AGENT_CONFIG; 'imip-admin init' creates it)\n"
    )
    assert not wrong.exists()


def test_check_reports_a_symlinked_preference_directory_of_a_room_without_mail(
    agent: Agent, tmp_path: Path
) -> None:
    """Refused like the symlinks of users with records, not read through."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (agent.root / "prefs" / USER_DIR).symlink_to(outside)
    result = agent.admin("check")
    assert result.returncode == 65, result.stdout + result.stderr
    assert f"{USER_DIR}: symlink {agent.root / 'prefs' / USER_DIR} -> {outside}:" in result.stdout
