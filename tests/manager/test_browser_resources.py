"""The resources' pages in a real headless Chromium (the harness of
test_browser.py): room 3's owner opens the room from the list, finds
xavier's booking in the week's table, changes a preference (a value
``imip-admin prefs set`` refuses is refused beside its field, the next is
saved and ``prefs get`` reads it); alice, about to invite the room to a
series that clashes with that booking, checks the rooms first and reads
the forecast; the owner sees the rooms' timeline and sets a quota limit
(one ``imip-admin quota set-limit`` refuses is refused with its message,
the next is saved and ``quota show`` reads it). Screenshots as
test_browser.py saves them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait
from werkzeug.serving import BaseWSGIServer

from imip_agent.manager.calendars import grid_available
from imip_agent.manager.security import AccessConfig
from tests.manager.support import ALICE, manager, sent_messages
from tests.manager.test_browser import (
    Front,
    chromium,
    follow,
    heading,
    screenshots,
    serving,
    sideways,
)
from tests.manager.test_resources import ADMIN, OWNER, ROOM, XAVIER, site_with_rooms
from tests.support import Agent

#: One ordered scene (test_1_, test_2_, ...): one xdist worker, in order
#: (``--dist loadgroup`` in pyproject.toml).
pytestmark = pytest.mark.xdist_group(__name__)


@dataclass
class RoomScene:
    """The site with room 3, the manager as its owner and as alice, a browser."""

    agent: Agent
    sent: Path
    owner: str
    alice: str
    servers: list[BaseWSGIServer]
    browser: WebDriver
    shots: Path

    def shot(self, name: str) -> None:
        self.browser.save_screenshot(str(self.shots / f"manager-{name}.png"))


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoomScene]:
    root = tmp_path_factory.mktemp("resources")
    agent = site_with_rooms(root / "site")
    app = manager(agent, root / "sent", AccessConfig(admins=(ADMIN,)))
    (owner_server, owner), (alice_server, alice) = (
        serving(Front(app, who)) for who in (OWNER, ALICE)
    )
    made = RoomScene(
        agent,
        root / "sent",
        owner,
        alice,
        [owner_server, alice_server],
        chromium(),
        screenshots(root),
    )
    try:
        yield made
    finally:
        made.browser.quit()
        for server in made.servers:
            server.shutdown()


def test_1_the_owner_opens_the_rooms_week(scene: RoomScene) -> None:
    browser = scene.browser
    browser.get(f"{scene.owner}/")
    follow(browser, browser.find_element(By.LINK_TEXT, "Rooms"))
    assert heading(browser) == "Rooms and resources"
    follow(browser, browser.find_element(By.LINK_TEXT, "Room 3"))
    assert heading(browser) == "Room 3"
    for _ in range(2):  # from the week of 31 December to that of 14 January
        follow(browser, browser.find_element(By.LINK_TEXT, "Next week"))
    rows = browser.find_elements(By.CSS_SELECTOR, "table.bookings tbody tr")
    booked = [r.text for r in rows if "Board" in r.text]
    assert booked == [f"Tuesday 15 January 10:00–11:00 Board <b>meeting</b> {XAVIER} accepted"]
    scene.shot("resource-week")


def test_2_the_owner_changes_a_preference(scene: RoomScene) -> None:
    browser = scene.browser
    follow(browser, browser.find_element(By.LINK_TEXT, "Preferences"))
    assert heading(browser) == "Preferences of Room 3"
    field = browser.find_element(By.ID, "pref-max_duration")
    field.send_keys("four hours")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "form.preferences button"))
    error = browser.find_element(By.ID, "error-max_duration").text
    assert error == "not an RFC 5545 duration: 'four hours'"
    assert scene.agent.admin("prefs", "get", ROOM, "max_duration").stdout == "\n"
    browser.find_element(By.LINK_TEXT, "max_duration").click()  # to the field, beside its error
    scene.shot("resource-preferences-refused")
    field = browser.find_element(By.ID, "pref-max_duration")
    field.clear()
    field.send_keys("PT4H")
    Select(browser.find_element(By.ID, "pref-conflict_details")).select_by_value("no")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "form.preferences button"))
    assert browser.find_element(By.CSS_SELECTOR, "[role=status]").text == "Preferences saved."
    assert scene.agent.admin("prefs", "get", ROOM, "max_duration").stdout == "PT4H\n"
    assert scene.agent.admin("prefs", "get", ROOM, "conflict_details").stdout == "no\n"
    scene.shot("resource-preferences")


def test_3_alice_checks_the_room_before_inviting_it(scene: RoomScene) -> None:
    browser = scene.browser
    browser.get(f"{scene.alice}/calendar/{ALICE}/new")
    browser.find_element(By.ID, "summary").send_keys("Weekly review")
    for name, value in (("start_date", "01082030"), ("end_date", "01082030")):
        browser.find_element(By.ID, name).send_keys(value)
    for name, value in (("start_time", "1000AM"), ("end_time", "1100AM")):
        browser.find_element(By.ID, name).send_keys(value)
    Select(browser.find_element(By.ID, "tzid")).select_by_visible_text("UTC")
    Select(browser.find_element(By.ID, "freq")).select_by_value("WEEKLY")
    browser.find_element(By.ID, "byday-TU").click()
    Select(browser.find_element(By.ID, "ends")).select_by_value("count")
    browser.find_element(By.ID, "count").send_keys("4")
    rooms = browser.find_elements(By.CSS_SELECTOR, "table.rooms select")
    Select(rooms[-1]).select_by_value("NON-PARTICIPANT")  # Room 3 (after the car)
    follow(browser, browser.find_element(By.CSS_SELECTOR, "button[value=check]"))
    forecast = browser.find_element(By.CSS_SELECTOR, ".forecasts li").text
    assert forecast.startswith("Room 3: would decline.")
    assert "already booked 2030-01-15 10:00-11:00" in forecast
    assert XAVIER not in forecast, "conflict_details is now no"
    assert sent_messages(scene.sent) == []
    scene.shot("check-rooms")


def test_4_the_owner_sees_the_rooms_timeline(scene: RoomScene) -> None:
    if not grid_available():
        pytest.skip("no calendar grid: run tools/manager-assets (needs npm)")
    browser = scene.browser
    browser.get_log("browser")
    browser.get(f"{scene.owner}/resources/?week=2030-01-14")
    WebDriverWait(browser, 60).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#grid.ready .ec-event"))
    )
    scene.shot("resource-timeline")
    grid = browser.find_element(By.ID, "grid")
    assert "Room 3" in grid.text
    (event,) = grid.find_elements(By.CSS_SELECTOR, ".ec-event")
    title = event.get_attribute("textContent") or ""
    assert "Board <b>meeting</b>" in title, "the title is text: the markup is not HTML"
    assert event.find_elements(By.TAG_NAME, "b") == []
    logged = browser.get_log("browser")
    problems = [e for e in logged if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]]
    assert problems == [], "no script error, nothing the Content-Security-Policy refused"


def test_5_the_owner_sets_a_quota_limit(scene: RoomScene) -> None:
    browser = scene.browser
    browser.get(f"{scene.owner}/resources/{ROOM}/")
    follow(browser, browser.find_element(By.LINK_TEXT, "Quota use"))
    assert heading(browser) == "Quota use of Room 3"
    browser.find_element(By.ID, "who-1").send_keys("bob@example.com")
    browser.find_element(By.ID, "limit-1").send_keys("four hours")
    Select(browser.find_element(By.ID, "per-1")).select_by_value("week")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "form.limit button"))
    refused = browser.find_element(By.CSS_SELECTOR, ".errors[role=alert]").text
    assert "bad limit: not an RFC 5545 duration: 'four hours'" in refused
    field = browser.find_element(By.ID, "limit-1")
    field.clear()
    field.send_keys("3")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "form.limit button"))
    assert browser.find_element(By.CSS_SELECTOR, "[role=status]").text == "Limit saved."
    shown = scene.agent.admin("quota", "show", "q").stdout
    assert "  mailto:bob@example.com count week 3\n" in shown
    scene.shot("resource-quota")
    pages = ("/", "/decisions", "/quota", "/preferences")
    urls = [f"{scene.owner}/resources/{ROOM}{page}" for page in pages]
    assert sideways(browser, [f"{scene.owner}/resources/", *urls]) == [], "they fit a phone"
