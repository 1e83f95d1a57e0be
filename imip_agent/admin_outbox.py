"""imip-admin outbox: the messages the agents spooled, and those set aside.

Every agent run sends what waits in the site's outbox (for the file backend
``STORE/.outbox``).
A message that can never be sent as it is (the mail system refused it for
good, an address no sender can use, an unreadable spool file) is set aside
in ``held/`` with the reason (see :mod:`imiptools.spool` and
:func:`imiptools.agent.send_spooled`), so that it never holds up the
others. These subcommands show such messages, put them back in line, drop
them, or send what waits now.
"""

from __future__ import annotations

import argparse
import email
import email.policy
from collections.abc import Callable
from datetime import UTC, datetime

from imip_agent.admin_parser import add_command
from imip_agent.cli import context_from, sender_from, site_from
from imiptools import agent
from imiptools.config import Settings
from imiptools.errors import UsageError
from imiptools.mail.parse import decode_header_value
from imiptools.site import Site
from imiptools.spool import HeldMessage, Outbox

OUTBOX = """\
Show and handle the outbox (STORE/.outbox): the replies, refreshes and
requests the agents spooled. Each agent run sends what waits there. A
message that can never be sent as it is (the mail system refused it for
good: SMTP 5xx, sendmail exit 65/67/68; an address no sender can use; an
unreadable spool file) is set aside in held/ with the reason, so that it
never holds up the others; `imip-admin check` reports held messages.
A transient failure (sendmail exit 75, SMTP 4xx) sets nothing aside: the
run exits 75 and the MTA retries it.

  list          the held messages (id, when, envelope, subject, reason) and
                how many wait to be sent
  retry ID...   put held messages back in line; the next agent run (or
                `outbox flush`) sends them
  drop ID...    remove held messages for good
  flush         send what waits now (with --sendmail or --smtp, else the
                configured way); a message that fails for good is held

ID is an id that `list` prints (or an unambiguous start of one); --all
names every held message.

example:
  imip-admin outbox list
  imip-admin outbox retry 01796291244447278565-15843-0-cc1f1883
  imip-admin outbox drop --all
  imip-admin -c /etc/imip-agent/imip-agent.toml outbox flush
"""


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``outbox``."""
    sub = add_command(commands, "outbox", _outbox, "list, retry or drop messages set aside", OUTBOX)
    sub.add_argument("action", choices=["list", "retry", "drop", "flush"])
    sub.add_argument("ids", nargs="*", metavar="ID", help="held messages (retry, drop)")
    sub.add_argument("--all", action="store_true", help="every held message (retry, drop)")
    sub.add_argument("--sendmail", metavar="CMD", help="flush: send with this sendmail command")
    sub.add_argument("--smtp", metavar="HOST[:PORT]", help="flush: send through this SMTP server")


def _outbox(args: argparse.Namespace, settings: Settings) -> str:
    site = site_from(args, settings)
    spool = site.outbox
    if args.action in ("list", "flush") and (args.ids or args.all):
        raise UsageError(f"outbox {args.action} takes no ids")
    if args.action == "list":
        return list_outbox(spool)
    if args.action == "flush":
        return flush_outbox(site, args)
    change: Callable[[str], bool] = spool.release if args.action == "retry" else spool.drop
    done = "back in line" if args.action == "retry" else "dropped"
    with spool.locked(settings.lock_timeout):
        identifiers = _selected(spool, args)
        return "".join(f"{i}: {done}\n" for i in identifiers if change(i))


def _selected(spool: Outbox, args: argparse.Namespace) -> list[str]:
    """The held ids named (each may be an unambiguous prefix), or all."""
    held = [entry.id for entry in spool.held()]
    if args.all == bool(args.ids):
        raise UsageError("give held message ids or --all, not both or neither")
    if args.all:
        return held
    return [_resolve(given, held) for given in args.ids]


def _resolve(given: str, held: list[str]) -> str:
    found = [identifier for identifier in held if identifier.startswith(given)]
    if given in held:
        return given
    if len(found) != 1:
        what = "no held message" if not found else "several held messages"
        raise UsageError(f"{what} with id {given[:100]!r} (see imip-admin outbox list)")
    return found[0]


def list_outbox(spool: Outbox) -> str:
    """Each held message as a short block, then a count line."""
    held = spool.held()
    waiting = len(spool.scan()[0])
    blocks = [_describe(entry) for entry in held]
    return "".join(blocks) + f"{len(held)} held, {waiting} waiting to be sent\n"


def _describe(entry: HeldMessage) -> str:
    when = datetime.fromtimestamp(entry.held_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [f"{entry.id}  held since {when}"]
    if entry.message is not None:
        sender = entry.message.envelope_from or "<>"
        lines.append(f"  from {sender} to {', '.join(entry.message.recipients)}")
        lines.append(f"  subject: {_subject(entry.message.message)}")
    lines.append(f"  reason: {entry.reason}")
    return "\n".join(lines) + "\n"


def _subject(message: bytes) -> str:
    parsed = email.message_from_bytes(message, policy=email.policy.compat32)
    raw = parsed.get("Subject")
    return decode_header_value(str(raw))[:200] if raw is not None else "(none)"


def flush_outbox(site: Site, args: argparse.Namespace) -> str:
    """Send what waits now, as an agent run would after its work."""
    if args.sendmail and args.smtp:
        raise UsageError("give --sendmail or --smtp, not both")
    settings = site.settings
    if args.sendmail:
        settings = settings.updated(sendmail=args.sendmail, smtp="")
    settings = settings.updated(smtp=args.smtp)
    ctx = context_from(site, sender_from(args, settings), settings=settings)
    spool = site.outbox
    before = len(spool.held())
    sent = agent.flush(ctx)
    held = len(spool.held()) - before
    return f"sent {sent} message(s), set aside {held}\n"
