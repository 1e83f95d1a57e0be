"""The week's JSON for the client-side grid (``static/grid.js``): the
instances in the user's zone as wall times, titles as text, only one's own."""

from __future__ import annotations

from pathlib import Path

from tests.manager.support import ALICE, BOB, SUMMARY, UID, invited, manager

AS_ALICE = {"REMOTE_USER": ALICE}


def test_the_weeks_instances_as_the_grid_reads_them(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    agent.set_pref(ALICE, "TZID", "Europe/Berlin")
    client = manager(agent, tmp_path / "sent").test_client()
    answer = client.get(f"/calendar/{ALICE}/week.json?week=2030-01-16", environ_base=AS_ALICE)
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    (event,) = answer.get_json()["events"]
    assert event["title"] == SUMMARY, "the text as it is: the grid writes it as text"
    assert (event["start"], event["end"]) == ("2030-01-15T11:00", "2030-01-15T12:00")
    assert event["allDay"] is False and event["classNames"] == []
    assert event["extendedProps"]["url"] == f"/calendar/{ALICE}/event?uid={UID}"
    other = client.get(f"/calendar/{BOB}/week.json", environ_base=AS_ALICE)
    assert other.status_code == 403
