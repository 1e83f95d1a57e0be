"""The manager's pages through Flask's test client over a real site: who
may see what, form tokens, headers, the week view and answering a request
(the REPLY and the store as imip-person-outgoing records them)."""

from __future__ import annotations

from pathlib import Path

import pytest
import vobject

from imip_agent.manager.app import create_app
from imip_agent.manager.security import CONTENT_SECURITY_POLICY, AccessConfig
from imiptools.dates import FixedClock, parse_datetime
from imiptools.mail.send import SendmailSender
from tests.manager.support import (
    ALICE,
    BOB,
    NOW,
    SECOND,
    SUMMARY,
    UID,
    calendar_of,
    invited,
    manager,
    sent_messages,
    settings_of,
    token_in,
)
from tests.support import Agent

AS_ALICE = {"REMOTE_USER": ALICE}


def test_nobody_named_by_the_front_server_gets_401(tmp_path: Path) -> None:
    client = manager(invited(tmp_path), tmp_path / "sent").test_client()
    answer = client.get("/")
    assert answer.status_code == 401
    assert answer.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_home_leads_to_the_users_own_week(tmp_path: Path) -> None:
    client = manager(invited(tmp_path), tmp_path / "sent").test_client()
    answer = client.get("/", environ_base=AS_ALICE)
    assert answer.status_code == 302
    assert answer.headers["Location"] == f"/calendar/{ALICE}/"


def test_the_week_shows_each_instance_of_the_series_as_text(tmp_path: Path) -> None:
    client = manager(invited(tmp_path), tmp_path / "sent").test_client()
    weeks = [
        client.get(f"/calendar/{ALICE}/?week={day}", environ_base=AS_ALICE).get_data(as_text=True)
        for day in ("2030-01-07", "2030-01-14", "2030-01-28", "2030-02-04")
    ]
    escaped = "Team &lt;b&gt;sync&lt;/b&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt;"
    for page in weeks[:3]:
        assert escaped in page
        assert "<script>" not in page and "<b>sync" not in page
        assert "10:00–11:00" in page and "Room 3" in page and "needs-action" in page
    assert escaped not in weeks[3], "COUNT=4 ends the series on 29 January"


def test_the_week_is_in_the_users_zone(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    agent.set_pref(ALICE, "TZID", "Europe/Berlin")
    client = manager(agent, tmp_path / "sent").test_client()
    page = client.get(f"/calendar/{ALICE}/?week=2030-01-07", environ_base=AS_ALICE)
    assert "11:00–12:00" in page.get_data(as_text=True)
    assert "Europe/Berlin" in page.get_data(as_text=True)


def test_another_user_cannot_see_or_answer(tmp_path: Path) -> None:
    client = manager(invited(tmp_path), tmp_path / "sent").test_client()
    as_bob = {"REMOTE_USER": BOB}
    for path in (f"/calendar/{ALICE}/", f"/calendar/{ALICE}/requests"):
        answer = client.get(path, environ_base=as_bob)
        assert answer.status_code == 403
        assert SUMMARY.split()[0] not in answer.get_data(as_text=True).replace("403", "")
    with client.session_transaction() as session:  # bob's own session, with its token
        session.update(user=f"mailto:{BOB}", csrf="bobs-token")
    posted = client.post(
        f"/calendar/{ALICE}/requests",
        data={"csrf_token": "bobs-token", "uid": UID, "partstat": "DECLINED"},
        environ_base=as_bob,
    )
    assert posted.status_code == 403
    assert sent_messages(tmp_path / "sent") == []


@pytest.mark.parametrize("token", [None, "", "forged"])
def test_a_form_without_the_sessions_token_is_refused(tmp_path: Path, token: str | None) -> None:
    agent = invited(tmp_path)
    client = manager(agent, tmp_path / "sent").test_client()
    client.get(f"/calendar/{ALICE}/requests", environ_base=AS_ALICE)  # a session exists
    data = {"uid": UID, "partstat": "ACCEPTED", "recurrence_id": ""}
    if token is not None:
        data["csrf_token"] = token
    answer = client.post(f"/calendar/{ALICE}/requests", data=data, environ_base=AS_ALICE)
    assert answer.status_code == 403
    assert sent_messages(tmp_path / "sent") == []
    assert agent.requests(ALICE) == [(UID, "", "REQUEST")]


def test_the_header_is_believed_from_trusted_proxies_only(tmp_path: Path) -> None:
    access = AccessConfig("X-Remote-User", ("127.0.0.0/8",))
    client = manager(invited(tmp_path), tmp_path / "sent", access).test_client()
    headers = {"X-Remote-User": ALICE}
    trusted = client.get(
        f"/calendar/{ALICE}/", headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    )
    assert trusted.status_code == 200
    stranger = client.get(
        f"/calendar/{ALICE}/", headers=headers, environ_base={"REMOTE_ADDR": "192.0.2.7"}
    )
    assert stranger.status_code == 401


def answer_second_instance(agent: Agent, sent: Path) -> str:
    client = manager(agent, sent).test_client()
    page = client.get(f"/calendar/{ALICE}/requests", environ_base=AS_ALICE).get_data(as_text=True)
    assert f'value="{SECOND}"' in page, "each instance may be answered"
    answer = client.post(
        f"/calendar/{ALICE}/requests",
        data={
            "csrf_token": token_in(page),
            "uid": UID,
            "recurrence_id": SECOND,
            "partstat": "ACCEPTED",
        },
        environ_base=AS_ALICE,
    )
    assert answer.status_code == 302
    return client.get(answer.headers["Location"], environ_base=AS_ALICE).get_data(as_text=True)


def test_accepting_one_instance_sends_the_reply_and_records_it(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    page = answer_second_instance(agent, tmp_path / "sent")
    assert f"Your answer was sent to {BOB}." in page
    (message,) = sent_messages(tmp_path / "sent")
    assert message["From"] == ALICE and message["To"] == BOB
    data, reply = calendar_of(message)
    vobject.readOne(data.decode())  # a second parser reads it too
    assert str(reply["METHOD"]) == "REPLY"
    (event,) = reply.walk("VEVENT")
    assert str(event["UID"]) == UID
    assert event.decoded("RECURRENCE-ID").strftime("%Y%m%dT%H%M%SZ") == SECOND
    attendee = event["ATTENDEE"]
    assert str(attendee).lower() == f"mailto:{ALICE}"
    assert attendee.params["PARTSTAT"] == "ACCEPTED"
    # the series itself still waits for an answer; the instance shows accepted
    assert agent.requests(ALICE) == [(UID, "", "REQUEST")]
    client = manager(agent, tmp_path / "sent2").test_client()
    week = client.get(f"/calendar/{ALICE}/?week=2030-01-14", environ_base=AS_ALICE)
    assert "accepted" in week.get_data(as_text=True)


def test_the_store_is_as_imip_person_outgoing_records_the_reply(tmp_path: Path) -> None:
    through_manager = invited(tmp_path / "a")
    answer_second_instance(through_manager, tmp_path / "sent")
    (message,) = sent_messages(tmp_path / "sent")
    by_the_program = invited(tmp_path / "b")
    run = by_the_program.outgoing(message.as_bytes(), ALICE)
    assert run.code == 0, run.stdout + run.stderr
    assert through_manager.requests(ALICE) == by_the_program.requests(ALICE)
    exported = [a.admin("export", ALICE).stdout for a in (through_manager, by_the_program)]
    assert exported[0] == exported[1]
    shown = [a.admin("show", ALICE).stdout for a in (through_manager, by_the_program)]
    assert shown[0] == shown[1]


def test_an_answer_the_mail_system_does_not_take_waits_in_the_outbox(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    sendmail = tmp_path / "sendmail"
    sendmail.write_text("#!/bin/sh\ncat >/dev/null\nexit 75\n")  # EX_TEMPFAIL: try later
    sendmail.chmod(0o755)
    clock = FixedClock(parse_datetime(NOW))
    app = create_app(settings_of(agent), clock, SendmailSender(str(sendmail)), None, None, False)
    client = app.test_client()
    page = client.get(f"/calendar/{ALICE}/requests", environ_base=AS_ALICE).get_data(as_text=True)
    data = {"csrf_token": token_in(page), "uid": UID, "recurrence_id": "", "partstat": "ACCEPTED"}
    answer = client.post(f"/calendar/{ALICE}/requests", data=data, environ_base=AS_ALICE)
    shown = client.get(answer.headers["Location"], environ_base=AS_ALICE).get_data(as_text=True)
    assert "waits in the outbox" in shown
    assert agent.requests(ALICE) == [], "the answer is recorded"
    waiting, unreadable = agent.site().outbox.scan()
    assert len(waiting) == 1 and not unreadable
    assert waiting[0].recipients == [BOB]
