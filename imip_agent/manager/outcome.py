"""What came of sending: one message on the next page for every way a
front-end action that records and sends mail can end (an answer, a
proposal, a decision on a proposal).

- Refused (:class:`~imiptools.answering.NotAnswerable`, or the agent's
  result a refusal): nothing recorded or sent; the reason is said.
- Recorded but not yet sent (:class:`~imiptools.errors.DeliveryFailed`):
  the message waits in the site's outbox, which sends it later.
- Not recorded (any other :class:`~imiptools.errors.ImipError`: the lock,
  the store): try again.
- Sent: to whom.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import flash

from imip_agent.manager.language import gettext
from imiptools.answering import Answered, NotAnswerable
from imiptools.deferred import dataclass
from imiptools.errors import DeliveryFailed, ImipError
from imiptools.i18n import N_

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Words:
    """The messages (msgids) of the four endings: ``refused`` has a
    ``{reason}``, ``sent`` a ``{who}``."""

    refused: str
    spooled: str
    busy: str
    sent: str


#: An answer to an invitation.
ANSWERED = Words(
    refused=N_("Not answered: {reason}"),
    spooled=N_(
        "Your answer is recorded; the mail system did not take it yet, it waits in the outbox."
    ),
    busy=N_("Not answered: the calendar is busy or unavailable; try again."),
    sent=N_("Your answer was sent to {who}."),
)

#: Any other action (its ``sent`` given by the caller).
DONE = Words(
    refused=N_("Not done: {reason}"),
    spooled=N_("Recorded; the mail system did not take it yet, it waits in the outbox."),
    busy=N_("Not done: the calendar is busy or unavailable; try again."),
    sent="",
)


def report(user: str, act: Callable[[], Answered], words: Words) -> None:
    """Run ``act`` for ``user`` and say how it ended, in ``words``."""
    try:
        done = act()
    except NotAnswerable as exc:
        flash(gettext(words.refused).format(reason=exc))
    except DeliveryFailed as exc:  # recorded and spooled: the outbox keeps it
        log.warning("user=%s recorded, not yet sent: %s", user, exc)
        flash(gettext(words.spooled))
    except ImipError as exc:  # the lock, the store: nothing was recorded
        log.warning("user=%s not done: %s", user, exc)
        flash(gettext(words.busy))
    else:
        if done.result.code:
            flash(gettext(words.refused).format(reason=done.result.status))
        else:
            flash(gettext(words.sent).format(who=done.organiser))
