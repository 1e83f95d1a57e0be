"""Hostile addresses and headers, through the real programs (issue 11 items 1,
6 and 8; issue 12): each message is a fixture in tests/fixtures/hostile/.

The promises: an address no sender can use is refused before anything is
spooled (65 at the front, or simply not answered); a spooled message that
can never be sent is set aside and never stops the others; only transient
trouble gives 75; no answer to automatic mail or to ourselves.
"""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from imiptools.itip.objects import address
from imiptools.spool import Spool
from tests.support import (
    BIN,
    ROOM,
    Agent,
    Run,
    calendar_text,
    check_reply,
    imip_message,
    parse_calendar_part,
    partstat_of,
    vevent,
)

HOSTILE = Path(__file__).resolve().parents[1] / "fixtures" / "hostile"


def fixture(name: str) -> bytes:
    return (HOSTILE / name).read_bytes()


def outbox(agent: Agent) -> Spool:
    return Spool(agent.root / "store" / ".outbox")


def alice_books(uid: str = "after@example.com") -> bytes:
    event = vevent(uid, "20300109T100000Z", "20300109T110000Z")
    return imip_message(calendar_text(event), message_id=f"<{uid}>")


def assert_one_line(run: Run, status: str) -> None:
    assert run.stdout.startswith(status + " "), run.stdout
    assert run.stdout.count("\n") == 1 and "Traceback" not in run.stdout + run.stderr


# -- issue 11.1: one invitation blocks the whole site -----------------------------------


def test_organiser_starting_with_dash_is_refused_before_spooling(agent: Agent) -> None:
    run = agent.resource(fixture("organiser-dash-option.eml"), sender="alice@example.com")
    assert run.code == 65 and run.sent == []
    assert_one_line(run, "5.6.0")
    assert "-oqevil@example.com" in run.stdout
    assert outbox(agent).pending() == [] and outbox(agent).held() == []
    after = agent.resource(alice_books(), sender="alice@example.com")
    assert after.code == 0 and partstat_of(after.replies()[0]) == "ACCEPTED"


def test_add_from_organiser_starting_with_dash_refreshes_no_one(agent: Agent) -> None:
    message = fixture("add-organiser-dash.eml")
    person = agent.person(message, "bob@example.org", sender="alice@example.com")
    assert person.code == 0 and person.generated() == []
    assert [m["Subject"] for m in person.delivered()] == ["add organiser dash"]
    room = agent.resource(message, sender="alice@example.com")
    assert room.code == 65 and room.sent == []
    assert outbox(agent).pending() == [] and outbox(agent).held() == []
    after = agent.resource(alice_books(), sender="alice@example.com")
    assert after.code == 0 and partstat_of(after.replies()[0]) == "ACCEPTED"


def plant(agent: Agent, name: str) -> str:
    """A spooled file left by an older version (id older than any new one)."""
    identifier = "00000000000000000001-1-0"
    new = agent.root / "store" / ".outbox" / "new"
    new.mkdir(parents=True, exist_ok=True)
    (new / identifier).write_bytes(fixture(name))
    return identifier


def test_spooled_message_to_unusable_address_is_set_aside_and_the_rest_still_go(
    agent: Agent,
) -> None:
    stuck = plant(agent, "outbox-dash-recipient.spool")
    run = agent.resource(alice_books(), sender="alice@example.com")
    assert run.code == 0 and partstat_of(run.replies()[0]) == "ACCEPTED"
    (held,) = outbox(agent).held()
    assert held.id == stuck and "starts with '-'" in held.reason
    assert outbox(agent).pending() == []
    check = agent.admin("check")
    assert check.returncode == 65
    assert f"outbox: message {stuck} to -oQevil@example.com set aside" in check.stdout
    listed = agent.admin("outbox", "list")
    assert listed.returncode == 0
    assert stuck in listed.stdout and "subject: Accepted: Option injection" in listed.stdout
    assert listed.stdout.endswith("1 held, 0 waiting to be sent\n")
    dropped = agent.admin("outbox", "drop", stuck[:12])
    assert dropped.returncode == 0 and dropped.stdout == f"{stuck}: dropped\n"
    assert agent.admin("check").returncode == 0


def test_unreadable_spool_file_is_set_aside(agent: Agent) -> None:
    stuck = plant(agent, "recipient-dash.eml")  # a message, but no envelope block
    assert "set aside at the next delivery" in agent.admin("check").stdout
    run = agent.resource(alice_books(), sender="alice@example.com")
    assert run.code == 0 and len(run.replies()) == 1
    (held,) = outbox(agent).held()
    assert held.id == stuck and held.message is None
    assert "unreadable spool file" in held.reason


def fake_sendmail(directory: Path, refuse: str | None = None, code: int = 67) -> Path:
    """A sendmail that exits ``code`` for a message to ``refuse`` (every
    message when ''), and otherwise keeps the message in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "sendmail"
    match = "" if not refuse else f'[ "$arg" = "{refuse}" ] && '
    fail = f'{match}{{ echo "5.1.1 <$arg> refused"; exit {code}; }}'
    script.write_text(
        "#!/bin/sh\n"
        + (f'for arg in "$@"; do {fail}; done\n' if refuse is not None else "")
        + f'cat > "{directory}/sent-$$.eml"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def sendmail_run(
    agent: Agent, message: bytes, sendmail: Path
) -> subprocess.CompletedProcess[bytes]:
    """imip-resource as Postfix runs it, sending with ``sendmail`` (no --output)."""
    argv = [str(BIN / "imip-resource"), *agent.store_options, "--now", agent.now]
    argv += ["-o", ROOM, "-s", "alice@example.com", "--sendmail", str(sendmail)]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    return subprocess.run(argv, input=message, capture_output=True, env=env, check=False)


def sent_by(sendmail: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(sendmail.parent.glob("sent-*.eml"))]


def test_reply_refused_for_good_is_held_and_retried_by_the_admin(agent: Agent) -> None:
    refusing = fake_sendmail(agent.root / "mta", refuse="gone@example.org")
    first = sendmail_run(agent, fixture("organiser-refused-by-mta.eml"), refusing)
    assert first.returncode == 0 and first.stdout == b""
    second = sendmail_run(agent, alice_books(), refusing)
    assert second.returncode == 0 and len(sent_by(refusing)) == 1
    (held,) = outbox(agent).held()
    assert "exited with 67: 5.1.1 <gone@example.org> refused" in held.reason
    assert agent.admin("outbox", "retry", held.id).stdout == f"{held.id}: back in line\n"
    accepting = fake_sendmail(agent.root / "mta2")
    flushed = agent.admin("outbox", "flush", "--sendmail", str(accepting))
    assert flushed.returncode == 0 and flushed.stdout == "sent 1 message(s), set aside 0\n"
    (reply,) = sent_by(accepting)
    assert b"To: gone@example.org" in reply
    assert outbox(agent).held() == [] and agent.admin("check").returncode == 0


def test_transient_send_failure_keeps_the_message_and_exits_75(agent: Agent) -> None:
    deferring = fake_sendmail(agent.root / "mta", refuse="", code=75)
    run = sendmail_run(agent, alice_books(), deferring)
    assert run.returncode == 75 and run.stdout.startswith(b"4.4.0 ")
    assert len(outbox(agent).pending()) == 1 and outbox(agent).held() == []
    accepting = fake_sendmail(agent.root / "mta2")
    again = sendmail_run(agent, alice_books("other@example.com"), accepting)
    assert again.returncode == 0 and len(sent_by(accepting)) == 2


# -- issue 11.6: unusable recipient and envelope addresses -------------------------------


@pytest.mark.parametrize(
    ("name", "recipient"),
    [
        ("recipient-non-ascii.eml", "röom@example.com"),
        ("recipient-empty-domain.eml", "room@."),
        ("recipient-dots-domain.eml", "x@.."),
        ("recipient-dash.eml", "-room@example.com"),
    ],
)
@pytest.mark.parametrize("program", ["resource", "person"])
def test_unusable_recipient_is_refused_at_the_front(
    agent: Agent, name: str, recipient: str, program: str
) -> None:
    message = fixture(name)
    if program == "resource":
        run = agent.resource(message, recipient=recipient, sender="alice@example.com")
    else:
        run = agent.person(message, recipient, sender="alice@example.com")
    assert run.code == 65 and run.sent == []
    assert_one_line(run, "5.1.3")
    assert not (agent.root / "store" / ".outbox" / "new").exists()


def test_unusable_recipient_from_the_null_sender_is_dropped(agent: Agent) -> None:
    run = agent.resource(fixture("recipient-dash.eml"), recipient="-room@example.com", sender="")
    assert run.code == 0 and run.sent == []


def test_envelope_sender_starting_with_dash_is_a_value_not_an_option(agent: Agent) -> None:
    message = fixture("envelope-sender-dash.eml")
    room = agent.resource(message, sender="-alice@example.com")
    assert room.code == 0, room.stdout
    assert partstat_of(room.replies()[0]) == "ACCEPTED"
    person = agent.person(message, "bob@example.org", sender="-alice@example.com")
    assert person.code == 0, person.stdout
    assert len(person.delivered()) == 1


def test_recipient_with_trailing_dot_is_normalised(agent: Agent) -> None:
    run = agent.resource(alice_books(), recipient="Room@Example.COM.", sender="alice@example.com")
    assert run.code == 0
    (mail,) = run.sent
    assert mail["From"] == ROOM
    assert partstat_of(run.replies()[0]) == "ACCEPTED"


# -- issue 11.8: loops and headers -----------------------------------------------------


def test_auto_submitted_in_any_instance_means_no_reply(agent: Agent) -> None:
    run = agent.resource(
        fixture("auto-submitted-no-then-generated.eml"), sender="alice@example.com"
    )
    assert run.code == 0 and run.sent == []


def test_organiser_with_trailing_dot_is_the_room_itself(agent: Agent) -> None:
    run = agent.resource(fixture("organiser-trailing-dot.eml"), sender="room@example.com.")
    assert run.code == 0 and run.sent == []
    assert outbox(agent).pending() == []


# -- issue 12: mailto URIs (RFC 6068) ---------------------------------------------------


def test_percent_encoded_attendee_is_recognised(agent: Agent) -> None:
    run = agent.person(
        fixture("attendee-percent-encoded.eml"), "jane.doe@example.net", sender="alice@example.com"
    )
    assert run.code == 0 and len(run.delivered()) == 1
    busy = agent.admin(
        "freebusy", "jane.doe@example.net", "--start", "20300101", "--end", "20300201"
    )
    assert "FBTYPE=BUSY-TENTATIVE" in busy.stdout


def test_percent_encoded_organiser_and_attendee_are_answered(agent: Agent) -> None:
    run = agent.resource(fixture("organiser-percent-encoded.eml"), sender="jane.doe@example.net")
    assert run.code == 0
    (mail,) = run.sent
    assert mail["To"] == "jane.doe@example.net"
    reply = parse_calendar_part(mail)
    event = reply.walk("VEVENT")[0]
    assert address(event["ATTENDEE"]) == ROOM
    assert str(event["ATTENDEE"].params["PARTSTAT"]) == "ACCEPTED"


def test_mailto_recipient_with_header_fields_is_normalised(agent: Agent) -> None:
    run = agent.person(
        fixture("attendee-percent-encoded.eml"),
        "mailto:jane%2Edoe@example.net?subject=x",
        sender="alice@example.com",
    )
    assert run.code == 0 and len(run.delivered()) == 1
    assert agent.requests("jane.doe@example.net") != []


def test_bare_recipient_with_query_is_refused_not_retried(agent: Agent) -> None:
    run = agent.person(
        fixture("attendee-percent-encoded.eml"),
        "jane%2Edoe@example.net?subject=x",
        sender="alice@example.com",
    )
    assert run.code == 65 and run.sent == []
    assert_one_line(run, "5.1.3")


def test_reply_to_percent_encoded_organiser_passes_both_parsers(agent: Agent) -> None:
    run = agent.resource(fixture("organiser-percent-encoded.eml"), sender="jane.doe@example.net")
    reply = run.replies()[0]
    event = reply.walk("VEVENT")[0]
    check_reply(reply, str(event["ATTENDEE"]).removeprefix("mailto:").lower())
