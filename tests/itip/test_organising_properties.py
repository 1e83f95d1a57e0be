"""organising's Draft and Revision with every property the manager's form
has (URL, CLASS, PRIORITY, STATUS, TRANSP, EXDATE, RDATE), and removal."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
import vobject

from imiptools.itip.objects import ItipObject
from imiptools.itip.organising import Draft, Invitee, Revision, new_event, removal, revised

STAMP = datetime(2030, 1, 1, 12, tzinfo=UTC)
START = datetime(2030, 1, 8, 10, tzinfo=UTC)
DRAFT = Draft(
    summary="Review",
    start=START,
    end=datetime(2030, 1, 8, 11, tzinfo=UTC),
    invitees=(Invitee("bob@example.com"), Invitee("room@example.com", cutype="ROOM")),
    rrule="FREQ=WEEKLY;COUNT=5",
    url="https://example.com/review",
    klass="PRIVATE",
    priority=2,
    status="CONFIRMED",
    transp="OPAQUE",
    exdates=(datetime(2030, 1, 15, 10, tzinfo=UTC),),
    rdates=(datetime(2030, 1, 10, 10, tzinfo=UTC),),
    uid="review@example.com",
)


def stored_of(draft: Draft) -> ItipObject:
    calendar = new_event(draft, "mailto:alice@example.com", STAMP, domain="example.com")
    (event,) = calendar.walk("VEVENT")
    return ItipObject("REQUEST", "VEVENT", draft.uid, [event], [])


def test_a_new_event_carries_every_property() -> None:
    calendar = new_event(DRAFT, "mailto:alice@example.com", STAMP, domain="example.com")
    text = calendar.to_ical().decode()
    for line in (
        "URL:https://example.com/review",
        "CLASS:PRIVATE",
        "PRIORITY:2",
        "STATUS:CONFIRMED",
        "TRANSP:OPAQUE",
        "EXDATE:20300115T100000Z",
        "RDATE:20300110T100000Z",
    ):
        assert line in text
    vobject.readOne(text)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"klass": "SECRET"}, "not a class"),
        ({"status": "NEEDS-ACTION"}, "not a status"),
        ({"transp": "SOMETIMES"}, "not a transparency"),
        ({"priority": 10}, "from 0 to 9"),
        ({"url": "not a url"}, "not a URL"),
        ({"exdates": (date(2030, 1, 15),)}, "of the start's kind"),
        ({"rdates": (datetime(2030, 1, 10, 10),)}, "of the start's kind"),
        ({"invitees": (Invitee("x@example.com", cutype="ROBOT"),)}, "calendar user type"),
    ],
)
def test_a_draft_with_a_bad_value_is_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        new_event(
            replace(DRAFT, **changes),  # type: ignore[arg-type]
            "mailto:alice@example.com",
            STAMP,
            domain="example.com",
        )


def test_a_revision_sets_and_removes_the_properties() -> None:
    revision = Revision(klass="", priority="7", url="", exdates=(), categories=("a", "b"))
    (event,) = revised(stored_of(DRAFT), revision, STAMP).walk("VEVENT")
    assert "CLASS" not in event and "URL" not in event and "EXDATE" not in event
    assert int(event["PRIORITY"]) == 7 and event["CATEGORIES"].cats == ["a", "b"]
    assert str(event["STATUS"]) == "CONFIRMED", "left as it is"
    assert not revision.significant
    assert Revision(rdates=()).significant, "extra dates are occurrences"
    with pytest.raises(ValueError, match="from 0 to 9"):
        revised(stored_of(DRAFT), Revision(priority="high"), STAMP)


def test_a_removal_names_only_the_removed_and_does_not_end_the_event() -> None:
    stored = stored_of(DRAFT)
    (event,) = removal(stored, ("room@example.com",), STAMP).walk("VEVENT")
    assert str(event["ATTENDEE"]) == "mailto:room@example.com"
    assert "STATUS" not in event and int(event["SEQUENCE"]) == 1
    (update,) = revised(stored, Revision(removed=("ROOM@example.com",)), STAMP).walk("VEVENT")
    assert "room@example.com" not in update.to_ical().decode()
    with pytest.raises(ValueError, match="none of those"):
        removal(stored, ("carol@example.com",), STAMP)
