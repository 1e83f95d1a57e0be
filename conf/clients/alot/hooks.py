"""imip-agent for alot (notmuch): answer invitations from the thread view.

Copy this file to ~/.config/alot/hooks.py (or add its functions to your
own hooks file), and bind keys in ~/.config/alot/config (see the
``config`` file beside this one)::

    [bindings]
      [[thread]]
        ', a' = call hooks.imip_accept(ui)
        ', t' = call hooks.imip_tentative(ui)
        ', d' = call hooks.imip_decline(ui)
        ', r' = call hooks.imip_record(ui)

The hooks use imip-agent's library (:mod:`imiptools.client`) directly, in
alot's own Python: the message alot shows (which alot has decrypted when it
came encrypted) is recorded in your calendar, and the answer is handed to
sendmail. Your addresses are those of your alot accounts; your calendar is
``~/.local/share/imip-agent`` (or ``IMIP_CLIENT_CALENDAR``). When
imip-agent is installed in a virtual environment rather than for alot's
Python, name it in ``IMIP_AGENT_VENV``.

The module-level names below are the settings; a hooks file of your own may
import this one and change them (``CALENDAR``, ``SENDMAIL``, ``CLOCK``).
"""

from __future__ import annotations

import glob
import logging
import os
import site
import subprocess
from pathlib import Path
from typing import Any

log = logging.getLogger("imip-agent")

#: The calendar directory (None: imip-agent's default for a local user).
CALENDAR: str | None = os.environ.get("IMIP_CLIENT_CALENDAR")
#: The command answers are handed to (the recipients are appended).
SENDMAIL: list[str] = ["/usr/sbin/sendmail", "-oi"]
#: The clock (None: the system's); tests give a fixed one.
CLOCK: Any = None


def _library() -> Any:
    """Import imiptools.client, from IMIP_AGENT_VENV when that is set."""
    venv = os.environ.get("IMIP_AGENT_VENV")
    if venv:
        for path in glob.glob(os.path.join(venv, "lib", "python3*", "site-packages")):
            site.addsitedir(path)
    import imiptools.client

    return imiptools.client


def _identities() -> list[str]:
    from alot.settings.const import settings

    found = os.environ.get("IMIP_CLIENT_IDENTITY", "").replace(",", " ").split()
    if found:
        return found
    accounts = settings.get_accounts()
    return [str(a) for account in accounts for a in (account.address, *account.aliases)]


def _calendar() -> Any:
    client = _library()
    location = Path(CALENDAR).expanduser() if CALENDAR else None
    return client.open_calendar(location, _identities(), CLOCK, create=True)


def _message(ui: Any) -> bytes:
    message = ui.current_buffer.get_selected_message()
    data: bytes = message.get_email().as_bytes()
    return data


def _send(done: Any) -> list[str]:
    """Hand each outgoing message to sendmail; what was sent, for people."""
    lines = []
    for outgoing in done.outgoing:
        command = [*SENDMAIL, "-f", outgoing.envelope_from, "--", *outgoing.recipients]
        subprocess.run(command, input=outgoing.message, check=True)
        lines.append(f"{outgoing.subject}: sent to {', '.join(outgoing.recipients)}")
    return lines


def _answer(ui: Any, partstat: str) -> None:
    try:
        done = _calendar().respond(_message(ui), partstat)
        ui.notify("; ".join(_send(done)) or "nothing to send")
    except Exception as exc:  # shown to the user: alot keeps running
        log.exception("imip-agent")
        ui.notify(f"imip-agent: {exc}", priority="error")


def imip_accept(ui: Any) -> None:
    """Accept the invitation shown and send the REPLY (RFC 5546 §3.2.3)."""
    _answer(ui, "ACCEPTED")


def imip_tentative(ui: Any) -> None:
    """Accept the invitation shown tentatively and send the REPLY."""
    _answer(ui, "TENTATIVE")


def imip_decline(ui: Any) -> None:
    """Decline the invitation shown and send the REPLY."""
    _answer(ui, "DECLINED")


def imip_record(ui: Any) -> None:
    """Record the message shown (an attendee's REPLY, an update, a CANCEL)."""
    try:
        done = _calendar().apply(_message(ui))
        ui.notify(f"recorded: {len(done.changes)} change(s)")
    except Exception as exc:  # shown to the user: alot keeps running
        log.exception("imip-agent")
        ui.notify(f"imip-agent: {exc}", priority="error")
