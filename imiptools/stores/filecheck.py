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
from pathlib import Path

from imiptools.fileutil import DirectoryReader, reading_directory
from imiptools.periods import Period, line_uid
from imiptools.stores.file import (
    FREEBUSY,
    FREEBUSY_INDEX,
    LONG_BUCKET,
    FileStore,
    unescape_field,
)
from imiptools.stores.names import is_safe_component

_TEMPORARY = r"\..+\.[0-9a-f]{16}\.tmp"
_MONTH = r"[0-9]{4}-[0-9]{2}"


def stray_temporary_files(directory: Path, min_age: float = 0.0) -> list[Path]:
    """Temporary files under ``directory`` (recursively) at least ``min_age``
    seconds old by their modification time, sorted."""
    found = []
    limit = time.time() - min_age
    for root, _, names in os.walk(directory):
        for name in names:  # a path made only for a temporary name (issue 15)
            if name[:1] == "." and re.fullmatch(_TEMPORARY, name):
                path = Path(root, name)
                if _mtime(path) <= limit:
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


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")  # gone meanwhile: not stray


def unindexed_periods(store: FileStore, user: str) -> dict[str, list[str]]:
    """uid -> bucket names holding its lines that its index does not name.

    Unreadable lines are skipped (reading free/busy reports those). Each
    directory is opened once and its files read relative to it
    (:func:`~imiptools.fileutil.reading_directory`: the caller holds the
    user's lock).
    """
    base = store.user_directory(user)
    with reading_directory(base / FREEBUSY_INDEX) as directory:
        indexed = _indexes(directory)
    missing: dict[str, list[str]] = {}
    with reading_directory(base / FREEBUSY) as buckets:
        for name in buckets.names():
            if name != LONG_BUCKET and not re.fullmatch(_MONTH, name):
                continue
            for uid in _unindexed_uids(buckets.read_text(name), name, indexed):
                missing.setdefault(uid, []).append(name)
    return missing


def _indexes(directory: DirectoryReader) -> dict[str, set[str]]:
    indexes: dict[str, set[str]] = {}
    for name in filter(is_safe_component, directory.names()):
        lines = [line for line in (directory.read_text(name) or "").split("\n") if line]
        if lines and lines[0].startswith("uid "):
            indexes[unescape_field(lines[0][4:])] = set(lines[1:])
    return indexes


def _unindexed_uids(text: str | None, name: str, indexed: dict[str, set[str]]) -> set[str]:
    """The uids of the readable lines of bucket ``name`` (its ``text``)
    whose index does not name it; a line is parsed only when its uid field
    is not so named (a line its index names cannot count, readable or not)."""
    uids = set()
    for line in (text or "").split("\n"):
        uid = line_uid(line)
        if uid is None or name in indexed.get(uid, ()):
            continue
        try:
            uids.add(Period.from_line(line).uid)
        except ValueError:
            continue
    return uids
