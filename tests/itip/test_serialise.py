"""``objects.serialise`` gives exactly what icalendar's ``to_ical`` gives.

It encodes the content lines too short to fold itself and hands every
other to icalendar (issue 15), so the two must agree byte for byte: on
lines around the 75-octet fold (RFC 5545 §3.1), with multi-octet
characters and escapes at the boundary, and on every calendar of the
interop corpus that icalendar can write.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from icalendar import Calendar, Event

from imiptools.itip.objects import FOLD_OCTETS, serialise, to_text
from tests.support import INTEROP


def _corpus() -> list[Path]:
    return sorted(INTEROP.rglob("*.ics")) if INTEROP.is_dir() else []


def _event(summary: str) -> Calendar:
    calendar = Calendar()
    calendar.add("PRODID", "-//test//EN")
    calendar.add("VERSION", "2.0")
    event = Event()
    event.add("UID", "fold@example.com")
    event.add("SUMMARY", summary)
    calendar.add_component(event)
    return calendar


#: SUMMARY values whose line ("SUMMARY:" and the value) ends just below, at
#: and just above the fold, in one-, two-, three- and four-octet characters,
#: with a backslash escape where the fold falls.
SUMMARIES = [
    *(char * n for char in ("a", "é", "€", "😀") for n in range(60, 70)),
    *("a" * n + "," for n in range(60, 70)),
    *("a" * n + ";b" for n in range(60, 70)),
    "x" * 500,
    "",
]


@pytest.mark.parametrize("summary", SUMMARIES, ids=range(len(SUMMARIES)))
def test_agrees_with_icalendar_around_the_fold(summary: str) -> None:
    calendar = _event(summary)
    assert serialise(calendar) == calendar.to_ical()


@pytest.mark.parametrize("length", range(20, 40))
def test_agrees_with_icalendar_on_rfc_6868_carets_at_the_fold(length: int) -> None:
    calendar = _event("caret")
    attendee = "mailto:a@example.com"
    calendar.subcomponents[0].add("ATTENDEE", attendee, parameters={"CN": 'x"' * length})
    assert b"^'" in calendar.to_ical()
    assert serialise(calendar) == calendar.to_ical()


def test_the_lines_left_unfolded_are_those_icalendar_leaves() -> None:
    lines = serialise(_event("a" * 200)).split(b"\r\n")
    assert max(len(line) for line in lines) < FOLD_OCTETS + 1  # a fold's space counts
    assert to_text(_event("ok")).endswith("END:VCALENDAR\r\n")


@pytest.mark.parametrize(
    "path", _corpus() or [None], ids=lambda p: str(p.relative_to(INTEROP)) if p else "none"
)
def test_agrees_with_icalendar_on_the_interop_corpus(path: Path | None) -> None:
    if path is None:
        pytest.skip(f"the interop corpus {INTEROP} is not present")
    try:
        calendar = Calendar.from_ical(path.read_bytes())
        expected = calendar.to_ical()
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as exc:
        pytest.skip(f"icalendar cannot read and write it: {exc}")
    assert serialise(calendar) == expected
