"""The manager over a site in PostgreSQL (opened through open_site like
any other): the same answer, recorded as imip-person-outgoing records it in
a site of files."""

from __future__ import annotations

from pathlib import Path

import pytest

from imiptools.views.resources import resources
from tests.conftest import site_agent
from tests.manager.support import ALICE, NOW, invite, invited, sent_messages
from tests.manager.test_app import answer_second_instance
from tests.manager.test_resources import OWNER, ROOM, XAVIER, client_of, rooms_in


def test_answering_in_a_database_site_records_what_the_program_records(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    (tmp_path / "pg").mkdir()
    in_database = invite(site_agent(request, tmp_path / "pg", "postgresql", now=NOW))
    assert in_database.in_database
    answer_second_instance(in_database, tmp_path / "sent")
    (message,) = sent_messages(tmp_path / "sent")
    in_files = invited(tmp_path / "files")
    run = in_files.outgoing(message.as_bytes(), ALICE)
    assert run.code == 0, run.stdout + run.stderr
    assert in_database.requests(ALICE) == in_files.requests(ALICE)
    exported = [a.admin("export", ALICE).stdout for a in (in_database, in_files)]
    assert exported[0] == exported[1]


def test_the_resources_of_a_database_site_are_those_of_a_site_of_files(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    (tmp_path / "pg").mkdir()
    in_database = rooms_in(site_agent(request, tmp_path / "pg", "postgresql", now=NOW))
    in_files = rooms_in(invited(tmp_path / "files"))
    assert resources(in_database.site()) == resources(in_files.site())
    client = client_of(in_database, tmp_path / "sent")
    week = client.get(f"/resources/{ROOM}/?week=2030-01-14", environ_base={"REMOTE_USER": OWNER})
    assert week.status_code == 200 and XAVIER in week.get_data(as_text=True)
