"""make-freebusy: the window moves forward, --reset regenerates, and it runs
safely while agents deliver mail."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

from imiptools.dates import parse_utc
from imiptools.periods import Period
from tests.admin.conftest import NOW, ROOM, admin_ok, answer, book, busy, vevent
from tests.support import (
    BIN,
    Agent,
    _parse_mail,
    calendar_text,
    imip_message,
    parse_calendar_part,
    partstat_of,
)

WEEKLY = "RRULE:FREQ=WEEKLY"
#: Two weeks after NOW: the window (365 days) now reaches 2031-01-15.
LATER = "2030-01-15T12:00:00Z"


def test_window_moves_forward_for_an_indefinitely_recurring_booking(agent: Agent) -> None:
    assert answer(book(agent, vevent("weekly", extra=WEEKLY))) == "ACCEPTED"
    # 2031-01-07 is a Tuesday of the series, beyond the window of NOW.
    span = ("20310101T000000Z", "20310201T000000Z")
    assert "20310107T100000Z" not in busy(agent, *span, now=LATER)

    check = agent.admin("check", now=LATER)
    assert check.returncode == 0, check.stdout
    assert 'note: the free/busy window of "weekly" has not been moved forward' in check.stdout

    assert admin_ok(agent, "make-freebusy", "--all", now=LATER) == ""  # quiet under cron
    assert "20310107T100000Z/20310107T110000Z" in busy(agent, *span, now=LATER)
    clash = vevent("bob-1", "20310107T103000Z", "20310107T113000Z", organiser="bob@example.com")
    assert answer(book(agent, clash, sender="bob@example.com", now=LATER)) == "DECLINED"
    assert admin_ok(agent, "check", now=LATER) == ""


def test_make_freebusy_is_idempotent_and_reports_on_request(agent: Agent) -> None:
    book(agent, vevent("weekly", extra=WEEKLY))
    admin_ok(agent, "make-freebusy", ROOM, now=LATER)
    before = sorted((agent.root / "store").rglob("*"))
    contents = [p.read_bytes() for p in before if p.is_file()]
    out = admin_ok(agent, "make-freebusy", ROOM, "-v", now=LATER)
    assert "free/busy refreshed for 1 user(s)" in out
    after = sorted((agent.root / "store").rglob("*"))
    assert after == before
    assert [p.read_bytes() for p in after if p.is_file()] == contents


def _period(uid: str, start: str) -> Period:
    begin = parse_utc(start)
    return Period(begin, begin + timedelta(hours=1), uid)


def test_reset_drops_periods_of_unknown_events(agent: Agent) -> None:
    book(agent, vevent("kept"))
    store = agent.site().store
    store.set_freebusy_for_uid(ROOM, "ghost", [_period("ghost", "20300109T100000Z")])
    bucket = agent.root / "store" / f"mailto:{ROOM}" / "freebusy" / "2030-01"
    unindexed = _period("lost", "20300110T100000Z").to_line()  # no index names it
    bucket.write_text(bucket.read_text() + unindexed + "\n")
    month = ("20300101T000000Z", "20300201T000000Z")
    assert "20300110T100000Z" in busy(agent, *month)
    admin_ok(agent, "make-freebusy", "--reset", "--all")
    periods = busy(agent, *month)
    assert "20300109T100000Z" not in periods and "20300110T100000Z" not in periods
    assert "20300108T100000Z/20300108T110000Z" in periods
    assert admin_ok(agent, "check") == ""


def test_usage_errors_are_one_line_with_exit_codes(agent: Agent) -> None:
    neither = agent.admin("make-freebusy")
    assert neither.returncode == 64
    assert neither.stdout == "5.5.4 give at least one USER, or --all\n"
    both = agent.admin("make-freebusy", ROOM, "--all")
    assert both.returncode == 64
    unknown = agent.admin("make-freebusy", "nobody@example.com")
    assert unknown.returncode == 67
    assert unknown.stdout.count("\n") == 1


# -- concurrency -----------------------------------------------------------------

ROOMS = ("room@example.com", "car@example.com", "projector@example.com")


def _reply_of(path: Path) -> tuple[str, str]:
    """(UID, PARTSTAT) of the REPLY in the mail file ``path``."""
    calendar = parse_calendar_part(_parse_mail(path.read_bytes()))
    event = calendar.walk("VEVENT")[0]
    return str(event["UID"]), str(event["ATTENDEE"].params["PARTSTAT"])


def _resource_process(agent: Agent, number: int) -> subprocess.Popen[bytes]:
    """imip-resource for request ``number`` (a Wednesday slot of its own)."""
    room = ROOMS[number % len(ROOMS)]
    start = f"20300109T{8 + number:02d}0000Z"
    end = f"20300109T{8 + number:02d}3000Z"
    organiser = f"user{number}@example.com"
    event = vevent(f"c-{number}", start, end, organiser=organiser, attendees=(room,))
    message = imip_message(calendar_text(event), sender=organiser, to=room)
    out = agent.root / "out" / f"concurrent-{number}"
    argv = [str(BIN / "imip-resource"), *agent.store_options, "--now", NOW, "-o", room,
            "--output", str(out), "-s", organiser]  # fmt: skip
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert process.stdin is not None
    process.stdin.write(message)
    process.stdin.close()
    return process


def test_make_freebusy_all_while_ten_agents_deliver(agent: Agent) -> None:
    for room in ROOMS:  # a series at each room gives make-freebusy work to do
        event = vevent(f"series-{room}", extra=WEEKLY, attendees=(room,))
        run = agent.resource(imip_message(calendar_text(event), to=room), recipient=room)
        assert partstat_of(run.replies()[0], room) == "ACCEPTED"
    admin = [str(BIN / "imip-admin"), *agent.store_options, "--now", LATER]
    loop = " && ".join([" ".join([*admin, "make-freebusy", "--all"])] * 3)
    maker = subprocess.Popen(["sh", "-c", loop])
    agents = [_resource_process(agent, n) for n in range(10)]
    assert all(process.wait(timeout=120) == 0 for process in agents)
    assert maker.wait(timeout=120) == 0
    # The outbox is shared: any agent may send what another spooled.
    replies = [_reply_of(path) for path in (agent.root / "out").glob("concurrent-*/*")]
    assert sorted(replies) == sorted((f"c-{n}", "ACCEPTED") for n in range(10))
    assert admin_ok(agent, "check", now=LATER) == ""
    for number in range(10):
        room = ROOMS[number % len(ROOMS)]
        text = admin_ok(agent, "freebusy", room, "--start", "20300109T000000Z",
                        "--end", "20300110T000000Z")  # fmt: skip
        assert f"20300109T{8 + number:02d}0000Z" in text
