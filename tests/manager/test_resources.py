"""The resources' pages through Flask's test client over a real site: the
list, a room's bookings, decisions, quota use and preferences; its owner
and an administrator may open them, anyone else gets 403; a form without
its token is refused; a preference refused by ``imip-admin prefs set`` is
refused by the form with the same message beside its field, and one
accepted is what ``prefs get`` then reads; a request waiting for the
owners is approved from the page, sending what ``imip-admin approve``
sends."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from imip_agent.manager.security import AccessConfig
from imiptools.views.resources import resources
from tests.manager.support import manager, sent_messages, token_in
from tests.support import Agent, calendar_text, imip_message, vevent

NOW = "2030-01-01T12:00:00Z"
ROOM = "room3@example.com"
CAR = "car@example.com"
OWNER = "owner@example.com"
ADMIN = "admin@example.com"
BOB = "bob@example.com"
XAVIER = "xavier@example.com"
#: Markup in a booking's summary: shown as text, never as HTML.
BOARD = "Board <b>meeting</b>"
PAGES = ("/", "/decisions", "/quota", "/preferences")


def site_with_rooms(root: Path) -> Agent:
    """A site with room 3 (owned by OWNER, booked by xavier on 15 January
    10:00-11:00 UTC, recording in quota q) and a car nobody owns."""
    return rooms_in(Agent(root, now=NOW))


def rooms_in(agent: Agent) -> Agent:
    """``agent``'s site with room 3 and the car of :func:`site_with_rooms`."""
    for name, value in (
        ("CN", "Room 3"),
        ("CUTYPE", "ROOM"),
        ("scheduling_function", "schedule_in_freebusy\ncheck_quota q"),
        ("approvers", OWNER),
        ("conflict_details", "yes"),
    ):
        agent.set_pref(ROOM, name, value)
    agent.set_pref(CAR, "scheduling_function", "schedule_in_freebusy")
    assert agent.admin("quota", "set-limit", "q", "*", "PT10H", "--per", "week").returncode == 0
    board = vevent(
        "board@example.com",
        "20300115T100000Z",
        "20300115T110000Z",
        organiser=XAVIER,
        attendees=(ROOM,),
        summary=BOARD,
    )
    run = agent.resource(imip_message(calendar_text(board), sender=XAVIER, to=ROOM), recipient=ROOM)
    assert run.code == 0, run.stdout + run.stderr
    return agent


def client_of(agent: Agent, sent: Path) -> FlaskClient:
    return manager(agent, sent, AccessConfig(admins=(ADMIN,))).test_client()


def as_user(user: str) -> dict[str, str]:
    return {"REMOTE_USER": user}


@pytest.fixture
def agent(tmp_path: Path) -> Agent:
    return site_with_rooms(tmp_path / "site")


def test_the_library_lists_the_sites_resources_with_their_kind_and_owners(agent: Agent) -> None:
    found = resources(agent.site())
    assert [(r.address, r.cn, r.cutype, r.owners) for r in found] == [
        (CAR, "", "RESOURCE", ()),
        (ROOM, "Room 3", "ROOM", (OWNER,)),
    ]


def test_administrators_are_addresses() -> None:
    assert AccessConfig(admins=("mailto:Admin@Example.com",)).admins == ("admin@example.com",)
    with pytest.raises(ValueError, match="administrator"):
        AccessConfig(admins=("not an address",))


def test_the_list_links_only_what_the_user_manages(agent: Agent, tmp_path: Path) -> None:
    client = client_of(agent, tmp_path / "sent")
    owner = client.get("/resources/", environ_base=as_user(OWNER)).get_data(as_text=True)
    assert f'href="/resources/{ROOM}/"' in owner and f'href="/resources/{CAR}/"' not in owner
    admin = client.get("/resources/", environ_base=as_user(ADMIN)).get_data(as_text=True)
    assert f'href="/resources/{ROOM}/"' in admin and f'href="/resources/{CAR}/"' in admin
    bob = client.get("/resources/", environ_base=as_user(BOB)).get_data(as_text=True)
    assert "Room 3" in bob and 'href="/resources/room3' not in bob


@pytest.mark.parametrize("page", PAGES)
def test_the_owner_and_an_admin_may_open_a_rooms_pages_others_get_403(
    agent: Agent, tmp_path: Path, page: str
) -> None:
    client = client_of(agent, tmp_path / "sent")
    path = f"/resources/{ROOM}{page}"
    assert client.get(path, environ_base=as_user(OWNER)).status_code == 200
    assert client.get(path, environ_base=as_user(ADMIN)).status_code == 200
    assert client.get(path, environ_base=as_user(BOB)).status_code == 403
    assert client.get(f"/resources/{CAR}{page}", environ_base=as_user(OWNER)).status_code == 403
    assert client.get(f"/resources/{BOB}{page}", environ_base=as_user(ADMIN)).status_code == 404


@pytest.mark.parametrize("page", ["/preferences", "/approvals"])
def test_posts_by_others_are_403(agent: Agent, tmp_path: Path, page: str) -> None:
    client = client_of(agent, tmp_path / "sent")
    shown = client.get(f"/calendar/{BOB}/new", environ_base=as_user(BOB)).get_data(as_text=True)
    form = {"csrf_token": token_in(shown), "CN": "Mine", "uid": "x", "verdict": "approve"}
    answer = client.post(f"/resources/{ROOM}{page}", data=form, environ_base=as_user(BOB))
    assert answer.status_code == 403
    assert agent.admin("prefs", "get", ROOM, "CN").stdout == "Room 3\n"


@pytest.mark.parametrize("page", ["/preferences", "/approvals"])
def test_a_post_without_the_sessions_token_is_refused(
    agent: Agent, tmp_path: Path, page: str
) -> None:
    client = client_of(agent, tmp_path / "sent")
    client.get(f"/resources/{ROOM}/", environ_base=as_user(OWNER))
    form = {"CN": "Changed", "uid": "x", "verdict": "approve", "csrf_token": "forged"}
    answer = client.post(f"/resources/{ROOM}{page}", data=form, environ_base=as_user(OWNER))
    assert answer.status_code == 403
    assert agent.admin("prefs", "get", ROOM, "CN").stdout == "Room 3\n"


def test_the_week_shows_the_bookings_as_a_table_of_text(agent: Agent, tmp_path: Path) -> None:
    client = client_of(agent, tmp_path / "sent")
    page = client.get(f"/resources/{ROOM}/?week=2030-01-14", environ_base=as_user(OWNER)).get_data(
        as_text=True
    )
    assert "<caption>Bookings of Room 3 from 14 January 2030" in page
    assert "Board &lt;b&gt;meeting&lt;/b&gt;" in page and "<b>meeting" not in page
    assert '<th scope="row">Tuesday 15 January</th>' in page
    assert "10:00–11:00" in page and XAVIER in page
    assert page.count("No bookings.") == 6


def test_the_decision_log_and_the_quota_use(agent: Agent, tmp_path: Path) -> None:
    client = client_of(agent, tmp_path / "sent")
    log = client.get(f"/resources/{ROOM}/decisions", environ_base=as_user(OWNER))
    text = log.get_data(as_text=True)
    assert "board@example.com" in text and "accepted" in text
    quota = client.get(f"/resources/{ROOM}/quota", environ_base=as_user(OWNER))
    text = quota.get_data(as_text=True)
    assert "Quota q" in text and "* time week PT10H" in text
    assert '<th scope="row">mailto:xavier@example.com</th>' in text


def _prefs_form(client: FlaskClient, user: str) -> dict[str, str]:
    page = client.get(f"/resources/{ROOM}/preferences", environ_base=as_user(user))
    return {"csrf_token": token_in(page.get_data(as_text=True))}


def test_a_preference_prefs_set_refuses_is_refused_beside_its_field(
    agent: Agent, tmp_path: Path
) -> None:
    client = client_of(agent, tmp_path / "sent")
    form = _prefs_form(client, OWNER) | {"CN": "Room Three", "max_duration": "four hours"}
    answer = client.post(f"/resources/{ROOM}/preferences", data=form, environ_base=as_user(OWNER))
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    refused = agent.admin("prefs", "set", ROOM, "max_duration", "four hours")
    assert refused.returncode == 64
    said = refused.stdout + refused.stderr
    message = said.split("invalid value for max_duration: ", 1)[1].strip()
    assert f'<span class="error" id="error-max_duration">{message}</span>' in page.replace(
        "&#39;", "'"
    )
    assert 'aria-invalid="true"' in page and 'value="four hours"' in page
    assert agent.admin("prefs", "get", ROOM, "CN").stdout == "Room 3\n", "nothing written"


def test_a_preference_changed_by_the_owner_is_what_prefs_get_reads(
    agent: Agent, tmp_path: Path
) -> None:
    client = client_of(agent, tmp_path / "sent")
    form = _prefs_form(client, OWNER) | {
        "CN": "Room Three",
        "CUTYPE": "ROOM",
        "scheduling_function": "schedule_in_freebusy\r\ncheck_quota q",
        "approvers": OWNER,
        "conflict_details": "no",
        "max_duration": "PT4H",
    }
    answer = client.post(f"/resources/{ROOM}/preferences", data=form, environ_base=as_user(OWNER))
    assert answer.status_code == 302
    assert agent.admin("prefs", "get", ROOM, "max_duration").stdout == "PT4H\n"
    assert agent.admin("prefs", "get", ROOM, "CN").stdout == "Room Three\n"
    assert agent.admin("prefs", "get", ROOM, "conflict_details").stdout == "no\n"
    shown = agent.admin("prefs", "get", ROOM, "scheduling_function").stdout
    assert shown == "schedule_in_freebusy\ncheck_quota q\n"
    page = client.get(answer.headers["Location"], environ_base=as_user(OWNER))
    assert "Preferences saved." in page.get_data(as_text=True)


def test_an_admin_changes_a_preference_and_empty_unsets(agent: Agent, tmp_path: Path) -> None:
    client = client_of(agent, tmp_path / "sent")
    form = _prefs_form(client, ADMIN) | {
        "CN": "",
        "CUTYPE": "ROOM",
        "scheduling_function": "schedule_in_freebusy\ncheck_quota q",
        "approvers": OWNER,
        "conflict_details": "yes",
    }
    answer = client.post(f"/resources/{ROOM}/preferences", data=form, environ_base=as_user(ADMIN))
    assert answer.status_code == 302
    assert agent.site().preferences.get(f"mailto:{ROOM}", "CN") is None


def test_the_owner_approves_a_waiting_request_as_imip_admin_would(tmp_path: Path) -> None:
    """Two twin sites, one request waiting at each: approved on the page in
    one, with ``imip-admin approve`` in the other; the same mail leaves."""
    twins = [site_with_rooms(tmp_path / name) for name in ("web", "admin")]
    request = vevent(
        "offsite@example.com",
        "20300116T100000Z",
        "20300116T110000Z",
        organiser=BOB,
        attendees=(ROOM,),
        summary="Offsite",
    )
    message = imip_message(calendar_text(request), sender=BOB, to=ROOM, message_id="<o@x>")
    for twin in twins:
        twin.set_pref(ROOM, "approval", "always")
        run = twin.resource(message, recipient=ROOM)
        assert run.code == 0, run.stderr
    web, admin = twins
    client = client_of(web, tmp_path / "sent")
    page = client.get(f"/resources/{ROOM}/", environ_base=as_user(OWNER)).get_data(as_text=True)
    assert "offsite@example.com" in page and "Approve" in page
    form = {"csrf_token": token_in(page), "uid": "offsite@example.com", "verdict": "approve"}
    form["reason"] = "fine"
    answer = client.post(f"/resources/{ROOM}/approvals", data=form, environ_base=as_user(OWNER))
    assert answer.status_code == 302
    done = admin.admin("approve", ROOM, "offsite@example.com", "--reason", "fine")
    assert done.returncode == 0, done.stderr
    from_web = [_gist(m) for m in sent_messages(tmp_path / "sent")]
    spooled = [
        message_from_bytes(m.message, policy=policy.default) for m in admin.site().outbox.pending()
    ]
    assert sorted(_gist(m) for m in spooled) == sorted(from_web)  # type: ignore[arg-type]
    assert "Subject: Accepted: Offsite" in {m[0] for m in from_web}
    assert web.site().outbox.pending() == []
    page = client.get(f"/resources/{ROOM}/", environ_base=as_user(OWNER)).get_data(as_text=True)
    assert "No request waits for its owners." in page


def _gist(message: EmailMessage) -> tuple[str, ...]:
    """A message without what differs from one run to the next (its
    Message-ID, MIME boundaries, line ends): headers and parts."""
    headers = tuple(f"{n}: {message[n]}" for n in ("Subject", "From", "To", "In-Reply-To"))
    parts = tuple(
        str(part.get_content()).replace("\r\n", "\n")
        for part in message.walk()
        if not part.is_multipart()
    )
    return headers + parts


def test_a_hand_edited_value_outside_the_choices_is_kept_unless_changed(
    agent: Agent, tmp_path: Path
) -> None:
    agent.site().preferences.set(f"mailto:{ROOM}", "conflict_details", "maybe")
    client = client_of(agent, tmp_path / "sent")
    page = client.get(f"/resources/{ROOM}/preferences", environ_base=as_user(OWNER))
    text = page.get_data(as_text=True)
    assert '<option value="maybe" selected>maybe (not valid: the default applies)' in text
    form = _prefs_form(client, OWNER) | {
        "CN": "Room 3",
        "CUTYPE": "ROOM",
        "scheduling_function": "schedule_in_freebusy\ncheck_quota q",
        "approvers": OWNER,
        "conflict_details": "maybe",
        "LANG": "de",
    }
    answer = client.post(f"/resources/{ROOM}/preferences", data=form, environ_base=as_user(OWNER))
    assert answer.status_code == 302, "the value untouched is not validated again"
    assert agent.site().preferences.get(f"mailto:{ROOM}", "conflict_details") == "maybe"
    assert agent.admin("prefs", "get", ROOM, "LANG").stdout == "de\n"


def _limits(agent: Agent) -> list[str]:
    """The limits of quota q, as ``imip-admin quota show`` prints them."""
    shown = agent.admin("quota", "show", "q").stdout.splitlines()
    start = shown.index("limits:") + 1
    return [line.strip() for line in shown[start:] if line.startswith("  ")]


def _quota_form(client: FlaskClient, user: str) -> dict[str, str]:
    page = client.get(f"/resources/{ROOM}/quota", environ_base=as_user(user))
    return {"csrf_token": token_in(page.get_data(as_text=True)), "quota": "q"}


def test_the_owner_sets_and_removes_limits_as_imip_admin_quota_set_limit(
    agent: Agent, tmp_path: Path
) -> None:
    client = client_of(agent, tmp_path / "sent")
    page = client.get(f"/resources/{ROOM}/quota", environ_base=as_user(OWNER))
    assert "Set a limit of q" in page.get_data(as_text=True)
    form = _quota_form(client, OWNER) | {"who": BOB, "limit": "3", "per": "week"}
    saved = client.post(f"/resources/{ROOM}/quota", data=form, environ_base=as_user(OWNER))
    assert saved.status_code == 302
    rolling = _quota_form(client, OWNER) | {"who": "staff", "limit": "PT6H", "window": "p7d"}
    assert (
        client.post(
            f"/resources/{ROOM}/quota", data=rolling, environ_base=as_user(OWNER)
        ).status_code
        == 302
    )
    assert _limits(agent) == [
        "* time week PT10H",
        "mailto:bob@example.com count week 3",
        "@staff time rolling:P7D PT6H",
    ]
    shown = client.get(f"/resources/{ROOM}/quota", environ_base=as_user(OWNER))
    text = shown.get_data(as_text=True)
    assert "Remove the limit of bob@example.com per week" in text and "Limit saved." in text
    gone = _quota_form(client, OWNER) | {
        "who": "*",
        "limit": "PT10H",
        "per": "week",
        "action": "remove",
    }
    removed = client.post(f"/resources/{ROOM}/quota", data=gone, environ_base=as_user(OWNER))
    assert removed.status_code == 302
    assert _limits(agent) == ["mailto:bob@example.com count week 3", "@staff time rolling:P7D PT6H"]


@pytest.mark.parametrize(
    ("limit", "per"), [("four hours", "week"), ("3", "P0D"), ("3", "fortnight")]
)
def test_a_limit_imip_admin_refuses_is_refused_with_its_message(
    agent: Agent, tmp_path: Path, limit: str, per: str
) -> None:
    client = client_of(agent, tmp_path / "sent")
    refused = agent.admin("quota", "set-limit", "q", BOB, limit, "--per", per)
    assert refused.returncode == 65
    message = refused.stdout.strip().removeprefix("5.6.0 ")
    form = _quota_form(client, OWNER) | {"who": BOB, "limit": limit, "window": per}
    answer = client.post(f"/resources/{ROOM}/quota", data=form, environ_base=as_user(OWNER))
    assert answer.status_code == 422
    text = answer.get_data(as_text=True)
    assert message.replace("'", "&#39;") in text and "Nothing was saved" in text
    assert f'value="{limit}"' in text, "the value is kept"
    assert _limits(agent) == ["* time week PT10H"]


def test_only_who_manages_every_room_of_a_quota_changes_its_limits(
    agent: Agent, tmp_path: Path
) -> None:
    other = "room4@example.com"
    agent.set_pref(other, "scheduling_function", "schedule_in_freebusy\ncheck_quota q")
    agent.set_pref(other, "approvers", XAVIER)
    client = client_of(agent, tmp_path / "sent")
    page = client.get(f"/resources/{ROOM}/quota", environ_base=as_user(OWNER))
    assert "Set a limit of q" not in page.get_data(as_text=True), "room 4 is not hers"
    form = _prefs_form(client, OWNER) | {"quota": "q", "who": "*", "limit": "PT99H", "per": "week"}
    answer = client.post(f"/resources/{ROOM}/quota", data=form, environ_base=as_user(OWNER))
    assert answer.status_code == 403
    admin = _quota_form(client, ADMIN) | {"who": "*", "limit": "PT20H", "per": "week"}
    assert (
        client.post(f"/resources/{ROOM}/quota", data=admin, environ_base=as_user(ADMIN)).status_code
        == 302
    )
    assert _limits(agent) == ["* time week PT20H"]


def test_quota_posts_by_others_without_the_token_or_for_another_quota_are_refused(
    agent: Agent, tmp_path: Path
) -> None:
    client = client_of(agent, tmp_path / "sent")
    shown = client.get(f"/calendar/{BOB}/new", environ_base=as_user(BOB)).get_data(as_text=True)
    limit = {"quota": "q", "who": "*", "limit": "PT99H", "per": "week"}
    by_bob = client.post(
        f"/resources/{ROOM}/quota",
        data=limit | {"csrf_token": token_in(shown)},
        environ_base=as_user(BOB),
    )
    assert by_bob.status_code == 403
    client.get(f"/resources/{ROOM}/quota", environ_base=as_user(OWNER))
    forged = client.post(
        f"/resources/{ROOM}/quota",
        data=limit | {"csrf_token": "forged"},
        environ_base=as_user(OWNER),
    )
    assert forged.status_code == 403
    other = _quota_form(client, OWNER) | limit | {"quota": "cars"}
    elsewhere = client.post(f"/resources/{ROOM}/quota", data=other, environ_base=as_user(OWNER))
    assert elsewhere.status_code == 404
    assert _limits(agent) == ["* time week PT10H"]
