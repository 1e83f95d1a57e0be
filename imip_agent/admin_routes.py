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
routes an address); they live in :mod:`imip_agent.admin_postfix` and
:mod:`imip_agent.admin_exim`. This module holds what they share:
:func:`edit_table` adds, replaces or removes one address's line in a table,
idempotently; :func:`run` runs an MTA command. Every MTA command names the
instance given (``postconf -c DIR``, ``exim -C FILE``), so a private test
instance is never confused with the system's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from imiptools.deferred import dataclass
from imiptools.errors import ConfigError
from imiptools.fileutil import atomic_write

Kind = Literal["resource", "person"]
RESOURCE: Kind = "resource"
PERSON: Kind = "person"
#: Our pipe services (Postfix master.cf) and Exim transports, by the program they run.
PROGRAMS = ("imip-person", "imip-person-outgoing", "imip-resource")
#: The program that handles a calendar user's mail, by kind.
PROGRAM_OF: dict[Kind, str] = {RESOURCE: "imip-resource", PERSON: "imip-person"}
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


def require_tables(tables: Sequence[Path]) -> None:
    """ConfigError unless every table exists (the MTA was set up from conf/)."""
    for table in tables:
        if not table.is_file():
            raise ConfigError(f"{table} does not exist: install the MTA's tables from conf/ first")
