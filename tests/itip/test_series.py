"""An organiser's recurring event in parts: what an update carries (the
overrides, the instances cancelled one by one, SEQUENCE above every one
sent), one instance changed, "this and following" split into two series,
a date excluded or restored, a role changed. Every message is read back
with icalendar and vobject."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
import vobject
from icalendar import Calendar, Component

from imiptools.itip.instances import next_sequence
from imiptools.itip.objects import ItipObject, scheduling_objects
from imiptools.itip.organising import (
    Draft,
    Invitee,
    Revision,
    cancellation,
    new_event,
    revised,
)
from imiptools.itip.series import (
    exclusion,
    following_rule,
    instance_update,
    occurrence,
    split,
)

BERLIN = ZoneInfo("Europe/Berlin")
STAMP = datetime(2030, 1, 1, 12, tzinfo=UTC)
LATER = datetime(2030, 1, 2, 12, tzinfo=UTC)
ALICE = "alice@example.com"
#: Tuesdays 10:00 Berlin (09:00 UTC), six times from 8 January 2030.
DRAFT = Draft(
    summary="Review",
    start=datetime(2030, 1, 8, 10, tzinfo=BERLIN),
    end=datetime(2030, 1, 8, 11, tzinfo=BERLIN),
    invitees=(Invitee("bob@example.com"), Invitee("room@example.com", cutype="ROOM")),
    location="Room 1",
    rrule="FREQ=WEEKLY;COUNT=6",
    uid="review@example.com",
)
SECOND, THIRD, FOURTH = "20300115T090000Z", "20300122T090000Z", "20300129T090000Z"


def made(draft: Draft = DRAFT) -> ItipObject:
    calendar = new_event(draft, ALICE, STAMP, domain="example.com")
    return scheduling_objects(calendar)[0]


def read(calendar: Calendar) -> tuple[ItipObject, list[Component]]:
    """What was built, as icalendar and vobject read its text."""
    text = calendar.to_ical().decode()
    assert vobject.readOne(text).method.value == "REQUEST"
    obj = scheduling_objects(Calendar.from_ical(text))[0]
    return obj, obj.components


def with_parts(stored: ItipObject, *calendars: Calendar) -> ItipObject:
    """``stored`` with the components of ``calendars`` stored as well."""
    extra = [c for cal in calendars for c in cal.walk("VEVENT")]
    return ItipObject("PUBLISH", "VEVENT", stored.uid, [*stored.components, *extra], [])


def partstats(component: Component) -> dict[str, str]:
    return {str(a): str(a.params["PARTSTAT"]) for a in component["ATTENDEE"]}


def accepted(stored: ItipObject) -> ItipObject:
    """``stored`` with bob and the room having accepted the series."""
    master = stored.master
    assert master is not None
    for attendee in master["ATTENDEE"][1:]:
        attendee.params["PARTSTAT"] = "ACCEPTED"
        attendee.params.pop("RSVP", None)
    return stored


# -- one instance -------------------------------------------------------------


def test_an_instance_update_carries_only_that_instance() -> None:
    stored = accepted(made())
    instance = occurrence(stored, SECOND)
    assert instance is not None
    change = Revision(
        summary="Review, later",
        start=datetime(2030, 1, 15, 14, tzinfo=BERLIN),
        end=datetime(2030, 1, 15, 15, tzinfo=BERLIN),
    )
    obj, (event,) = read(instance_update(stored, instance, change, LATER))
    assert obj.master is None
    assert event["RECURRENCE-ID"].params["TZID"] == "Europe/Berlin"
    assert event.decoded("RECURRENCE-ID").astimezone(UTC) == datetime(2030, 1, 15, 9, tzinfo=UTC)
    assert event.decoded("DTSTART").hour == 14 and str(event["SUMMARY"]) == "Review, later"
    assert int(event["SEQUENCE"]) == 1 and "RRULE" not in event
    assert set(partstats(event).values()) == {"ACCEPTED", "NEEDS-ACTION"}
    assert partstats(event)[f"mailto:{ALICE}"] == "ACCEPTED", "a new time: asked again"


def test_a_new_summary_of_an_instance_keeps_the_answers() -> None:
    stored = accepted(made())
    instance = occurrence(stored, SECOND)
    assert instance is not None
    _, (event,) = read(instance_update(stored, instance, Revision(location="Room 2"), LATER))
    assert set(partstats(event).values()) == {"ACCEPTED"}
    with pytest.raises(ValueError, match="only the summary"):
        instance_update(stored, instance, Revision(rrule=""), LATER)
    assert occurrence(stored, "20300116T090000Z") is None, "no such occurrence"


# -- the update of the series ---------------------------------------------------


def test_an_update_carries_the_overrides_and_follows_the_series() -> None:
    stored = made()
    instance = occurrence(stored, SECOND)
    assert instance is not None
    moved = Revision(
        start=datetime(2030, 1, 15, 14, tzinfo=BERLIN), end=datetime(2030, 1, 15, 15, tzinfo=BERLIN)
    )
    stored = with_parts(stored, instance_update(stored, instance, moved, LATER))
    obj, (master, override) = read(revised(stored, Revision(location="Room 9"), LATER))
    assert int(master["SEQUENCE"]) == int(override["SEQUENCE"]) == 2, "above the instance's 1"
    assert str(override["LOCATION"]) == "Room 9", "it had the series' location"
    assert override.decoded("DTSTART").hour == 14, "moved alone, it stays moved"
    assert len(obj.overrides) == 1


def test_moving_the_series_moves_its_overrides_and_exceptions() -> None:
    stored = made(replace(DRAFT, exdates=(datetime(2030, 2, 5, 10, tzinfo=BERLIN),)))
    instance = occurrence(stored, SECOND)
    assert instance is not None
    stored = with_parts(
        stored, instance_update(stored, instance, Revision(summary="Second"), LATER)
    )
    later = Revision(
        start=datetime(2030, 1, 8, 11, tzinfo=BERLIN), end=datetime(2030, 1, 8, 12, tzinfo=BERLIN)
    )
    calendar = revised(stored, later, LATER, cancelled=(THIRD,))
    _, (master, override) = read(calendar)
    exdates = sorted(d.dt for e in master["EXDATE"] for d in e.dts)
    assert [d.hour for d in exdates] == [11, 11], "the exception and the cancelled instance moved"
    assert {d.day for d in exdates} == {22, 5}
    assert override.decoded("RECURRENCE-ID").hour == 11 and override.decoded("DTSTART").hour == 11
    assert str(override["SUMMARY"]) == "Second"
    assert partstats(override)["mailto:bob@example.com"] == "NEEDS-ACTION"


def test_an_override_whose_instance_is_excluded_is_left_out() -> None:
    stored = made()
    instance = occurrence(stored, SECOND)
    assert instance is not None
    stored = with_parts(stored, instance_update(stored, instance, Revision(summary="X"), LATER))
    revision = exclusion(stored.master, SECOND, (), UTC, exclude=True)  # type: ignore[arg-type]
    obj, components = read(revised(stored, revision, LATER))
    assert len(components) == 1 and obj.master is not None
    assert [d.dt for e in [obj.master["EXDATE"]] for d in e.dts] == [
        datetime(2030, 1, 15, 10, tzinfo=BERLIN)
    ]
    back = exclusion(obj.master, SECOND, (), UTC, exclude=False)
    assert back.exdates == ()


def test_a_cancel_after_an_instance_cancel_has_a_higher_sequence() -> None:
    stored = made()
    instance = occurrence(stored, THIRD)
    one = cancellation(stored, LATER, instance)
    (gone,) = one.walk("VEVENT")
    assert int(gone["SEQUENCE"]) == 1
    (whole,) = cancellation(stored, LATER, floor=int(gone["SEQUENCE"])).walk("VEVENT")
    assert int(whole["SEQUENCE"]) == 2
    assert next_sequence(stored, floor=5) == 6


def test_a_role_changes_without_asking_again() -> None:
    stored = accepted(made())
    _, (master,) = read(revised(stored, Revision(roles=(("bob@example.com", "CHAIR"),)), LATER))
    bob = next(a for a in master["ATTENDEE"] if str(a) == "mailto:bob@example.com")
    assert bob.params["ROLE"] == "CHAIR" and bob.params["PARTSTAT"] == "ACCEPTED"
    with pytest.raises(ValueError, match="not an attendee role"):
        revised(stored, Revision(roles=(("bob@example.com", "BOSS"),)), LATER)
    with pytest.raises(ValueError, match="not an attendee"):
        revised(stored, Revision(roles=(("carol@example.com", "CHAIR"),)), LATER)


# -- this and following -----------------------------------------------------------


def test_this_and_following_splits_into_two_linked_series() -> None:
    stored = accepted(made())
    second = occurrence(stored, SECOND)
    fifth = occurrence(stored, "20300212T090000Z")
    assert second is not None and fifth is not None
    stored = with_parts(
        stored,
        instance_update(stored, second, Revision(summary="Second"), LATER),
        instance_update(stored, fifth, Revision(summary="Fifth"), LATER),
    )
    old, new = split(
        stored,
        FOURTH,
        Revision(location="Room 7"),
        LATER,
        domain="example.com",
        cancelled=(THIRD, "20300205T090000Z"),
        uid="rest@example.com",
    )
    _, (master, override) = read(old)
    assert master["RRULE"].to_ical() == b"FREQ=WEEKLY;UNTIL=20300129T085959Z"
    assert int(master["SEQUENCE"]) == 2, "above every one sent"
    assert str(master["RELATED-TO"]) == "rest@example.com"
    assert master["RELATED-TO"].params["RELTYPE"] == "NEXT"
    assert [d.dt.day for d in master["EXDATE"].dts] == [22], "the cancelled instance before"
    assert str(override["SUMMARY"]) == "Second"
    assert set(partstats(master).values()) == {"ACCEPTED"}, "shortened, not changed"
    rest, (first, moved) = read(new)
    assert rest.uid == "rest@example.com" and str(moved["UID"]) == "rest@example.com"
    assert first["RRULE"].to_ical() == b"FREQ=WEEKLY;COUNT=3", "six less the three before"
    assert first.decoded("DTSTART") == datetime(2030, 1, 29, 10, tzinfo=BERLIN)
    assert str(first["LOCATION"]) == "Room 7" and int(first["SEQUENCE"]) == 0
    assert str(first["RELATED-TO"]) == "review@example.com"
    assert first["RELATED-TO"].params["RELTYPE"] == "FIRST"
    assert [d.dt.day for d in first["EXDATE"].dts] == [5], "the cancelled instance after"
    assert set(partstats(first).values()) == {"ACCEPTED"}, "the answers carried over"
    assert str(moved["SUMMARY"]) == "Fifth" and str(moved["LOCATION"]) == "Room 7"
    parsed = vobject.readOne(new.to_ical().decode())
    assert parsed.vevent.related_to.params["RELTYPE"] == ["FIRST"]


def test_a_new_time_for_the_following_asks_again_and_moves_their_instances() -> None:
    stored = accepted(made())
    fifth = occurrence(stored, "20300212T090000Z")
    assert fifth is not None
    stored = with_parts(stored, instance_update(stored, fifth, Revision(summary="Fifth"), LATER))
    change = Revision(
        start=datetime(2030, 1, 29, 15, tzinfo=BERLIN), end=datetime(2030, 1, 29, 16, tzinfo=BERLIN)
    )
    _, new = split(stored, FOURTH, change, LATER, domain="example.com")
    _, (first, moved) = read(new)
    assert first.decoded("DTSTART").hour == 15
    assert partstats(first)["mailto:room@example.com"] == "NEEDS-ACTION"
    assert moved.decoded("RECURRENCE-ID") == datetime(2030, 2, 12, 15, tzinfo=BERLIN)
    assert moved.decoded("DTSTART").hour == 15


def test_a_split_of_an_all_day_series_ends_on_a_date() -> None:
    draft = Draft(
        summary="Away",
        start=date(2030, 1, 7),
        end=date(2030, 1, 8),
        invitees=(Invitee("bob@example.com"),),
        rrule="FREQ=DAILY;UNTIL=20300120",
        uid="away@example.com",
    )
    old, new = split(made(draft), "20300110", Revision(), LATER, domain="example.com")
    (master,) = old.walk("VEVENT")
    assert master["RRULE"].to_ical() == b"FREQ=DAILY;UNTIL=20300109"
    (first,) = new.walk("VEVENT")
    assert first.decoded("DTSTART") == date(2030, 1, 10)
    assert first["RRULE"].to_ical() == b"FREQ=DAILY;UNTIL=20300120"


def test_the_first_occurrence_or_none_is_no_split() -> None:
    stored = made()
    with pytest.raises(ValueError, match="the first occurrence"):
        split(stored, "20300108T090000Z", Revision(), LATER, domain="example.com")
    with pytest.raises(ValueError, match="not an occurrence"):
        split(stored, "20300109T090000Z", Revision(), LATER, domain="example.com")
    with pytest.raises(ValueError, match="only the summary"):
        split(stored, FOURTH, Revision(url="https://example.com/"), LATER, domain="example.com")
    with pytest.raises(ValueError, match="the following occurrences need a rule"):
        split(stored, FOURTH, Revision(rrule=""), LATER, domain="example.com")


def test_the_rule_the_following_keep_unless_changed() -> None:
    assert following_rule(made(), FOURTH) == "FREQ=WEEKLY;COUNT=3"
    weekly = made(replace(DRAFT, rrule="FREQ=WEEKLY;BYDAY=TU"))
    assert following_rule(weekly, FOURTH) == "FREQ=WEEKLY;BYDAY=TU"


def test_the_following_with_their_own_rule_and_attendees() -> None:
    stored = accepted(made())
    fifth = occurrence(stored, "20300212T090000Z")
    sixth = occurrence(stored, "20300205T090000Z")
    assert fifth is not None and sixth is not None
    stored = with_parts(
        stored,
        instance_update(stored, fifth, Revision(summary="Fifth"), LATER),
        instance_update(stored, sixth, Revision(summary="Gone"), LATER),
    )
    change = Revision(
        rrule="FREQ=WEEKLY;INTERVAL=2;COUNT=2",
        invitees=(Invitee("carol@example.com", role="OPT-PARTICIPANT"),),
        removed=("bob@example.com",),
    )
    old, new = split(stored, FOURTH, change, LATER, domain="example.com", uid="rest@example.com")
    _, (master, *_) = read(old)
    assert master["RRULE"].to_ical() == b"FREQ=WEEKLY;UNTIL=20300129T085959Z"
    assert set(partstats(master)) == {
        "mailto:alice@example.com",
        "mailto:bob@example.com",
        "mailto:room@example.com",
    }, "the old series goes to everyone it had"
    _, (first, moved) = read(new)
    assert first["RRULE"].to_ical() == b"FREQ=WEEKLY;COUNT=2;INTERVAL=2", "as given"
    assert partstats(first) == {
        "mailto:alice@example.com": "ACCEPTED",
        "mailto:room@example.com": "NEEDS-ACTION",
        "mailto:carol@example.com": "NEEDS-ACTION",
    }, "bob left out, carol invited, a new rule asks everyone again"
    carol = next(a for a in first["ATTENDEE"] if str(a) == "mailto:carol@example.com")
    assert carol.params["ROLE"] == "OPT-PARTICIPANT" and carol.params["RSVP"] == "TRUE"
    assert str(moved["SUMMARY"]) == "Fifth", "an occurrence of the new rule keeps its change"
    assert set(partstats(moved)) == set(partstats(first))
    assert str(first["RELATED-TO"]) == "review@example.com"
    assert str(master["RELATED-TO"]) == "rest@example.com"
    parsed = vobject.readOne(new.to_ical().decode())
    assert set(parsed.vevent.rrule.value.split(";")) == {"FREQ=WEEKLY", "INTERVAL=2", "COUNT=2"}


def test_the_following_with_other_attendees_keep_the_answers_of_the_rest() -> None:
    stored = accepted(made())
    change = Revision(invitees=(Invitee("carol@example.com"),), removed=("bob@example.com",))
    _, new = split(stored, FOURTH, change, LATER, domain="example.com")
    _, (first,) = read(new)
    assert first["RRULE"].to_ical() == b"FREQ=WEEKLY;COUNT=3"
    assert partstats(first) == {
        "mailto:alice@example.com": "ACCEPTED",
        "mailto:room@example.com": "ACCEPTED",
        "mailto:carol@example.com": "NEEDS-ACTION",
    }
    roles = split(
        stored, FOURTH, Revision(roles=(("bob@example.com", "CHAIR"),)), LATER, domain="x.org"
    )[1]
    bob = next(a for a in roles.walk("VEVENT")[0]["ATTENDEE"] if "bob" in str(a))
    assert bob.params["ROLE"] == "CHAIR" and bob.params["PARTSTAT"] == "ACCEPTED"


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (Revision(removed=("carol@example.com",)), "not an attendee: carol@example.com"),
        (Revision(invitees=(Invitee("BOB@example.com"),)), "an attendee already"),
    ],
)
def test_the_following_attendees_must_make_sense(change: Revision, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        split(made(), FOURTH, change, LATER, domain="example.com")
