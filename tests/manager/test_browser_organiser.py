"""The organiser's pages in a real headless Chromium (see test_browser.py,
whose stand-in front server and scene these tests share): alice creates a
weekly event with a room and two people, the iMIP REQUEST is read with
icalendar and vobject, the room's own agent (``imip-resource``) answers it
and alice's agent records the answer; she moves one instance (the REQUEST
carrying it alone, read with both, answered by the room's agent), then
cancels another instance and the series; bob cannot open her pages; she
splits another series, the following occurrences every second week and
carol left out for dave (the old series to bob and carol, the new one to
bob and dave). Screenshots as test_browser.py saves them."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
import vobject
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select

from tests.manager.support import ALICE, BOB, calendar_of, sent_messages
from tests.manager.test_browser import Scene, follow, heading, sideways
from tests.support import ROOM

#: One ordered scene (test_1_, test_2_, ...): one xdist worker, in order
#: (``--dist loadgroup`` in pyproject.toml).
pytestmark = pytest.mark.xdist_group(__name__)

CAROL = "carol@example.com"


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    made = Scene(tmp_path_factory.mktemp("organiser"))
    try:
        yield made
    finally:
        made.close()


def status(scene: Scene) -> str:
    return scene.browser.find_element(By.CSS_SELECTOR, "[role=status]").text


def last_sent(scene: Scene) -> EmailMessage:
    return sent_messages(scene.sent)[-1]


def test_1_alice_creates_a_weekly_event_with_a_room_and_two_people(scene: Scene) -> None:
    browser = scene.browser
    browser.get(f"{scene.alice}/")
    follow(browser, browser.find_element(By.LINK_TEXT, "New event"))
    assert heading(browser) == "New event"
    browser.find_element(By.ID, "summary").send_keys("Planning <b>round</b>")
    browser.find_element(By.ID, "location").send_keys("Room 1")
    Select(browser.find_element(By.ID, "freq")).select_by_value("WEEKLY")
    browser.find_element(By.ID, "byday-WE").click()  # 2 January 2030 is a Wednesday
    Select(browser.find_element(By.ID, "ends")).select_by_value("count")
    browser.find_element(By.ID, "count").send_keys("4")
    for row, (address, kind) in enumerate(
        ((ROOM, "ROOM"), (BOB, "INDIVIDUAL"), (CAROL, "INDIVIDUAL")), start=1
    ):
        browser.find_element(By.ID, f"attendee-{row}").send_keys(address)
        Select(browser.find_element(By.ID, f"cutype-{row}")).select_by_value(kind)
    Select(browser.find_element(By.ID, "role-3")).select_by_value("OPT-PARTICIPANT")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "button[value=preview]"))
    assert (
        browser.find_element(By.CLASS_NAME, "described").text == "every week on Wednesday 4 times"
    )
    assert len(browser.find_elements(By.CSS_SELECTOR, ".upcoming li")) == 4
    assert sent_messages(scene.sent) == [], "a preview sends nothing"
    scene.shot("new-event")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "button[value=send]"))
    assert status(scene) == f"Invitation sent to {ROOM}, {BOB}, {CAROL}."
    assert heading(browser) == "Planning <b>round</b>", "shown as text"
    scene.shot("event")
    (message,) = sent_messages(scene.sent)
    assert message["From"] == ALICE and message["To"] == f"{ROOM}, {BOB}, {CAROL}"
    data, calendar = calendar_of(message)
    parsed = vobject.readOne(data.decode())
    assert parsed.method.value == "REQUEST"
    assert parsed.vevent.rrule.value == "FREQ=WEEKLY;COUNT=4;BYDAY=WE"
    (event,) = calendar.walk("VEVENT")
    assert str(event["SUMMARY"]) == "Planning <b>round</b>"
    cutypes = {str(a): a.params["CUTYPE"] for a in event["ATTENDEE"][1:]}
    assert cutypes == {
        f"mailto:{ROOM}": "ROOM",
        f"mailto:{BOB}": "INDIVIDUAL",
        f"mailto:{CAROL}": "INDIVIDUAL",
    }


def test_2_the_rooms_agent_accepts_and_alice_sees_it(scene: Scene) -> None:
    invitation = sent_messages(scene.sent)[0]
    run = scene.agent.resource(invitation.as_bytes(), recipient=ROOM)
    assert run.code == 0, run.stdout + run.stderr
    (reply,) = run.replies()
    assert str(reply["METHOD"]) == "REPLY"
    (answer,) = reply.walk("VEVENT")
    assert answer["ATTENDEE"].params["PARTSTAT"] == "ACCEPTED"
    (sent,) = run.generated()
    recorded = scene.agent.person(sent.as_bytes(), ALICE)
    assert recorded.code == 0, recorded.stdout + recorded.stderr
    scene.browser.refresh()
    people = scene.browser.find_elements(By.CSS_SELECTOR, ".people li")
    room = [p.text for p in people if ROOM in p.text]
    assert room and room[0].endswith("accepted"), [p.text for p in people]


def test_3_alice_moves_one_instance_and_the_room_answers(scene: Scene) -> None:
    browser = scene.browser
    third = "20300116T090000Z"
    follow(browser, browser.find_element(By.CSS_SELECTOR, f'a[href*="rid={third}"]'))
    assert heading(browser) == "One occurrence of Planning <b>round</b>"
    for field, value in (("start_time", "11:00"), ("end_time", "12:00")):
        control = browser.find_element(By.ID, field)
        browser.execute_script("arguments[0].value = arguments[1]", control, value)
    browser.find_element(By.ID, "location").clear()
    browser.find_element(By.ID, "location").send_keys("Room 1, later")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "button[value=this]"))
    assert status(scene) == f"Change of the occurrence sent to {ROOM}, {BOB}, {CAROL}."
    message = last_sent(scene)
    data, calendar = calendar_of(message)
    parsed = vobject.readOne(data.decode())
    assert parsed.method.value == "REQUEST"
    assert parsed.vevent.recurrence_id.value.strftime("%Y%m%dT%H%M%SZ") == third
    assert not hasattr(parsed.vevent, "rrule"), "the instance alone"
    (event,) = calendar.walk("VEVENT")
    assert event.decoded("DTSTART").strftime("%H:%M") == "11:00"
    assert str(event["LOCATION"]) == "Room 1, later" and int(event["SEQUENCE"]) == 1
    run = scene.agent.resource(message.as_bytes(), recipient=ROOM)
    assert run.code == 0, run.stdout + run.stderr
    (reply,) = run.replies()
    (answer,) = reply.walk("VEVENT")
    assert answer.decoded("RECURRENCE-ID").strftime("%Y%m%dT%H%M%SZ") == third
    assert answer["ATTENDEE"].params["PARTSTAT"] == "ACCEPTED"
    (sent,) = run.generated()
    recorded = scene.agent.person(sent.as_bytes(), ALICE)
    assert recorded.code == 0, recorded.stdout + recorded.stderr
    browser.refresh()
    marks = [m.text for m in browser.find_elements(By.CSS_SELECTOR, ".occurrences .marks")]
    assert marks == ["", "", "moved from Wed 16 Jan 09:00", ""]
    preview = browser.find_element(By.ID, "next-title")
    browser.execute_script("arguments[0].scrollIntoView()", preview)
    scene.shot("event-instance-moved")


def test_4_alice_cancels_one_instance(scene: Scene) -> None:
    browser = scene.browser
    which = Select(browser.find_element(By.ID, "cancel-which"))
    which.select_by_value("20300109T090000Z")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "button[value=cancel]"))
    assert status(scene) == f"Cancelled; {ROOM}, {BOB}, {CAROL} told."
    tags = [t.text for t in browser.find_elements(By.CSS_SELECTOR, ".occurrences .tag")]
    assert tags == ["cancelled", "moved"], "the 9th cancelled; the 16th moved (test 3)"
    scene.shot("event-instance-cancelled")
    data, calendar = calendar_of(last_sent(scene))
    parsed = vobject.readOne(data.decode())
    assert parsed.method.value == "CANCEL"
    (event,) = calendar.walk("VEVENT")
    assert event.decoded("RECURRENCE-ID").strftime("%Y%m%dT%H%M%SZ") == "20300109T090000Z"
    run = scene.agent.resource(last_sent(scene).as_bytes(), recipient=ROOM)
    assert run.code == 0, run.stdout + run.stderr


def test_5_alice_cancels_the_series(scene: Scene) -> None:
    browser = scene.browser
    Select(browser.find_element(By.ID, "cancel-which")).select_by_value("")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "button[value=cancel]"))
    assert status(scene) == f"Cancelled; {ROOM}, {BOB}, {CAROL} told."
    assert heading(browser) == "Week of Monday 31 December 2029", "the event is gone: its week"
    assert "Planning" not in browser.find_element(By.TAG_NAME, "main").text
    scene.shot("event-cancelled")
    data, calendar = calendar_of(last_sent(scene))
    assert vobject.readOne(data.decode()).vevent.status.value == "CANCELLED"
    (event,) = calendar.walk("VEVENT")
    assert "RECURRENCE-ID" not in event
    assert int(event["SEQUENCE"]) == 3, "above the instance's change (1) and CANCEL (2)"
    message = message_from_bytes(last_sent(scene).as_bytes(), policy=policy.default)
    run = scene.agent.resource(message.as_bytes(), recipient=ROOM)
    assert run.code == 0, run.stdout + run.stderr


def test_6_bob_cannot_open_alices_new_event_page(scene: Scene) -> None:
    scene.browser.get(f"{scene.bob}/calendar/{ALICE}/new")
    assert heading(scene.browser) == "403 Forbidden"


def test_7_alice_splits_a_series_giving_the_following_their_own_rule_and_people(
    scene: Scene,
) -> None:
    browser = scene.browser
    browser.get(f"{scene.alice}/calendar/{ALICE}/new")
    browser.find_element(By.ID, "summary").send_keys("Stand-up")
    Select(browser.find_element(By.ID, "freq")).select_by_value("WEEKLY")
    browser.find_element(By.ID, "byday-WE").click()
    Select(browser.find_element(By.ID, "ends")).select_by_value("count")
    browser.find_element(By.ID, "count").send_keys("6")
    browser.find_element(By.ID, "attendee-1").send_keys(BOB)
    browser.find_element(By.ID, "attendee-2").send_keys(CAROL)
    follow(browser, browser.find_element(By.CSS_SELECTOR, "button[value=send]"))
    links = browser.find_elements(By.CSS_SELECTOR, '.occurrences a[href*="rid="]')
    follow(browser, links[3])  # the fourth of six
    assert heading(browser) == "One occurrence of Stand-up"
    interval = browser.find_element(By.ID, "interval")
    interval.clear()
    interval.send_keys("2")
    assert browser.find_element(By.ID, "count").get_attribute("value") == "3", "six less three"
    browser.find_element(By.ID, "remove-2").click()  # carol
    browser.find_element(By.ID, "attendee-3").send_keys("dave@example.com")
    scene.shot("event-split")
    assert sideways(browser, [browser.current_url]) == [], "the form fits a phone"
    browser.get(browser.current_url)  # after the phone's check: the form as it was
    interval = browser.find_element(By.ID, "interval")
    interval.clear()
    interval.send_keys("2")
    browser.find_element(By.ID, "remove-2").click()
    browser.find_element(By.ID, "attendee-3").send_keys("dave@example.com")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "button[value=following]"))
    assert heading(browser) == "Stand-up"
    old, new = sent_messages(scene.sent)[-2:]
    assert old["To"] == f"{BOB}, {CAROL}" and new["To"] == f"{BOB}, dave@example.com"
    (ended,) = calendar_of(old)[1].walk("VEVENT")
    assert "UNTIL" in ended["RRULE"] and ended["RELATED-TO"].params["RELTYPE"] == "NEXT"
    data, calendar = calendar_of(new)
    parsed = vobject.readOne(data.decode())
    assert parsed.method.value == "REQUEST"
    assert set(parsed.vevent.rrule.value.split(";")) == {
        "FREQ=WEEKLY",
        "INTERVAL=2",
        "COUNT=3",
        "BYDAY=WE",
    }
    (rest,) = calendar.walk("VEVENT")
    assert str(rest["RELATED-TO"]) == str(ended["UID"])
    assert rest["RELATED-TO"].params["RELTYPE"] == "FIRST"
