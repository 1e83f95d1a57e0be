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

The commit file itself is written in place (see
:func:`~imiptools.fileutil.rewrite_in_place`), so it is *sealed*: the
record's JSON text, a newline, and the SHA-256 (hex) of that text, then a
newline. A power failure while it is written may leave it torn; a torn or
empty commit file holds no committed transaction (nothing was applied or
sent before its fsync returned). A record without the digest line was
written whole, by a rename, by versions before the seal: it is taken as it
is.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imiptools.digests import sha256_hex
from imiptools.fileutil import atomic_write, list_names, read_bytes, read_text, remove_file

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


def sealed(text: str) -> bytes:
    """The bytes of a commit file holding record ``text`` (JSON, one line)."""
    data = text.encode("utf-8", "surrogatepass")
    return data + b"\n" + sha256_hex(data).encode("ascii") + b"\n"


def unsealed(data: bytes) -> str | None:
    """The record text of a commit file's bytes: None when it is empty or
    torn (its digest line does not match, or a record with none is not whole
    JSON); a record without a digest line is returned as it is."""
    body, digest = _split_seal(data)
    if digest is not None:
        return body.decode("utf-8", "surrogatepass") if sha256_hex(body) == digest else None
    text = body.decode("utf-8", "surrogatepass").strip()
    try:
        json.loads(text)
    except ValueError:
        return None
    return text or None


def _split_seal(data: bytes) -> tuple[bytes, str | None]:
    """(the record, its digest) of a sealed commit file; (all of it, None)
    when it does not end in a digest line."""
    body, _, last = data.rstrip(b"\n").rpartition(b"\n")
    if len(last) == 64 and body and all(c in b"0123456789abcdef" for c in last):
        return body, last.decode("ascii")
    return data, None


def commit_record(data: bytes) -> dict[str, Any] | None:
    """The record of a commit file's bytes (None: empty or torn)."""
    text = unsealed(data) if data else None
    if text is None:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def committed_id(commit: Path) -> str | None:
    """The transaction id a commit file holds (None: missing, empty, torn or
    unreadable; a torn one never committed)."""
    record = commit_record(read_bytes(commit) or b"")
    found = record.get("id") if record is not None else None
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
