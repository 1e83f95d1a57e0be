"""The MTA's side of a calendar user: the lines that route it to our programs.

A calendar user reaches imip-agent through the MTA's tables, as installed
from ``conf/``:

- Postfix (``conf/postfix``), in its configuration directory
  (``$config_directory``): ``imip-transport`` (``transport_maps``) routes a
  resource to the ``imip-resource`` service and a person to
  ``imip-person``; ``imip-resources`` (``relay_recipient_maps``) lists the
  resources that exist; ``imip-sender-bcc`` (``sender_bcc_maps``) copies what
  a person sends to ``imip-person-outgoing``. Indexed maps take effect after
  ``postmap``; ``postfix reload`` makes every daemon use them at once.
- Exim (``conf/exim``), beside its configuration (``CONFDIR``):
  ``imip-resources`` and ``imip-people`` list the resources and the people;
  Exim reads them at each delivery, so nothing is rebuilt or reloaded.

:class:`Postfix` and :class:`Exim` say which lines a calendar user needs
(:meth:`~Postfix.entries`), make edited tables take effect
(:meth:`~Postfix.activate`) and answer what ``imip-admin check-install``
asks of the MTA (its services or transports, its compiled maps, where it
routes an address). :func:`edit_table` adds, replaces or removes one
address's line in a table, idempotently. Every MTA command names the
instance given (``postconf -c DIR``, ``exim -C FILE``), so a private test
instance is never confused with the system's.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from imiptools.errors import ConfigError
from imiptools.fileutil import atomic_write

Kind = Literal["resource", "person"]
RESOURCE: Kind = "resource"
PERSON: Kind = "person"
#: The default configuration directory of Postfix (its default instance).
POSTFIX_DIR = Path("/etc/postfix")
#: Where Debian's Exim configuration and our lists live (its CONFDIR).
EXIM_DIR = Path("/etc/exim4")
#: The pseudo-address of conf/postfix/imip-sender-bcc, routed to imip-person-outgoing.
OUTGOING = "outgoing@imip-agent.invalid"
#: Our pipe services (Postfix master.cf) and Exim transports, by the program they run.
PROGRAMS = ("imip-person", "imip-person-outgoing", "imip-resource")
#: The program that handles a calendar user's mail, by kind.
PROGRAM_OF: dict[Kind, str] = {RESOURCE: "imip-resource", PERSON: "imip-person"}
#: main.cf parameters naming our maps.
MAP_PARAMETERS = ("transport_maps", "relay_recipient_maps", "sender_bcc_maps")
#: The file postmap makes of a map source, by map type (others are not compiled).
COMPILED_SUFFIX = {"hash": ".db", "btree": ".db", "lmdb": ".lmdb", "cdb": ".cdb", "dbm": ".pag"}
#: Where to look for the MTA's commands besides PATH (cron's PATH lacks sbin).
SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")
TIMEOUT = 60.0


@dataclass(frozen=True)
class Entry:
    """The line of ``table`` that routes ``key`` (an address)."""

    table: Path
    key: str
    line: str


@dataclass(frozen=True)
class Service:
    """A pipe service (Postfix) or pipe transport (Exim) as the MTA reports it."""

    name: str
    #: ``pipe`` for the services we install.
    driver: str
    #: The user it runs the program as ('' if none is set).
    user: str
    #: The program it runs (its absolute path), '' if none is found.
    program: str


def command_path(name: str) -> str:
    """The full path of an MTA command (PATH, then the sbin directories);
    ConfigError if it is not installed."""
    search = os.pathsep.join([os.environ.get("PATH", ""), *SBIN])
    found = shutil.which(name, path=search)
    if found is None:
        raise ConfigError(f"{name} not found (is the MTA installed?)")
    return found


def run(argv: Sequence[str], stdin: str = "", ok: Iterable[int] = (0,)) -> str:
    """Run an MTA command; its output. ConfigError (with its last line) if it
    exits with a code not in ``ok`` or cannot be started."""
    try:
        done = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"{' '.join(argv)}: {exc}") from exc
    if done.returncode not in set(ok):
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise ConfigError(
            f"{' '.join(argv)} exited {done.returncode}: {lines[-1] if lines else '(no output)'}"
        )
    return done.stdout


# -- tables ----------------------------------------------------------------------


def entry_key(line: str) -> str | None:
    """The lower-cased key of a table line ('' for blank, comment and
    continuation lines, which are never entries); None for those."""
    if not line.strip() or line[0] in "# \t":
        return None
    return line.split()[0].rstrip(":").lower()


def edit_table(path: Path, key: str, line: str | None) -> str:
    """Make ``path`` hold ``line`` as the one entry for ``key`` (None: no
    entry); what was done: ``added``, ``updated``, ``already present``,
    ``removed`` or ``not present``.

    Comments and other entries are kept in place; an entry for ``key`` is
    replaced where it stands. The file is rewritten atomically, keeping its
    mode and owner, and only when it changes, so running twice changes
    nothing the second time. ConfigError if the table does not exist (the
    MTA was not set up from ``conf/``).
    """
    try:
        info = path.stat()
        old = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} does not exist (install the tables of conf/ first)") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    matches = [i for i, text in enumerate(old) if entry_key(text) == key.lower()]
    if line is None:
        outcome = "removed" if matches else "not present"
        new = [text for i, text in enumerate(old) if i not in matches]
    elif len(matches) == 1 and old[matches[0]].split() == line.split():
        return "already present"
    elif matches:
        outcome = "updated"
        new = [line + "\n" if i == matches[0] else text for i, text in enumerate(old)]
        new = [text for i, text in enumerate(new) if i not in matches[1:]]
    else:
        outcome = "added"
        if old and not old[-1].endswith("\n"):
            old[-1] += "\n"
        new = [*old, line + "\n"]
    if new != old:
        atomic_write(path, "".join(new))
        os.chmod(path, info.st_mode & 0o7777)
        if os.geteuid() == 0:
            os.chown(path, info.st_uid, info.st_gid)
    return outcome


# -- Postfix ---------------------------------------------------------------------


@dataclass(frozen=True)
class MapSpec:
    """One lookup table of a main.cf parameter: ``type:path``."""

    type: str
    path: Path

    def __str__(self) -> str:
        return f"{self.type}:{self.path}"

    def stale(self) -> str:
        """Why postmap must run ('' if the compiled map is up to date or the
        type is not compiled)."""
        suffix = COMPILED_SUFFIX.get(self.type)
        if suffix is None:
            return ""
        compiled = Path(f"{self.path}{suffix}")
        if not compiled.exists():
            return "not compiled"
        if self.path.exists() and compiled.stat().st_mtime < self.path.stat().st_mtime:
            return "changed since it was compiled"
        return ""


class Postfix:
    """A Postfix instance: its configuration directory (``postconf -c DIR``)."""

    name = "Postfix"

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or POSTFIX_DIR
        self._parameters: dict[str, str] = {}

    def _command(self, program: str, *args: str) -> list[str]:
        return [command_path(program), "-c", str(self.directory), *args]

    def table(self, name: str) -> Path:
        return self.directory / name

    def entries(self, address: str, kind: Kind) -> list[Entry]:
        """The lines routing ``address``: transport, and the resource list or
        the copy of what a person sends."""
        transport = self.table("imip-transport")
        if kind == RESOURCE:
            return [
                Entry(transport, address, f"{address:<31} imip-resource:"),
                Entry(self.table("imip-resources"), address, f"{address:<31} resource"),
            ]
        return [
            Entry(transport, address, f"{address:<31} imip-person:"),
            Entry(self.table("imip-sender-bcc"), address, f"{address:<31} {OUTGOING}"),
        ]

    def instructions(self, tables: Sequence[Path]) -> list[str]:
        """What an admin runs after editing ``tables`` by hand."""
        return [*(f"postmap {table}" for table in tables), "postfix reload"]

    def activate(self, tables: Sequence[Path], changed: bool) -> list[str]:
        """Compile each of ``tables`` whose compiled map is missing or older
        (edited now, or left uncompiled by an earlier run), then reload
        Postfix if it runs; one line per step."""
        specs = {spec.path: spec for spec in self.map_specs(*MAP_PARAMETERS)}
        done = []
        for table in tables:
            spec = specs.get(table)
            if spec is None:
                raise ConfigError(
                    f"{table} is not a map of {self.directory / 'main.cf'} "
                    f"({', '.join(MAP_PARAMETERS)}): add the lines of conf/postfix/main.cf"
                )
            if spec.stale():
                run(self._command("postmap", str(spec)))
                done.append(f"postmap {spec}: done")
        if done:
            done.append(self.reload())
        return done

    def running(self) -> bool:
        status = self._command("postfix", "status")
        return subprocess.run(status, capture_output=True, check=False).returncode == 0

    def reload(self) -> str:
        if not self.running():
            return "Postfix is not running: the maps take effect when it starts"
        run(self._command("postfix", "reload"))
        return "postfix reload: done"

    def parameter(self, name: str) -> str:
        """A main.cf parameter, with ``$names`` expanded (``postconf -xh``)."""
        if name not in self._parameters:
            self._parameters[name] = run(self._command("postconf", "-xh", name)).strip()
        return self._parameters[name]

    def map_specs(self, *parameters: str) -> list[MapSpec]:
        """The lookup tables the parameters name, in order (``type:path`` only)."""
        specs = []
        for parameter in parameters:
            for item in re.split(r"[\s,]+", self.parameter(parameter)):
                kind, colon, path = item.partition(":")
                if colon and path.startswith("/"):
                    specs.append(MapSpec(kind, Path(path)))
        return specs

    def service(self, name: str) -> Service | None:
        """The master.cf service ``name`` (unix), or None if there is none."""
        text = run(self._command("postconf", "-M", f"{name}/unix"), ok=(0, 1)).split()
        if len(text) < 8:
            return None
        args = text[8:]
        user = next((a[5:].split(":")[0] for a in args if a.startswith("user=")), "")
        program = next((a[5:] for a in args if a.startswith("argv=")), "")
        return Service(name, text[7], user, program)

    def lookup(self, parameter: str, keys: Sequence[str]) -> dict[str, str]:
        """The first value of each key found in the maps of ``parameter``."""
        found: dict[str, str] = {}
        for spec in self.map_specs(parameter):
            pending = [key for key in keys if key not in found]
            if not pending:
                break
            query = self._command("postmap", "-q", "-", str(spec))
            for line in run(query, "".join(f"{k}\n" for k in pending), ok=(0, 1)).splitlines():
                key, _, value = line.replace("\t", " ").partition(" ")
                found.setdefault(key, value.strip())
        return found

    def route(self, address: str) -> str:
        """The transport ``transport_maps`` gives ``address`` ('' if none):
        the address, its domain, then its parent domains as ``.domain`` and
        ``*`` (transport(5))."""
        domain = address.partition("@")[2]
        parts = domain.split(".")
        keys = [address, domain, *("." + ".".join(parts[i:]) for i in range(1, len(parts))), "*"]
        found = self.lookup("transport_maps", keys)
        value = next((found[key] for key in keys if key in found), "")
        return value.partition(":")[0]

    def recipient_listed(self, address: str) -> bool | None:
        """Whether ``relay_recipient_maps`` lists ``address`` (None when the
        domain is not a relay domain or no such maps are set: not checked)."""
        domain = address.partition("@")[2]
        relay = re.split(r"[\s,]+", self.parameter("relay_domains").lower())
        if domain not in relay or not self.parameter("relay_recipient_maps"):
            return None
        return bool(self.lookup("relay_recipient_maps", [address, f"@{domain}"]))

    def copied_to(self, address: str) -> str:
        """Where ``sender_bcc_maps`` copies mail ``address`` sends ('' if nowhere)."""
        domain = address.partition("@")[2]
        keys = [address, address.partition("@")[0], f"@{domain}"]
        found = self.lookup("sender_bcc_maps", keys)
        return next((found[key] for key in keys if key in found), "")


# -- Exim ------------------------------------------------------------------------


class Exim:
    """An Exim configuration (``exim -C FILE``; the default one when None)."""

    name = "Exim"

    def __init__(self, config: Path | None = None) -> None:
        self.config = config
        self.directory = config.parent if config else EXIM_DIR

    def _command(self, *args: str) -> list[str]:
        try:
            exim = command_path("exim4")
        except ConfigError:
            exim = command_path("exim")
        return [exim, *(("-C", str(self.config)) if self.config else ()), *args]

    def table(self, name: str) -> Path:
        return self.directory / name

    def entries(self, address: str, kind: Kind) -> list[Entry]:
        """The list entry: ``imip-resources`` or ``imip-people``."""
        name = "imip-resources" if kind == RESOURCE else "imip-people"
        return [Entry(self.table(name), address, f"{address}:")]

    def instructions(self, tables: Sequence[Path]) -> list[str]:
        return ["nothing to rebuild or reload (Exim reads the lists at each delivery)"]

    def activate(self, tables: Sequence[Path], changed: bool) -> list[str]:
        """Nothing to do: Exim reads the lists at each delivery (a line says so)."""
        return self.instructions(tables) if changed else []

    def service(self, name: str) -> Service | None:
        """The transport ``name`` with an underscore for each dash (``-bP transport``)."""
        transport = name.replace("-", "_")
        done = subprocess.run(
            self._command("-bP", "transport", transport),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        options = dict(
            (key.strip(), value.strip())
            for key, equals, value in (line.partition("=") for line in done.stdout.splitlines())
            if equals
        )
        if done.returncode != 0 or "driver" not in options:
            return None
        found = re.search(r"(/\S*/(?:imip-[a-z-]+))(?=[\s'\"]|$)", options.get("command", ""))
        program = found[1] if found else ""
        return Service(transport, options["driver"], options.get("user", ""), program)

    def routes(self, addresses: Sequence[str], sender: str = "") -> dict[str, list[str]]:
        """The transports ``exim -bt`` routes each address to (as recipient;
        ``sender`` as the envelope sender), keyed by address."""
        if not addresses:
            return {}
        flags = ("-f", sender) if sender else ()
        text = run(self._command(*flags, "-bt", *addresses), ok=(0, 1, 2))
        found: dict[str, list[str]] = {}
        current = ""
        for line in text.splitlines():
            if line and not line[0].isspace():
                current = line.split()[0].lower()
                found.setdefault(current, [])
            elif match := re.search(r"transport = (\S+)", line):
                found.setdefault(current, []).append(match[1])
        return found


# -- the command line ------------------------------------------------------------

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
