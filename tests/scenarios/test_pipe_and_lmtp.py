"""The pipe programs and imip-agent-lmtp answer alike: one scenario table, two paths.

Each scenario of :data:`SCENARIOS` is a list of deliveries. It runs twice
on fresh stores: through the pipe programs (``imip-resource``,
``imip-person``, ``imip-person-outgoing`` with the message on stdin, as
Postfix's pipe(8) runs them) and through ``imip-agent-lmtp`` (one LMTP
transaction per delivery, as Postfix's ``lmtp`` client makes it). For each
delivery both paths must give the same answer (the exit code and status
line the pipe program gives, the LMTP reply the daemon gives, mapped by
the table of :func:`imip_agent.lmtp_server.lmtp_reply`), send the same
messages, and leave the same store. Each scenario also states what that
answer is, so that two equally wrong paths do not pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.lmtp_support import Daemon, Reply
from tests.support import ROOM, Agent, Run, calendar_text, imip_message, vevent

ALICE, BOB, PERSON = "alice@example.com", "bob@example.com", "carol@example.com"
CONFIG = "[agent]\nlock_timeout = 1\n"
#: The LMTP reply code of each exit code (imip_agent.lmtp_server.lmtp_reply).
EXIT_OF_REPLY = {250: 0, 451: 75, 550: 65}


@dataclass(frozen=True)
class Step:
    """One delivery: to a role's program or listener, with its envelope."""

    role: str
    message: bytes
    sender: str
    recipient: str
    #: Hold the recipient's store lock meanwhile (another delivery is busy).
    locked: bool = False


@dataclass(frozen=True)
class Answer:
    """What a delivery came to, in the same terms for both paths."""

    code: int
    status: str
    sent: tuple[tuple[str, ...], ...] = ()
    delivered: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class Scenario:
    steps: list[Step]
    #: The expected (exit code, status line) of each step.
    expected: list[tuple[int, str]]
    #: Preferences set before the first step: (user, name, value).
    prefs: list[tuple[str, str, str]] = field(default_factory=list)
    #: Called with the store after the last step, on each path.
    check: Callable[[Agent, list[Answer]], None] | None = None


def request(uid: str, start: str = "20300108T100000Z", **kw: object) -> bytes:
    end = start[:9] + f"{int(start[9:11]) + 1:02d}" + start[11:]
    return imip_message(calendar_text(vevent(uid, start, end, **kw)), sender=ALICE)  # type: ignore[arg-type]


def one_booking(uid: str) -> Callable[[Agent, list[Answer]], None]:
    """``uid`` stored once, decided once, answered once: nothing twice."""

    def check(agent: Agent, answers: list[Answer]) -> None:
        assert [e["UID"] for e in agent.exported(ROOM).walk("VEVENT")] == [uid]
        decisions = agent.admin("log", ROOM).stdout.splitlines()
        assert len(decisions) == 1 and f" {uid} " in decisions[0], decisions
        assert sum(len(a.sent) for a in answers) == 1

    return check


SCENARIOS: dict[str, Scenario] = {
    "accept": Scenario(
        [Step("resource", request("free"), ALICE, ROOM)],
        [(0, "2.0.0 processed 1 scheduling object(s)")],
    ),
    "decline on clash": Scenario(
        [
            Step("resource", request("first"), ALICE, ROOM),
            Step("resource", request("second"), ALICE, ROOM),
        ],
        [(0, "2.0.0 processed 1 scheduling object(s)")] * 2,
    ),
    "counter": Scenario(
        [
            Step("resource", request("taken"), ALICE, ROOM),
            Step("resource", request("wants", organiser=BOB), BOB, ROOM),
        ],
        [(0, "2.0.0 processed 1 scheduling object(s)")] * 2,
        prefs=[
            (ROOM, "scheduling_function", "schedule_next_available_in_freebusy"),
            (ROOM, "freebusy_offers", "PT1H"),
        ],
    ),
    "bounce with the reason": Scenario(
        [Step("resource", request("broken", organiser=""), ALICE, ROOM)],
        [(65, "5.6.0 REQUEST without ORGANIZER")],
    ),
    "unusable recipients bounce": Scenario(
        [
            Step("resource", request("dash"), ALICE, "-room@example.com"),
            Step("resource", request("utf8"), ALICE, "röom@example.com"),
        ],
        [
            (65, "5.1.3 unusable recipient '-room@example.com': starts with '-'"),
            (
                65,
                "5.1.3 unusable recipient 'röom@example.com': not ASCII"
                " (internationalised addresses are not supported)",
            ),
        ],
    ),
    "null sender: nobody answers a bounce": Scenario(
        [Step("resource", request("bounced"), "", ROOM)],
        [(0, "2.0.0 processed 1 scheduling object(s)")],
    ),
    "lock contention, then redelivery": Scenario(
        [
            Step("resource", request("busy"), ALICE, ROOM, locked=True),
            Step("resource", request("busy"), ALICE, ROOM),
        ],
        [
            (75, "4.3.0 lock {store}/mailto:room@example.com/.lock is held by another process"),
            (0, "2.0.0 processed 1 scheduling object(s)"),
        ],
        check=one_booking("busy"),
    ),
    "person: recorded and delivered": Scenario(
        [Step("person", request("invited", attendees=(PERSON,)), ALICE, PERSON)],
        [(0, "2.0.0 processed 1 scheduling object(s)")],
    ),
    "outgoing: the organiser's copy recorded": Scenario(
        [Step("outgoing", request("mine", attendees=(PERSON,)), ALICE, "outgoing@example.com")],
        [(0, "2.0.0 processed 1 scheduling object(s)")],
    ),
}

#: What each scenario's messages must say (method, PARTSTAT or COUNTER period, recipient).
SENT = {
    "accept": [[("REPLY", "ACCEPTED", ALICE)]],
    "decline on clash": [[("REPLY", "ACCEPTED", ALICE)], [("REPLY", "DECLINED", ALICE)]],
    "counter": [
        [("REPLY", "ACCEPTED", ALICE)],
        [("COUNTER", "20300108T110000Z/20300108T120000Z", BOB)],
    ],
    "bounce with the reason": [[]],
    "unusable recipients bounce": [[], []],
    "null sender: nobody answers a bounce": [[]],
    "lock contention, then redelivery": [[], [("REPLY", "ACCEPTED", ALICE)]],
    "person: recorded and delivered": [[]],
    "outgoing: the organiser's copy recorded": [[]],
}


def summary(run: Run) -> tuple[tuple[str, ...], ...]:
    """Each message the agent sent: (method, PARTSTAT or COUNTER period, To)."""
    found = []
    for message, calendar in zip(run.generated(), run.replies(), strict=True):
        event = calendar.walk("VEVENT")[0]
        method = str(calendar["METHOD"])
        if method == "COUNTER":
            what = f"{event['DTSTART'].to_ical().decode()}/{event['DTEND'].to_ical().decode()}"
        else:
            what = str(event["ATTENDEE"].params["PARTSTAT"])
        found.append((method, what, str(message["To"])))
    return tuple(found)


def unix_lines(message: bytes) -> bytes:
    """The message as Postfix's pipe(8) hands it over: LF line ends."""
    return message.replace(b"\r\n", b"\n")


# -- the two paths ----------------------------------------------------------------


def through_pipes(agent: Agent, step: Step, config: Path, log: Path) -> Answer:
    args = ("-c", str(config), "--log", str(log))
    message = unix_lines(step.message)
    if step.role == "resource":
        run = agent.resource(message, recipient=step.recipient, sender=step.sender, args=args)
    elif step.role == "person":
        run = agent.person(message, step.recipient, sender=step.sender, args=args)
    else:
        run = agent.outgoing(message, step.sender, args=args)
    return Answer(run.code, _pipe_status(run, log), summary(run), _kept(run))


def _pipe_status(run: Run, log: Path) -> str:
    """The status line: printed on failure; on success, the outcome line's."""
    if run.code:
        return run.stdout.strip()
    outcome = log.read_text().strip().splitlines()[-1]
    found = re.search(r"status=\w+ \((.*)\)$", outcome)
    assert found, outcome
    return found.group(1)


def _kept(run: Run) -> tuple[bytes, ...]:
    """The messages delivered to the mailbox (imip-person), byte for byte."""
    return tuple(data for data in run.files if data == unix_lines(run.given))


def through_lmtp(daemon: Daemon, step: Step) -> Answer:
    replies, run = daemon.deliver(step.role, step.message, step.sender, [step.recipient], "Q1")
    (reply,) = replies
    run.given = unix_lines(step.message)
    return Answer(EXIT_OF_REPLY[reply.code], reply.text, summary(run), _kept(run))


@pytest.fixture
def paths(tmp_path: Path) -> Iterator[dict[str, Callable[[Step], Answer]]]:
    """Both paths on their own fresh stores, as ``{name: deliver(step)}``."""
    config = tmp_path / "imip-agent.toml"
    config.write_text(CONFIG)
    pipe_agent = Agent(tmp_path / "pipe")
    lmtp_agent = Agent(tmp_path / "lmtp")
    daemon = Daemon(lmtp_agent, tmp_path / "daemon", ("-c", str(config)))
    try:
        daemon.start()
        yield {
            "pipe": lambda step: through_pipes(pipe_agent, step, config, tmp_path / "pipe.log"),
            "lmtp": lambda step: through_lmtp(daemon, step),
        }
    finally:
        code = daemon.stop()
        daemon.kill()
    assert code == 0, daemon.log_text()


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_both_paths_give_the_same_answers(
    name: str, paths: dict[str, Callable[[Step], Answer]], tmp_path: Path
) -> None:
    scenario = SCENARIOS[name]
    answers: dict[str, list[Answer]] = {}
    for path, deliver in paths.items():
        agent = Agent(tmp_path / path)
        for user, pref, value in scenario.prefs:
            agent.set_pref(user, pref, value)
        answers[path] = [_delivered(agent, deliver, step) for step in scenario.steps]
        store = str((agent.root / "store").resolve())
        expected = [(code, status.format(store=store)) for code, status in scenario.expected]
        assert [(a.code, a.status) for a in answers[path]] == expected, path
        assert [list(a.sent) for a in answers[path]] == SENT[name], path
        if scenario.check:
            scenario.check(agent, answers[path])
    pipe, lmtp = answers["pipe"], answers["lmtp"]
    assert [(a.sent, a.delivered) for a in pipe] == [(a.sent, a.delivered) for a in lmtp]
    if name.startswith("person"):
        assert len(pipe[0].delivered) == len(lmtp[0].delivered) == 1
    stores = {path: _state(Agent(tmp_path / path)) for path in paths}
    assert stores["pipe"] == stores["lmtp"]


def _delivered(agent: Agent, deliver: Callable[[Step], Answer], step: Step) -> Answer:
    with ExitStack() as stack:
        if step.locked:
            store = agent.site().store
            stack.enter_context(store.lock(f"mailto:{step.recipient}", 10.0))
        return deliver(step)


def _state(agent: Agent) -> dict[str, list[tuple[str, str]]]:
    """Each user's events (UID, PARTSTATs) as imip-admin exports them (none
    for a user the store does not hold: export says so with 67)."""
    state: dict[str, list[tuple[str, str]]] = {}
    for user in (ROOM, ALICE, PERSON):
        if agent.admin("export", user).returncode == 67:
            state[user] = []
            continue
        calendar = agent.exported(user, check_vobject=False)
        state[user] = sorted(
            (str(e["UID"]), str(sorted(str(a) for a in _attendees(e))))
            for e in calendar.walk("VEVENT")
        )
    return state


def _attendees(event: object) -> list[object]:
    found = event.get("ATTENDEE", [])  # type: ignore[attr-defined]
    return found if isinstance(found, list) else [found]


def test_replies_for_every_exit_code_the_agents_use() -> None:
    """The mapping, row by row: 0 -> 250, 75 -> 451 4.x.x, 65 -> 550 5.x.x."""
    from imip_agent.lmtp_server import lmtp_reply
    from imip_agent.lmtp_work import Outcome

    assert lmtp_reply(Outcome(0, "2.0.0 processed 1 scheduling object(s)")) == (
        "250 2.0.0 processed 1 scheduling object(s)"
    )
    assert lmtp_reply(Outcome(65, "5.6.0 REQUEST without ORGANIZER")) == (
        "550 5.6.0 REQUEST without ORGANIZER"
    )
    assert lmtp_reply(Outcome(65, "5.1.3 unusable recipient")) == "550 5.1.3 unusable recipient"
    assert lmtp_reply(Outcome(75, "4.3.5 unknown backend")) == "451 4.3.5 unknown backend"
    assert lmtp_reply(Outcome(75, "no code at all")) == "451 4.0.0 no code at all"
    assert lmtp_reply(Outcome(65, "4.3.0 wrong class")) == "550 5.3.0 wrong class"
    assert str(Reply(250, "ok")) == "250 ok"
