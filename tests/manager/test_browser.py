"""imip-manager in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``, installed by ``tools/ci-chromium``), through Selenium.

One browser for the module. The manager is served on loopback by werkzeug
in a thread, behind a stand-in for the front web server (it sets
``REMOTE_USER``: one listener per user, as a server that authenticated
them would). The invitation arrives through the real ``imip-person``.

Without Chromium the tests skip, except under ``CI=true``, where they fail.
Screenshots of the pages go to ``$IMIP_TEST_SCREENSHOTS`` when it is set
(CI keeps them as artefacts).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import vobject
from werkzeug.serving import BaseWSGIServer, make_server

from imip_agent.manager.calendars import grid_available
from tests.manager.support import (
    ALICE,
    BOB,
    SECOND,
    SUMMARY,
    UID,
    calendar_of,
    invited,
    manager,
    sent_messages,
)
from tests.support import IN_CI, Agent

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    message = "no /usr/bin/chromium and /usr/bin/chromedriver: run tools/ci-chromium"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)

from selenium import webdriver  # noqa: E402 (only with a browser to drive)
from selenium.common.exceptions import (  # noqa: E402
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

#: One ordered scene (test_1_, test_2_, ...): one xdist worker, in order
#: (``--dist loadgroup`` in pyproject.toml).
pytestmark = pytest.mark.xdist_group(__name__)

Application = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Front:
    """A stand-in for the front web server: ``user`` authenticated."""

    def __init__(self, application: Application, user: str) -> None:
        self.application, self.user = application, user

    def __call__(self, environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        environ["REMOTE_USER"] = self.user
        return self.application(environ, start)


def serving(application: Application) -> tuple[BaseWSGIServer, str]:
    server = make_server("127.0.0.1", 0, application, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def attacker_page(target: str) -> Application:
    """Another site's page with a form that posts to the manager."""
    page = f"""<!doctype html><title>win a prize</title>
<form method="post" action="{target}">
<input type="hidden" name="uid" value="{UID}">
<input type="hidden" name="recurrence_id" value="">
<input type="hidden" name="csrf_token" value="guessed">
<button id="go" type="submit" name="partstat" value="DECLINED">Win</button>
</form>""".encode()

    def application(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        start("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [page]

    return application


def screenshots(root: Path) -> Path:
    """Where screenshots go: ``$IMIP_TEST_SCREENSHOTS``, else under ``root``."""
    found = Path(os.environ.get("IMIP_TEST_SCREENSHOTS") or root / "shots")
    found.mkdir(parents=True, exist_ok=True)
    return found


def chromium() -> WebDriver:
    """Debian's headless Chromium, driven by its chromedriver."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1000,900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))


class Scene:
    """The site, the servers and the browser the tests share."""

    def __init__(self, root: Path) -> None:
        self.agent: Agent = invited(root / "site")
        self.sent = root / "sent"
        app = manager(self.agent, self.sent)
        self.servers: list[BaseWSGIServer] = []
        self.alice = self._serve(Front(app, ALICE))
        self.bob = self._serve(Front(app, BOB))
        attacker = attacker_page(f"{self.alice}/calendar/{ALICE}/requests")
        self.attacker = self._serve(attacker).replace("127.0.0.1", "localhost")
        self.screenshots = screenshots(root)
        self.browser: WebDriver = chromium()

    def _serve(self, application: Application) -> str:
        server, url = serving(application)
        self.servers.append(server)
        return url

    def shot(self, name: str) -> None:
        self.browser.save_screenshot(str(self.screenshots / f"manager-{name}.png"))

    def close(self) -> None:
        self.browser.quit()
        for server in self.servers:
            server.shutdown()


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    made = Scene(tmp_path_factory.mktemp("browser"))
    try:
        yield made
    finally:
        made.close()


def heading(browser: WebDriver) -> str:
    return browser.find_element(By.TAG_NAME, "h1").text


def follow(browser: WebDriver, element: WebElement) -> None:
    """Click ``element`` (a link or a submit button) and wait until the page
    it leads to has replaced this one: a click returns before the browser
    has navigated, and the old page must not be read as the new one. (A
    deadline against a hung browser only: nothing asserts durations.)"""
    page = browser.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(browser, 60).until(lambda _: _replaced(page))


#: What chromedriver answers, instead of a stale element reference, about an
#: element of a document being replaced in the middle of the question.
DETACHED = "does not belong to the document"


def _replaced(page: WebElement) -> bool:
    """Whether ``page`` (an element) no longer belongs to the browser's
    document (selenium's ``staleness_of``, and chromedriver's other answer)."""
    try:
        page.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if DETACHED in (exc.msg or ""):
            return True
        raise
    return False


def test_1_the_invitation_from_imip_person_is_in_the_week(scene: Scene) -> None:
    scene.browser.get(f"{scene.alice}/calendar/{ALICE}/?week=2030-01-14")
    summaries = [e.text for e in scene.browser.find_elements(By.CLASS_NAME, "summary")]
    assert summaries == [SUMMARY], "shown as text: the markup is not HTML"
    scripts = scene.browser.find_elements(By.TAG_NAME, "script")
    assert all(s.get_attribute("src").startswith(f"{scene.alice}/static/") for s in scripts), (
        "no inline script: only the manager's own files"
    )
    scene.shot("week")


def test_1_the_week_grid_draws_the_instances(scene: Scene) -> None:
    if not grid_available():
        pytest.skip("no calendar grid: run tools/manager-assets (needs npm)")
    browser = scene.browser
    browser.get_log("browser")  # what earlier pages logged is not this page's
    browser.get(f"{scene.alice}/calendar/{ALICE}/?week=2030-01-14")
    WebDriverWait(browser, 60).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#grid.ready .ec-event"))
    )
    (event,) = browser.find_elements(By.CSS_SELECTOR, "#grid .ec-event")
    assert SUMMARY in event.text, "the title is text: the markup is not HTML"
    assert "10:00" in event.text
    logged = browser.get_log("browser")
    problems = [e for e in logged if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]]
    assert problems == [], "no script error, nothing the Content-Security-Policy refused"
    scene.shot("week-grid")


def test_2_alice_accepts_one_instance(scene: Scene) -> None:
    browser = scene.browser
    browser.get(f"{scene.alice}/")
    follow(browser, browser.find_element(By.LINK_TEXT, "Requests"))
    assert heading(browser) == "Requests needing your attention"
    scene.shot("requests")
    Select(browser.find_element(By.NAME, "recurrence_id")).select_by_value(SECOND)
    follow(browser, browser.find_element(By.CSS_SELECTOR, "button[value=ACCEPTED]"))
    status = browser.find_element(By.CSS_SELECTOR, "[role=status]").text
    assert status == f"Your answer was sent to {BOB}."
    (message,) = sent_messages(scene.sent)
    assert message["To"] == BOB
    data, reply = calendar_of(message)
    parsed = vobject.readOne(data.decode())
    assert parsed.method.value == "REPLY"
    assert parsed.vevent.attendee.params["PARTSTAT"] == ["ACCEPTED"]
    (event,) = reply.walk("VEVENT")
    assert event.decoded("RECURRENCE-ID").strftime("%Y%m%dT%H%M%SZ") == SECOND
    assert event["ATTENDEE"].params["PARTSTAT"] == "ACCEPTED"
    browser.get(f"{scene.alice}/calendar/{ALICE}/?week=2030-01-14")
    assert "accepted" in browser.find_element(By.CLASS_NAME, "partstat").text
    scene.shot("week-accepted")


def test_3_bob_cannot_see_alices_calendar(scene: Scene) -> None:
    for path in (
        f"/calendar/{ALICE}/",
        f"/calendar/{ALICE}/requests",
        f"/calendar/{ALICE}/event?uid={UID}",
    ):
        scene.browser.get(f"{scene.bob}{path}")
        assert heading(scene.browser) == "403 Forbidden"
        assert SUMMARY not in scene.browser.page_source
    scene.shot("forbidden")


def test_4_a_cross_site_form_post_is_refused(scene: Scene) -> None:
    before = len(sent_messages(scene.sent))
    scene.browser.get(f"{scene.alice}/calendar/{ALICE}/requests")  # alice has a session
    scene.browser.get(f"{scene.attacker}/")
    follow(scene.browser, scene.browser.find_element(By.ID, "go"))
    assert heading(scene.browser) == "403 Forbidden"
    assert len(sent_messages(scene.sent)) == before
    assert scene.agent.requests(ALICE) == [(UID, "", "REQUEST")]


#: A phone's screen (CSS pixels) and the pages that must fit its width.
PHONE = (360, 740)
PHONE_PAGES = (
    "/calendar/{me}/?week=2030-01-14",
    "/calendar/{me}/month?month=2030-01",
    f"/calendar/{{me}}/day?day=2030-01-15&others={BOB}",
    "/calendar/{me}/requests",
    f"/calendar/{{me}}/find-time?with={BOB}&duration=60&first=2030-01-14&days=5",
    "/calendar/{me}/subscriptions",
    "/calendar/{me}/new",
    f"/calendar/{{me}}/event?uid={UID}",
    "/resources/",
)


def sideways(browser: WebDriver, urls: Iterable[str]) -> list[tuple[str, int, int]]:
    """The pages of ``urls`` that scroll sideways on a phone's screen
    (:data:`PHONE`): each with its width and the screen's."""
    found = []
    browser.set_window_size(*PHONE)
    try:
        for url in urls:
            browser.get(url)
            wide, shown = browser.execute_script(
                "return [document.documentElement.scrollWidth,"
                " document.documentElement.clientWidth]"
            )
            if wide > shown:
                found.append((url, wide, shown))
    finally:
        browser.set_window_size(1000, 900)
    return found


def test_5_every_page_fits_a_phone(scene: Scene) -> None:
    """On a phone's screen no page scrolls sideways: wide tables scroll in
    their own box, controls shrink to the screen, attendee rows stack."""
    urls = [scene.alice + path.format(me=ALICE) for path in PHONE_PAGES]
    assert sideways(scene.browser, urls) == []


def test_chromium_is_debians(scene: Scene) -> None:
    assert shutil.which("chromium") == str(CHROMIUM)
    assert scene.browser.capabilities["browserName"] in ("chrome", "chromium")
