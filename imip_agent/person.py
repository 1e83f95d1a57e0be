"""imip-person: the agent for mail *to* a person.

Reads one message on stdin, records what its calendar objects mean for the
person (see ``imiptools.handlers.person``), sends what preferences allow,
then delivers the message to the mailbox: over LMTP (``-l``), to a local
SMTP listener that does not filter again (``-L``), or through the sendmail
command; ``--output DIR`` writes the deliveries as files instead. Exit
codes: ``imiptools.errors.ExitCode`` (75 when delivery fails, so the MTA
retries; 65 only when the mailbox server rejects the recipient for good,
or when no sender can use the recipient's address (5.1.3); a person's
mail never bounces for its calendar data).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import NoReturn

from imip_agent.cli import Parser, build_parser, run_agent, run_program, sender_from
from imiptools.config import Settings
from imiptools.errors import ConfigError, ExitCode
from imiptools.handlers.person import PersonHandler
from imiptools.mail.lmtp import LmtpSender
from imiptools.mail.send import Sender, SendmailSender, SmtpSender, parse_smtp_target

#: The usual Postfix re-injection listener without content filtering.
LOCAL_SMTP = "127.0.0.1:10025"


def add_delivery_options(parser: argparse.ArgumentParser) -> None:
    """How the person's mailbox is reached."""
    parser.add_argument(
        "-l",
        "--lmtp",
        metavar="SOCKET|HOST:PORT",
        help="deliver over LMTP (e.g. /run/dovecot/lmtp)",
    )
    parser.add_argument(
        "-L",
        "--local-smtp",
        nargs="?",
        const=LOCAL_SMTP,
        metavar="HOST:PORT",
        help=f"deliver by SMTP to a listener that does not filter (default {LOCAL_SMTP})",
    )


def deliverer_from(args: argparse.Namespace, settings: Settings) -> Sender:
    """``--output``/``-d`` win (tests, dry runs); then -l, -L, sendmail."""
    if args.output or args.print_only:
        return sender_from(args, settings)
    if args.lmtp:
        try:
            return LmtpSender(args.lmtp)
        except ValueError as exc:
            raise ConfigError(f"-l/--lmtp: {exc}") from exc
    if args.local_smtp:
        return SmtpSender(*parse_smtp_target(args.local_smtp))
    return SendmailSender(settings.sendmail)


DESCRIPTION = """\
The agent for mail to a person. It reads one message on stdin, as the MTA's
pipe delivers it, records what its invitations, replies and cancellations mean
for the person, sends what the person's preferences allow (free/busy answers),
then delivers the message to the mailbox: over LMTP (-l), to a local SMTP
listener that does not filter again (-L), or with the sendmail command. A
person's mail never bounces for its calendar data: it exits 65 only when the
mailbox server refuses the recipient for good or no sender can use the address.
"""

EXAMPLE = """\
examples:
  as Postfix's pipe transport runs it (master.cf), delivering to Dovecot:
    imip-person -c /etc/imip-agent/imip-agent.toml --queue-id ${queue_id} \\
        -o ${recipient} -s ${sender} -l /run/dovecot/lmtp
  by hand, writing what would be delivered and sent into out/:
    imip-person -o bob@example.com -s alice@example.com --output out < invitation.eml
"""


def parser() -> Parser:
    """The command line of imip-person (the manual's reference is made from it)."""
    person = build_parser("imip-person", DESCRIPTION, EXAMPLE)
    add_delivery_options(person)
    return person


def run(argv: Sequence[str]) -> ExitCode:
    """Parse options and run the person agent."""
    return run_agent(argv, parser(), PersonHandler, deliverer_from)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console entry point ``imip-person``."""
    run_program(run, argv)
