"""Rooms on the new-event page: picked from the site's list (an attendee
of the room's CUTYPE, with its role and RSVP), and "Check rooms", a dry run
of each room's own rules through the library's what-if: what it would
answer, the holders of clashing bookings named only where the room's
``conflict_details`` allows, and nothing written or sent."""

from __future__ import annotations

from pathlib import Path

from werkzeug.datastructures import MultiDict

from tests.manager.support import ALICE, calendar_of, sent_messages
from tests.manager.test_organiser import fields, post
from tests.manager.test_resources import OWNER, ROOM, XAVIER, client_of, site_with_rooms
from tests.support import Agent

NEW = f"/calendar/{ALICE}/new"


def weekly(**changes: str | list[str]) -> MultiDict[str, str]:
    """A weekly series on Tuesdays 10:00-11:00 UTC from 8 January, 10
    times, with bob; room 3 picked from the list (as a required attendee)."""
    values: dict[str, str | list[str]] = {
        "tzid": "UTC",
        "interval": "1",
        "ends": "count",
        "count": "10",
        "until": "",
        "exdates": "",
        "attendee": ["bob@example.com"],
        "role": ["REQ-PARTICIPANT"],
        "cutype": ["INDIVIDUAL"],
        "room": [ROOM, "car@example.com"],
        "room_role": ["NON-PARTICIPANT", ""],
    }
    values.update(changes)
    return fields(**values)


def files_of(root: Path) -> dict[str, bytes]:
    """Every file of the site under ``root`` (store, preferences, quota
    journal, outbox), by path."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] not in ("out", "sent")
    }


def check(agent: Agent, sent: Path, **changes: str | list[str]) -> str:
    client = client_of(agent, sent)
    answer = post(client, NEW, weekly(action="check", **changes))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_data(as_text=True)


def test_the_form_offers_the_sites_rooms(tmp_path: Path) -> None:
    agent = site_with_rooms(tmp_path / "site")
    page = client_of(agent, tmp_path / "sent").get(NEW, environ_base={"REMOTE_USER": ALICE})
    text = page.get_data(as_text=True)
    assert "Room 3" in text and 'name="room" value="room3@example.com"' in text
    assert 'name="room_role"' in text and "car@example.com" in text


def test_a_room_picked_from_the_list_is_invited_as_a_room(tmp_path: Path) -> None:
    agent = site_with_rooms(tmp_path / "site")
    client = client_of(agent, tmp_path / "sent")
    answer = post(client, NEW, weekly(action="send"))
    assert answer.status_code == 302, answer.get_data(as_text=True)
    (message,) = sent_messages(tmp_path / "sent")
    _, calendar = calendar_of(message)
    (event,) = calendar.walk("VEVENT")
    rooms = [a for a in event["ATTENDEE"] if str(a).lower() == f"mailto:{ROOM}"]
    assert len(rooms) == 1
    params = rooms[0].params
    assert (params["CUTYPE"], params["ROLE"], params["RSVP"]) == ("ROOM", "NON-PARTICIPANT", "TRUE")
    assert "car@example.com" not in message["To"]


def test_check_rooms_forecasts_a_clash_and_names_its_holder(tmp_path: Path) -> None:
    agent = site_with_rooms(tmp_path / "site")
    before = files_of(agent.root)
    page = check(agent, tmp_path / "sent")
    assert "What the rooms would answer" in page
    assert "<strong>Room 3</strong>: would decline." in page, "no clash is allowed by default"
    assert "already booked" in page and XAVIER in page
    assert files_of(agent.root) == before, "the dry run wrote nothing"
    assert sent_messages(tmp_path / "sent") == [], "and sent nothing"
    assert "invited (above)" in page, "the room picked is an attendee of the form now"


def test_a_room_allowing_a_clash_says_how_many_occurrences_and_whose(tmp_path: Path) -> None:
    agent = site_with_rooms(tmp_path / "site")
    agent.set_pref(ROOM, "max_conflict_instances", "2")
    agent.set_pref(ROOM, "max_conflict_percent", "20")
    before = files_of(agent.root)
    page = check(agent, tmp_path / "sent")
    assert (
        "<strong>Room 3</strong>: would accept; 1 occurrence declined, clashing with "
        f"bookings by {XAVIER}." in page
    )
    assert "9 hours of the 10 hours for the week of 2030-01-07 allowed for you in q" in page
    assert files_of(agent.root) == before
    assert sent_messages(tmp_path / "sent") == []


def test_the_holder_is_not_named_unless_conflict_details_allows(tmp_path: Path) -> None:
    agent = site_with_rooms(tmp_path / "site")
    agent.set_pref(ROOM, "conflict_details", "no")
    page = check(agent, tmp_path / "sent")
    assert "<strong>Room 3</strong>: would decline." in page
    assert XAVIER not in page and "Board" not in page


def test_owner_approval_is_foreseen_and_nobody_is_asked(tmp_path: Path) -> None:
    agent = site_with_rooms(tmp_path / "site")
    agent.set_pref(ROOM, "approval", "always")
    before = files_of(agent.root)
    page = check(
        agent, tmp_path / "sent", start_date="2030-01-09", end_date="2030-01-09", byday=["WE"]
    )
    assert "<strong>Room 3</strong>: needs its owners&#39; approval" in page
    assert OWNER in page
    assert files_of(agent.root) == before
    assert sent_messages(tmp_path / "sent") == []


def test_a_room_of_another_site_cannot_be_checked(tmp_path: Path) -> None:
    agent = site_with_rooms(tmp_path / "site")
    page = check(
        agent,
        tmp_path / "sent",
        attendee=["hall@elsewhere.example"],
        cutype=["ROOM"],
        role=["REQ-PARTICIPANT"],
        room_role=["", ""],
    )
    assert "<strong>hall@elsewhere.example</strong>: not a room of this site" in page


def test_check_rooms_on_an_update_sees_the_rooms_own_booking(tmp_path: Path) -> None:
    """A single event booked at room 3 (its agent accepted it): moved onto
    xavier's booking the room would decline; kept where it is, the room
    sees its own booking, no clash. Nothing is written or sent."""
    agent = site_with_rooms(tmp_path / "site")
    client = client_of(agent, tmp_path / "sent")
    single = {"freq": "", "byday": [], "ends": "never", "count": ""}
    answer = post(client, NEW, weekly(action="send", **single))
    assert answer.status_code == 302, answer.get_data(as_text=True)
    (invitation,) = sent_messages(tmp_path / "sent")
    run = agent.resource(invitation.as_bytes(), recipient=ROOM, sender=ALICE)
    assert run.code == 0, run.stdout + run.stderr
    page_path = answer.headers["Location"]
    page = client.get(page_path, environ_base={"REMOTE_USER": ALICE}).get_data(as_text=True)
    uid = page.split('name="uid" value="', 1)[1].split('"', 1)[0]
    before = files_of(agent.root)
    kept = post(client, "/calendar/alice@example.com/event", _edit(uid, "2030-01-08"), page_path)
    assert "<strong>Room 3</strong>: would accept." in kept.get_data(as_text=True)
    moved = post(client, "/calendar/alice@example.com/event", _edit(uid, "2030-01-15"), page_path)
    text = moved.get_data(as_text=True)
    assert moved.status_code == 200 and "<strong>Room 3</strong>: would decline." in text
    assert files_of(agent.root) == before
    assert len(sent_messages(tmp_path / "sent")) == 1


def _edit(uid: str, day: str) -> MultiDict[str, str]:
    """The event's form, on ``day`` 10:00-11:00 UTC, with room 3 and bob."""
    return fields(
        uid=uid,
        action="check",
        tzid="UTC",
        start_date=day,
        end_date=day,
        freq="",
        byday=[],
        ends="never",
        until="",
        exdates="",
        attendee=[ROOM, "bob@example.com"],
        role=["NON-PARTICIPANT", "REQ-PARTICIPANT"],
        cutype=["ROOM", "INDIVIDUAL"],
    )
