"""Subscription feeds: made and revoked on the page (with its form token)
and with ``imip-admin web-feed``; read without a login; a wrong or revoked
token is 404; what they give parses with icalendar and vobject and is what
``imip-admin export`` and ``freebusy`` print."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import vobject
from flask.testing import FlaskClient
from icalendar import Calendar

from imip_agent.manager.accounts import manager_home
from imip_agent.manager.app import create_app
from imiptools.dates import FixedClock, parse_datetime
from imiptools.mail.send import DirectorySender
from tests.manager.accounts_support import (
    ALICE_PASSWORD,
    admin,
    log_in,
    password_manager,
    set_password,
)
from tests.manager.support import (
    ALICE,
    BOB,
    NOW,
    UID,
    invited,
    manager,
    settings_of,
    token_in,
)
from tests.support import Agent

AS_ALICE = {"REMOTE_USER": ALICE}
URL = re.compile(r'value="http://localhost(/feed/[A-Za-z0-9_-]+\.ics)"')


def make_feed(client: FlaskClient, kind: str, environ: dict[str, str] | None = None) -> str:
    """A new feed of ``kind`` made on the page; its path (shown once)."""
    environ = environ or {}
    page = client.get(f"/calendar/{ALICE}/subscriptions", environ_base=environ)
    assert page.status_code == 200
    data = {
        "csrf_token": token_in(page.get_data(as_text=True)),
        "kind": kind,
        "label": "phone",
        "action": "make",
    }
    made = client.post(f"/calendar/{ALICE}/subscriptions", data=data, environ_base=environ)
    assert made.status_code == 200
    found = URL.search(made.get_data(as_text=True))
    assert found, "the new feed's address is on the page"
    return found.group(1)


def feed_ids(agent: Agent) -> list[str]:
    listed = admin(agent, "web-feed", "list", ALICE).stdout
    return [line.split("\t")[0] for line in listed.splitlines()]


def test_the_events_feed_needs_no_login_and_parses(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client = manager(agent, tmp_path / "sent").test_client()
    path = make_feed(client, "events", AS_ALICE)
    answer = manager(agent, tmp_path / "sent").test_client().get(path)  # nobody logged in
    assert answer.status_code == 200
    assert answer.mimetype == "text/calendar"
    data = answer.get_data()
    calendar = Calendar.from_ical(data)
    (event,) = calendar.walk("VEVENT")
    assert str(event["UID"]) == UID and "RRULE" in event
    assert "METHOD" not in calendar, "a subscription, not a scheduling message"
    parsed = vobject.readOne(data.decode())
    assert parsed.vevent.uid.value == UID
    assert data.decode() == admin(agent, "export", ALICE).stdout.replace("\n", "\r\n")


def test_the_freebusy_feed_gives_busy_periods_only(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client = manager(agent, tmp_path / "sent").test_client()
    data = client.get(make_feed(client, "freebusy", AS_ALICE)).get_data()
    calendar = Calendar.from_ical(data)
    (busy,) = calendar.walk("VFREEBUSY")
    assert calendar.walk("VEVENT") == []
    assert str(busy["ORGANIZER"]).lower() == f"mailto:{ALICE}"
    assert "20300115T100000Z/" in data.decode(), "each instance of the series"
    assert b"Team" not in data, "no event text in free/busy"
    parsed = vobject.readOne(data.decode())
    assert parsed.vfreebusy.organizer.value.lower() == f"mailto:{ALICE}"


def test_a_wrong_or_revoked_token_is_404(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client = manager(agent, tmp_path / "sent").test_client()
    path = make_feed(client, "events", AS_ALICE)
    assert client.get(path).status_code == 200
    assert client.get("/feed/wrong-token.ics").status_code == 404
    assert client.get(path.replace(".ics", "x.ics")).status_code == 404
    (feed_id,) = feed_ids(agent)
    page = client.get(f"/calendar/{ALICE}/subscriptions", environ_base=AS_ALICE)
    assert "phone" in page.get_data(as_text=True)
    revoke = {
        "csrf_token": token_in(page.get_data(as_text=True)),
        "action": "revoke",
        "id": feed_id,
    }
    done = client.post(f"/calendar/{ALICE}/subscriptions", data=revoke, environ_base=AS_ALICE)
    assert done.status_code == 302
    assert client.get(path).status_code == 404
    assert feed_ids(agent) == []


def test_a_feed_form_without_its_token_is_refused(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client = manager(agent, tmp_path / "sent").test_client()
    client.get(f"/calendar/{ALICE}/subscriptions", environ_base=AS_ALICE)
    data = {"kind": "events", "label": "x", "action": "make", "csrf_token": "forged"}
    answer = client.post(f"/calendar/{ALICE}/subscriptions", data=data, environ_base=AS_ALICE)
    assert answer.status_code == 403
    assert feed_ids(agent) == []


def test_another_user_cannot_make_or_revoke_my_feeds(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client = manager(agent, tmp_path / "sent").test_client()
    make_feed(client, "events", AS_ALICE)
    (feed_id,) = feed_ids(agent)
    as_bob = {"REMOTE_USER": BOB}
    page = client.get(f"/calendar/{BOB}/subscriptions", environ_base=as_bob)
    data = {"csrf_token": token_in(page.get_data(as_text=True)), "action": "revoke", "id": feed_id}
    answer = client.post(f"/calendar/{ALICE}/subscriptions", data=data, environ_base=as_bob)
    assert answer.status_code == 403
    assert feed_ids(agent) == [feed_id]


def test_imip_admin_makes_and_revokes_feeds_keeping_only_hashes(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    made = admin(agent, "web-feed", "add", ALICE, "--kind", "freebusy", "--label", "team")
    assert made.returncode == 0, made.stdout + made.stderr
    feed_id, kind, token = made.stdout.strip().split("\t")
    assert kind == "freebusy"
    path = manager_home(settings_of(agent)) / "feeds"
    assert token not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    client = manager(agent, tmp_path / "sent").test_client()
    assert b"VFREEBUSY" in client.get(f"/feed/{token}.ics").get_data()
    assert admin(agent, "web-feed", "revoke", ALICE, feed_id).returncode == 0
    assert client.get(f"/feed/{token}.ics").status_code == 404
    assert admin(agent, "web-feed", "revoke", ALICE, feed_id).returncode == 67


def test_feeds_need_no_login_when_users_log_in_with_a_password(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    set_password(agent, ALICE, ALICE_PASSWORD)
    app = password_manager(agent, tmp_path / "sent")
    client = app.test_client()
    assert log_in(client, ALICE, ALICE_PASSWORD) == 302
    path = make_feed(client, "events")
    anonymous = app.test_client()
    answer = anonymous.get(path)
    assert answer.status_code == 200 and b"BEGIN:VCALENDAR" in answer.get_data()
    assert "Set-Cookie" not in answer.headers, "a feed makes no session"
    assert anonymous.get("/feed/wrong.ics").status_code == 404


def test_served_for_https_the_feeds_address_is_https(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    clock = FixedClock(parse_datetime(NOW))
    app = create_app(settings_of(agent), clock, DirectorySender(tmp_path / "sent"))  # Secure
    client = app.test_client()
    page = client.get(f"/calendar/{ALICE}/subscriptions", environ_base=AS_ALICE)
    data = {"csrf_token": token_in(page.get_data(as_text=True)), "kind": "events", "action": "make"}
    made = client.post(  # over http to the application, as from a TLS proxy
        f"/calendar/{ALICE}/subscriptions", data=data, environ_base=AS_ALICE
    )
    assert 'value="https://localhost/feed/' in made.get_data(as_text=True)
