"""imip-manager's own login, the month view, find a time and the feeds in
a real headless Chromium, as ``test_browser.py`` drives it (same browser
setup, its helpers; skipped or failing as it is without Chromium).

Here the manager authenticates users itself (``--auth password``): alice's
password is set with the real ``imip-admin web-password``; nothing stands
in front of the application. Screenshots go where ``test_browser.py``'s
go (``$IMIP_TEST_SCREENSHOTS``).
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import vobject
from icalendar import Calendar
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from werkzeug.serving import BaseWSGIServer

from tests.manager.accounts_support import ALICE_PASSWORD, password_manager, set_password
from tests.manager.support import ALICE, SUMMARY, UID, invited
from tests.manager.test_browser import CHROMEDRIVER, CHROMIUM, follow, heading, serving
from tests.support import Agent

#: One ordered scene (test_1_, test_2_, ...): one xdist worker, in order
#: (``--dist loadgroup`` in pyproject.toml).
pytestmark = pytest.mark.xdist_group(__name__)


class Scene:
    """The site (alice invited, with a password), the manager with its own
    login, and the browser."""

    def __init__(self, root: Path) -> None:
        self.agent: Agent = invited(root / "site")
        set_password(self.agent, ALICE, ALICE_PASSWORD)
        app = password_manager(self.agent, root / "sent")
        self.server: BaseWSGIServer
        self.server, self.url = serving(app)
        self.screenshots = Path(os.environ.get("IMIP_TEST_SCREENSHOTS") or root / "shots")
        self.screenshots.mkdir(parents=True, exist_ok=True)
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
            options.add_argument(argument)
        options.add_argument("--window-size=1000,900")
        self.browser: WebDriver = webdriver.Chrome(
            options=options, service=Service(executable_path=str(CHROMEDRIVER))
        )

    def shot(self, name: str) -> None:
        self.browser.save_screenshot(str(self.screenshots / f"manager-{name}.png"))

    def close(self) -> None:
        self.browser.quit()
        self.server.shutdown()


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    made = Scene(tmp_path_factory.mktemp("browser-accounts"))
    try:
        yield made
    finally:
        made.close()


def fill_login(browser: WebDriver, password: str) -> None:
    browser.find_element(By.ID, "address").send_keys(ALICE)
    browser.find_element(By.ID, "password").send_keys(password)
    follow(browser, browser.find_element(By.CSS_SELECTOR, "form.login button[type=submit]"))


def test_1_a_page_asks_for_a_login_and_a_wrong_password_is_refused(scene: Scene) -> None:
    browser = scene.browser
    browser.get(f"{scene.url}/calendar/{ALICE}/month?month=2030-01")
    assert heading(browser) == "Log in"
    assert browser.current_url.startswith(f"{scene.url}/login?next=")
    scene.shot("login")
    fill_login(browser, "not the password")
    assert heading(browser) == "Log in"
    alert = browser.find_element(By.CSS_SELECTOR, "[role=alert]").text
    assert alert == "That address and password do not match."
    assert ALICE_PASSWORD not in browser.page_source


def test_2_alice_logs_in_and_sees_her_month(scene: Scene) -> None:
    browser = scene.browser
    browser.get(f"{scene.url}/calendar/{ALICE}/month?month=2030-01")
    fill_login(browser, ALICE_PASSWORD)
    assert heading(browser) == "January 2030"
    assert browser.current_url == f"{scene.url}/calendar/{ALICE}/month?month=2030-01"
    summaries = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "table.month .summary")]
    assert summaries == [SUMMARY] * 4, "each Tuesday, shown as text"
    assert browser.find_elements(By.TAG_NAME, "script") == []
    scene.shot("month")


def test_3_the_month_leads_to_the_next_to_a_day_and_hides_empty_days(scene: Scene) -> None:
    browser = scene.browser
    browser.get(f"{scene.url}/calendar/{ALICE}/month?month=2030-01")
    follow(browser, browser.find_element(By.LINK_TEXT, "Next month"))
    assert heading(browser) == "February 2030"
    follow(browser, browser.find_element(By.LINK_TEXT, "Previous month"))
    follow(browser, browser.find_element(By.LINK_TEXT, "Hide empty days"))
    days = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "section.day h2")]
    assert days == [
        "Tuesday 08 January",
        "Tuesday 15 January",
        "Tuesday 22 January",
        "Tuesday 29 January",
    ]
    scene.shot("month-busy-days")
    follow(browser, browser.find_element(By.LINK_TEXT, "Tuesday 15 January"))
    assert heading(browser) == "Tuesday 15 January 2030"
    assert browser.find_element(By.CLASS_NAME, "summary").text == SUMMARY
    scene.shot("day")


def test_4_find_a_time(scene: Scene) -> None:
    browser = scene.browser
    browser.get(f"{scene.url}/calendar/{ALICE}/month")
    follow(browser, browser.find_element(By.LINK_TEXT, "Find a time"))
    browser.find_element(By.ID, "people").send_keys("bob@example.com")
    date_field = browser.find_element(By.ID, "from")
    browser.execute_script("arguments[0].value = '2030-01-08'", date_field)
    follow(browser, browser.find_element(By.CSS_SELECTOR, "form.search button"))
    text = browser.find_element(By.CLASS_NAME, "summary-text").text
    assert text.startswith("Everyone free: Tue 08 Jan 09:00–10:00; Tue 08 Jan 11:00–12:00")
    cells = browser.find_elements(By.CSS_SELECTOR, "tr.everyone td")
    assert [c.text for c in cells[:4]] == ["free", "free", "busy", "busy"]
    scene.shot("find-time")


def test_5_a_feed_made_on_the_page_is_read_without_a_login(scene: Scene) -> None:
    browser = scene.browser
    browser.get(f"{scene.url}/calendar/{ALICE}/subscriptions")
    browser.find_element(By.ID, "label").send_keys("laptop")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "button[value=make]"))
    url = browser.find_element(By.CLASS_NAME, "url").get_attribute("value")
    assert url and url.startswith(f"{scene.url}/feed/")
    scene.shot("subscriptions")
    with urllib.request.urlopen(url) as answer:  # no cookie: no login
        data = answer.read()
    (event,) = Calendar.from_ical(data).walk("VEVENT")
    assert str(event["UID"]) == UID
    assert vobject.readOne(data.decode()).vevent.uid.value == UID


def test_6_logging_out_ends_the_session(scene: Scene) -> None:
    browser = scene.browser
    browser.get(f"{scene.url}/calendar/{ALICE}/month?month=2030-01")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "form.logout button"))
    assert heading(browser) == "Log in"
    assert browser.find_element(By.CSS_SELECTOR, "[role=status]").text == "You are logged out."
    browser.get(f"{scene.url}/calendar/{ALICE}/month?month=2030-01")
    assert heading(browser) == "Log in"
    assert SUMMARY not in browser.page_source
