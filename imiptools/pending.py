"""Pending writes: files of another lock's domain, written with a commit.

A unit of work commits one transaction record (the *commit file*, e.g. a
store user's ``.txn``). Some of what it decides lives under another lock,
such as a quota group's booking files. Those writes are kept, before the
commit, in a *pending record* in that domain's ``pending/`` directory; the
record names the commit file and the transaction id. Whoever holds the
domain's lock resolves every pending record there:

- the commit file holds that transaction id: the transaction committed, so
  the writes are applied (each atomic, so applying twice is harmless);
- otherwise it never committed (its writer died before the commit, and it
  cannot still be running, since it held this lock): the record is dropped.

Either way the record is then removed. A committer removes its pending
records (applied) *before* it removes its commit file, so a pending record
whose commit file is gone never committed. Record format (JSON)::

    {"txn": ID, "commit": "/path/of/commit/file",
     "writes": [["/path", "content" or null], ...]}

Content is text (``surrogatepass``); ``null`` removes the file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

from imiptools.fileutil import atomic_write, list_names, read_text, remove_file

log = logging.getLogger(__name__)

PENDING = "pending"


def record_text(txn: str, commit: Path, writes: Mapping[Path, str | None]) -> str:
    """The JSON text of a pending record."""
    items = [[str(path), text] for path, text in writes.items()]
    return json.dumps({"txn": txn, "commit": str(commit), "writes": items})


def write_record(
    directory: Path, txn: str, commit: Path, writes: Mapping[Path, str | None]
) -> Path:
    """Durably write the pending record of ``txn`` into ``directory``."""
    path = directory / PENDING / txn
    atomic_write(path, record_text(txn, commit, writes))
    return path


def committed_id(commit: Path) -> str | None:
    """The transaction id a commit file holds (None: none or unreadable)."""
    text = read_text(commit)
    if text is None:
        return None
    try:
        found = json.loads(text).get("id")
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


def apply_record(path: Path) -> bool:
    """Resolve one pending record (the caller holds its domain's lock).

    Returns whether its writes were applied (False: not committed, or gone).
    """
    text = read_text(path)
    if text is None:
        return False
    try:
        record = json.loads(text)
        txn, commit, writes = record["txn"], Path(record["commit"]), record["writes"]
    except (ValueError, KeyError, TypeError):
        log.error("pending record %s is unreadable; left for an admin", path)
        return False
    applied = bool(committed_id(commit) == txn)
    if applied:
        for target, content in writes:
            if content is None:
                remove_file(Path(target))
            else:
                atomic_write(Path(target), content)
    else:
        log.info("pending record %s was never committed: dropped", path)
    remove_file(path)
    return applied


def resolve_all(directory: Path) -> int:
    """Resolve every pending record under ``directory`` (lock held) and drop
    the temporary file of one whose writing a crash interrupted (it never
    committed); returns how many were applied."""
    pending = directory / PENDING
    for name in list_names(pending, hidden=True):
        if name.startswith(".") and name.endswith(".tmp"):
            remove_file(pending / name)
    return sum(apply_record(pending / name) for name in list_names(pending))
