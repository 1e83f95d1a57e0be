"""imip-admin show: a calendar user's upcoming events, queue, counters, offers."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from datetime import timedelta

from imip_agent.admin_parser import add_command
from imip_agent.admin_support import known_user, now_from
from imip_agent.cli import site_from
from imiptools.config import Settings
from imiptools.errors import UsageError
from imiptools.views.overview import overview

SHOW = """\
Show a calendar user's upcoming event instances (with the user's status:
BUSY, BUSY-TENTATIVE or FREE for declined), the requests awaiting the user,
counter-proposals received and offers held. Times are UTC. --json prints
the same as one JSON object for scripts. Reads without locking.

example:
  imip-admin show room@example.com --days 7
  imip-admin show alice@example.com --json | jq '.requests'
"""

#: Columns of each section: (key, heading).
COLUMNS: dict[str, Sequence[tuple[str, str]]] = {
    "upcoming": (("start", "start"), ("end", "end"), ("status", "status"),
                 ("summary", "summary"), ("organiser", "organiser"), ("uid", "uid")),
    "requests": (("kind", "kind"), ("uid", "uid"), ("instance", "instance"),
                 ("summary", "summary")),
    "counters": (("attendee", "from"), ("proposed", "proposed"), ("uid", "uid"),
                 ("summary", "summary")),
    "offers": (("start", "start"), ("end", "end"), ("expires", "held until"), ("uid", "uid")),
}  # fmt: skip

TITLES = {
    "upcoming": "Upcoming",
    "requests": "Awaiting the user",
    "counters": "Counter-proposals",
    "offers": "Offers held",
}


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register show."""
    sub = add_command(commands, "show", _show, "show a user's events and pending items", SHOW)
    sub.add_argument("user")
    sub.add_argument(
        "--days", type=int, default=30, metavar="N", help="how many days ahead (default 30)"
    )
    sub.add_argument("--json", action="store_true", help="print JSON")


def _show(args: argparse.Namespace, settings: Settings) -> str:
    site = site_from(args, settings)
    user = known_user(site, args.user)
    if args.days <= 0:
        raise UsageError("--days must be positive")
    found = overview(site.records(user, now_from(args)), timedelta(days=args.days))
    sections = {name: [row.as_dict() for row in rows] for name, rows in found.sections().items()}
    if args.json:
        return json.dumps({"user": user, **sections}, indent=2, ensure_ascii=False) + "\n"
    return f"{user}\n" + "".join(
        _table(TITLES[name], COLUMNS[name], rows) for name, rows in sections.items()
    )


def _table(title: str, columns: Sequence[tuple[str, str]], rows: list[dict[str, str]]) -> str:
    """A titled table, columns padded to their widest cell; '(none)' if empty."""
    if not rows:
        return f"\n{title}: (none)\n"
    cells = [[heading for _, heading in columns]]
    cells += [[_cell(row.get(key, "")) for key, _ in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    return f"\n{title}:\n" + "".join(line.rstrip() + "\n" for line in lines)


def _cell(text: str) -> str:
    """One line, at most 60 characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= 60 else flat[:59] + "…"
