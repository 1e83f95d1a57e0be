"""imip-admin add-resource, add-person, remove-resource, remove-person.

One command sets up a calendar user completely: its store and preferences,
and the lines of the MTA's tables that route its mail to our programs
(:mod:`imip_agent.admin_routes`). By default the lines are printed, for an
admin to add by hand or on another host; ``--apply`` writes them into the
tables and makes them take effect (Postfix: ``postmap`` and ``postfix
reload``; Exim reads its lists at each delivery). Every step is idempotent:
running a command twice adds no line twice and changes nothing the second
time. The matching ``remove-*`` takes the user's lines out of the tables, so
the MTA no longer hands it mail (Postfix then refuses a removed resource at
RCPT); the store and preferences are kept, since they hold the bookings and
the decision log.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from imip_agent.admin_exim import EXIM_DIR, Exim
from imip_agent.admin_parser import add_command
from imip_agent.admin_postfix import POSTFIX_DIR, Postfix
from imip_agent.admin_routes import PERSON, RESOURCE, Entry, Kind, command_path, edit_table
from imip_agent.cli import site_from
from imiptools.config import Settings
from imiptools.errors import ConfigError, InputError
from imiptools.preferences import validate
from imiptools.site import Site
from imiptools.stores.names import normalise_user

ADD_RESOURCE = """\
Set up a resource (a room, a car, a projector): its store and preferences
(CN, TZID, and scheduling_function: "schedule_in_freebusy N" for a
capacity of N bookings at a time, 1 unless --capacity says), then the
lines of the MTA's tables that route its mail to imip-resource (Postfix:
imip-transport and imip-resources; Exim: imip-resources). Without --apply
the lines are printed; with --apply they are written and take effect
(postmap and postfix reload). Idempotent: a second run adds nothing; a
changed name, zone or capacity is updated.
Exit 0 done, 64 usage, 65 a bad value, 75 the MTA's tables or the store.

example:
  imip-admin add-resource room1@resources.example.org --name "Room 1" \\
      --tz Europe/Berlin --capacity 2 --apply
  imip-admin add-resource car@resources.example.org --name "Pool car" \\
      --tz Europe/Berlin --mta exim
"""

ADD_PERSON = """\
Set up a person who has a mailbox: their store and preferences (CN, TZID
and LANG when given), then the lines of the MTA's tables that pass their
mail through imip-person and a copy of what they send to
imip-person-outgoing (Postfix: imip-transport and imip-sender-bcc; Exim:
imip-people). Without --apply the lines are printed; with --apply they are
written and take effect. Idempotent.
Exit 0 done, 64 usage, 65 a bad value, 75 the MTA's tables or the store.

example:
  imip-admin add-person alice@example.org --name "Alice Example" \\
      --tz Europe/Berlin --lang de --apply
"""

REMOVE_RESOURCE = """\
Take a resource's lines out of the MTA's tables (printed without --apply;
with --apply removed and made effective): Postfix then refuses its mail at
RCPT. Its store and preferences are kept (bookings, decision log); delete
them by hand once no mail for it is queued. Idempotent.
Exit 0 done, 64 usage, 65 a bad value, 75 the MTA's tables or the store.

example:
  imip-admin remove-resource room1@resources.example.org --apply
"""

REMOVE_PERSON = """\
Take a person's lines out of the MTA's tables (printed without --apply;
with --apply removed and made effective): their mail then goes to their
mailbox without imip-person, and what they send is no longer recorded.
Their store and preferences are kept. Idempotent.
Exit 0 done, 64 usage, 65 a bad value, 75 the MTA's tables or the store.

example:
  imip-admin remove-person alice@example.org --apply
"""


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register add-resource, add-person, remove-resource and remove-person."""
    summary = "set up a resource and its mail routing"
    sub = add_command(commands, "add-resource", _add_resource, summary, ADD_RESOURCE)
    _address(sub, "room1@resources.example.org")
    sub.add_argument("--name", required=True, help='its name in replies (CN), e.g. "Room 1"')
    sub.add_argument("--tz", required=True, metavar="TZID", help="its time zone (Europe/Berlin)")
    sub.add_argument(
        "--capacity",
        type=_capacity,
        metavar="N",
        help="bookings it can hold at a time (default 1)",
    )
    _routing(sub)
    sub = add_command(
        commands, "add-person", _add_person, "set up a person and their mail routing", ADD_PERSON
    )
    _address(sub, "alice@example.org")
    sub.add_argument("--name", help="their name in messages (CN)")
    sub.add_argument("--tz", metavar="TZID", help="their time zone (Europe/Berlin)")
    sub.add_argument("--lang", metavar="LANG", help="language of messages to them (en, de)")
    _routing(sub)
    for kind, example, text in (
        (RESOURCE, "room1@resources.example.org", REMOVE_RESOURCE),
        (PERSON, "alice@example.org", REMOVE_PERSON),
    ):
        summary = f"remove a {kind}'s mail routing (its data are kept)"
        sub = add_command(commands, f"remove-{kind}", _remove, summary, text)
        sub.set_defaults(kind=kind)
        _address(sub, example)
        _routing(sub)


def _address(parser: argparse.ArgumentParser, example: str) -> None:
    parser.add_argument("address", metavar="ADDRESS", help=f"its mail address ({example})")


def _routing(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--apply",
        action="store_true",
        help="write the MTA's lines and make them take effect (default: print them)",
    )
    add_mta_options(parser, "the MTA whose tables route the address")


def _capacity(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return number


def _add_resource(args: argparse.Namespace, settings: Settings) -> str:
    user = normalise_user(args.address)
    current = site_from(args, settings).preferences.get(user, "scheduling_function")
    values = {"CN": args.name, "TZID": args.tz}
    if args.capacity is not None:
        capacity = f" {args.capacity}" if args.capacity > 1 else ""
        values["scheduling_function"] = f"schedule_in_freebusy{capacity}"
    elif current is None:
        values["scheduling_function"] = "schedule_in_freebusy"
    return _add(args, settings, user, RESOURCE, values)


def _add_person(args: argparse.Namespace, settings: Settings) -> str:
    user = normalise_user(args.address)
    given = {"CN": args.name, "TZID": args.tz, "LANG": args.lang}
    values = {name: value for name, value in given.items() if value is not None}
    return _add(args, settings, user, PERSON, values)


def _add(
    args: argparse.Namespace, settings: Settings, user: str, kind: Kind, values: dict[str, str]
) -> str:
    """Validate everything, check the tables (with --apply), then write."""
    checked = _validated(values)
    mta = mta_from(args, fallback="postfix")
    entries = mta.entries(user.removeprefix("mailto:"), kind) if mta else []
    if args.apply and mta:
        mta.prepare(_tables(entries))
    changed = create_user(site_from(args, settings), user, checked)
    set_text = f"preferences set: {', '.join(changed)}" if changed else "preferences unchanged"
    lines = [f"{kind} {user} ready; {set_text}"]
    return _lines(lines + _route(mta, entries, args.apply, remove=False))


def _remove(args: argparse.Namespace, settings: Settings) -> str:
    user = normalise_user(args.address)
    mta = mta_from(args, fallback="postfix")
    entries = mta.entries(user.removeprefix("mailto:"), args.kind) if mta else []
    if args.apply and mta:
        mta.prepare(_tables(entries))
    lines = _route(mta, entries, args.apply, remove=True)
    kept = site_from(args, settings).backend.user_locations(user)
    if kept:
        lines.append(f"kept: {' '.join(kept)}")
    return _lines(lines)


def _validated(values: dict[str, str]) -> dict[str, str]:
    """Every value checked before anything is written (InputError: 65)."""
    checked = {}
    for name, value in values.items():
        try:
            checked[name] = validate(name, value)
        except ValueError as exc:
            raise InputError(f"invalid {name} {value!r}: {exc}") from exc
    return checked


def create_user(site: Site, user: str, values: dict[str, str]) -> list[str]:
    """The user's records and the preferences that differ; the names set.

    What root creates is given to the site's owner (for files: the owner of
    the store and preferences directories), so the agents can write it.
    """
    site.backend.create_user(user)
    files = site.preferences
    changed = [name for name, value in values.items() if files.get(user, name) != value]
    for name in changed:
        files.set(user, name, values[name])
    site.backend.hand_over(user, changed)
    return changed


def _route(
    mta: Postfix | Exim | None, entries: Sequence[Entry], apply: bool, remove: bool
) -> list[str]:
    """Print the entries (what to add or remove), or apply them."""
    if mta is None:
        return ["MTA: none (--mta none): no routing lines"]
    if not apply:
        verb = "remove these lines" if remove else "add these lines"
        lines = [f"{mta.name}: {verb} (or run this command again with --apply):"]
        for entry in entries:
            lines += [f"  {entry.table}:", f"    {entry.line}"]
        return [*lines, "then:", *(f"  {step}" for step in mta.instructions(_tables(entries)))]
    lines, changed = [], False
    for entry in entries:
        outcome = edit_table(entry.table, entry.key, None if remove else entry.line)
        lines.append(f"{entry.table}: {entry.key} {outcome}")
        changed = changed or outcome in ("added", "updated", "removed")
    return lines + mta.activate(_tables(entries), changed)


def _tables(entries: Sequence[Entry]) -> list[Path]:
    return list(dict.fromkeys(entry.table for entry in entries))


def _lines(lines: Sequence[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


# -- the MTA options -----------------------------------------------------------------

MTA_CHOICES = ("postfix", "exim", "none")


def add_mta_options(parser: argparse.ArgumentParser, what: str) -> None:
    """``--mta``, ``--postfix-config DIR`` and ``--exim-config FILE``."""
    parser.add_argument(
        "--mta",
        choices=MTA_CHOICES,
        help=f"{what} (default: the MTA installed here, Postfix if both)",
    )
    parser.add_argument(
        "--postfix-config",
        metavar="DIR",
        help=f"Postfix's configuration directory (default {POSTFIX_DIR}; another instance: its -c)",
    )
    parser.add_argument(
        "--exim-config",
        metavar="FILE",
        help=f"Exim's configuration file (-C FILE; the lists beside it; default: {EXIM_DIR})",
    )


def mta_from(args: argparse.Namespace, fallback: str = "none") -> Postfix | Exim | None:
    """The MTA the options name, else the one installed here, else ``fallback``."""
    choice = args.mta or _detected(args) or fallback
    if choice == "postfix":
        return Postfix(Path(args.postfix_config) if args.postfix_config else None)
    if choice == "exim":
        return Exim(Path(args.exim_config) if args.exim_config else None)
    return None


def _detected(args: argparse.Namespace) -> str:
    if args.postfix_config:
        return "postfix"
    if args.exim_config:
        return "exim"
    for choice, commands in (("postfix", ("postconf",)), ("exim", ("exim4", "exim"))):
        for command in commands:
            try:
                command_path(command)
            except ConfigError:
                continue
            return choice
    return ""
