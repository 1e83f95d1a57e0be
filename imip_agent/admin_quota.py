"""imip-admin quota: manage quota groups and see how they are used.

These forms are kept stable; tools outside the project rely on them::

    imip-admin quota set-limit QUOTA WHO LIMIT [--per day|week|month|PERIOD|outstanding]
    imip-admin quota set-group QUOTA USER GROUP        (GROUP '-' removes the user)
    imip-admin quota set-delegates QUOTA RESOURCE...
    imip-admin quota show QUOTA
    imip-admin quota report QUOTA [--user U] [--json]
    imip-admin quota expire [QUOTA...]

and besides: ``quota exempt QUOTA ADDRESS... [--remove]`` and
``quota set-zone QUOTA TZID``. Every change is validated, then written
atomically under the quota's lock (see :mod:`imiptools.quota.base`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from imip_agent.admin_parser import AdminParser, add_command
from imip_agent.cli import site_from
from imiptools.config import Settings
from imiptools.errors import InputError, UsageError
from imiptools.quota import admin as quota_admin
from imiptools.quota.base import QuotaLedger
from imiptools.quota.model import QuotaState, parse_group, parse_user
from imiptools.views.quota import expire_quota, quota_summary, report_rows

DESCRIPTION = """\
Manage quota groups: limits on how much each organiser (or group of
organisers) may book of the resources whose scheduling_function names the
quota (check_quota QUOTA), the groups, the resources that stand in for each
other, and see how a quota is used. Every change is checked, then written
under the quota's lock. LIMIT is booked time as a duration (PT6H) or a number
of bookings (20); --per is day, week, month, outstanding (every booking not
yet over: the default) or a duration for a rolling window (P7D).
"""

EXAMPLES = """\
examples:
  imip-admin quota set-limit rooms '*' PT10H --per week
  imip-admin quota set-limit rooms staff 20 --per month      (the group staff, pooled)
  imip-admin quota set-limit rooms bob@example.com PT6H --per P7D
  imip-admin quota set-group rooms alice@example.com staff
  imip-admin quota set-delegates rooms room1@example.com room2@example.com
  imip-admin quota report rooms --user alice@example.com
  imip-admin quota expire                                    (from cron, daily)
"""


def _example(*lines: str) -> str:
    """A subcommand's --help text: its summary, then ``example:`` lines."""
    return "\n".join(lines[:1]) + "\n\nexample:\n" + "".join(f"  {x}\n" for x in lines[1:])


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``imip-admin quota ...``."""
    quota: AdminParser = commands.add_parser(
        "quota",
        help="manage quota groups (limits, groups, delegates) and report their use",
        description=DESCRIPTION,
        epilog=EXAMPLES,
    )
    actions = quota.add_subparsers(dest="action", title="commands")
    limit = add_command(
        actions,
        "set-limit",
        set_limit,
        "set (or replace) a limit",
        _example(
            "Set (or replace, or with --remove remove) the limit of WHO in QUOTA.",
            "imip-admin quota set-limit rooms '*' PT10H --per week",
            "imip-admin quota set-limit rooms bob@example.com 3 --per P7D",
            "imip-admin quota set-limit rooms bob@example.com 3 --per P7D --remove",
        ),
    )
    limit.add_argument("quota", help="the quota's name (a plain word: rooms)")
    limit.add_argument("who", help="an address, a group name, or '*' for everyone else")
    limit.add_argument("limit", help="a duration (PT6H: booked time) or a number (bookings)")
    limit.add_argument(
        "--per",
        default="outstanding",
        metavar="PERIOD",
        help="day, week, month, outstanding (default), or a duration for a rolling window",
    )
    limit.add_argument("--remove", action="store_true", help="remove the limit instead")
    group = add_command(
        actions,
        "set-group",
        set_group,
        "put a user in a group ('-': none)",
        _example(
            "Put USER in GROUP (whose limits they then share); GROUP '-' takes them out.",
            "imip-admin quota set-group rooms alice@example.com staff",
            "imip-admin quota set-group rooms alice@example.com -",
        ),
    )
    group.add_argument("quota")
    group.add_argument("user", help="an organiser's address")
    group.add_argument("group", help="a group name, or '-' for none")
    delegates = add_command(
        actions,
        "set-delegates",
        set_delegates,
        "set the resources that stand in for each other",
        _example(
            "Set the resources that stand in for each other (schedule_for_delegate); none: clear.",
            "imip-admin quota set-delegates rooms room1@example.com room2@example.com",
        ),
    )
    delegates.add_argument("quota")
    delegates.add_argument("resources", nargs="*", metavar="RESOURCE")
    exempt = add_command(
        actions,
        "exempt",
        set_exempt,
        "exempt users from the quota's limits",
        _example(
            "Exempt organisers from the quota's limits (--remove: end the exemption).",
            "imip-admin quota exempt rooms boss@example.com",
            "imip-admin quota exempt rooms boss@example.com --remove",
        ),
    )
    exempt.add_argument("quota")
    exempt.add_argument("users", nargs="+", metavar="ADDRESS")
    exempt.add_argument("--remove", action="store_true", help="end the exemption instead")
    zone = add_command(
        actions,
        "set-zone",
        set_zone,
        "the zone of days, weeks and months",
        _example(
            "Set the time zone in which the quota's days, weeks and months begin.",
            "imip-admin quota set-zone rooms Europe/Berlin",
        ),
    )
    zone.add_argument("quota")
    zone.add_argument("tzid", help="an IANA time zone")
    show = add_command(
        actions,
        "show",
        show_quota,
        "print a quota's files",
        _example("Print a quota's limits, groups and settings.", "imip-admin quota show rooms"),
    )
    show.add_argument("quota")
    report = add_command(
        actions,
        "report",
        report_quota,
        "use and remaining allowance now",
        _example(
            "Show each organiser's (and group's) use of the quota and what remains, now.",
            "imip-admin quota report rooms",
            "imip-admin quota report rooms --user alice@example.com --json",
        ),
    )
    report.add_argument("quota")
    report.add_argument("--user", metavar="ADDRESS", help="only this user (and their group)")
    report.add_argument("--json", action="store_true", help="machine-readable output")
    expire = add_command(
        actions,
        "expire",
        expire_quotas,
        "retire bookings that no longer count",
        _example(
            "Retire the bookings that no longer count against the quotas (daily, from cron).",
            "imip-admin quota expire",
            "imip-admin quota expire rooms cars",
        ),
    )
    expire.add_argument("quotas", nargs="*", metavar="QUOTA", help="default: every quota")


def ledger_from(args: argparse.Namespace, settings: Settings) -> QuotaLedger:
    """The site's quota ledger (for files: ``-j``, setting ``journal``)."""
    return site_from(args, settings).ledger


def _checked(function: Callable[[str], object], text: str, what: str) -> str:
    try:
        return str(function(text))
    except ValueError as exc:
        raise InputError(f"bad {what}: {exc}") from exc


def set_limit(args: argparse.Namespace, settings: Settings) -> str:
    """Add or replace the line for (WHO, measure, period); or remove it
    (the words read by :func:`imiptools.quota.admin.limit_of`)."""
    try:
        limit = quota_admin.limit_of(args.who, args.limit, args.per)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    ledger = ledger_from(args, settings)
    _changed(lambda: quota_admin.set_limit(ledger, args.quota, limit, args.remove))
    return ""


def _changed(change: Callable[[], None]) -> None:
    """Run ``change``; a bad line (new or stored) is unusable input (65)."""
    try:
        change()
    except ValueError as exc:
        raise InputError(str(exc)) from exc


def set_group(args: argparse.Namespace, settings: Settings) -> str:
    """Put USER in GROUP (one group per user in a quota); '-' takes them out."""
    user = _checked(parse_user, args.user, "address")
    group = None if args.group == "-" else _checked(parse_group, args.group, "group name")
    ledger = ledger_from(args, settings)
    _changed(lambda: quota_admin.set_group(ledger, args.quota, user, group))
    return ""


def set_delegates(args: argparse.Namespace, settings: Settings) -> str:
    """Replace the list of resources that may stand in for each other."""
    resources = [_checked(parse_user, r, "resource address") for r in args.resources]
    ledger = ledger_from(args, settings)
    _changed(lambda: quota_admin.set_delegates(ledger, args.quota, resources))
    return ""


def set_exempt(args: argparse.Namespace, settings: Settings) -> str:
    """Add (or with ``--remove`` drop) exempt users."""
    users = {_checked(parse_user, u, "address") for u in args.users}
    ledger = ledger_from(args, settings)
    _changed(lambda: quota_admin.set_exempt(ledger, args.quota, users, args.remove))
    return ""


def set_zone(args: argparse.Namespace, settings: Settings) -> str:
    """Set the zone in which days, weeks and months are counted."""
    ledger = ledger_from(args, settings)
    _changed(lambda: quota_admin.set_zone(ledger, args.quota, args.tzid))
    return ""


def _quota_state(journal: QuotaLedger, quota: str) -> QuotaState:
    try:
        return journal.snapshot(quota)
    except ValueError as exc:
        raise InputError(str(exc)) from exc


def show_quota(args: argparse.Namespace, settings: Settings) -> str:
    """The quota's admin lists as written, and how many bookings it records."""
    journal = ledger_from(args, settings)
    if not journal.exists(args.quota):
        raise UsageError(f"no quota {args.quota!r} in {journal.location()}")
    summary = quota_summary(journal, _quota_state(journal, args.quota))
    out = [f"quota {summary.name} ({summary.location})"]
    for name, lines in summary.lists.items():
        out.append(f"{name}:" + ("" if lines else " (none)"))
        out += [f"  {line}" for line in lines]
    out.append(f"bookings: {summary.bookings}")
    return "\n".join(out) + "\n"


def report_quota(args: argparse.Namespace, settings: Settings) -> str:
    """Use and remaining allowance of each user and group for the period under way."""
    site = site_from(args, settings)
    state = _quota_state(site.ledger, args.quota)
    now = site.clock.now()
    users = [_checked(parse_user, args.user, "address")] if args.user else None
    rows = report_rows(state, now, users)
    if args.json:
        data = {"quota": args.quota, "now": now.isoformat(), "rows": [r.as_dict() for r in rows]}
        return json.dumps(data) + "\n"
    if not rows:
        return f"no limits apply in {args.quota}\n"
    lines = [f"{'who':<32} {'limit':<36} {'used':>10} {'remaining':>10}  period from"]
    for row in rows:
        lines.append(
            f"{row.who:<32} {row.limit:<36} {row.used:>10} {row.remaining:>10}  {row.start}"
        )
    return "\n".join(lines) + "\n"


def expire_quotas(args: argparse.Namespace, settings: Settings) -> str:
    """Retire bookings that ended and can no longer count for any limit."""
    site = site_from(args, settings)
    now = site.clock.now()
    names = args.quotas or site.ledger.quotas()
    out = []
    for name in names:
        dropped = expire_quota(site.ledger, _quota_state(site.ledger, name), now)
        out.append(f"{name}: {dropped} booking{'s' if dropped != 1 else ''} retired")
    return "".join(line + "\n" for line in out) if _verbose(args) else ""


def _verbose(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "verbose", 0))
