"""The bounds on one message's calendar data (imiptools.itip.intake)."""

from __future__ import annotations

import pytest

from imiptools.agent import extract
from imiptools.errors import CalendarDataError
from imiptools.itip.intake import CpuBudget, MessageLimits, Tally, object_problem
from imiptools.itip.objects import parse_calendars, scheduling_objects
from imiptools.mail.parse import parse_message
from tests.support import calendar_text, vevent


def objects_of(text: str) -> list:
    return [o for c in parse_calendars(text) for o in scheduling_objects(c)]


def test_calendar_size_counts_utf8_bytes() -> None:
    limits = MessageLimits(calendar_size=10)
    limits.check_size(["é" * 5])
    with pytest.raises(CalendarDataError, match="11 bytes exceeds the limit of 10"):
        limits.check_size(["é" * 5, "x"])


def test_components_are_counted_across_calendars_with_their_subcomponents() -> None:
    tally = Tally(MessageLimits(components=3))
    alarm = vevent(extra="BEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-PT5M\nEND:VALARM")
    tally.add_calendar(parse_calendars(calendar_text(alarm))[0])  # VEVENT, VALARM
    with pytest.raises(CalendarDataError, match="more than 3 components"):
        tally.add_calendar(parse_calendars(calendar_text(alarm))[0])


def test_parameters_and_values_count_as_properties() -> None:
    tally = Tally(MessageLimits(properties=20))
    tally.add_calendar(parse_calendars(calendar_text(vevent()))[0])
    many = vevent(extra="CATEGORIES:" + ",".join(str(i) for i in range(20)))
    with pytest.raises(CalendarDataError, match="more than 20 properties"):
        tally.add_calendar(parse_calendars(calendar_text(many))[0])


def test_objects_are_counted_by_uid_not_by_component() -> None:
    tally = Tally(MessageLimits(objects=1))
    override = vevent(extra="RECURRENCE-ID:20300108T100000Z")
    tally.add_objects(objects_of(calendar_text(vevent(), override)))
    with pytest.raises(CalendarDataError, match="more than 1 scheduling objects"):
        tally.add_objects(objects_of(calendar_text(vevent(uid="other@example.com"))))


def test_cpu_budget_always_hands_out_the_first_object() -> None:
    found = objects_of(calendar_text(vevent(), vevent(uid="b@example.com")))
    budget = CpuBudget(found, seconds=0.0)
    assert list(budget) == found[:1]
    assert budget.reasons() == [
        "1 scheduling object(s) not processed: the message used its 0 s of CPU"
    ]


def test_cpu_budget_with_time_left_hands_out_everything() -> None:
    found = objects_of(calendar_text(vevent(), vevent(uid="b@example.com")))
    budget = CpuBudget(found, seconds=60.0)
    assert list(budget) == found and list(budget) == found and budget.reasons() == []


@pytest.mark.parametrize(
    ("extra", "sequence", "problem"),
    [
        ("RECURRENCE-ID:foo", 0, "unreadable RECURRENCE-ID"),
        ("", 2**31, "SEQUENCE out of range"),
        ("DTSTAMP:20300108T100000Z/20300108T090000Z", 0, "cannot be written back"),
        ("COMMENT:a\udcffb", 0, "cannot be written back"),  # not encodable
    ],
)
def test_values_the_handlers_rely_on_are_checked(extra: str, sequence: int, problem: str) -> None:
    text = calendar_text(vevent(sequence=sequence, extra=extra))
    text = text.replace("DTSTAMP:20300101T090000Z\r\n", "") if "DTSTAMP" in extra else text
    (obj,) = objects_of(text)
    assert problem in (object_problem(obj) or "")


def test_objects_left_when_the_budget_is_spent_are_reported_not_checked() -> None:
    text = calendar_text(vevent(), vevent(uid="b@example.com"), vevent(uid="c@example.com"))
    raw = (
        "From: a@example.com\r\nTo: b@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/calendar; method=REQUEST\r\n\r\n" + text
    ).encode()
    extracted = extract(parse_message(raw), budget=CpuBudget([], seconds=0.0))
    assert [obj.uid for obj in extracted.objects] == [objects_of(text)[0].uid]
    assert extracted.errors == [
        "2 scheduling object(s) not checked: the message used its 0 s of CPU"
    ]
