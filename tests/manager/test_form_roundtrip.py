"""Property: any event the form accepts survives form → the organiser's
store → the iMIP REQUEST → ``imip-person`` on the attendee's side → the
form again, unchanged (as the page shows a form once an event holds it,
:func:`~imip_agent.manager.eventform.normalised`)."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, date, timedelta

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from imip_agent.manager.eventform import EventForm, Person, from_event, normalised, to_draft
from tests.manager.support import ALICE, BOB, calendar_of, manager, sent_messages, token_in
from tests.support import Agent

ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata")
ADDRESSES = ("carol@example.com", "room1@example.com", "projector@example.com")
RULES = (
    "FREQ=DAILY;COUNT=5",
    "FREQ=MONTHLY;COUNT=6;BYDAY=-1FR",
    "FREQ=YEARLY;COUNT=3;BYMONTH=6;BYMONTHDAY=1,15",
    "FREQ=WEEKLY;INTERVAL=3;COUNT=4;BYDAY=MO,TH;WKST=SU",
)
#: Text a person may type: no control characters, no line separators.
TYPED = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp", "Co", "Cn"))
LINE = st.text(TYPED, max_size=40)
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@st.composite
def forms(draw: st.DrawFn) -> EventForm:
    """Forms a person may fill in (some the form refuses: those are skipped)."""
    all_day = draw(st.booleans())
    start = date(2030, 1, 2) + timedelta(days=draw(st.integers(0, 400)))
    length = draw(st.integers(0, 3))
    minutes = draw(st.sampled_from(range(8 * 60, 18 * 60, 15)))
    duration = draw(st.sampled_from((15, 30, 60, 90, 24 * 60 + 30)))
    end_minutes = minutes + duration
    end_day = start + timedelta(days=length if all_day else end_minutes // (24 * 60))
    people = draw(st.lists(st.sampled_from(ADDRESSES), unique=True, max_size=2))
    attendees = tuple(
        Person(
            a,
            draw(st.sampled_from(("REQ-PARTICIPANT", "OPT-PARTICIPANT", "NON-PARTICIPANT"))),
            draw(st.sampled_from(("INDIVIDUAL", "ROOM", "RESOURCE"))),
            draw(st.sampled_from(("TRUE", "FALSE"))),
        )
        for a in [BOB, *people]
    )
    values = EventForm(
        summary=draw(LINE.filter(lambda s: s.strip())),
        location=draw(LINE),
        description=draw(st.text(st.one_of(TYPED, st.just("\n")), max_size=80)),
        categories=", ".join(
            draw(
                st.lists(
                    LINE.map(str.strip).filter(lambda s: s and "," not in s),
                    max_size=3,
                    unique=True,
                )
            )
        ),
        url=draw(st.sampled_from(("", "https://example.com/a?b=c", "mailto:x@example.com"))),
        klass=draw(st.sampled_from(("", "PUBLIC", "PRIVATE", "CONFIDENTIAL"))),
        priority=draw(st.sampled_from(("", "0", "1", "5", "9"))),
        status=draw(st.sampled_from(("", "CONFIRMED", "TENTATIVE"))),
        transp=draw(st.sampled_from(("", "OPAQUE", "TRANSPARENT"))),
        all_day=all_day,
        start_date=start.isoformat(),
        start_time="" if all_day else f"{minutes // 60:02d}:{minutes % 60:02d}",
        end_date=end_day.isoformat(),
        end_time="" if all_day else f"{end_minutes % 1440 // 60:02d}:{end_minutes % 60:02d}",
        tzid=draw(st.sampled_from(ZONES)),
        attendees=attendees,
    )
    kind = draw(st.sampled_from(("none", "structured", "raw")))
    if kind == "raw":
        values = _with(values, rrule=draw(st.sampled_from(RULES)))
    elif kind == "structured":
        ends = draw(st.sampled_from(("never", "count", "until")))
        values = _with(
            values,
            freq=draw(st.sampled_from(("DAILY", "WEEKLY", "MONTHLY", "YEARLY"))),
            interval=str(draw(st.integers(1, 4))),
            byday=tuple(
                d for d in WEEKDAYS if d in draw(st.sets(st.sampled_from(WEEKDAYS), max_size=3))
            ),
            bymonthday=draw(st.sampled_from(("", "", "1", "1, 15", "-1"))),
            bysetpos=draw(st.sampled_from(("", "", "1", "-1"))),
            ends=ends,
            count=str(draw(st.integers(1, 20))) if ends == "count" else "",
            until=(start + timedelta(days=draw(st.integers(0, 300)))).isoformat()
            if ends == "until"
            else "",
        )
    shifts = st.lists(st.integers(1, 60), unique=True, max_size=2)
    clock = "" if all_day else " " + values.start_time
    values = _with(
        values,
        exdates="\n".join(
            (start + timedelta(days=7 * n)).isoformat() + clock for n in draw(shifts)
        ),
        rdates="\n".join((start + timedelta(days=n)).isoformat() + clock for n in draw(shifts)),
    )
    return values


def _with(values: EventForm, **changes: object) -> EventForm:
    return replace(values, **changes)  # type: ignore[arg-type]


def as_fields(values: EventForm) -> MultiDict[str, str]:
    """``values`` as the browser posts them."""
    form: MultiDict[str, str] = MultiDict()
    for name in ("summary", "location", "categories", "url", "priority", "status", "transp"):
        form.add(name, getattr(values, name))
    form.add("description", values.description.replace("\n", "\r\n"))  # as a textarea posts
    form.add("class", values.klass)
    if values.all_day:
        form.add("all_day", "yes")
    for name in ("start_date", "start_time", "end_date", "end_time", "tzid", "freq"):
        form.add(name, getattr(values, name))
    for name in ("interval", "bymonthday", "bysetpos", "ends", "count", "until", "rrule"):
        form.add(name, getattr(values, name))
    for name in ("exdates", "rdates"):
        form.add(name, getattr(values, name).replace("\n", "\r\n"))
    for day in values.byday:
        form.add("byday", day)
    for person in values.attendees:
        form.add("attendee", person.address)
        form.add("role", person.role)
        form.add("cutype", person.cutype)
        form.add("rsvp", person.rsvp)
    return form


@settings(
    max_examples=int(os.environ.get("IMIP_FORM_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(values=forms())
def test_a_form_the_page_accepts_comes_back_unchanged(
    tmp_path_factory: pytest.TempPathFactory, values: EventForm
) -> None:
    try:
        to_draft(values)
    except ValueError:
        assume(False)  # the form refuses it: nothing to carry
    root = tmp_path_factory.mktemp("roundtrip")
    agent = Agent(root / "site", now="2030-01-01T12:00:00Z")
    client = manager(agent, root / "sent").test_client()
    page = client.get(f"/calendar/{ALICE}/new", environ_base={"REMOTE_USER": ALICE})
    form = as_fields(values)
    form["csrf_token"] = token_in(page.get_data(as_text=True))
    answer = client.post(f"/calendar/{ALICE}/new", data=form, environ_base={"REMOTE_USER": ALICE})
    assert answer.status_code == 302, answer.get_data(as_text=True)[-2000:]
    expected = normalised(values)
    if values.all_day:  # a date has no zone: the page shows the user's (here UTC)
        expected = replace(expected, tzid="UTC")
    uid = answer.headers["Location"].partition("uid=")[2]
    own = agent.site().records(f"mailto:{ALICE}").stored(uid)
    assert own is not None and own.master is not None
    assert from_event(own.master, UTC) == expected, "form → store"
    (message,) = sent_messages(root / "sent")
    sent = calendar_of(message)[1].walk("VEVENT")[0]
    assert from_event(sent, UTC) == expected, "form → iMIP"
    run = agent.person(message.as_bytes(), BOB)
    assert run.code == 0, run.stdout + run.stderr
    received = agent.site().records(f"mailto:{BOB}").stored(uid)
    assert received is not None and received.master is not None
    assert from_event(received.master, UTC) == expected, "iMIP → imip-person → form"
