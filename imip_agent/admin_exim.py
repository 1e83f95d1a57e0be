"""Exim's side of a calendar user (see :mod:`imip_agent.admin_routes`).

The lists of ``conf/exim`` beside the configuration (``CONFDIR``):
``imip-resources`` and ``imip-people``, read at each delivery (lsearch), so
an edit needs no rebuild or reload. Queried with ``exim -bP transport`` and
``exim -bt`` (address testing), with ``-C FILE`` for another configuration.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from imip_agent.admin_routes import (
    RESOURCE,
    TIMEOUT,
    Entry,
    Kind,
    Service,
    command_path,
    require_tables,
    run,
)
from imiptools.errors import ConfigError

#: Where Debian's Exim configuration and our lists live (its CONFDIR).
EXIM_DIR = Path("/etc/exim4")


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

    def prepare(self, tables: Sequence[Path]) -> None:
        """Before editing: each list exists (ConfigError)."""
        require_tables(tables)

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
