"""imip-admin approvals, approve, decline: requests waiting for a resource's owners.

A resource whose ``approval`` preference sends a request to its owners
holds it (TENTATIVE to the organiser, busy-tentative) until an approver
answers by mail, the timeout passes (``make-freebusy`` applies it), or an
administrator decides here. See :mod:`imiptools.handlers.approval`.
"""

from __future__ import annotations

import argparse

from imip_agent.admin_parser import add_command
from imip_agent.admin_support import known_user, now_from
from imip_agent.cli import site_from
from imiptools import approvals
from imiptools.config import Settings
from imiptools.dates import format_utc
from imiptools.errors import UsageError

APPROVALS = """\
List the requests waiting for a resource's owners (the `approval` and
`approvers` preferences): resource, UID, organiser, the deadline (UTC),
the approvers and the resource's own assessment. Without RESOURCE, every
resource of the store.

example:
  imip-admin approvals
  imip-admin approvals room@example.com
"""

DECIDE = """\
Decide a request waiting for the resource's owners, as an approver would:
`approve` books it if the resource's rules, re-checked now against its
free/busy and quotas, accept it or still break only the rule the owners
were shown (a clash is declined); `decline` declines it. The organiser is
answered (with --reason, if given) and the approvers are told. The mail is
spooled: the next agent run or `imip-admin outbox flush` sends it.

example:
  imip-admin approve room@example.com 4f01621@example.com --reason "ok for the board"
  imip-admin decline room@example.com 4f01621@example.com --reason "being painted"
"""


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``approvals``, ``approve`` and ``decline``."""
    sub = add_command(
        commands, "approvals", _approvals, "list requests waiting for approval", APPROVALS
    )
    sub.add_argument("resource", nargs="?", metavar="RESOURCE", help="a resource (default: all)")
    for verdict in ("approve", "decline"):
        sub = add_command(commands, verdict, _decide, f"{verdict} a pending request", DECIDE)
        sub.add_argument("resource", metavar="RESOURCE", help="the resource")
        sub.add_argument("uid", metavar="UID", help="the request's UID")
        sub.add_argument("--reason", default="", help="told to the organiser")


def _approvals(args: argparse.Namespace, settings: Settings) -> str:
    site = site_from(args, settings)
    users = [known_user(site, args.resource)] if args.resource else sorted(site.store.users())
    lines = [
        f"{w.resource.removeprefix('mailto:')}\t{w.uid}\t{w.organiser.removeprefix('mailto:')}"
        f"\t{format_utc(w.deadline)}\t{','.join(w.approvers)}\t{w.assessment}\n"
        for w in approvals.waiting(site, users)
    ]
    return "".join(lines)


def _decide(args: argparse.Namespace, settings: Settings) -> str:
    site = site_from(args, settings)
    user = known_user(site, args.resource)
    verdict = args.command
    if not approvals.decide(site, user, args.uid, verdict, args.reason, now_from(args)):
        raise UsageError(f"no request {args.uid!r} waits for approval at {args.resource}")
    done = "approved" if verdict == "approve" else "declined"
    return f"{args.uid}: {done}\n"
