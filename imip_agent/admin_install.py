"""imip-admin check-install: can the MTA's user run the agents on this site?

The MTA runs the agents as an unprivileged user (``imip-agent`` in the
README's install guide). That user must reach the interpreter and the
programs through every parent directory, read the configuration, and write
the store, preferences, journal and log (or, with the postgresql backend,
reach the database: checked by connecting as whoever runs the command).
A missing permission there does not show until mail arrives, and then
Postfix bounces (Python exits 2) or keeps deferring it; this command finds
it before.

Permissions are worked out from the mode bits, owner and group of each path
and the user's groups (ACLs are not read). Run as root, it also starts
``imip-resource --help`` as the user, which proves the venv loads.

Then the MTA's side (:mod:`imip_agent.admin_routes`; Postfix or Exim, the
one installed here unless ``--mta`` says): each of our pipe services or
transports exists, runs its program as the user and that program is
reachable; Postfix's maps are compiled and not older than their sources,
and our services take one recipient per run; every calendar user in the
store is routed to the right program (a resource to ``imip-resource``, and
listed where Postfix checks relay recipients; a person to ``imip-person``,
with what they send copied to ``imip-person-outgoing``).

Prints one line per check (``ok`` or ``FAIL``); any failure exits 75
(ConfigError).
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from imip_agent.admin_exim import Exim
from imip_agent.admin_mta import add_mta_options, mta_from
from imip_agent.admin_parser import add_command
from imip_agent.admin_postfix import MAP_PARAMETERS, Postfix
from imip_agent.admin_routes import PERSON, PROGRAM_OF, PROGRAMS, RESOURCE, Kind
from imiptools.config import ENV_CONFIG, Settings
from imiptools.deferred import dataclass
from imiptools.errors import ConfigError, ImipError, UsageError
from imiptools.site import open_site

#: The system user of the install guide (README) and conf/postfix/master.cf.
DEFAULT_USER = "imip-agent"
READ, WRITE, SEARCH = 4, 2, 1

DESCRIPTION = """\
Check an installation as the MTA will use it: the directories of the
configuration exist and the user can write them (with the postgresql
backend: the database answers this command and has this version's
schema), the configuration and log file are usable, and the user can run
the programs (and their interpreter) through every parent directory. Then
the MTA (Postfix or Exim): our pipe services (master.cf) or transports
exist and run the programs as the user, Postfix's maps are compiled
(postmap), and every calendar user in the store is routed to the right
program. Exit 0 when all is well, 75 otherwise.

example:
  imip-admin -c /etc/imip-agent/imip-agent.toml check-install --user imip-agent
  imip-admin check-install --mta exim --lmtp /run/dovecot/lmtp
"""


@dataclass(frozen=True)
class Account:
    """A user as the kernel checks permissions: uid and all group ids."""

    name: str
    uid: int
    gid: int
    gids: frozenset[int]

    @classmethod
    def named(cls, name: str) -> Account:
        """The account ``name``; UsageError if there is none."""
        try:
            entry = pwd.getpwnam(name)
        except KeyError as exc:
            raise UsageError(f"no such user: {name!r}") from exc
        groups = {g.gr_gid for g in grp.getgrall() if name in g.gr_mem}
        return cls(name, entry.pw_uid, entry.pw_gid, frozenset({entry.pw_gid, *groups}))

    def may(self, path: Path, wanted: int) -> bool:
        """Whether the mode bits of ``path`` grant ``wanted`` (READ|WRITE|SEARCH)."""
        info = path.stat()
        if self.uid == 0:
            return not wanted & SEARCH or bool(info.st_mode & 0o111) or path.is_dir()
        if info.st_uid == self.uid:
            bits = (info.st_mode >> 6) & 7
        elif info.st_gid in self.gids:
            bits = (info.st_mode >> 3) & 7
        else:
            bits = info.st_mode & 7
        return bits & wanted == wanted


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    ok: bool
    text: str

    def __str__(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.text}"


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The subcommand of this module: check-install."""
    sub = add_command(
        commands, "check-install", _check_install, "check directories and permissions", DESCRIPTION
    )
    sub.add_argument(
        "--user", default=DEFAULT_USER, help=f"the user the MTA runs the agents as ({DEFAULT_USER})"
    )
    sub.add_argument(
        "--lmtp",
        metavar="SOCKET",
        help="also check that the user may connect to this LMTP socket (imip-person -l)",
    )
    add_mta_options(sub, "the MTA to check; none: skip the MTA's side")


def _check_install(args: argparse.Namespace, settings: Settings) -> str:
    account = Account.named(args.user)
    config = getattr(args, "config", None) or os.environ.get(ENV_CONFIG)
    checks = list(check_install(account, settings, config, Path(sys.executable)))
    if args.lmtp:
        checks.append(_socket_check(account, Path(args.lmtp)))
    mta = mta_from(args)
    if mta is None:
        checks.append(Check(True, "MTA: not checked (--mta none, or no Postfix or Exim found)"))
    else:
        checks += mta_checks(mta, account, settings)
    report = "".join(f"{check}\n" for check in checks)
    failed = sum(not check.ok for check in checks)
    if failed:
        sys.stdout.write(report)
        sys.stdout.flush()
        raise ConfigError(f"check-install: {failed} problem(s) for user {account.name}")
    return report


def check_install(
    account: Account, settings: Settings, config: str | None, python: Path
) -> Iterator[Check]:
    """Every check, in the order an admin fixes them."""
    yield _config_check(account, config)
    try:
        backend = open_site(settings).backend
    except ConfigError as exc:
        yield Check(False, str(exc))
    else:
        for name, path in backend.data_directories().items():
            yield _directory_check(account, name, path, writable=True)
        connection = backend.connection_check()
        if connection is not None:
            yield Check(*connection)
    yield _directory_check(account, "publishing", Path(settings.publishing), writable=False)
    if settings.log_file:
        yield _log_check(account, Path(settings.log_file))
    yield _reachable(account, "interpreter", python.resolve(), READ | SEARCH)
    for program in PROGRAMS:
        yield _reachable(account, program, python.parent / program, READ | SEARCH)
    if os.geteuid() == 0 and account.uid != 0:
        yield _runs_as(account, python.parent / "imip-resource")


def _socket_check(account: Account, path: Path) -> Check:
    """Connecting to a unix socket needs write permission on it (and search
    on every directory above it)."""
    if not path.is_socket():
        return Check(False, f"LMTP socket {path}: not a socket (is the LMTP server running?)")
    return _reachable(account, "LMTP socket", path, WRITE)


def _config_check(account: Account, config: str | None) -> Check:
    if not config:
        return Check(True, "no configuration file (-c): built-in defaults")
    return _reachable(account, "configuration", Path(config), READ)


def _directory_check(account: Account, name: str, path: Path, writable: bool) -> Check:
    wanted = READ | WRITE | SEARCH if writable else READ | SEARCH
    what = "writes" if writable else "reads"
    if not path.is_dir():
        return Check(False, f"{name} {path}: not a directory (create it for {account.name})")
    blocked = _blocked(account, path, wanted)
    if blocked:
        return Check(False, f"{name} {path}: {account.name} cannot {blocked}")
    return Check(True, f"{name} {path}: {account.name} {what} it")


def _log_check(account: Account, path: Path) -> Check:
    if path.exists():
        return _reachable(account, "log file", path, WRITE)
    return _directory_check(account, "log directory", path.parent, writable=True)


def _reachable(account: Account, name: str, path: Path, wanted: int) -> Check:
    if not path.exists():
        return Check(False, f"{name} {path}: missing")
    blocked = _blocked(account, path, wanted)
    if blocked:
        return Check(False, f"{name} {path}: {account.name} cannot {blocked}")
    return Check(True, f"{name} {path}: usable by {account.name}")


def _blocked(account: Account, path: Path, wanted: int) -> str:
    """What stops ``account`` from using ``path`` as ``wanted``; '' if nothing.

    Every parent directory must be searchable; symbolic links are followed
    (``Path.stat``), so a venv's ``python`` link is checked at its target too.
    """
    absolute = path.absolute()
    for parent in reversed(absolute.parents):
        if not account.may(parent, SEARCH):
            return f"enter {parent} (mode {_mode(parent)})"
    if not account.may(absolute, wanted):
        verbs = [
            v for bit, v in ((READ, "read"), (WRITE, "write"), (SEARCH, "run")) if wanted & bit
        ]
        return f"{'/'.join(verbs)} it (mode {_mode(absolute)})"
    return ""


def _mode(path: Path) -> str:
    info = path.stat()
    return f"{stat.filemode(info.st_mode)} {_owner(info.st_uid)}:{_group(info.st_gid)}"


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _runs_as(account: Account, program: Path) -> Check:
    """Start ``program --help`` as the user, with the environment pipe(8) gives."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    try:
        done = subprocess.run(
            [str(program), "--help"],
            capture_output=True,
            user=account.uid,
            group=account.gid,
            extra_groups=sorted(account.gids),
            cwd="/",
            env=env,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return Check(False, f"{program.name} cannot start as {account.name}: {exc}")
    if done.returncode != 0:
        output = (done.stdout + done.stderr).decode("utf-8", "replace").strip().splitlines()
        last = output[-1] if output else "(no output)"
        return Check(False, f"{program.name} as {account.name} exited {done.returncode}: {last}")
    return Check(True, f"{program.name} starts as {account.name}")


# -- the MTA's side ----------------------------------------------------------------


def mta_checks(mta: Postfix | Exim, account: Account, settings: Settings) -> list[Check]:
    """The services or transports, Postfix's maps, and each calendar user's route."""
    checks: list[Check] = []
    try:
        checks += [_service_check(mta, account, program) for program in PROGRAMS]
        if isinstance(mta, Postfix):
            checks += _postfix_checks(mta)
        checks += _route_checks(mta, calendar_users(settings))
    except ImipError as exc:
        checks.append(Check(False, f"{mta.name}: {exc}"))
    return checks


def calendar_users(settings: Settings) -> list[tuple[str, Kind]]:
    """Every calendar user of the store: a resource if it has its own
    scheduling_function preference (add-resource, init-user --resource)."""
    site = open_site(settings)
    files = site.preferences
    return [
        (
            user.removeprefix("mailto:"),
            RESOURCE if files.get(user, "scheduling_function") is not None else PERSON,
        )
        for user in sorted(site.store.users())
    ]


def _service_check(mta: Postfix | Exim, account: Account, program: str) -> Check:
    what = f"{mta.name} {'service' if isinstance(mta, Postfix) else 'transport'} {program}"
    service = mta.service(program)
    if service is None:
        return Check(False, f"{what}: missing (add it from conf/)")
    if service.driver == "lmtp":  # imip-agent-lmtp: conf/postfix/lmtp, transports-lmtp.conf
        return Check(True, f"{what}: delivers over LMTP to imip-agent-lmtp")
    if service.driver != "pipe":
        return Check(False, f"{what}: a {service.driver}, not a pipe")
    if service.user != account.name:
        return Check(False, f"{what}: runs as {service.user or 'nobody set'}, not {account.name}")
    if Path(service.program).name != program:
        return Check(False, f"{what}: runs {service.program or 'nothing'}, not {program}")
    reach = _reachable(account, what, Path(service.program), READ | SEARCH)
    if not reach.ok:
        return reach
    return Check(True, f"{what}: runs {service.program} as {account.name}")


def _postfix_checks(postfix: Postfix) -> list[Check]:
    """Every map of our parameters compiled; one recipient per pipe run."""
    checks = []
    specs = postfix.map_specs(*MAP_PARAMETERS)
    if not postfix.map_specs("transport_maps"):
        checks.append(Check(False, "Postfix transport_maps: none (add conf/postfix/main.cf)"))
    for spec in specs:
        stale = spec.stale()
        if stale:
            checks.append(Check(False, f"Postfix map {spec}: {stale} (run postmap {spec})"))
        else:
            checks.append(Check(True, f"Postfix map {spec}: compiled"))
    for service in ("imip-person", "imip-resource"):
        if (found := postfix.service(service)) and found.driver == "lmtp":
            continue  # one LMTP reply per recipient: any number per delivery
        name = f"{service}_destination_recipient_limit"
        value = postfix.parameter(name)
        checks.append(
            Check(True, f"Postfix {name} = 1")
            if value == "1"
            else Check(False, f"Postfix {name} = {value}: must be 1 (one recipient per run)")
        )
    return checks


def _route_checks(mta: Postfix | Exim, users: list[tuple[str, Kind]]) -> list[Check]:
    if not users:
        return [Check(True, f"{mta.name} routes: no calendar users in the store yet")]
    if isinstance(mta, Postfix):
        return [_postfix_route(mta, address, kind) for address, kind in users]
    routes = mta.routes([address for address, _ in users])
    checks = []
    for address, kind in users:
        transports = list(routes.get(address, []))
        if kind == PERSON:
            transports += mta.routes([address], sender=address).get(address, [])
        checks.append(_exim_route(address, kind, transports))
    return checks


def _postfix_route(postfix: Postfix, address: str, kind: Kind) -> Check:
    expected = PROGRAM_OF[kind]
    fix = f"(imip-admin add-{kind} {address} --apply)"
    service = postfix.route(address)
    if service != expected:
        routed = service or "no imip-agent service"
        text = f"{address} ({kind}): Postfix routes it to {routed}, not {expected} {fix}"
        return Check(False, text)
    if kind == RESOURCE:
        if postfix.recipient_listed(address) is False:
            return Check(False, f"{address}: refused at RCPT: not in relay_recipient_maps {fix}")
        return Check(True, f"{address} (resource): Postfix routes it to imip-resource")
    copy = postfix.copied_to(address)
    if not copy or postfix.route(copy) != "imip-person-outgoing":
        return Check(
            False, f"{address}: what they send is not copied to imip-person-outgoing {fix}"
        )
    return Check(
        True,
        f"{address} (person): Postfix routes it to imip-person, their mail sent to "
        "imip-person-outgoing",
    )


def _exim_route(address: str, kind: Kind, transports: list[str]) -> Check:
    expected = PROGRAM_OF[kind].replace("-", "_")
    fix = f"(imip-admin add-{kind} {address} --mta exim --apply)"
    if expected not in transports:
        routed = ", ".join(transports) or "nothing"
        text = f"{address} ({kind}): Exim routes it to {routed}, not {expected} {fix}"
        return Check(False, text)
    if kind == PERSON and "imip_person_outgoing" not in transports:
        return Check(
            False, f"{address}: what they send is not copied to imip_person_outgoing {fix}"
        )
    return Check(True, f"{address} ({kind}): Exim routes it to {expected}")
