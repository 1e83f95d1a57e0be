"""imiptools.views.agenda and imiptools.answering over a real site: the
instances of a week, the queue with its instances, and answers refused."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from imiptools import answering
from imiptools.dates import FixedClock, parse_datetime
from imiptools.mail.send import DirectorySender
from imiptools.site import Site, open_site
from imiptools.views.agenda import agenda, pending
from tests.manager.support import ALICE, BOB, NOW, SECOND, UID, invited, settings_of
from tests.support import Agent, calendar_text, imip_message, vevent


def site_at_now(root: Path) -> tuple[Agent, Site]:
    agent = invited(root)
    return agent, open_site(settings_of(agent), FixedClock(parse_datetime(NOW)))


def test_the_agenda_expands_the_series_within_the_span(tmp_path: Path) -> None:
    _, site = site_at_now(tmp_path)
    records = site.records(f"mailto:{ALICE}")
    entries = agenda(records, datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 3, 1, tzinfo=UTC))
    assert [e.recurrence_id for e in entries] == [
        "20300108T100000Z",
        "20300115T100000Z",
        "20300122T100000Z",
        "20300129T100000Z",
    ]
    assert all(e.recurring and e.partstat == "NEEDS-ACTION" for e in entries)
    assert entries[0].organiser == BOB and entries[0].location == "Room 3"
    assert agenda(records, datetime(2030, 2, 1, tzinfo=UTC), datetime(2030, 3, 1, tzinfo=UTC)) == []


def test_pending_lists_the_series_with_its_instances(tmp_path: Path) -> None:
    _, site = site_at_now(tmp_path)
    (item,) = pending(site.records(f"mailto:{ALICE}"))
    assert (item.uid, item.recurrence_id, item.kind, item.organiser) == (UID, "", "REQUEST", BOB)
    assert [o.recurrence_id for o in item.occurrences][1] == SECOND


def test_declining_the_whole_series_empties_the_queue(tmp_path: Path) -> None:
    agent, site = site_at_now(tmp_path)
    done = answering.answer(site, ALICE, UID, "", "DECLINED", DirectorySender(tmp_path / "sent"))
    assert done.result.code == 0 and done.organiser == BOB
    assert agent.requests(ALICE) == []
    records = site.records(f"mailto:{ALICE}")
    start, end = datetime(2030, 1, 1, tzinfo=UTC), datetime(2030, 3, 1, tzinfo=UTC)
    assert {e.partstat for e in agenda(records, start, end)} == {"DECLINED"}
    assert records.busy_between(start, end) == [], "declined time is free"


@pytest.mark.parametrize(
    ("uid", "rid", "partstat", "why"),
    [
        ("unknown@example.com", "", "ACCEPTED", "no such event"),
        (UID, "", "MAYBE", "not an answer"),
        (UID, "garbage", "ACCEPTED", "not a recurrence identifier"),
    ],
)
def test_what_cannot_be_answered_is_refused(
    tmp_path: Path, uid: str, rid: str, partstat: str, why: str
) -> None:
    agent, site = site_at_now(tmp_path)
    with pytest.raises(answering.NotAnswerable, match=why):
        answering.answer(site, ALICE, uid, rid, partstat, DirectorySender(tmp_path / "sent"))
    assert agent.requests(ALICE) == [(UID, "", "REQUEST")]
    assert not (tmp_path / "sent").exists()


def test_the_organiser_cannot_answer_their_own_event(tmp_path: Path) -> None:
    agent, site = site_at_now(tmp_path)
    event = vevent(UID, "20300108T100000Z", "20300108T110000Z", organiser=BOB, attendees=(ALICE,))
    sent = agent.outgoing(imip_message(calendar_text(event), sender=BOB, to=ALICE), BOB)
    assert sent.code == 0, sent.stdout
    with pytest.raises(answering.NotAnswerable, match="not an invitation"):
        answering.answer(site, BOB, UID, "", "ACCEPTED", DirectorySender(tmp_path / "sent"))
