"""imip-admin store maintenance: make-freebusy, expire-offers, purge, check.

The periodic jobs (run from cron or a systemd timer, see ``conf/``) and the
store check. Each takes every user's lock in turn (``lock_timeout``), so
they run safely while agents process mail; each is idempotent. This module
also registers the other store subcommands (init, init-user, import,
copy-store, show) from their own modules.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from datetime import datetime

import imip_agent.admin_setup as admin_setup
import imip_agent.admin_show as admin_show
import imip_agent.admin_transfer as admin_transfer
from imip_agent.admin_parser import add_command
from imip_agent.admin_support import (
    add_user_selection,
    now_from,
    selected_users,
    wants_summary,
    with_progress,
)
from imip_agent.cli import site_from
from imiptools import approvals, check, comparison, maintenance
from imiptools.config import Settings, load_settings, parse_duration
from imiptools.dates import parse_datetime
from imiptools.errors import InputError, UsageError
from imiptools.maintenance import Refresh
from imiptools.quota.sync import sync_resource
from imiptools.records import UserRecords
from imiptools.site import Site
from imiptools.stores.names import normalise_user

MAKE_FREEBUSY = """\
Re-derive each user's free/busy from the stored events over the window
around now, so that instances of indefinitely recurring events that have
come into the window become busy (the original's make_freebusy.py). An
event whose free/busy cannot have changed since the last run (its records
unchanged, no instance entering or leaving the window) is skipped; -v says
how many were. With --reset, regenerate the user's whole free/busy,
dropping periods of events that are not stored. Takes each user's lock in
turn; idempotent; quiet unless on a terminal or -v.

example:
  imip-admin -c /etc/imip-agent/imip-agent.toml make-freebusy --all
  imip-admin make-freebusy room@example.com --reset
"""

EXPIRE_OFFERS = """\
Release the periods held for organisers by counter-proposals
(freebusy_offers) once they have expired.

example:
  imip-admin expire-offers --all
"""

PURGE = """\
Remove events that ended before DATE (every instance, for a series), and
the records of events cancelled whole that ended before DATE, with their
instances, cancellations, counters, offers, queued requests and
free/busy. DATE is a date-time (UTC unless it says otherwise) or a
duration back from now; it must not be in the future. Series without an
end are kept.

example:
  imip-admin purge --before 2029-01-01 --all
  imip-admin purge --before P365D --all      (ended more than a year ago)
"""

CHECK = """\
Verify the store: every file parses, every free/busy period belongs to a
stored event and every stored event's periods are present, no stray
temporary files, every preference value is valid, no symlink in the store,
the outbox, the preferences or the quota journal (the agents refuse them).
Prints one line per finding; exits 65 when a problem remains (with
--repair: when one could not be repaired). --repair regenerates free/busy
and removes stray files; it neither follows nor removes a symlink. An
event whose free/busy was derived (by make-freebusy or an agent) from the
very texts stored, with the very periods stored, is not parsed again;
--full parses every event all the same.
--compare FILE instead compares this site with the one another
configuration file describes (after copy-store --to-config): every user's
records and preferences and, without USERs, the quota groups; one line per
difference, 65 when there is one.

example:
  imip-admin check
  imip-admin check --repair room@example.com
  imip-admin check --full
  imip-admin check --compare /etc/imip-agent/postgresql.toml
"""


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register the store subcommands (this module's and its siblings')."""
    admin_setup.add_commands(commands)
    sub = add_command(
        commands, "make-freebusy", _make_freebusy, "re-derive free/busy", MAKE_FREEBUSY
    )
    add_user_selection(sub)
    sub.add_argument("--reset", action="store_true", help="regenerate all free/busy")
    sub = add_command(
        commands, "expire-offers", _expire_offers, "release expired offers", EXPIRE_OFFERS
    )
    add_user_selection(sub)
    sub = add_command(commands, "purge", _purge, "remove past and cancelled events", PURGE)
    add_user_selection(sub)
    sub.add_argument(
        "--before",
        required=True,
        metavar="DATE",
        help="a date-time (2029-01-01) or a duration back from now (P365D)",
    )
    sub = add_command(commands, "check", _check, "verify (and repair) the store", CHECK)
    sub.add_argument("users", nargs="*", metavar="USER", help="users (default: all)")
    sub.add_argument("--repair", action="store_true", help="repair what can be derived")
    sub.add_argument(
        "--full", action="store_true", help="parse every event (believe no derivation record)"
    )
    sub.add_argument("--compare", metavar="FILE", help="compare with the site FILE configures")
    admin_transfer.add_commands(commands)
    admin_show.add_commands(commands)


# -- make-freebusy --------------------------------------------------------------


def refresh_functions(args: argparse.Namespace, site: Site) -> list[Refresh]:
    """What make-freebusy runs for each user, in order, under the user's lock."""
    functions: list[Refresh] = [
        maintenance.reset_freebusy if args.reset else maintenance.refresh_window
    ]
    functions.append(functools.partial(regenerate_quota, site))
    return functions


def regenerate_quota(site: Site, records: UserRecords) -> None:
    """Make a resource's quota records match its bookings (instances that
    entered the window are counted); under the user's lock, then the quotas'."""
    preferences = site.preferences_of(records.user)
    try:
        sync_resource(records, preferences.get, site.ledger, repair=True)
    except ValueError as exc:
        raise InputError(f"quota records of {records.user}: {exc}") from exc


def _make_freebusy(args: argparse.Namespace, settings: Settings) -> str:
    site = site_from(args, settings)
    users = selected_users(args, site)
    functions = refresh_functions(args, site)
    now = now_from(args)
    counts = maintenance.Refreshed()
    for user in with_progress(users, "make-freebusy"):
        with maintenance.locked_records(site, user, now) as records:
            for function in functions:
                done = function(records)
                if isinstance(done, maintenance.Refreshed):
                    counts += done
        approvals.time_out(site, user, now)
    if args.reset:
        return _summary(args, "free/busy reset", len(users))
    events = (
        f": {counts.derived} event(s) re-derived, {counts.skipped} unchanged since the last"
        f" run (skipped), {counts.failed} unreadable"
    )
    return _summary(args, "free/busy refreshed", len(users), events)


def _summary(args: argparse.Namespace, what: str, users: int, details: str = "") -> str:
    return f"{what} for {users} user(s){details}\n" if wants_summary(args) else ""


# -- expire-offers, purge ----------------------------------------------------------


def _expire_offers(args: argparse.Namespace, settings: Settings) -> str:
    site = site_from(args, settings)
    now = now_from(args)
    lines = []
    for user in with_progress(selected_users(args, site), "expire-offers"):
        with maintenance.locked_records(site, user, now) as records:
            released = maintenance.expire_offers(records)
        lines += [f"{user}: released the offers for {uid}\n" for uid in released]
    return "".join(lines) if wants_summary(args) else ""


def _purge(args: argparse.Namespace, settings: Settings) -> str:
    site = site_from(args, settings)
    now = now_from(args)
    before = _date(args.before, now)
    if before > now:
        raise UsageError(f"--before {args.before} is in the future")
    lines = []
    for user in with_progress(selected_users(args, site), "purge"):
        with maintenance.locked_records(site, user, now) as records:
            lines += _purged_lines(user, maintenance.purge(records, before))
    return "".join(lines) if wants_summary(args) else ""


def _date(text: str, now: datetime) -> datetime:
    """A date-time (UTC unless it says otherwise), or a duration back from now."""
    try:
        if text.upper().lstrip("-").startswith("P"):
            return now - abs(parse_duration(text))
        return parse_datetime(text)
    except ValueError as exc:
        raise UsageError(f"not a date or duration: {text!r} (e.g. 2029-01-01, P365D)") from exc


def _purged_lines(user: str, purged: maintenance.Purged) -> list[str]:
    lines = [f"{user}: purged past event {uid}\n" for uid in purged.objects]
    lines += [f"{user}: purged cancelled event {uid}\n" for uid in purged.cancellations]
    lines += [f"{user}: kept cancellation {uid} (no usable dates)\n" for uid in purged.undated]
    return lines


# -- check ----------------------------------------------------------------------


class StoreProblems(InputError):
    """check found problems that remain (65)."""


def _check(args: argparse.Namespace, settings: Settings) -> str:
    """Print the report; raise StoreProblems (65) when a problem remains."""
    site = site_from(args, settings)
    if args.compare:
        return _compare(args, site)
    users = selected_users(args, site, default_all=True, preferences=True)
    progress = with_progress(users, "check")
    report = check.check_store(site, progress, now_from(args), args.repair, args.full)
    _print_lines([finding.line() for finding in report.findings])
    if report.remaining:
        raise StoreProblems(f"check: {report.summary()}")
    return f"check: {report.summary()}\n" if report.findings or wants_summary(args) else ""


def _compare(args: argparse.Namespace, site: Site) -> str:
    """Print where this site and the one ``--compare`` names differ; raise
    StoreProblems (65) when they do."""
    if args.repair:
        raise UsageError("check: --compare repairs nothing; leave out --repair")
    other = site_from(args, load_settings(args.compare))
    users = [normalise_user(user) for user in args.users] or None
    found = comparison.site_differences(site, other, users)
    _print_lines(found)
    where = f"{site.backend.store_location} and {other.backend.store_location}"
    if found:
        raise StoreProblems(f"check: {len(found)} difference(s) between {where}")
    return f"check: no difference between {where}\n"


def _print_lines(lines: Sequence[str]) -> None:
    for line in lines:
        sys.stdout.write(line + "\n")
    sys.stdout.flush()
