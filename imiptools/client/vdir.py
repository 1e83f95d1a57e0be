"""A vdir of the user's calendar, for khal and vdirsyncer.

The vdir format (vdirsyncer's "vdir storage"): a directory per collection,
one iCalendar file per item, named ``<name>.ics``, each holding one event
with its overridden instances and time zones. :func:`write_vdir` makes a
directory mirror a set of items: changed items are replaced atomically
(write beside, then rename), unchanged ones are left alone so that their
modification time (a vdir item's etag) stays, and ``.ics`` files of items
no longer there are removed. Other files are never touched.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

from imiptools.client.model import Exported

#: UIDs used as file names as they are; any other is hashed.
_PLAIN = re.compile(r"[A-Za-z0-9@_+=-][A-Za-z0-9@._+=-]{0,199}")


def item_name(uid: str) -> str:
    """The file name of the item ``uid``: the UID itself when it is a safe
    file name, else its SHA-256 (hostile UIDs such as ``../../etc`` never
    name a path)."""
    if _PLAIN.fullmatch(uid):
        return f"{uid}.ics"
    return f"{hashlib.sha256(uid.encode('utf-8', 'surrogatepass')).hexdigest()}.ics"


def write_vdir(directory: Path, items: Mapping[str, bytes]) -> Exported:
    """Make ``directory`` (created when missing) hold exactly ``items``
    (UID → iCalendar bytes) as ``.ics`` files. Raises OSError."""
    directory.mkdir(parents=True, exist_ok=True)
    wanted = {item_name(uid): data for uid, data in items.items()}
    written = unchanged = 0
    for name, data in sorted(wanted.items()):
        path = directory / name
        if path.is_file() and not path.is_symlink() and path.read_bytes() == data:
            unchanged += 1
            continue
        _replace(path, data)
        written += 1
    stale = [p for p in directory.glob("*.ics") if p.name not in wanted and not p.is_dir()]
    for path in stale:
        path.unlink()
    return Exported(str(directory), written, unchanged, len(stale))


def _replace(path: Path, data: bytes) -> None:
    handle, scratch = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
