"""imip-admin import and copy-store: calendars into a store, a store elsewhere."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imip_agent.admin_parser import add_command
from imip_agent.admin_support import (
    add_user_selection,
    now_from,
    selected_users,
    with_progress,
)
from imip_agent.cli import site_from
from imiptools import maintenance, transfer
from imiptools.config import Settings, load_settings
from imiptools.errors import InputError, UsageError
from imiptools.fileutil import decode_text
from imiptools.stores.names import normalise_user

IMPORT = """\
Load an existing calendar (an .ics file, '-' for stdin) into a user's
records, e.g. a room's bookings from a previous system, and record its
free/busy. Per UID, a stored version at least as new is kept. --accept
marks the user's attendance ACCEPTED (bookings that were confirmed).
No scheduling policy is applied: clashes are imported as they are.

example:
  imip-admin import room@example.com bookings.ics --accept
"""

COPY_STORE = """\
Copy every user's records (or those named) into the store at DIR (--to), or
into the site another configuration file describes (--to-config, say one
with backend = "postgresql", or back to files): objects, cancellations,
counters, free/busy, offers, requests, decision logs; with --to-config also
each user's preferences and, with --all, every quota group (admin lists and
records). Each user is copied under both sites' locks; rerunning converges.
Let the agents defer meanwhile (stop the MTA's deliveries to them), send
what the outbox holds first (imip-admin outbox flush): spooled mail is not
copied. With --to, preferences are not copied either (copy that directory).
imip-admin check --compare FILE then compares the two sites.

example:
  imip-admin copy-store --to /srv/new/store --all
  imip-admin copy-store --to-config /etc/imip-agent/postgresql.toml --all
"""


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register import and copy-store."""
    sub = add_command(commands, "import", _import, "load an .ics file into a user", IMPORT)
    sub.add_argument("user")
    sub.add_argument("file", metavar="FILE.ics")
    sub.add_argument("--accept", action="store_true", help="mark the user's PARTSTAT ACCEPTED")
    sub = add_command(commands, "copy-store", _copy_store, "copy the store elsewhere", COPY_STORE)
    add_user_selection(sub)
    target = sub.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", metavar="DIR", help="the target store (same backend)")
    target.add_argument("--to-config", metavar="FILE", help="the site this configuration names")


def _import(args: argparse.Namespace, settings: Settings) -> str:
    user = normalise_user(args.user)
    text = _read(args.file)
    site = site_from(args, settings)
    with maintenance.locked_records(site, user, now_from(args)) as records:
        result = transfer.import_calendar(records, text, args.accept)
    lines = [f"imported {len(result.imported)} event(s) for {user}\n"]
    if result.kept:
        lines.append(f"kept {len(result.kept)} stored event(s) that are as new or newer\n")
    if result.skipped:
        lines.append(f"skipped {result.skipped} event(s) without UID\n")
    return "".join(lines)


def _read(name: str) -> str:
    try:
        data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from exc
    try:
        return decode_text(data)
    except UnicodeDecodeError as exc:
        raise InputError(f"{name} is not UTF-8 text") from exc


def _copy_store(args: argparse.Namespace, settings: Settings) -> str:
    site = site_from(args, settings)
    whole = args.to_config is not None
    target_settings = load_settings(args.to_config) if whole else settings.updated(store=args.to)
    target = site_from(args, target_settings)
    if target.backend.store_location == site.backend.store_location:
        raise UsageError("the target is the store itself")
    users = selected_users(args, site)
    timeout = settings.lock_timeout
    for user in with_progress(users, "copy-store"):
        with site.store.lock(user, timeout), target.store.lock(user, timeout):
            transfer.copy_user(site.store, target.store, user)
            if whole:
                transfer.copy_preferences(site.preferences, target.preferences, user)
    lines = [f"copied {len(users)} user(s) to {target.backend.store_location}\n"]
    if whole and args.all:
        quotas = transfer.copy_quotas(site.ledger, target.ledger, timeout)
        lines.append(f"copied {len(quotas)} quota group(s)\n")
    return "".join(lines)
