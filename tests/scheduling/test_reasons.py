"""The words of schedule_in_freebusy's decisions (imiptools.scheduling.freebusy):
the bookings in the way of a clash, what may be told of them, and what an
acceptance of a series says. Pure functions over a Request: no store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Event

from imiptools.i18n import translator
from imiptools.itip.recurrence import Instance
from imiptools.periods import Period
from imiptools.scheduling import Answer, Listing, Phrase, Request
from imiptools.scheduling.freebusy import (
    NAMED,
    booking_words,
    is_series,
    schedule_in_freebusy,
    shows_summary,
)

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A Berlin wall time in January 2030 (CET), as aware UTC."""
    return datetime(2030, 1, day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


def instance(start: datetime, minutes: int = 60, rid: str = "") -> Instance:
    return Instance(start, start + timedelta(minutes=minutes), rid, Event(), False)


def booking(start: datetime, end: datetime, **fields: str) -> Period:
    values = {"uid": "other", "summary": "Board meeting", "organiser": "alice@example.com"}
    return Period(start, end, **{**values, **fields})  # type: ignore[arg-type]


def request(
    instances: list[Instance],
    busy: list[Period],
    component: Event | None = None,
    organiser: str = "bob@example.com",
    **values: str,
) -> Request:
    return Request(
        resource="room@example.com",
        organiser=organiser,
        uid="e@example.com",
        summary="Meeting",
        instances=instances,
        busy=busy,
        now=NOW,
        zone=BERLIN,
        component=component,
        preference=lambda name: values.get(name, ""),
    )


def test_a_clash_names_the_booking_not_the_request() -> None:
    req = request([instance(at(8, 10, 30))], [booking(at(8, 10), at(8, 11))])
    decision = schedule_in_freebusy(req, [])
    assert (decision.answer, decision.code) == (Answer.DECLINED, "conflict")
    assert decision.text() == "the resource is already booked 2030-01-08 10:00-11:00 (CET)"
    assert decision.request_status().startswith("4.0;")


def test_what_may_be_told_of_a_booking() -> None:
    period = booking(at(8, 10), at(8, 11))
    assert not shows_summary(request([], [], organiser="bob@example.com"), period)
    assert shows_summary(request([], [], organiser="alice@example.com"), period)
    assert shows_summary(request([], [], conflict_details="yes"), period)
    # Nothing to name: no SUMMARY, or not an event of the room's (no UID).
    assert not shows_summary(
        request([], [], conflict_details="yes"), booking(at(8, 10), at(8, 11), summary="")
    )
    assert not shows_summary(
        request([], [], conflict_details="yes"), booking(at(8, 10), at(8, 11), uid="")
    )


def test_a_held_offer_is_said_to_be_one() -> None:
    offer = Period(
        at(8, 10), at(8, 11), "x", "", "OPAQUE", "", "carol@example.com", "BUSY-TENTATIVE"
    )
    words = booking_words(request([], []), offer)
    assert isinstance(words, Phrase)
    req = request([instance(at(8, 10, 30))], [offer])
    assert schedule_in_freebusy(req, []).text() == (
        "the resource is already booked 2030-01-08 10:00-11:00 (CET) (held for a proposal)"
    )


def test_many_bookings_in_the_way_are_cut_short() -> None:
    busy = [booking(at(8, 10, m), at(8, 12), uid=f"b{m}") for m in range(0, 50, 10)]
    req = request([instance(at(8, 11))], busy)
    decision = schedule_in_freebusy(req, [str(len(busy))])
    assert decision.answer is Answer.DECLINED
    listing = decision.params["bookings"]
    assert isinstance(listing, Listing) and len(listing.items) == NAMED + 1
    assert decision.text().endswith("2030-01-08 10:20-12:00 (CET), and 2 more")
    german = decision.text(translator("de"))
    assert german.startswith("die Ressource ist bereits belegt: 2030-01-08 10:00-12:00 (CET)")
    assert german.endswith("und 2 weitere")


def series_component() -> Event:
    event = Event()
    event.add("RRULE", {"FREQ": "WEEKLY", "COUNT": 3})
    return event


def test_a_series_with_one_instance_left_is_still_a_series() -> None:
    req = request([instance(at(9, 9))], [], component=series_component())
    assert is_series(req)
    decision = schedule_in_freebusy(req, [])
    assert decision.text() == (
        "the resource is free at the 1 instance of the series checked (2030-01-09)"
    )
    assert decision.text(translator("de")) == (
        "die Ressource ist an dem 1 geprüften Termin der Serie frei (2030-01-09)"
    )
    assert not is_series(request([instance(at(9, 9))], []))


def test_a_series_in_german() -> None:
    instances = [instance(at(d, 9), 30, f"r{d}") for d in (9, 16, 23)]
    req = request(
        instances,
        [booking(at(16, 9), at(16, 10))],
        max_conflict_instances="1",
        max_conflict_percent="50",
    )
    decision = schedule_in_freebusy(req, [])
    assert (decision.answer, decision.declined) == (Answer.ACCEPTED, ("r16",))
    assert decision.text(translator("de")) == (
        "die Ressource ist an 2 der 3 geprüften Termine frei; 1 Termin wird abgelehnt, da die"
        " Ressource dann bereits belegt ist: 2030-01-16 09:00-09:30 (CET)"
    )
    free = schedule_in_freebusy(request(instances, []), [])
    assert free.text(translator("de")) == (
        "die Ressource ist an allen 3 geprüften Terminen der Serie frei (2030-01-09 bis 2030-01-23)"
    )
