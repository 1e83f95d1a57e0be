"""init and init-user: directories, modes, owners, example configuration, users."""

from __future__ import annotations

import grp
import os
import pwd
import stat

from imiptools.config import load_settings
from tests.admin.conftest import ROOM, admin_ok, answer, book, vevent
from tests.support import Agent


def _me() -> tuple[str, str]:
    return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name


def test_init_creates_the_site_and_an_example_configuration(agent: Agent) -> None:
    user, group = _me()
    config = agent.root / "etc" / "imip-agent.toml"
    args = ("init", "--user", user, "--group", group, "--config-file", str(config))
    out = admin_ok(agent, *args)
    assert f"configuration {config} written" in out
    for name, mode in (("store", 0o2770), ("prefs", 0o2770), ("published", 0o2755)):
        info = (agent.root / name).stat()
        assert stat.S_IMODE(info.st_mode) == mode, name
        assert (info.st_uid, info.st_gid) == (os.getuid(), os.getgid())
    settings = load_settings(str(config))
    assert settings.store == str(agent.root / "store")
    assert settings.publishing == str(agent.root / "published")
    config.write_text(config.read_text() + "# edited\n")
    assert "exists, kept" in admin_ok(agent, *args)  # idempotent, keeps the admin's file
    assert config.read_text().endswith("# edited\n")


def test_init_refuses_unknown_system_users(agent: Agent) -> None:
    result = agent.admin("init", "--user", "no-such-user-here", "--no-config")
    assert (result.returncode, result.stdout) == (
        64,
        "5.5.4 no such system user: no-such-user-here\n",
    )


def test_init_user_sets_validated_preferences(agent: Agent) -> None:
    out = admin_ok(
        agent, "init-user", ROOM, "--resource", "--pref", "CN=Room 1.23",
        "--pref", "scheduling_function=schedule_in_freebusy 2",
    )  # fmt: skip
    assert out == f"resource mailto:{ROOM} ready; preferences set: CN, scheduling_function\n"
    assert (agent.root / "store" / f"mailto:{ROOM}" / ".lock").exists()
    assert admin_ok(agent, "prefs", "get", ROOM, "CN") == "Room 1.23\n"
    assert answer(book(agent, vevent("a"))) == "ACCEPTED"
    assert (
        answer(book(agent, vevent("b", organiser="bob@example.com"), sender="bob@example.com"))
        == "ACCEPTED"
    )


def test_init_user_writes_nothing_when_a_value_is_bad(agent: Agent) -> None:
    result = agent.admin("init-user", ROOM, "--pref", "CN=Room", "--pref", "TZID=Mars/Olympus")
    assert result.returncode == 65
    assert result.stdout == "5.6.0 invalid preference TZID: unknown time zone\n"
    assert not (agent.root / "prefs" / f"mailto:{ROOM}" / "CN").exists()
    bad = agent.admin("init-user", ROOM, "--pref", "CN")
    assert bad.returncode == 64
