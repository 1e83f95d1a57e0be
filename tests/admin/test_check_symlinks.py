"""check reports every symlink in the store, the outbox, the preferences and
the quota journal (issue 11, item 7), and --repair follows none of them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tests.admin.conftest import ROOM, admin_ok, answer, book, vevent
from tests.scenarios.test_symlinks import snapshot
from tests.support import Agent, partstat_of

CAR = "car@example.com"
HASHED = "_h_" + "0" * 64


def _in_use(agent: Agent) -> None:
    """Two resources with bookings, the room under a quota (journal files exist)."""
    agent.set_pref(ROOM, "scheduling_function", "check_quota rooms\nschedule_in_freebusy")
    agent.set_pref(ROOM, "LANG", "de")
    assert answer(book(agent, vevent("a"))) == "ACCEPTED"
    car = book(agent, vevent("b", attendees=(CAR,)), recipient=CAR)
    assert car.code == 0 and partstat_of(car.replies()[0], CAR) == "ACCEPTED"


def _plant(agent: Agent, outside: Path) -> dict[Path, Path]:
    """Links in each place check looks at; link -> where the real thing went."""
    root = agent.root
    places = [
        root / "store" / f"mailto:{CAR}",
        root / "store" / f"mailto:{ROOM}" / "objects",
        root / "store" / ".outbox" / "new",
        root / "prefs" / f"mailto:{ROOM}" / "LANG",
        root / "journal" / "rooms" / "bookings",
        root / "store" / HASHED,
    ]
    moved = {}
    for number, link in enumerate(places):
        target = outside / f"{number}-{link.name}"
        if link.exists():
            shutil.move(link, target)
        else:
            target.mkdir()
        os.symlink(target, link)
        moved[link] = target
    return moved


def test_check_reports_each_symlink_and_repair_follows_none(agent: Agent) -> None:
    _in_use(agent)
    assert admin_ok(agent, "check") == ""
    outside = agent.root / "outside"
    outside.mkdir()
    moved = _plant(agent, outside)
    before = snapshot(outside)

    for args in (("check",), ("check", "--repair")):
        result = agent.admin(*args)
        assert result.returncode == 65, result.stdout + result.stderr
        lines = result.stdout.splitlines()
        for link, target in moved.items():
            assert any(f"symlink {link} -> {target}:" in line for line in lines), (link, lines)
        assert all(link.is_symlink() for link in moved)
        assert snapshot(outside) == before

    for link, target in moved.items():  # the admin puts the real things back
        link.unlink()
        if target.name.startswith("5-"):
            target.rmdir()
        else:
            shutil.move(target, link)
    assert admin_ok(agent, "check") == ""


def test_check_of_a_user_whose_directory_is_a_symlink_names_it(agent: Agent) -> None:
    _in_use(agent)
    outside = agent.root / "outside"
    outside.mkdir()
    link = agent.root / "store" / f"mailto:{CAR}"
    shutil.move(link, outside / "car")
    os.symlink(outside / "car", link)

    result = agent.admin("check", CAR)
    assert result.returncode == 65
    assert f"mailto:{CAR}: symlink {link} -> {outside / 'car'}:" in result.stdout
    assert result.stdout.count(str(link)) == 1
