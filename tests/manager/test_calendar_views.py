"""The day and month views beside the week: navigation between them, the
user's zone, the series expanded, hiding or showing empty days, and showing
or hiding busy periods."""

from __future__ import annotations

import re
from pathlib import Path

from flask.testing import FlaskClient

from tests.manager.support import ALICE, BOB, invited, manager
from tests.support import Agent, calendar_text, imip_message, vevent

AS_ALICE = {"REMOTE_USER": ALICE}
ESCAPED = "Team &lt;b&gt;sync&lt;/b&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt;"


def client_of(agent: Agent, tmp_path: Path) -> FlaskClient:
    return manager(agent, tmp_path / "sent").test_client()


def get(client: FlaskClient, path: str) -> str:
    answer = client.get(path, environ_base=AS_ALICE)
    assert answer.status_code == 200, path
    return answer.get_data(as_text=True)


def links(page: str) -> dict[str, str]:
    """The page's links, by their text (the last of each text)."""
    found = re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', page)
    return {text: href.replace("&amp;", "&") for href, text in found}


def test_the_day_shows_that_days_instance(tmp_path: Path) -> None:
    client = client_of(invited(tmp_path), tmp_path)
    page = get(client, f"/calendar/{ALICE}/day?day=2030-01-15")
    assert "Tuesday 15 January 2030" in page
    assert ESCAPED in page and "10:00–11:00" in page and "recurring" in page
    assert "<script>" not in page
    other = get(client, f"/calendar/{ALICE}/day?day=2030-01-16")
    assert ESCAPED not in other and "No events." in other


def test_days_lead_to_the_next_and_to_the_week_and_month(tmp_path: Path) -> None:
    client = client_of(invited(tmp_path), tmp_path)
    found = links(get(client, f"/calendar/{ALICE}/day?day=2030-01-15"))
    assert found["Next day"] == f"/calendar/{ALICE}/day?day=2030-01-16"
    assert found["Previous day"] == f"/calendar/{ALICE}/day?day=2030-01-14"
    assert found["Today"] == f"/calendar/{ALICE}/day?day=2030-01-01"
    assert found["Week"] == f"/calendar/{ALICE}/?week=2030-01-15"
    assert found["Month"] == f"/calendar/{ALICE}/month?month=2030-01"
    week = links(get(client, found["Week"]))
    assert week["Day"] == f"/calendar/{ALICE}/day?day=2030-01-14"
    assert week["Month"] == f"/calendar/{ALICE}/month?month=2030-01"


def test_the_month_holds_every_instance_in_a_table_of_weeks(tmp_path: Path) -> None:
    client = client_of(invited(tmp_path), tmp_path)
    page = get(client, f"/calendar/{ALICE}/month?month=2030-01")
    assert "<h1>January 2030</h1>" in page
    assert page.count(ESCAPED) == 4, "COUNT=4: four Tuesdays"
    assert '<th scope="col">' in page and "<caption>" in page
    assert page.count("<tr>") == 1 + 5, "a header row and the five weeks Mon 31 Dec to Sun 3 Feb"
    found = links(page)
    assert found["Next month"] == f"/calendar/{ALICE}/month?month=2030-02"
    assert found["Previous month"] == f"/calendar/{ALICE}/month?month=2029-12"
    assert found["This month"] == f"/calendar/{ALICE}/month?month=2030-01"
    february = get(client, found["Next month"])
    assert "<h1>February 2030</h1>" in february
    assert february.count(ESCAPED) == 1, "29 January, in the first week, outside the month"
    assert re.search(r'<td class="outside">\s*<a class="date"[^>]*>29</a>\s*<ul', february)
    december = get(client, found["Previous month"])
    assert "<h1>December 2029</h1>" in december and ESCAPED not in december


def test_the_month_is_in_the_users_zone(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    agent.set_pref(ALICE, "TZID", "Pacific/Kiritimati")  # UTC+14: 10:00 UTC is 00:00 next day
    page = get(client_of(agent, tmp_path), f"/calendar/{ALICE}/month?month=2030-01")
    assert "Pacific/Kiritimati" in page
    assert re.search(r'aria-label="Wednesday 09 January">9</a>\s*<ul class="entries">', page)
    assert not re.search(r'aria-label="Tuesday 08 January">8</a>\s*<ul', page)


def test_empty_days_can_be_hidden_and_shown_again(tmp_path: Path) -> None:
    client = client_of(invited(tmp_path), tmp_path)
    week = get(client, f"/calendar/{ALICE}/?week=2030-01-14")
    assert week.count('<section class="day') == 7
    hide = links(week)["Hide empty days"]
    assert "empty=hide" in hide
    hidden = get(client, hide)
    assert hidden.count('<section class="day') == 1 and "Tuesday 15 January" in hidden
    kept = links(hidden)
    assert "empty=hide" in kept["Next week"], "the choice is kept while navigating"
    assert "empty=hide" in kept["Month"]
    shown = get(client, kept["Show empty days"])
    assert shown.count('<section class="day') == 7
    month = get(client, f"/calendar/{ALICE}/month?month=2030-01&empty=hide")
    assert "<table" not in month
    assert month.count('<section class="day') == 4
    assert "Show empty days" in month
    empty_month = get(client, f"/calendar/{ALICE}/month?month=2030-03&empty=hide")
    assert "No events this month." in empty_month


BUSY = re.compile(r'<p class="busy">.*?</p>')


def test_busy_periods_can_be_shown_and_hidden_again(tmp_path: Path) -> None:
    client = client_of(invited(tmp_path), tmp_path)
    week = get(client, f"/calendar/{ALICE}/?week=2030-01-14")
    assert 'class="busy' not in week, "hidden by default, as before"
    show = links(week)["Show busy periods"]
    assert "busy=show" in show
    shown = get(client, show)
    assert BUSY.findall(shown) == [
        '<p class="busy"><span class="label">Busy:</span> '
        '<span class="period">10:00–11:00 (tentative)</span></p>'
    ], "the unanswered invitation is held tentatively (FBTYPE=BUSY-TENTATIVE)"
    assert shown.count("Not busy.") == 6
    kept = links(shown)
    for name in ("Next week", "Day", "Month", "Hide empty days"):
        assert "busy=show" in kept[name], f"{name} keeps the choice"
    assert "busy=show" not in kept["Hide busy periods"]
    month = get(client, kept["Month"])
    assert len(BUSY.findall(month)) == 4, "four Tuesdays, in the table's cells"
    assert "Not busy." not in month, "a month's cells say nothing of a free day"
    day = get(client, f"/calendar/{ALICE}/day?day=2030-01-16&busy=show")
    assert "Not busy." in day and "Hide busy periods" in day


def test_busy_periods_are_as_free_busy_has_them(tmp_path: Path) -> None:
    """A transparent event gives no busy time; one over midnight is cut into
    the days it covers, in the user's zone."""
    agent = Agent(tmp_path, now="2030-01-01T00:00:00Z")
    agent.set_pref(ALICE, "TZID", "Europe/Berlin")
    for uid, start, end, extra in (
        ("night@example.com", "20300115T220000Z", "20300116T010000Z", ""),
        ("see-through@example.com", "20300115T100000Z", "20300115T110000Z", "TRANSP:TRANSPARENT"),
    ):
        event = vevent(uid, start, end, organiser=BOB, attendees=(ALICE,), extra=extra)
        run = agent.person(imip_message(calendar_text(event), sender=BOB, to=ALICE), ALICE)
        assert run.code == 0, run.stdout + run.stderr
    page = get(client_of(agent, tmp_path), f"/calendar/{ALICE}/?week=2030-01-14&busy=show")
    assert BUSY.findall(page) == [
        '<p class="busy"><span class="label">Busy:</span> '
        '<span class="period">23:00–24:00 (tentative)</span></p>',
        '<p class="busy"><span class="label">Busy:</span> '
        '<span class="period">00:00–02:00 (tentative)</span></p>',
    ]
    hidden = get(
        client_of(agent, tmp_path), f"/calendar/{ALICE}/?week=2030-01-14&busy=show&empty=hide"
    )
    assert hidden.count('<section class="day') == 2


def test_a_wrong_date_is_404(tmp_path: Path) -> None:
    client = client_of(invited(tmp_path), tmp_path)
    for path in ("day?day=2030-02-30", "month?month=2030-13", "month?month=January"):
        assert client.get(f"/calendar/{ALICE}/{path}", environ_base=AS_ALICE).status_code == 404
