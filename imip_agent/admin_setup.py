"""imip-admin init and init-user: set up a site and its calendar users."""

from __future__ import annotations

import argparse
from pathlib import Path

from imip_agent.admin_parser import add_command
from imip_agent.cli import site_from
from imiptools.config import Settings
from imiptools.errors import InputError, UsageError
from imiptools.initialise import Owner, prepare_directories, write_example_config
from imiptools.preferences import validate
from imiptools.stores.names import normalise_user

DEFAULT_CONFIG = "/etc/imip-agent/imip-agent.toml"

INIT = f"""\
Create the store, preferences, quota journal and publishing directories
(from the configuration and the store options), give them to the system
user and group the agents run as (data: mode 2770; publishing: 2755), and
write an example configuration naming them if none exists. With the
postgresql backend, also create the database schema, or upgrade it to
this version's (refused when it is newer). Idempotent.

example:
  imip-admin -S /var/lib/imip-agent/store init --user imip-agent --group lmtp
  imip-admin init --config-file ./imip-agent.toml   (default {DEFAULT_CONFIG})
"""

INIT_USER = """\
Create a calendar user's records and set preferences, each validated
before any is written. --resource also sets the resource's
scheduling_function (schedule_in_freebusy unless --pref gives one).

example:
  imip-admin init-user room@example.com --resource --pref CN="Room 1.23" \\
      --pref TZID=Europe/Berlin --pref "scheduling_function=schedule_in_freebusy 2"
"""


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register init and init-user."""
    sub = add_command(commands, "init", _init, "create the site's directories", INIT)
    sub.add_argument("--user", help="system user owning the directories")
    sub.add_argument("--group", help="system group owning the directories")
    sub.add_argument(
        "--config-file",
        default=DEFAULT_CONFIG,
        metavar="FILE",
        help=f"where the example configuration is written (default {DEFAULT_CONFIG})",
    )
    sub.add_argument("--no-config", action="store_true", help="write no example configuration")
    sub = add_command(commands, "init-user", _init_user, "set up a calendar user", INIT_USER)
    sub.add_argument("user")
    sub.add_argument("--resource", action="store_true", help="a room, car, projector...")
    sub.add_argument(
        "--pref", action="append", default=[], metavar="NAME=VALUE", help="a preference"
    )


def _init(args: argparse.Namespace, settings: Settings) -> str:
    owner = Owner.named(args.user, args.group)
    site = site_from(args, settings)
    directories = {**site.backend.data_directories(), "publishing": Path(settings.publishing)}
    lines = [f"directory {path}\n" for path in prepare_directories(directories, owner)]
    lines += [f"{line}\n" for line in site.backend.initialise()]
    if not args.no_config:
        config = Path(args.config_file)
        written = write_example_config(config, settings, owner)
        lines.append(f"configuration {config} {'written' if written else 'exists, kept'}\n")
    return "".join(lines)


def _init_user(args: argparse.Namespace, settings: Settings) -> str:
    user = normalise_user(args.user)
    values = _preferences(args.pref, args.resource)
    site = site_from(args, settings)
    site.backend.create_user(user)
    for name, value in values.items():
        site.preferences.set(user, name, value)
    site.backend.hand_over(user, values)
    kind = "resource" if args.resource else "calendar user"
    names = ", ".join(sorted(values)) or "none"
    return f"{kind} {user} ready; preferences set: {names}\n"


def _preferences(given: list[str], resource: bool) -> dict[str, str]:
    """NAME=VALUE pairs, each validated (InputError for a bad value)."""
    values: dict[str, str] = {}
    for item in given:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise UsageError(f"--pref needs NAME=VALUE, not {item!r}")
        try:
            values[name] = validate(name, value.replace("\\n", "\n"))
        except ValueError as exc:
            raise InputError(f"invalid preference {name}: {exc}") from exc
    if resource:
        values.setdefault("scheduling_function", "schedule_in_freebusy")
    return values
