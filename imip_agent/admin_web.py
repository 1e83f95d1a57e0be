"""imip-admin web-password and web-feed: imip-manager's own accounts.

The files are those of :mod:`imip_agent.manager.accounts` (in ``[agent]
manager``, by default ``manager`` beside the store). A password is read
from standard input (its first line) or, at a terminal, asked for twice;
never from the command line, where other users could see it in the
process list. Run as root, what is written is given to the owner of the
store directory (the agents' user, who runs the manager).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from imip_agent.admin_parser import add_command
from imip_agent.admin_support import is_interactive, now_from
from imip_agent.manager.accounts import FEED_KINDS, FeedTokens, PasswordFile, manager_home
from imiptools.config import Settings
from imiptools.errors import InputError, NoSuchUser, UsageError
from imiptools.initialise import own_like

WEB_PASSWORD = """\
Manage the passwords of imip-manager's own login (used when it serves with
--auth password): an argon2id hash per user in the file 'passwords' of the
manager's directory ([agent] manager; by default 'manager' beside the store).

  set USER     set or replace USER's password: the first line of standard
               input, or asked for twice at a terminal (never an argument)
  remove USER  take USER's password away (their sessions end at once)
  list         the users who have a password

examples:
  imip-admin web-password set alice@example.com
  printf '%s\\n' "$PASSWORD" | imip-admin web-password set alice@example.com
  imip-admin web-password list
"""

WEB_FEED = """\
Manage the secret-token subscription feeds of imip-manager: a URL that a
calendar program subscribes to without logging in, giving the user's
events (as 'export' writes them) or their free/busy. Only the token's
SHA-256 is kept (file 'feeds' in the manager's directory): the token is
printed once, when made.

  add USER [--kind events|freebusy] [--label TEXT]
               a new feed; prints its id and token (the URL is
               /feed/TOKEN.ics on the manager)
  revoke USER ID
               the feed stops answering (404) at once
  list [USER]  the feeds: id, user, kind, made, label

examples:
  imip-admin web-feed add alice@example.com --kind freebusy --label colleagues
  imip-admin web-feed list alice@example.com
  imip-admin web-feed revoke alice@example.com 3f2a9c01
"""


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``web-password`` and ``web-feed``."""
    sub = add_command(
        commands, "web-password", _password, "manage imip-manager's passwords", WEB_PASSWORD
    )
    sub.add_argument("action", choices=("set", "remove", "list"), help="what to do")
    sub.add_argument("user", nargs="?", metavar="USER", help="a calendar user")
    sub = add_command(commands, "web-feed", _feed, "manage imip-manager's feed tokens", WEB_FEED)
    sub.add_argument("action", choices=("add", "revoke", "list"), help="what to do")
    sub.add_argument("user", nargs="?", metavar="USER", help="a calendar user")
    sub.add_argument("id", nargs="?", metavar="ID", help="revoke: the feed's id")
    sub.add_argument("--kind", choices=FEED_KINDS, default="events", help="add: what it gives")
    sub.add_argument("--label", default="", help="add: a name for it (say, the device)")


def _password(args: argparse.Namespace, settings: Settings) -> str:
    passwords = PasswordFile.of(settings)
    if args.action == "list":
        return "".join(f"{user}\n" for user in passwords.users())
    if not args.user:
        raise UsageError(f"web-password {args.action} needs USER")
    if args.action == "remove":
        if not passwords.remove(args.user):
            raise NoSuchUser(f"{args.user} has no password")
        return ""
    passwords.set(args.user, read_password())
    _hand_over(passwords.path, settings)
    return ""


def read_password() -> str:
    """The new password: asked twice at a terminal, else standard input's
    first line (without its line end). InputError when empty or differing."""
    if is_interactive(sys.stdin):
        first = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != first:
            raise InputError("the two passwords differ")
        password = first
    else:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not password:
        raise InputError("no password given")
    return password


def _feed(args: argparse.Namespace, settings: Settings) -> str:
    feeds = FeedTokens.of(settings)
    if args.action == "list":
        return "".join(
            f"{f.id}\t{f.user}\t{f.kind}\t{f.made}\t{f.label}\n" for f in feeds.feeds(args.user)
        )
    if not args.user:
        raise UsageError(f"web-feed {args.action} needs USER")
    if args.action == "revoke":
        if not args.id:
            raise UsageError("web-feed revoke needs USER and ID")
        if not feeds.revoke(args.user, args.id):
            raise NoSuchUser(f"{args.user} has no feed {args.id}")
        return ""
    feed, token = feeds.make(args.user, args.kind, args.label, now_from(args))
    _hand_over(feeds.path, settings)
    return f"{feed.id}\t{feed.kind}\t{token}\n"


def _hand_over(path: Path, settings: Settings) -> None:
    """The manager's directory and ``path`` to the store's owner, when root."""
    own_like([manager_home(settings), path], Path(settings.store))
