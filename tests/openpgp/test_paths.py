"""OpenPGP on every path: imip-agent-lmtp answers an encrypted invitation as
imip-resource does (the same library code through the site), and a
person's agents read encrypted mail for a person whose key the site holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lmtp_support import Daemon
from tests.openpgp.conftest import ALICE, Parties
from tests.openpgp.messages import gpg_encrypted
from tests.openpgp.test_resource import UID, booked, fingerprint, invitation, opened
from tests.support import (
    ROOM,
    Agent,
    calendar_text,
    imip_message,
    parse_calendar_part,
    partstat_of,
    vevent,
)


@pytest.fixture
def daemon(site: Agent, tmp_path: Path) -> Iterator[Daemon]:
    """imip-agent-lmtp over the site (its keyring from the site's -c)."""
    running = Daemon(site, tmp_path / "daemon")
    try:
        yield running.start()
    finally:
        code = running.stop()
        running.kill()
    assert code == 0, running.log_text()


def test_lmtp_decrypts_verifies_and_answers_encrypted(
    site: Agent, parties: Parties, daemon: Daemon
) -> None:
    message = gpg_encrypted(invitation(), parties.alice, parties.room)
    replies, run = daemon.deliver("resource", message, ALICE, [ROOM])
    assert [r.code for r in replies] == [250], daemon.log_text()
    (reply,) = run.sent
    inner = opened(reply, parties.alice, parties.room)
    assert partstat_of(parse_calendar_part(inner)) == "ACCEPTED"
    assert booked(site)
    (line,) = site.site().store.decisions(f"mailto:{ROOM}")
    assert json.loads(line)["signed_by"] == fingerprint(parties.alice)


def test_lmtp_undecryptable_mail_to_a_person_is_delivered_unchanged(
    parties: Parties, daemon: Daemon
) -> None:
    message = gpg_encrypted(invitation(), parties.alice, parties.nobody)
    replies, run = daemon.deliver("person", message, ALICE, ["bob@example.com"])
    assert [r.code for r in replies] == [250], daemon.log_text()
    assert [f.replace(b"\r\n", b"\n") for f in run.files] == [message.replace(b"\r\n", b"\n")]


def test_a_person_with_a_key_gets_the_event_recorded(site: Agent, parties: Parties) -> None:
    """The room's key stands for a person's here (any calendar user may own
    one): the invitation is recorded, and the encrypted original delivered."""
    event = vevent(UID, attendees=(ROOM,), summary="Board meeting")
    plain = imip_message(calendar_text(event), to=ROOM)
    message = gpg_encrypted(plain, parties.alice, parties.room)
    run = site.person(message, ROOM)
    assert run.code == 0, run.stdout
    assert run.files == [message]
    assert site.site().records(f"mailto:{ROOM}").stored(UID) is not None
