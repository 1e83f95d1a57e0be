"""Postfix's side of a calendar user (see :mod:`imip_agent.admin_routes`).

The maps of ``conf/postfix`` in the instance's configuration directory:
``imip-transport`` (``transport_maps``), ``imip-resources``
(``relay_recipient_maps``), ``imip-sender-bcc`` (``sender_bcc_maps``).
Queried with ``postconf -c DIR`` and ``postmap -q``; edited maps take effect
after ``postmap`` and ``postfix reload`` (transport(5), postmap(1)).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from imip_agent.admin_routes import (
    RESOURCE,
    Entry,
    Kind,
    Service,
    command_path,
    require_tables,
    run,
)
from imiptools.deferred import dataclass
from imiptools.errors import ConfigError

#: The default configuration directory of Postfix (its default instance).
POSTFIX_DIR = Path("/etc/postfix")
#: The pseudo-address of conf/postfix/imip-sender-bcc, routed to imip-person-outgoing.
OUTGOING = "outgoing@imip-agent.invalid"
#: main.cf parameters naming our maps.
MAP_PARAMETERS = ("transport_maps", "relay_recipient_maps", "sender_bcc_maps")
#: The file postmap makes of a map source, by map type (others are not compiled).
COMPILED_SUFFIX = {"hash": ".db", "btree": ".db", "lmdb": ".lmdb", "cdb": ".cdb", "dbm": ".pag"}


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
                Entry(transport, address, f"{address:<31} {self.transport_value('imip-resource')}"),
                Entry(self.table("imip-resources"), address, f"{address:<31} resource"),
            ]
        return [
            Entry(transport, address, f"{address:<31} {self.transport_value('imip-person')}"),
            Entry(self.table("imip-sender-bcc"), address, f"{address:<31} {OUTGOING}"),
        ]

    def transport_value(self, service: str) -> str:
        """``service:``, with the nexthop the transport map's first line for
        ``service`` names, if any: with imip-agent-lmtp each line names the
        socket of its role (``imip-resource:unix:/run/imip-agent/resource.lmtp``,
        conf/postfix/lmtp/imip-transport), which a new line must name too."""
        try:
            text = self.table("imip-transport").read_text()
        except OSError:
            return f"{service}:"
        for line in text.splitlines():
            words = line.split()
            if len(words) >= 2 and words[1].startswith(f"{service}:") and line[0] != "#":
                return words[1]
        return f"{service}:"

    def instructions(self, tables: Sequence[Path]) -> list[str]:
        """What an admin runs after editing ``tables`` by hand."""
        return [*(f"postmap {table}" for table in tables), "postfix reload"]

    def prepare(self, tables: Sequence[Path]) -> None:
        """Before editing: each table exists and main.cf uses it (ConfigError)."""
        require_tables(tables)
        self._specs(tables)

    def _specs(self, tables: Sequence[Path]) -> list[MapSpec]:
        specs = {spec.path: spec for spec in self.map_specs(*MAP_PARAMETERS)}
        for table in tables:
            if table not in specs:
                raise ConfigError(
                    f"{table} is not a map of {self.directory / 'main.cf'} "
                    f"({', '.join(MAP_PARAMETERS)}): add the lines of conf/postfix/main.cf"
                )
        return [specs[table] for table in tables]

    def activate(self, tables: Sequence[Path], changed: bool) -> list[str]:
        """Compile each of ``tables`` whose compiled map is missing or older
        (edited now, or left uncompiled by an earlier run), then reload
        Postfix if it runs; one line per step."""
        done = []
        for spec in self._specs(tables):
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
