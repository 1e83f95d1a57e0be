"""Confirmation and retraction steps run after bookings and cancellations.

A scheduling function registered with steps (as a quota function will be):
accepting a booking runs its confirmation, cancelling runs its retraction.
Runs the agent in process with the real file store.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from imiptools import agent, scheduling
from imiptools.config import Settings
from imiptools.handlers.common import Envelope
from imiptools.handlers.resource import ResourceHandler
from imiptools.scheduling import Answer, Booking, Decision, Request
from imiptools.site import Site, open_site
from tests.support import ROOM, calendar_text, imip_message, vevent
from tests.test_convergence import context

CALLS: list[tuple[str, Booking, Sequence[str]]] = []


@pytest.fixture
def counting() -> Iterator[None]:
    """A function ``counting`` that accepts, with both steps registered."""

    def accept(request: Request, args: Sequence[str]) -> Decision:
        return Decision(Answer.ACCEPTED, "ok", "fine", "counting")

    scheduling.register("counting")(accept)
    scheduling.register_confirmation("counting")(lambda b, a: CALLS.append(("confirm", b, a)))
    scheduling.register_retraction("counting")(lambda b, a: CALLS.append(("retract", b, a)))
    CALLS.clear()
    yield
    for table in (scheduling.FUNCTIONS, scheduling.CONFIRMATIONS, scheduling.RETRACTIONS):
        table.pop("counting", None)


def site_of(root: Path) -> Site:
    """The file site under ``root`` (store and preferences as the context has them)."""
    return open_site(Settings(store=str(root / "store"), preferences=str(root / "prefs")))


def deliver(root: Path, message: bytes) -> None:
    agent.run(
        message,
        [Envelope(ROOM, "alice@example.com")],
        context(root, site_of(root).store),
        ResourceHandler,
    )


def test_steps_follow_bookings_and_cancellations(tmp_path: Path, counting: None) -> None:
    site_of(tmp_path).preferences.set(
        f"mailto:{ROOM}", "scheduling_function", "counting quota-a\nschedule_in_freebusy"
    )
    deliver(tmp_path, imip_message(calendar_text(vevent(extra="RRULE:FREQ=DAILY;COUNT=2"))))
    [(kind, booking, args)] = CALLS
    assert kind == "confirm" and args == ["quota-a"]
    assert booking.uid == "event-1@example.com" and len(booking.instances) == 2
    assert booking.organiser == "alice@example.com"
    cancel = vevent(sequence=1, dtstamp="20300101T100000Z", extra="RECURRENCE-ID:20300109T100000Z")
    deliver(tmp_path, imip_message(calendar_text(cancel, method="CANCEL"), method="CANCEL"))
    kind, booking, args = CALLS[-1]
    assert kind == "retract" and list(booking.recurrence_ids) == ["20300109T100000Z"]


def test_declined_bookings_confirm_nothing(tmp_path: Path, counting: None) -> None:
    site_of(tmp_path).preferences.set(
        f"mailto:{ROOM}", "scheduling_function", "counting\nschedule_in_freebusy"
    )
    deliver(tmp_path, imip_message(calendar_text(vevent("a"))))
    deliver(tmp_path, imip_message(calendar_text(vevent("b"))))  # clashes: declined
    assert [kind for kind, _, _ in CALLS] == ["confirm"]
