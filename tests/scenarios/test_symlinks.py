"""Symlinks planted in the store are refused, never followed (issue 11, item 7).

Someone who can write inside the store (not the admin, who configures its
root) plants a symlink where the agent writes: a user directory,
``objects/``, ``freebusy/``, ``freebusy-index/``, ``.outbox``,
``.outbox/new``, ``.lock`` or ``decisions.log``. The real thing is moved
to a directory outside the store and the link points at it, so that an
agent following the link would work "normally" there. Each test runs the
real program with the message of ``tests/fixtures/symlinks/`` and checks
that nothing outside changed, that the program exits 75 (the mail is kept:
an admin's problem, not the sender's) with a 4.3.5 status naming the link,
and that an ERROR line in the log names it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support import ROOM, Agent, calendar_text, imip_message, partstat_of, vevent

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "symlinks"
USER_DIR = f"mailto:{ROOM}"
BOB = "bob@example.com"

#: Where a link is planted, relative to the store root.
PLANTED = {
    "user directory": USER_DIR,
    "objects": f"{USER_DIR}/objects",
    "freebusy": f"{USER_DIR}/freebusy",
    "freebusy-index": f"{USER_DIR}/freebusy-index",
    "outbox": ".outbox",
    "outbox new": ".outbox/new",
    "lock": f"{USER_DIR}/.lock",
    "decision log": f"{USER_DIR}/decisions.log",
}


def fixture(name: str) -> bytes:
    """A message of ``tests/fixtures/symlinks/``."""
    return (FIXTURES / name).read_bytes()


def snapshot(directory: Path) -> dict[str, bytes | None]:
    """Every entry below ``directory`` (not following links): file contents,
    None for directories, the target for links."""
    found: dict[str, bytes | None] = {}
    for root, directories, files in os.walk(directory):
        for name in directories + files:
            path = Path(root) / name
            key = str(path.relative_to(directory))
            if path.is_symlink():
                found[key] = os.readlink(path).encode()
            elif path.is_dir():
                found[key] = None
            else:
                found[key] = path.read_bytes()
    return found


def plant(store: Path, where: str, outside: Path) -> Path:
    """Move ``store/where`` to ``outside`` and put a symlink to it in its place.

    A file that does not exist yet (a lock never taken) becomes a dangling
    link: following it would create the file outside.
    """
    link = store / where
    target = outside / link.name
    if link.exists():
        shutil.move(link, target)
    os.symlink(target, link)
    return link


def booked(agent: Agent) -> Path:
    """A store in use: one booking made and answered (every directory exists)."""
    first = vevent("first@example.com", "20300108T100000Z", "20300108T110000Z")
    run = agent.resource(imip_message(calendar_text(first)))
    assert run.code == 0 and partstat_of(run.replies()[0]) == "ACCEPTED"
    return agent.root / "store"


def assert_refused(agent: Agent, code: int, stdout: str, link: Path, log: Path) -> None:
    """Exit 75 with a 4.3.5 status and an ERROR log line, both naming ``link``."""
    assert code == 75, stdout
    assert stdout.startswith("4.3.5 ") and str(link) in stdout and stdout.count("\n") == 1
    errors = [line for line in log.read_text().splitlines() if " ERROR " in line]
    assert any(str(link) in line and "symlink" in line for line in errors), errors


@pytest.mark.parametrize("where", PLANTED.values(), ids=PLANTED.keys())
def test_symlink_planted_in_the_store_is_refused_not_followed(agent: Agent, where: str) -> None:
    store = booked(agent)
    outside = agent.root / "outside"
    outside.mkdir()
    link = plant(store, where, outside)
    before = snapshot(outside)
    log = agent.root / "agent.log"

    run = agent.resource(fixture("request.eml"), args=("--log", str(log)))

    assert snapshot(outside) == before
    assert run.sent == []
    assert_refused(agent, run.code, run.stdout, link, log)
    assert link.is_symlink()  # reported, not "repaired" behind the admin's back


@pytest.mark.parametrize("where", [f"mailto:{BOB}", ".outbox"], ids=["user directory", "outbox"])
def test_symlink_planted_in_a_persons_store_defers_their_mail(agent: Agent, where: str) -> None:
    warm_up = imip_message(calendar_text(vevent(attendees=(BOB,))), to=BOB)
    assert agent.person(warm_up, BOB).code == 0
    outside = agent.root / "outside"
    outside.mkdir()
    link = plant(agent.root / "store", where, outside)
    before = snapshot(outside)
    log = agent.root / "agent.log"

    run = agent.person(fixture("request.eml"), BOB, args=("--log", str(log)))

    assert snapshot(outside) == before
    assert run.sent == []  # not delivered now: the MTA keeps it (75) until the link is gone
    assert_refused(agent, run.code, run.stdout, link, log)


def test_configured_directories_may_be_symlinks(tmp_path: Path) -> None:
    """The admin's roots (store, preferences, journal, publishing) are resolved:
    only what lies below them must not be a symlink."""
    agent = Agent(tmp_path, make_site=False)  # its directories are the links below
    real = agent.root / "real"
    for name in ("store", "prefs", "journal", "published"):
        (real / name).mkdir(parents=True)
        os.symlink(real / name, agent.root / name)
    agent.set_pref(BOB, "freebusy_publishing", "publish")

    run = agent.resource(fixture("request.eml"))
    assert run.code == 0 and partstat_of(run.replies()[0]) == "ACCEPTED"
    assert agent.person(fixture("request.eml"), BOB).code == 0

    assert (real / "store" / USER_DIR / "objects" / "symlink-request@example.com").is_file()
    assert (real / "published" / "mailto%3Abob%40example.com.ifb").is_file()
    assert agent.admin("check").returncode == 0


def test_a_symlink_among_preferences_defers_only_what_needs_it(agent: Agent) -> None:
    """A symlink planted under a preference name the request does not need
    (an admin's ``notes``) leaves the room's mail answered: the unit reads
    each value alone once the reading of all fails; ``imip-admin check``
    still names the link."""
    store = booked(agent)
    outside = agent.root / "outside"
    outside.mkdir()
    (outside / "notes").write_text("planted\n")
    prefs = agent.root / "prefs" / USER_DIR
    prefs.mkdir(parents=True, exist_ok=True)
    (prefs / "notes").symlink_to(outside / "notes")
    second = vevent("second@example.com", "20300109T100000Z", "20300109T110000Z")

    run = agent.resource(imip_message(calendar_text(second)))

    assert run.code == 0, run.stdout
    assert partstat_of(run.replies()[0]) == "ACCEPTED"
    assert (store / USER_DIR).is_dir()
    check = agent.admin("check")
    assert check.returncode == 65 and "symlink" in check.stdout, check.stdout
