"""The manager speaks its user's language: their ``LANG`` preference, else
the browser's ``Accept-Language``, else English; dates said in it
(:mod:`imip_agent.manager.language`)."""

from __future__ import annotations

import html
import re
from datetime import date, datetime
from pathlib import Path

import pytest

from imip_agent.manager.eventform import describe
from imip_agent.manager.language import available, choose, said
from imip_agent.manager.security import AccessConfig
from imiptools.i18n import translator
from tests.manager.support import ALICE, BOB, invited, manager, token_in
from tests.manager.test_organiser import fields
from tests.manager.test_resources import OWNER, ROOM, rooms_in, site_with_rooms

AS_ALICE = {"REMOTE_USER": ALICE}
WEEK = f"/calendar/{ALICE}/?week=2030-01-07"


def test_the_agents_languages_are_the_managers() -> None:
    assert available() == ("en", "de")


@pytest.mark.parametrize(
    ("stated", "accepted", "site", "chosen"),
    [
        ("de", ["en"], None, "de"),
        ("en", ["de"], None, "en"),
        (None, ["fr", "de-AT", "en"], None, "de"),
        (None, ["fr"], "de_DE.UTF-8", "de"),
        (None, [], None, "en"),
        ("xx", ["zz"], "!", "en"),
    ],
)
def test_the_users_preference_comes_before_the_browser(
    stated: str | None, accepted: list[str], site: str | None, chosen: str
) -> None:
    assert choose(stated, accepted, site) == chosen


def test_dates_are_said_in_the_language() -> None:
    german, english = translator("de"), translator("en")
    assert said(date(2030, 1, 8), "date", german) == "Dienstag, 8. Januar 2030"
    assert said(date(2030, 1, 8), "date", english) == "Tuesday 08 January 2030"
    moment = datetime(2030, 3, 5, 9, 30)
    assert said(moment, "short", german) == "Di 5. Mär 2030 09:30"
    assert said(moment, "month", german) == "März 2030"


def test_a_user_who_set_german_gets_german_pages(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    agent.set_pref(ALICE, "LANG", "de")
    client = manager(agent, tmp_path / "sent").test_client()
    page = client.get(WEEK, environ_base=AS_ALICE, headers={"Accept-Language": "en"})
    text = page.get_data(as_text=True)
    assert '<html lang="de">' in text
    assert "Woche vom Montag, 7. Januar 2030" in text
    assert "Dienstag, 8. Januar" in text and "unbeantwortet" in text
    assert "Week of" not in text and "Tuesday" not in text
    requests = client.get(f"/calendar/{ALICE}/requests", environ_base=AS_ALICE)
    assert "Zusagen" in requests.get_data(as_text=True)


def test_without_a_preference_the_browser_decides(tmp_path: Path) -> None:
    client = manager(invited(tmp_path), tmp_path / "sent").test_client()
    german = client.get(WEEK, environ_base=AS_ALICE, headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert "Woche vom" in german.get_data(as_text=True)
    english = client.get(WEEK, environ_base=AS_ALICE, headers={"Accept-Language": "fr, en;q=0.5"})
    page = english.get_data(as_text=True)
    assert '<html lang="en">' in page and "Week of Monday 07 January 2030" in page


def test_a_refusal_is_said_in_the_browsers_language(tmp_path: Path) -> None:
    client = manager(invited(tmp_path), tmp_path / "sent").test_client()
    other = client.get(
        "/calendar/bob@example.com/", environ_base=AS_ALICE, headers={"Accept-Language": "de"}
    )
    assert other.status_code == 403
    assert "Dies dürfen Sie weder sehen noch ändern." in other.get_data(as_text=True)


def test_the_resources_pages_speak_german_too(tmp_path: Path) -> None:
    client = manager(site_with_rooms(tmp_path), tmp_path / "sent").test_client()
    german = {"Accept-Language": "de"}
    owner = {"REMOTE_USER": OWNER}
    listing = client.get("/resources/", environ_base=owner, headers=german)
    text = listing.get_data(as_text=True)
    assert "Räume und Ressourcen" in text and "<td>Raum</td>" in text
    week = client.get(f"/resources/{ROOM}/?week=2030-01-14", environ_base=owner, headers=german)
    page = week.get_data(as_text=True)
    assert "Buchungen, Woche vom Montag, 14. Januar 2030" in page
    assert "Dienstag, 15. Januar" in page and "zugesagt" in page


def test_the_event_form_speaks_german(tmp_path: Path) -> None:
    client = manager(invited(tmp_path), tmp_path / "sent").test_client()
    page = client.get(
        f"/calendar/{ALICE}/new", environ_base=AS_ALICE, headers={"Accept-Language": "de"}
    ).get_data(as_text=True)
    assert "Einladung senden" in page and ">Wöchentlich<" in page and ">Erforderlich<" in page
    assert "Send the invitation" not in page


@pytest.mark.parametrize(
    ("rule", "said"),
    [
        ("", "keine Wiederholung"),
        (
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;UNTIL=20300630",
            "jede 2. Woche am Dienstag bis 30. Juni 2030",
        ),
        ("FREQ=DAILY;COUNT=4", "jeden Tag 4-mal"),
        ("FREQ=MONTHLY;BYDAY=-1FR", "jeden Monat am letzten Freitag"),
        ("FREQ=YEARLY;BYMONTHDAY=1,15", "jedes Jahr an den Monatstagen 1 und 15"),
        (
            "FREQ=MONTHLY;BYDAY=MO,TU;BYSETPOS=1",
            "jeden Monat am Montag und Dienstag (davon jeweils 1.)",
        ),
    ],
)
def test_a_rule_in_german_words(rule: str, said: str) -> None:
    assert describe(rule, None, "de") == said


def test_the_forms_checks_speak_german(tmp_path: Path) -> None:
    client = manager(invited(tmp_path), tmp_path / "sent").test_client()
    headers = {"Accept-Language": "de"}
    page = client.get(f"/calendar/{ALICE}/new", environ_base=AS_ALICE, headers=headers)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert token
    fields = {"csrf_token": token.group(1), "summary": "", "start_date": "", "end_date": ""}
    fields |= {"action": "send", "tzid": "Europe/Berlin"}
    refused = client.post(
        f"/calendar/{ALICE}/new", data=fields, environ_base=AS_ALICE, headers=headers
    )
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "Beginn: Geben Sie ein Datum und eine Uhrzeit an." in text
    assert "Titel: Sagen Sie, was der Termin ist." in text
    fields |= {"summary": "Planung", "start_date": "2030-01-08", "start_time": "10:00"}
    fields |= {"end_date": "2030-01-08", "end_time": "09:00"}
    backwards = client.post(
        f"/calendar/{ALICE}/new", data=fields, environ_base=AS_ALICE, headers=headers
    )
    assert "Das Ende muss nach dem Beginn liegen." in backwards.get_data(as_text=True)


def _visible(page: str) -> list[str]:
    """The lines of text a page shows (markup, scripts and styles left out)."""
    page = re.sub(r"<(script|style)[^>]*>.*?</\1>", "", page, flags=re.S)
    text = html.unescape(re.sub(r"<[^>]+>", "\n", page))
    return [line.strip() for line in text.splitlines() if line.strip()]


def test_every_page_speaks_german(tmp_path: Path) -> None:
    """No message of the catalogue is left in English on any page of a
    German user: the calendar views, requests, find a time, subscriptions,
    the event form, an event and one occurrence, the resources' pages
    (their preferences' help included) and an error page."""
    agent = rooms_in(invited(tmp_path))
    client = manager(agent, tmp_path / "sent", AccessConfig(admins=(ALICE,))).test_client()
    german = {"Accept-Language": "de"}
    page = client.get(f"/calendar/{ALICE}/new", environ_base=AS_ALICE, headers=german)
    form = fields()
    form["csrf_token"] = token_in(page.get_data(as_text=True))
    form["action"] = "send"
    made = client.post(f"/calendar/{ALICE}/new", data=form, environ_base=AS_ALICE)
    event = made.headers["Location"]
    uid = event.partition("uid=")[2]
    catalogue = translator("de")
    english = {
        m
        for m in catalogue._catalog  # type: ignore[attr-defined]
        if isinstance(m, str) and len(m) > 3 and "{" not in m and catalogue.gettext(m) != m
    }
    for path in (
        WEEK,
        f"/calendar/{ALICE}/month?month=2030-01",
        f"/calendar/{ALICE}/month?month=2030-01&busy=show&empty=hide",
        f"/calendar/{ALICE}/day?day=2030-01-08&busy=show",
        f"/calendar/{ALICE}/requests",
        f"/calendar/{ALICE}/find-time",
        f"/calendar/{ALICE}/subscriptions",
        f"/calendar/{ALICE}/new",
        event,
        f"/calendar/{ALICE}/event/instance?uid={uid}&rid=20300219T090000Z",
        "/resources/",
        f"/resources/{ROOM}/",
        f"/resources/{ROOM}/decisions",
        f"/resources/{ROOM}/quota",
        f"/resources/{ROOM}/preferences",
        f"/calendar/{BOB}/",
    ):
        shown = client.get(path, environ_base=AS_ALICE, headers=german)
        assert shown.status_code in (200, 403), path
        left = [line for line in _visible(shown.get_data(as_text=True)) if line in english]
        assert left == [], (path, left)
