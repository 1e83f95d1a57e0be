"""Kill a delivery just before each write it makes; the store stays consistent.

The writes are found by tracing, not listed by hand: a clean delivery runs
with an audit hook (:func:`sys.addaudithook`) that counts every filesystem
write under the site's directory (an ``open`` for writing, a rename, a
removal, a new directory). Then, for each write ``k``, a fresh copy of the
site receives the same delivery in a forked process whose hook SIGKILLs it
just before write ``k``: a real kill, not an exception. What follows is
what an MTA does: optionally another delivery arrives first (the *rival*,
which competes for the same slot or quota), then the killed message is
delivered again.

The same is done with a full disk (issue 11 item 2): the write ``k`` fails
with ``ENOSPC`` instead (the hook raises it, so the program sees the
error a full disk gives and handles it as it would), the delivery must end
with 0 or 75 and no traceback logged, and the disk has room again for the
rival and the redelivery.

After every case: no two bookings overlap, the quota is not overspent,
every request has exactly one answer (a resend of the very same message,
same Message-ID, after the MTA took it but before the spool forgot it, is
the same answer), each answer agrees with what the store holds, free/busy
equals the accepted bookings, ``check`` is clean, and nothing is left
pending (transaction records, staged or spooled messages).
"""

from __future__ import annotations

import email
import errno
import itertools
import os
import re
import shutil
import signal
import sys
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from imip_agent import resource
from imiptools.check import check_store
from imiptools.config import Settings
from imiptools.itip.objects import find_attendee
from imiptools.records import UserRecords, Window
from imiptools.site import Site, open_site
from imiptools.stores.base import Store
from imiptools.stores.file import TXN as TXN_NAME
from tests.support import Agent, calendar_text, imip_message, parse_calendar_part, vevent

NOW = "2030-01-01T12:00:00Z"
ROOM1, ROOM2 = "room1@example.com", "room2@example.com"
ALICE, BOB = "alice@example.com", "bob@example.com"
APPROVER = "carol@example.com"
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
WRITE_EVENTS = ("os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.truncate", "os.link")


@dataclass(frozen=True)
class Delivery:
    """One message for one room, as the MTA pipes it."""

    room: str
    sender: str
    uid: str
    message: bytes = field(repr=False)
    answered: bool = True


@dataclass(frozen=True)
class Scenario:
    """Deliveries made before, the one killed, and its rival."""

    name: str
    setup: tuple[Delivery, ...]
    killed: Delivery
    rival: Delivery
    quota: bool = False
    #: Preferences of ROOM1 (name, value), set before the setup deliveries.
    prefs: tuple[tuple[str, str], ...] = ()


def _request(
    uid: str, start: str, end: str, who: str = ALICE, room: str = ROOM1, **kw: Any
) -> Delivery:
    event = vevent(uid, start, end, organiser=who, attendees=(room,), **kw)
    message_id = f"<{uid}-{kw.get('sequence', 0)}-{start}@{who.partition('@')[2]}>"
    message = imip_message(calendar_text(event), sender=who, to=room, message_id=message_id)
    return Delivery(room, who, uid, message)


def _cancel(uid: str, start: str, end: str, who: str = ALICE, room: str = ROOM1) -> Delivery:
    event = vevent(uid, start, end, organiser=who, attendees=(room,), sequence=1)
    text = calendar_text(event, method="CANCEL")
    message = imip_message(
        text, sender=who, to=room, method="CANCEL", message_id=f"<cancel-{uid}@t>"
    )
    return Delivery(room, who, uid, message, answered=False)


#: A daily series for 40 days with a long summary (large monthly buckets).
_DAILY: dict[str, Any] = {"extra": "RRULE:FREQ=DAILY;COUNT=40", "summary": "s" * 150}
SLOT = ("20300108T100000Z", "20300108T110000Z")
LATER = ("20300108T140000Z", "20300108T150000Z")
SCENARIOS = [
    Scenario("new-booking", (), _request("a", *SLOT), _request("b", *SLOT, who=BOB)),
    Scenario(
        "clash",
        (_request("b", *SLOT, who=BOB),),
        _request("a", "20300108T103000Z", "20300108T113000Z"),
        _cancel("b", *SLOT, who=BOB),
    ),
    Scenario(
        "update",
        (_request("a", *SLOT),),
        _request("a", *LATER, sequence=1, dtstamp="20300101T100000Z"),
        _request("b", *LATER, who=BOB),
    ),
    Scenario("cancel", (_request("a", *SLOT),), _cancel("a", *SLOT), _request("b", *SLOT, who=BOB)),
    Scenario(
        "quota-booking",
        (),
        _request("a", *SLOT),
        _request("c", *LATER, room=ROOM2),
        quota=True,
    ),
    Scenario(
        "approval",
        (),
        _request("a", *SLOT),
        _request("b", *SLOT, who=BOB),
        prefs=(("approval", "always"), ("approvers", APPROVER)),
    ),
    Scenario(
        "single-occurrence",
        (),
        _request("s", *SLOT, extra=f"RECURRENCE-ID:{SLOT[0]}"),
        _request("b", *SLOT, who=BOB),
    ),
    # A daily series booked into months large enough to have index files
    # beside them (freebusy-cache/): the bucket spliced, then its index file.
    Scenario(
        "series",
        tuple(
            _request(f"d{n}", f"20300102T0{n}0000Z", f"20300102T0{n}1000Z", **_DAILY)
            for n in range(5)
        ),
        _request("a", "20300102T230000Z", "20300102T231000Z", **_DAILY),
        _request("b", "20300103T230000Z", "20300103T231000Z", who=BOB),
    ),
]


# -- running a delivery in a forked process, maybe killed at a write ----------------


def _resolved(path: object, directory: object) -> str | None:
    """The absolute path an audited operation names (relative to the
    directory descriptor it was given, as the store's file access does);
    None when it cannot be told."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str):
        return None
    if os.path.isabs(path):
        return path
    if not isinstance(directory, int) or directory < 0:
        return None
    try:
        return os.path.join(os.readlink(f"/proc/self/fd/{directory}"), path)
    except OSError:
        return None


def _write_target(event: str, args: tuple[Any, ...], root: str) -> str | None:
    """The path a write under ``root`` touches (None: not such a write).

    An ``open`` event carries no directory descriptor: a relative name opened
    for writing counts (the agents open relative names only beneath a
    directory descriptor of their own)."""
    if event == "open":
        path, _, flags = args
        if not flags & WRITE_FLAGS:
            return None
        found = _resolved(path, None)
        if found is None:
            return str(path)
    elif event in WRITE_EVENTS:
        directory = args[2] if event == "os.rename" else args[-1]
        found = _resolved(args[0], directory)
        if event == "os.rename" and found is not None:
            found += " -> " + str(_resolved(args[1], args[3]))
    else:
        return None
    return found if found is not None and found.startswith(root) else None


def _install_killer(root: Path, kill_at: int, trace: Path, disk_full: bool = False) -> None:
    """Count writes under ``root``; SIGKILL ourselves before write ``kill_at``
    (0: never), appending each write to ``trace``. With ``disk_full``, write
    ``kill_at`` fails with ENOSPC instead (once: the process goes on)."""
    count = 0
    prefix = str(root) + os.sep
    log = os.open(trace, os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        nonlocal count
        target = _write_target(event, args, prefix)
        if target is None:
            return
        count += 1
        if count == kill_at and disk_full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), target)
        if count == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        os.write(log, f"{count} {event} {target}\n".encode())

    sys.addaudithook(hook)


def _argv(site: Path, delivery: Delivery) -> list[str]:
    return [
        *("-S", str(site / "store"), "-p", str(site / "prefs"), "-j", str(site / "journal")),
        *("-P", str(site / "published"), "--now", NOW, "-o", delivery.room),
        *("-s", delivery.sender, "--output", str(site / "out"), "--log", str(site / "log")),
    ]


def deliver(
    site: Path, delivery: Delivery, kill_at: int | None = None, disk_full: bool = False
) -> int | None:
    """Run imip-resource on ``delivery`` in a child process; its exit code,
    or None when it was killed. ``kill_at``: trace (0) or kill at that write
    (with ``disk_full``: fail that write with ENOSPC)."""
    source = site.parent / f"{site.name}.message"
    source.write_bytes(delivery.message)
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 70
        try:
            if kill_at is not None:
                trace = site.parent / f"{site.name}.trace"
                _install_killer(site, kill_at, trace, disk_full)
            sys.stdin = open(source, encoding="utf-8")  # noqa: SIM115 (the child exits)
            code = int(resource.run(_argv(site, delivery)))
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return None
    return os.WEXITSTATUS(status)


# -- the site and what must hold -----------------------------------------------------


def _prepare(root: Path, scenario: Scenario) -> Path:
    """A site with the rooms' preferences and the setup deliveries made."""
    site = root / "prepared"
    site.mkdir()
    agent = Agent(site, now=NOW)
    agent.set_up()  # the store and preferences, as imip-admin init makes them
    functions = "check_quota rooms\nschedule_in_freebusy" if scenario.quota else ""
    for room in (ROOM1, ROOM2):
        if functions:
            agent.set_pref(room, "scheduling_function", functions)
    for name, value in scenario.prefs:
        agent.set_pref(ROOM1, name, value)
    if scenario.quota:
        result = agent.admin("quota", "set-limit", "rooms", ALICE, "1")
        assert result.returncode == 0, result.stdout + result.stderr
    for delivery in scenario.setup:
        assert deliver(site, delivery) == 0
    shutil.rmtree(site / "out", ignore_errors=True)
    return site


def _sent(site: Path) -> list[EmailMessage]:
    found = []
    for path in sorted((site / "out").glob("[!.]*.eml")):  # not a sender's temporary
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


def _answers(site: Path, deliveries: list[Delivery]) -> dict[str, dict[str, str]]:
    """Per answered request's Message-ID: answer Message-ID -> PARTSTAT(s)."""
    by_request: dict[str, dict[str, str]] = {}
    for message in _sent(site):
        calendar = parse_calendar_part(message)
        if str(calendar["METHOD"]) not in ("REPLY", "COUNTER"):
            continue  # not an answer to the organiser (an owner asked to approve)
        states = ",".join(
            str(e["ATTENDEE"].params.get("PARTSTAT", "")) for e in calendar.walk("VEVENT")
        )
        verb = f"{calendar['METHOD']}:{states}"
        by_request.setdefault(str(message["In-Reply-To"]), {})[str(message["Message-ID"])] = verb
    return by_request


def _stored_partstat(store: Store, room: str, uid: str) -> str:
    user = f"mailto:{room}"
    settings = Settings()
    window = Window(settings.window, settings.max_instances, settings.expansion_seconds)
    records = UserRecords(store, user, UTC, window, datetime(2030, 1, 1, 12, tzinfo=UTC))
    stored = records.stored(uid)
    if stored is None:
        return "-"
    states = []
    for component in stored.components:
        attendee = find_attendee(component, user)
        states.append(str(attendee.params.get("PARTSTAT", "")) if attendee is not None else "")
    return ",".join(states)


def _no_overlap(store: Store, room: str) -> None:
    periods = sorted(p for p in store.all_freebusy(f"mailto:{room}") if p.transp == "OPAQUE")
    for first, second in itertools.pairwise(periods):
        assert first.uid == second.uid or first.end <= second.start, f"double booking {periods}"


def _site_of(site: Path) -> Site:
    settings = Settings(
        store=str(site / "store"), preferences=str(site / "prefs"), journal=str(site / "journal")
    )
    return open_site(settings)


def verify(site: Path, scenario: Scenario, deliveries: list[Delivery]) -> None:
    """Everything the module docstring promises."""
    opened = _site_of(site)
    store = opened.store
    answers = _answers(site, deliveries)
    for delivery in deliveries:
        message_id = str(email.message_from_bytes(delivery.message)["Message-ID"])
        given = answers.get(message_id, {})
        if delivery.answered:
            assert len(given) == 1, f"answers to {message_id}: {given}"
            [verb] = given.values()
            stored = _stored_partstat(store, delivery.room, delivery.uid)
            if verb.startswith("REPLY:"):
                assert verb.removeprefix("REPLY:") in stored, f"{delivery.uid}: {verb} vs {stored}"
    for room in (ROOM1, ROOM2):
        _no_overlap(store, room)
    if scenario.prefs:  # approval: each owner asked once (a resend is the same message)
        asked = {str(m["Message-ID"]) for m in _sent(site) if APPROVER in str(m["To"])}
        assert len(asked) == 1, asked
    report = check_store(opened, store.users(), datetime(2030, 1, 1, 12, tzinfo=UTC), False)
    assert not report.faults, [f.text for f in report.faults]
    if scenario.quota:
        booked = opened.ledger.bookings("rooms")
        accepted = [m for m in answers.values() for v in m.values() if "ACCEPTED" in v]
        assert len(booked) <= 1 and len(booked) == len(accepted), (booked, answers)
    pending = ("new", "pending", ".staged")  # .txn: emptied once applied
    leftovers = [
        p
        for p in site.rglob("*")
        if p.is_file() and (p.parent.name in pending or (p.name == ".txn" and p.stat().st_size))
    ]
    assert not leftovers, leftovers


def _case(root: Path, prepared: Path, scenario: Scenario, kill_at: int, rival: bool) -> None:
    site = root / f"{'rival' if rival else 'alone'}-{kill_at}"
    shutil.copytree(prepared, site, symlinks=True)
    assert deliver(site, scenario.killed, kill_at) is None, "the write was not reached"
    deliveries = [scenario.killed]
    if rival:
        assert deliver(site, scenario.rival) == 0
        deliveries.append(scenario.rival)
    assert deliver(site, scenario.killed) == 0  # the MTA delivers it again
    verify(site, scenario, deliveries)
    shutil.rmtree(site)


def _disk_full_case(
    root: Path, prepared: Path, scenario: Scenario, fail_at: int, rival: bool
) -> int | None:
    """Write ``fail_at`` of the delivery fails for a full disk; then, with
    room again, maybe the rival, then the MTA's redelivery (if it was
    deferred) or nothing more (if it was done). The first exit code."""
    site = root / f"full-{'rival' if rival else 'alone'}-{fail_at}"
    shutil.copytree(prepared, site, symlinks=True)
    code = deliver(site, scenario.killed, fail_at, disk_full=True)
    assert code in (0, 75), f"exit {code}"
    log = (site / "log").read_text(encoding="utf-8") if (site / "log").exists() else ""
    assert "Traceback" not in log, log
    deliveries = [scenario.killed]
    if rival:
        assert deliver(site, scenario.rival) == 0
        deliveries.append(scenario.rival)
    if code == 75:
        assert deliver(site, scenario.killed) == 0  # the MTA delivers it again
    verify(site, scenario, deliveries)
    shutil.rmtree(site)
    return code


def _traced_writes(root: Path, prepared: Path, scenario: Scenario) -> list[str]:
    site = root / "traced"
    shutil.copytree(prepared, site, symlinks=True)
    assert deliver(site, scenario.killed, kill_at=0) == 0
    trace = (root / "traced.trace").read_text(encoding="utf-8").splitlines()
    verify(site, scenario, [scenario.killed])
    return trace


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_kill_before_each_write_leaves_a_consistent_store(
    tmp_path: Path, scenario: Scenario
) -> None:
    prepared = _prepare(tmp_path, scenario)
    writes = _traced_writes(tmp_path, prepared, scenario)
    assert len(writes) > 5, writes
    for kill_at in range(1, len(writes) + 1):
        for rival in (False, True):
            try:
                _case(tmp_path, prepared, scenario, kill_at, rival)
            except AssertionError as exc:
                where = writes[kill_at - 1]
                raise AssertionError(f"killed before write {where} (rival={rival}): {exc}") from exc


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_disk_full_at_each_write_leaves_a_consistent_store(
    tmp_path: Path, scenario: Scenario
) -> None:
    """Issue 11 item 2: "with the disk full at the wrong moment ... both are
    ACCEPTED". Each write in turn fails with ENOSPC: the delivery is done (0)
    or deferred (75), never an internal error, and whatever arrives next
    finds a consistent store."""
    prepared = _prepare(tmp_path, scenario)
    writes = _traced_writes(tmp_path, prepared, scenario)
    codes = set()
    for fail_at in range(1, len(writes) + 1):
        for rival in (False, True):
            try:
                codes.add(_disk_full_case(tmp_path, prepared, scenario, fail_at, rival))
            except AssertionError as exc:
                where = writes[fail_at - 1]
                raise AssertionError(f"disk full at write {where} (rival={rival}): {exc}") from exc
    assert 75 in codes, "no write failed: the injection did not happen"


def test_the_series_scenario_writes_index_files(tmp_path: Path) -> None:
    """The "series" scenario's months are large enough to have index files,
    so that a kill and a full disk are tried before each write of one too."""
    [scenario] = [s for s in SCENARIOS if s.name == "series"]
    prepared = _prepare(tmp_path, scenario)
    writes = _traced_writes(tmp_path, prepared, scenario)
    # An index file is written in place (an "open" event names no directory):
    # the one write of a bare month name, as month files go through a
    # temporary file renamed into freebusy/.
    assert [w for w in writes if re.fullmatch(r"[0-9]+ open [0-9]{4}-[0-9]{2}", w)], writes
    assert [w for w in writes if w.endswith("/freebusy-cache")], "its directory made"


# -- the two reproducers of issue 11 (items 2 and 3), as fixture messages -----------

FIXTURES = Path(__file__).parent / "fixtures" / "crash"


def _fixture(name: str, sender: str, uid: str) -> Delivery:
    return Delivery(ROOM1, sender, uid, (FIXTURES / name).read_bytes())


def _write_index(trace: list[str], needle: str, after: bool) -> int:
    """The 1-based index of the first traced write whose line holds ``needle``
    (with ``after``: the first write after it and the lines just after it
    that hold ``needle`` too, such as an open that creates the file the
    open before found missing)."""
    index = next(n for n, line in enumerate(trace, 1) if needle in line + "\n")
    if not after:
        return index
    while index < len(trace) and needle in trace[index] + "\n":
        index += 1
    return index + 1


#: The traced write of the commit point: ``.txn`` opened (by its name in the
#: user's directory) to be written in place, its seal and fsync following.
TXN_WRITE = f" {TXN_NAME}\n"


def _race(tmp_path: Path, needle: str, after: bool) -> tuple[Path, list[Delivery]]:
    """Kill alice's request at the traced write, let bob's clashing request
    in first, then redeliver alice's; returns the site and the deliveries."""
    alice = _fixture("request-alice.eml", ALICE, "slot-a@example.com")
    bob = _fixture("request-bob.eml", "bob@example.net", "slot-b@example.net")
    scenario = Scenario("fixture", (), alice, bob)
    prepared = _prepare(tmp_path, scenario)
    trace = _traced_writes(tmp_path, prepared, scenario)
    site = tmp_path / "raced"
    shutil.copytree(prepared, site)
    assert deliver(site, alice, _write_index(trace, needle, after)) is None
    assert deliver(site, bob) == 0
    assert deliver(site, alice) == 0
    verify(site, scenario, [alice, bob])
    return site, [alice, bob]


def test_a_booking_committed_before_a_crash_holds_its_slot_against_the_next_request(
    tmp_path: Path,
) -> None:
    """Issue 11 item 2: the event was written before its free/busy, so a kill
    between the two let the next request take the slot (both ACCEPTED).
    Killed just after the commit point, alice keeps the slot: bob is declined."""
    site, _ = _race(tmp_path, TXN_WRITE, after=True)
    partstats = {m["In-Reply-To"]: v for m, v in _partstats(site)}
    assert partstats == {"<slot-a@example.com>": "ACCEPTED", "<slot-b@example.net>": "DECLINED"}


def test_no_reply_is_sent_for_a_decision_a_crash_kept_from_being_saved(tmp_path: Path) -> None:
    """Issue 11 item 3: the reply was spooled before the store write, so after
    a kill another delivery sent alice ACCEPTED, and her redelivery then
    DECLINED. Killed just before the commit point (the reply staged), alice's
    first decision never happened: bob gets the slot, alice one DECLINED."""
    site, _ = _race(tmp_path, TXN_WRITE, after=False)
    partstats = [(m["In-Reply-To"], v) for m, v in _partstats(site)]
    assert sorted(partstats) == [
        ("<slot-a@example.com>", "DECLINED"),
        ("<slot-b@example.net>", "ACCEPTED"),
    ]


def _partstats(site: Path) -> list[tuple[EmailMessage, str]]:
    found = []
    for message in _sent(site):
        event = parse_calendar_part(message).walk("VEVENT")[0]
        found.append((message, str(event["ATTENDEE"].params["PARTSTAT"])))
    return found
