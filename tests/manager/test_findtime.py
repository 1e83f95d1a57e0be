"""Find a time: the first slots in which alice and everyone named is free,
from what the store holds (alice's own free/busy, bob's VFREEBUSY reply
delivered through imip-person, dave's own free/busy as he shares it),
shown as a sentence and as a table of people against half-hour slots."""

from __future__ import annotations

import re
from pathlib import Path

from flask.testing import FlaskClient

from tests.manager.support import ALICE, BOB, invited, manager
from tests.support import Agent, calendar_text, imip_message, vevent

AS_ALICE = {"REMOTE_USER": ALICE}
CAROL = "carol@example.com"
DAVE = "dave@example.com"

BOBS_BUSY = "\n".join(
    [
        "BEGIN:VFREEBUSY",
        "UID:fb-1@example.com",
        "DTSTAMP:20300101T090000Z",
        "DTSTART:20300107T000000Z",
        "DTEND:20300114T000000Z",
        f"ORGANIZER:mailto:{ALICE}",
        f"ATTENDEE:mailto:{BOB}",
        "FREEBUSY;FBTYPE=BUSY:20300108T090000Z/20300108T093000Z",
        "END:VFREEBUSY",
    ]
)


def scene(root: Path) -> Agent:
    """alice invited to the Tuesday series (10:00-11:00 UTC); bob's
    free/busy received (busy 09:00-09:30 on the 8th); dave, of this site,
    invited to 12:00-13:00 on the 8th and sharing his free/busy."""
    agent = invited(root)
    reply = imip_message(calendar_text(BOBS_BUSY, method="REPLY"), sender=BOB, to=ALICE)
    run = agent.person(reply.replace(b"method=REQUEST", b"method=REPLY"), ALICE)
    assert run.code == 0, run.stdout + run.stderr
    lunch = vevent(
        "lunch@example.com",
        "20300108T120000Z",
        "20300108T130000Z",
        organiser=BOB,
        attendees=(DAVE,),
        summary="Lunch",
    )
    run = agent.person(imip_message(calendar_text(lunch), sender=BOB, to=DAVE), DAVE)
    assert run.code == 0, run.stdout + run.stderr
    agent.set_pref(DAVE, "freebusy_sharing", "share")
    return agent


def search(client: FlaskClient, people: str, duration: int = 60) -> str:
    query = {"people": people, "duration": str(duration), "from": "2030-01-08", "days": "1"}
    answer = client.get(f"/calendar/{ALICE}/find-time", query_string=query, environ_base=AS_ALICE)
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def summary(page: str) -> str:
    found = re.search(r'<p class="summary-text" role="status">([^<]*)</p>', page)
    assert found, "the page says what it found in a sentence"
    return found.group(1)


def row(page: str, label: str) -> list[str]:
    """The cells of ``label``'s row of the table."""
    found = re.search(rf'<th scope="row">{re.escape(label)}</th>(.*?)</tr>', page)
    assert found, label
    return re.findall(r'<td class="(\w+)">', found.group(1))


def test_the_form_alone(tmp_path: Path) -> None:
    client = manager(invited(tmp_path), tmp_path / "sent").test_client()
    answer = client.get(f"/calendar/{ALICE}/find-time", environ_base=AS_ALICE)
    page = answer.get_data(as_text=True)
    assert '<label for="people">' in page and '<label for="duration">' in page
    assert "<table" not in page


def test_everyone_free_skips_each_persons_busy_time(tmp_path: Path) -> None:
    client = manager(scene(tmp_path), tmp_path / "sent").test_client()
    page = search(client, f"{BOB}, {DAVE}\n{CAROL}")
    assert summary(page) == (
        "Everyone free: Tue 08 Jan 11:00–12:00; Tue 08 Jan 13:00–14:00; "
        "Tue 08 Jan 13:30–14:30; Tue 08 Jan 14:00–15:00; Tue 08 Jan 14:30–15:30."
    )
    assert f"Nothing is known of the free/busy of {CAROL}: counted as free." in page
    hours = re.findall(r'<th scope="col">(\d\d:\d\d)', page)
    assert hours[0] == "09:00" and hours[-1] == "16:30" and len(hours) == 16
    assert row(page, ALICE)[:6] == ["free", "free", "busy", "busy", "free", "free"]
    assert row(page, BOB)[:2] == ["busy", "free"]
    assert row(page, DAVE)[4:8] == ["free", "free", "busy", "busy"]
    assert set(row(page, CAROL)) == {"unknown"}
    assert (
        row(page, "Everyone")[:8] == ["busy", "free", "busy", "busy"] + ["free"] * 2 + ["busy"] * 2
    )
    assert '<th scope="col">11:00 <span aria-hidden="true">★</span>' in page


def test_without_sharing_a_local_users_time_is_not_shown(tmp_path: Path) -> None:
    agent = scene(tmp_path)
    agent.set_pref(DAVE, "freebusy_sharing", "no")
    client = manager(agent, tmp_path / "sent").test_client()
    page = search(client, DAVE)
    assert set(row(page, DAVE)) == {"unknown"}


def test_no_time_found_says_so(tmp_path: Path) -> None:
    client = manager(scene(tmp_path), tmp_path / "sent").test_client()
    page = search(client, BOB, duration=300)  # alice and bob: 11:00-17:00 is free
    assert summary(page).startswith("Everyone free: Tue 08 Jan 11:00–16:00")
    page = search(client, f"{BOB} {DAVE}", duration=300)  # dave's lunch at 12:00
    assert summary(page).startswith("No time in which everyone is free")


def test_what_is_no_address_is_said_and_left_out(tmp_path: Path) -> None:
    client = manager(scene(tmp_path), tmp_path / "sent").test_client()
    page = search(client, f"{BOB} not-an-address")
    assert "Not addresses, left out: not-an-address." in page
    assert row(page, BOB)[:2] == ["busy", "free"]


def test_another_users_search_is_403(tmp_path: Path) -> None:
    client = manager(scene(tmp_path), tmp_path / "sent").test_client()
    answer = client.get(
        f"/calendar/{ALICE}/find-time?duration=60", environ_base={"REMOTE_USER": BOB}
    )
    assert answer.status_code == 403


def test_slots_within_everyones_working_hours_come_first(tmp_path: Path) -> None:
    agent = scene(tmp_path)
    agent.set_pref(DAVE, "TZID", "America/New_York")  # 09:00 there is 14:00 UTC
    client = manager(agent, tmp_path / "sent").test_client()
    page = search(client, DAVE)
    assert summary(page) == (
        "Everyone free: Tue 08 Jan 14:00–15:00; Tue 08 Jan 14:30–15:30; "
        "Tue 08 Jan 15:00–16:00; Tue 08 Jan 15:30–16:30; Tue 08 Jan 16:00–17:00."
    )
    assert f"{DAVE}: this site; working hours MO-FR 09:00-17:00 (America/New_York)" in page
    page = search(client, f"{DAVE} {CAROL}", duration=240)  # no four hours suit both zones
    assert summary(page) == (
        "Everyone free: Tue 08 Jan 13:00–17:00 (within the working hours of 2 of 3)."
    )


def test_a_rooms_opening_hours_bind(tmp_path: Path) -> None:
    agent = scene(tmp_path)
    room = "room3@example.com"
    agent.set_pref(room, "opening_hours", "MO-FR 15:00-16:30")
    client = manager(agent, tmp_path / "sent").test_client()
    page = search(client, room)
    assert summary(page) == "Everyone free: Tue 08 Jan 15:00–16:00; Tue 08 Jan 15:30–16:30."


def test_the_day_shows_others_side_by_side(tmp_path: Path) -> None:
    client = manager(scene(tmp_path), tmp_path / "sent").test_client()
    query = {"day": "2030-01-08", "with": f"{BOB} {DAVE} {CAROL} nobody"}
    answer = client.get(f"/calendar/{ALICE}/day", query_string=query, environ_base=AS_ALICE)
    page = answer.get_data(as_text=True)
    hours = re.findall(r'<th scope="col">(\d\d:\d\d)', page)
    assert hours[0] == "07:00" and hours[-1] == "19:30"
    assert row(page, ALICE)[6:8] == ["busy", "busy"]  # 10:00-11:00
    assert row(page, BOB)[4] == "busy"  # 09:00-09:30, from his VFREEBUSY reply
    assert row(page, DAVE)[10:12] == ["busy", "busy"]  # 12:00-13:00, shared
    assert set(row(page, CAROL)) == {"unknown"}
    assert "Not addresses, left out: nobody." in page
    following = re.search(r'href="([^"]*)" rel="next"', page)
    assert following and "with=" in following.group(1), "the next day keeps the comparison"
    plain = client.get(f"/calendar/{ALICE}/day?day=2030-01-08", environ_base=AS_ALICE)
    assert "<table" not in plain.get_data(as_text=True)
