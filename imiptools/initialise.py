"""Setting up a site and its calendar users (the original's init.sh, init_user.sh).

:func:`prepare_directories` creates the site's directories (for the file
backend the store, preferences and quota journal, and the publishing
directory) with the modes in :data:`MODES`, owned by the
system user and group the agents run as. The data directories are
``rwxrws---`` (setgid, so that files created later keep the group); the
publishing directory is world-readable for the web server.
:func:`own_like` gives what an admin creates for a calendar user the owner
of the directory it lives in, so that an admin running as root never
leaves files the agents cannot write.
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Iterable, Mapping
from pathlib import Path

from imiptools.config import Settings, example_config
from imiptools.deferred import dataclass
from imiptools.errors import StoreUnavailable, UsageError
from imiptools.fileutil import atomic_write, ensure_directory, resolve_root

#: The mode of a directory the agents write (setgid, group-writable).
DATA_MODE = 0o2770
#: Mode of each site directory, by its settings name.
MODES = {"store": DATA_MODE, "preferences": DATA_MODE, "journal": DATA_MODE, "publishing": 0o2755}


@dataclass(frozen=True)
class Owner:
    """A numeric owner; -1 leaves that part unchanged (as ``os.chown`` does)."""

    uid: int = -1
    gid: int = -1

    @classmethod
    def named(cls, user: str | None, group: str | None) -> Owner:
        """The owner named by a system user and group (UsageError if unknown)."""
        try:
            uid = pwd.getpwnam(user).pw_uid if user else -1
        except KeyError as exc:
            raise UsageError(f"no such system user: {user}") from exc
        try:
            gid = grp.getgrnam(group).gr_gid if group else -1
        except KeyError as exc:
            raise UsageError(f"no such system group: {group}") from exc
        return cls(uid, gid)

    @classmethod
    def of(cls, path: Path) -> Owner:
        """The owner of ``path``."""
        info = path.stat()
        return cls(info.st_uid, info.st_gid)

    def apply(self, path: Path) -> None:
        """Give ``path`` to this owner (nothing to do for -1, -1)."""
        if (self.uid, self.gid) == (-1, -1):
            return
        try:
            os.chown(path, self.uid, self.gid)
        except OSError as exc:
            raise StoreUnavailable(f"cannot change the owner of {path}: {exc.strerror}") from exc


def site_directories(settings: Settings) -> dict[str, Path]:
    """The site's directories by settings name (see :data:`MODES`)."""
    return {name: Path(getattr(settings, name)) for name in MODES}


def prepare_directories(directories: Mapping[str, Path], owner: Owner) -> list[Path]:
    """Create (or fix) each of ``directories`` (by settings name): mode (see
    :data:`MODES`; data directories for other names) and owner. Idempotent."""
    done = []
    for name, path in directories.items():
        ensure_directory(resolve_root(path))
        owner.apply(path)
        _chmod(path, MODES.get(name, DATA_MODE))
        done.append(path)
    return done


def _chmod(path: Path, mode: int) -> None:
    try:
        os.chmod(path, mode)
    except OSError as exc:
        raise StoreUnavailable(f"cannot set the mode of {path}: {exc.strerror}") from exc


def write_example_config(path: Path, settings: Settings, owner: Owner) -> bool:
    """Write the example configuration naming the site's directories to
    ``path`` unless it exists; True if written."""
    if path.exists():
        return False
    text = example_config()
    for name, directory in site_directories(settings).items():
        default = getattr(Settings(), name)
        text = text.replace(f'{name} = "{default}"', f'{name} = "{directory.absolute()}"')
    atomic_write(resolve_root(path.parent) / path.name, text)
    owner.apply(path)
    return True


def own_like(paths: Iterable[Path], root: Path) -> None:
    """Give each of ``paths`` the owner of ``root``, when run as root (as
    anyone else, new files are the caller's, which is already right)."""
    if os.geteuid() != 0 or not root.exists():
        return
    owner = Owner.of(root)
    for path in paths:
        owner.apply(path)
