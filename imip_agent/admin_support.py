"""What the store subcommands of imip-admin share: the site, users, progress."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TextIO

from imip_agent.cli import clock_from
from imiptools.errors import NoSuchUser, UsageError
from imiptools.site import Site
from imiptools.stores.names import normalise_user


def now_from(args: argparse.Namespace) -> datetime:
    """``--now``, else the current time."""
    return clock_from(args).now()


def add_user_selection(parser: argparse.ArgumentParser) -> None:
    """``USER ...`` or ``--all`` (exactly one of them)."""
    parser.add_argument("users", nargs="*", metavar="USER", help="calendar users")
    parser.add_argument("--all", action="store_true", help="every user in the store")


def selected_users(
    args: argparse.Namespace, site: Site, default_all: bool = False, preferences: bool = False
) -> list[str]:
    """The normalised users named, or every user of the store with ``--all``.

    Raises UsageError when both or neither are given (unless
    ``default_all``), NoSuchUser (67) for a user the store does not hold.
    With ``preferences``, users who only have preferences count too.
    """
    every = getattr(args, "all", False)
    if args.users and every:
        raise UsageError("give users or --all, not both")
    if not args.users and not (every or default_all):
        raise UsageError("give at least one USER, or --all")
    known = set(site.store.users())
    if preferences:
        known.update(site.backend.preference_users())
    if not args.users:
        require_site(site, "store")
        return sorted(known)
    users = [normalise_user(user) for user in args.users]
    for user in users:
        if user not in known:
            raise no_such_user(site, user)
    return users


def known_user(site: Site, user: str) -> str:
    """``user`` normalised; NoSuchUser (67) unless the store holds records
    of theirs, naming the store (or saying that it does not exist)."""
    user = normalise_user(user)
    if user not in set(site.store.users()):
        raise no_such_user(site, user)
    return user


#: Where a mistyped path is usually given, to say with a missing directory.
CHECK_PATHS = "check {option}, -c/--config and IMIP_AGENT_CONFIG; 'imip-admin init' creates it"
OPTIONS = {"store": "-S/--store", "preferences": "-p/--preferences"}


def require_site(site: Site, name: str) -> None:
    """NoSuchUser (67) when the site's ``name`` directory (``store``,
    ``preferences``) does not exist: a job over every user of a mistyped
    store must not report success over none."""
    missing = site.backend.missing_locations()
    if name in missing:
        where = CHECK_PATHS.format(option=OPTIONS.get(name, "the options"))
        raise NoSuchUser(f"the {name} directory {missing[name]} does not exist ({where})")


def no_such_user(site: Site, user: str) -> NoSuchUser:
    """The error for ``user``, whom the store does not hold: it names the
    store, and says when the store itself is missing (a mistyped ``-S`` or
    configuration)."""
    location = site.backend.store_location
    if "store" in site.backend.missing_locations():
        where = CHECK_PATHS.format(option=OPTIONS["store"])
        return NoSuchUser(f"no calendar user {user}: the store {location} does not exist ({where})")
    return NoSuchUser(f"the store {location} holds no calendar user {user}")


def is_interactive(stream: TextIO) -> bool:
    """True when ``stream`` is a terminal (not cron, not a pipe)."""
    try:
        return stream.isatty()
    except ValueError:
        return False


def with_progress(users: Sequence[str], label: str, stream: TextIO = sys.stderr) -> Iterator[str]:
    """Yield ``users``, drawing a progress bar on ``stream`` if it is a terminal."""
    show = is_interactive(stream)
    for number, user in enumerate(users, 1):
        if show:
            _draw(stream, label, number - 1, len(users), user)
        yield user
    if show and users:
        _draw(stream, label, len(users), len(users), "done")
        stream.write("\n")


def _draw(stream: TextIO, label: str, done: int, total: int, what: str) -> None:
    width = 30
    filled = width * done // max(total, 1)
    bar = "#" * filled + "." * (width - filled)
    stream.write(f"\r{label} [{bar}] {done}/{total} {what[:40]:<40}")
    stream.flush()


def wants_summary(args: argparse.Namespace) -> bool:
    """Print a summary on a terminal or with -v; stay quiet under cron."""
    return bool(getattr(args, "verbose", 0)) or is_interactive(sys.stdout)
