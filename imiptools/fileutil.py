"""Durable file operations: atomic writes, removals, reads and directory fsync.

The protocol is Postfix's and Maildir's, as Radicale's multifilesystem store
applies it: a file is written under a temporary name in its final directory,
flushed, fsynced, renamed over its final name with :func:`os.replace`, and
the directory is fsynced so that the rename itself survives a crash. A
reader therefore sees the old content or the new, never a mixture.

Contracts:

* Temporary files are named ``.<name>.<random>.tmp`` (a leading dot), so
  that listings, which only accept names that do not start with a dot (see
  :func:`imiptools.stores.names.is_safe_component`), never mistake them for
  data. A failed write removes its temporary file; a crash may leave one
  behind, harmless and ignored.
* New files get mode ``0o666`` and new directories ``0o777``, both reduced
  by the process umask (the admin chooses who may read the store).
* Missing parent directories are created, and the parent of each new
  directory is fsynced.
* Text is UTF-8 encoded with ``surrogatepass``, so that any Python ``str``
  (even one carrying lone surrogates from a badly encoded message) is stored
  and read back unchanged.
* Every :class:`OSError` leaves as :class:`~imiptools.errors.StoreUnavailable`
  (exit 75: the MTA keeps the message and retries), chained with
  ``raise ... from``; "file missing" is not an error where documented.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path

from imiptools.errors import StoreUnavailable

ENCODING = "utf-8"
ERRORS = "surrogatepass"


def _unavailable(action: str, path: Path, exc: OSError) -> StoreUnavailable:
    reason = exc.strerror or type(exc).__name__
    return StoreUnavailable(f"cannot {action} {path}: {reason}")


def encode_text(data: bytes | str) -> bytes:
    """The bytes stored for ``data`` (UTF-8, lone surrogates kept)."""
    return data if isinstance(data, bytes) else data.encode(ENCODING, ERRORS)


def decode_text(data: bytes) -> str:
    """Inverse of :func:`encode_text`; raises UnicodeDecodeError."""
    return data.decode(ENCODING, ERRORS)


def fsync_directory(path: Path) -> None:
    """Make the entries of directory ``path`` (renames, removals) durable.

    Filesystems that cannot fsync a directory (EINVAL) are tolerated.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise _unavailable("sync directory", path, exc) from exc


def ensure_directory(path: Path) -> None:
    """Create directory ``path`` and its missing parents, durably.

    The parent of each directory created is fsynced. An existing directory
    is fine (also when another process creates it concurrently).
    """
    missing: list[Path] = []
    current = path
    try:
        while not current.is_dir() and current.parent != current:
            missing.append(current)
            current = current.parent
    except OSError as exc:
        raise _unavailable("inspect", current, exc) from exc
    for directory in reversed(missing):
        _make_directory(directory)
        fsync_directory(directory.parent)


def _make_directory(path: Path) -> None:
    try:
        os.mkdir(path)
    except FileExistsError as exc:
        if not path.is_dir():
            raise _unavailable("create directory", path, exc) from exc
    except OSError as exc:
        raise _unavailable("create directory", path, exc) from exc


def _create_temporary(directory: Path, name: str) -> tuple[int, Path]:
    """Open a new temporary file beside ``name`` (exclusive create)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        temporary = directory / f".{name[:100]}.{secrets.token_hex(8)}.tmp"
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue


def write_fully(descriptor: int, data: bytes) -> None:
    """Write all of ``data`` to an open file and fsync it."""
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]
    os.fsync(descriptor)


def atomic_write(path: Path, data: bytes | str) -> None:
    """Replace the content of ``path`` with ``data``, atomically and durably.

    On return the new content and its directory entry are on disk. On any
    error the temporary file is removed and ``path`` keeps its old content;
    an :class:`OSError` is raised as :class:`StoreUnavailable`.
    """
    payload = encode_text(data)
    ensure_directory(path.parent)
    temporary: Path | None = None
    try:
        descriptor, temporary = _create_temporary(path.parent, path.name)
        try:
            write_fully(descriptor, payload)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
        temporary = None
    except OSError as exc:
        raise _unavailable("write", path, exc) from exc
    finally:
        if temporary is not None:
            _discard(temporary)
    fsync_directory(path.parent)


def _discard(path: Path) -> None:
    """Remove a temporary file, ignoring every error (we are failing anyway)."""
    with contextlib.suppress(OSError):
        os.unlink(path)


def remove_file(path: Path) -> None:
    """Remove ``path`` durably; a missing file (or directory) is fine."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise _unavailable("remove", path, exc) from exc
    if path.parent.is_dir():
        fsync_directory(path.parent)


def remove_directory(path: Path) -> None:
    """Remove the flat directory ``path``: its files one by one, then itself.

    A missing directory is fine. Subdirectories are not expected (they make
    the removal fail with :class:`StoreUnavailable`).
    """
    for name in list_names(path, hidden=True):
        try:
            os.unlink(path / name)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise _unavailable("remove", path / name, exc) from exc
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _unavailable("remove directory", path, exc) from exc
    fsync_directory(path.parent)


def remove_empty_directory(path: Path) -> None:
    """Remove directory ``path`` if it is empty; missing or non-empty is fine."""
    try:
        os.rmdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            return
        raise _unavailable("remove directory", path, exc) from exc
    fsync_directory(path.parent)


def list_names(path: Path, hidden: bool = False) -> list[str]:
    """Names in directory ``path``, sorted; ``[]`` if it does not exist.

    Names starting with a dot (temporary and lock files) are left out unless
    ``hidden`` is true.
    """
    try:
        names = os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise _unavailable("list", path, exc) from exc
    return sorted(name for name in names if hidden or not name.startswith("."))


def read_bytes(path: Path) -> bytes | None:
    """The content of ``path``, or None if it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise _unavailable("read", path, exc) from exc


def read_text(path: Path) -> str | None:
    """The text of ``path`` (see :func:`decode_text`), or None if missing.

    Undecodable content (not written by :func:`atomic_write`) raises
    :class:`StoreUnavailable`: an admin must look at the file.
    """
    data = read_bytes(path)
    if data is None:
        return None
    try:
        return decode_text(data)
    except UnicodeDecodeError as exc:
        raise StoreUnavailable(f"cannot decode {path}: not UTF-8") from exc
