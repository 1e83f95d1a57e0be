"""Checks only a file store needs: stray temporary files, free/busy indexes,
symlinks.

:func:`~imiptools.fileutil.atomic_write` names its temporary files
``.<name>.<16 hex>.tmp``; a crash can leave one behind. They are harmless
(listings skip dot-files) but waste space and confuse admins. A free/busy
line that its uid's index (``freebusy-index/<uid>``) does not name would
never be removed by a later update of that uid: the only real damage the
file layout itself can suffer; a reset of the user's free/busy repairs it.
A symlink anywhere below a configured directory is refused by every agent
(:class:`~imiptools.errors.SymlinkRefused`, see :mod:`imiptools.fileutil`):
:func:`symlinks_below` finds them without following any.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from imiptools.fileutil import list_names, read_text
from imiptools.periods import Period
from imiptools.stores.file import (
    FREEBUSY,
    FREEBUSY_INDEX,
    LONG_BUCKET,
    FileStore,
    unescape_field,
)
from imiptools.stores.names import is_safe_component

_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{16}\.tmp")
_MONTH = re.compile(r"[0-9]{4}-[0-9]{2}")


def stray_temporary_files(directory: Path, min_age: float = 0.0) -> list[Path]:
    """Temporary files under ``directory`` (recursively) at least ``min_age``
    seconds old by their modification time, sorted."""
    found = []
    limit = time.time() - min_age
    for path in _walk(directory):
        if _TEMPORARY.fullmatch(path.name) and _mtime(path) <= limit:
            found.append(path)
    return sorted(found)


def symlinks_below(directory: Path) -> list[Path]:
    """Every symlink below ``directory``, none followed, sorted; ``[]`` if
    ``directory`` is missing or is itself a symlink (its parent's concern)."""
    found = []
    pending = [] if directory.is_symlink() else [directory]
    while pending:
        for entry in _entries(pending.pop()):
            if entry.is_symlink():
                found.append(Path(entry.path))
            elif entry.is_dir(follow_symlinks=False):
                pending.append(Path(entry.path))
    return sorted(found)


def symlink_entries(directory: Path) -> list[Path]:
    """The entries of ``directory`` that are symlinks, sorted (not recursive)."""
    return sorted(Path(entry.path) for entry in _entries(directory) if entry.is_symlink())


def _entries(directory: Path) -> list[os.DirEntry[str]]:
    """The entries of ``directory``; none if it cannot be listed (missing,
    unreadable: other checks report those)."""
    try:
        with os.scandir(directory) as entries:
            return list(entries)
    except OSError:
        return []


def link_target(path: Path) -> str:
    """What the symlink ``path`` points to, for a report ("?" if unreadable)."""
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def _walk(directory: Path) -> Iterator[Path]:
    for root, _, names in os.walk(directory):
        for name in names:
            yield Path(root) / name


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")  # gone meanwhile: not stray


def unindexed_periods(store: FileStore, user: str) -> dict[str, list[str]]:
    """uid -> bucket names holding its lines that its index does not name.

    Unreadable lines are skipped (reading free/busy reports those).
    """
    base = store.user_directory(user)
    indexed = _indexes(base / FREEBUSY_INDEX)
    missing: dict[str, list[str]] = {}
    for name in list_names(base / FREEBUSY):
        if name != LONG_BUCKET and not _MONTH.fullmatch(name):
            continue
        for uid in _bucket_uids(base / FREEBUSY / name):
            if name not in indexed.get(uid, set()):
                missing.setdefault(uid, []).append(name)
    return missing


def _indexes(directory: Path) -> dict[str, set[str]]:
    indexes: dict[str, set[str]] = {}
    for name in filter(is_safe_component, list_names(directory)):
        lines = [line for line in (read_text(directory / name) or "").split("\n") if line]
        if lines and lines[0].startswith("uid "):
            indexes[unescape_field(lines[0][4:])] = set(lines[1:])
    return indexes


def _bucket_uids(path: Path) -> set[str]:
    uids = set()
    for line in (read_text(path) or "").split("\n"):
        try:
            uids.add(Period.from_line(line).uid)
        except ValueError:
            continue
    return uids
