"""The machine's own mail system is left as it was: the identity test.

The MTA tests run Postfix, Exim and Dovecot as private instances under a
temporary directory and create no system user (``conftest.py``). This module
holds them to that: :func:`system_files_untouched` (used by every test in
``tests/mta``, set up before anything else of the session and torn down
last) fingerprints the system's mail configuration and account files before
the first MTA test and fails the session, naming each difference, if they
are not byte-identical (content, file type, mode and owner) after the last.

This is the one place in ``tests/`` that names those paths, and it only
reads them.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

#: What the MTA tests must never change (a directory: everything below it).
WATCHED = (
    Path("/etc/postfix"),
    Path("/etc/exim4"),
    Path("/etc/dovecot"),
    Path("/etc/passwd"),
    Path("/etc/group"),
    Path("/etc/shadow"),
    Path("/etc/aliases"),
)

#: path -> what it is: "absent", "dir 40755 0:0", "file 100644 0:0 <sha256>", "link -> target"
#: (the digest is "unreadable" for a file the tests may not read).
Fingerprint = dict[str, str]


def fingerprint(paths: tuple[Path, ...] = WATCHED) -> Fingerprint:
    """Every file, directory and symbolic link under ``paths``, described.

    Reads only; a path that does not exist is recorded as ``absent``, so
    that creating it counts as a change too.
    """
    found: Fingerprint = {}
    for path in paths:
        if not os.path.lexists(path):
            found[str(path)] = "absent"
            continue
        found[str(path)] = _describe(path)
        if path.is_dir() and not path.is_symlink():
            for directory, names, files in os.walk(path):
                for name in sorted(names + files):
                    entry = Path(directory) / name
                    found[str(entry)] = _describe(entry)
    return found


def _describe(path: Path) -> str:
    info = path.lstat()
    owner = f"{info.st_uid}:{info.st_gid}"
    if stat.S_ISLNK(info.st_mode):
        return f"link -> {os.readlink(path)}"
    if stat.S_ISDIR(info.st_mode):
        return f"dir {info.st_mode:o} {owner}"
    if stat.S_ISREG(info.st_mode):
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except PermissionError:  # /etc/shadow when not root: compare the rest
            digest = "unreadable"
        return f"file {info.st_mode:o} {owner} {digest}"
    return f"other {info.st_mode:o} {owner}"


def differences(before: Fingerprint, after: Fingerprint) -> list[str]:
    """One line per path that was added, removed or changed, sorted."""
    lines = []
    for path in sorted(set(before) | set(after)):
        old, new = before.get(path, "absent"), after.get(path, "absent")
        if old != new:
            lines.append(f"{path}: {old} -> {new}")
    return lines


@pytest.fixture(scope="session", autouse=True)
def system_files_untouched() -> Iterator[Fingerprint]:
    """Fail the session if the MTA tests changed the system's mail setup or accounts.

    Set up first and torn down last (autouse, session scope), so the second
    fingerprint is taken after every private instance has stopped and every
    temporary file is gone. A failure here is reported as an error in the
    teardown of the last test, listing each changed path.
    """
    before = fingerprint()
    yield before
    changed = differences(before, fingerprint())
    if changed:
        pytest.fail(
            "the MTA tests changed the system's mail configuration or accounts:\n"
            + "\n".join(changed),
            pytrace=False,
        )
