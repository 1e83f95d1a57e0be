"""Durable file operations that never follow a symlink: atomic writes,
removals, reads, appends, locks and directory fsync.

The protocol is Postfix's and Maildir's, as Radicale's multifilesystem store
applies it: a file is written under a temporary name in its final directory,
flushed, fsynced, renamed over its final name with :func:`os.replace`, and
the directory is fsynced so that the rename itself survives a crash. A
reader therefore sees the old content or the new, never a mixture.

Symlinks: a configured directory (store, preferences, quota journal,
publishing) may be reached through symlinks; whoever opens one resolves it
once with :func:`resolve_root`. Every path given to this module is then
walked one component at a time from ``/`` (or the working directory), each
directory opened with ``O_DIRECTORY | O_NOFOLLOW`` relative to the one
before (``dir_fd``), and the file itself opened, created, renamed or
removed relative to its directory with ``O_NOFOLLOW``. A symlink planted
anywhere in the path (a user directory, ``objects/``, ``.outbox/new``,
``.lock``, ``decisions.log``...) raises
:class:`~imiptools.errors.SymlinkRefused` and logs an ERROR line naming
it; there is no window between a check and its use, as the kernel resolves
each component exactly once. A symlink at the final name of an atomic
write or a removal is replaced or removed itself, never followed.

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
* Directory fsyncs may be batched: inside :func:`deferred_directory_syncs`
  each directory touched is fsynced once, at the end (see there for when
  that is safe).
* Text is UTF-8 encoded with ``surrogatepass``, so that any Python ``str``
  (even one carrying lone surrogates from a badly encoded message) is stored
  and read back unchanged.
* Every :class:`OSError` leaves as :class:`~imiptools.errors.StoreUnavailable`
  (exit 75: the MTA keeps the message and retries), chained with
  ``raise ... from``; "file missing" is not an error where documented.

Held directories: inside :func:`held_directory` (the file store holds a
user's directory for as long as it holds the user's lock) a walk of a path
below that directory starts at its open descriptor instead of at the root,
so a file directly in it costs one ``open`` and one in a subdirectory two.
Everything below the held directory is still walked, per call, exactly as
above: a symlink planted there (a subdirectory swapped for one while the
lock is held, say) is refused as ever.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

from imiptools.deferred import dataclass
from imiptools.digests import token_hex
from imiptools.errors import StoreUnavailable, SymlinkRefused

log = logging.getLogger(__name__)

ENCODING = "utf-8"
ERRORS = "surrogatepass"

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
#: What :func:`_read_all` asks for first: most files of a store are smaller.
_FIRST_READ = 64 * 1024
#: A directory opened to reach what is below it (Linux ``O_PATH``: no read
#: permission needed, as for a path walked by the kernel).
_WALK = os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC | getattr(os, "O_PATH", os.O_RDONLY)
#: A directory opened to list or fsync it.
_READ = os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC | os.O_RDONLY
#: Errors of ``O_NOFOLLOW`` meeting a symlink (Linux ELOOP, BSD EMLINK) or
#: of ``O_DIRECTORY`` meeting one (ENOTDIR).
_LINK_ERRORS = (errno.ELOOP, errno.EMLINK, errno.ENOTDIR)


def _unavailable(action: str, path: Path, exc: OSError) -> StoreUnavailable:
    reason = exc.strerror or type(exc).__name__
    return StoreUnavailable(f"cannot {action} {path}: {reason}")


def _refused(path: Path) -> SymlinkRefused:
    """The error for a symlink met at ``path``, logged at ERROR level.

    An agent exits 75 on it (an admin must act; the mail must not be lost):
    see :class:`~imiptools.errors.SymlinkRefused`.
    """
    log.error("refusing to follow the symlink %s (imip-admin check lists them)", path)
    return SymlinkRefused(f"{path} is a symlink: refused, not followed")


#: The directories returned by :func:`resolve_root` (absolute, resolved).
_ROOTS: set[str] = set()


def resolve_root(path: Path) -> Path:
    """A configured directory with every symlink in it resolved.

    Only an admin's configuration (the store, preferences, journal and
    publishing directories) is resolved; everything below is walked without
    following symlinks (see the module docstring). The result is
    remembered, so that a walk below it opens it in one call instead of
    walking from ``/`` (a shortcut only: walking from ``/`` refuses the
    same symlinks, those below the root).
    """
    text = os.fspath(path)
    memo = _RESOLVED.get()
    resolved = None if memo is None else memo.get(text)
    if resolved is None:
        resolved = os.path.realpath(text)
        if memo is not None:
            memo[text] = memo[resolved] = resolved
    _ROOTS.add(resolved)
    return Path(resolved)


#: Inside :func:`roots_resolved_once`: each path :func:`resolve_root` was
#: given, and each it gave, mapped to its resolution; None outside. A
#: context variable, so that threads (and tasks) never share one.
_RESOLVED: ContextVar[dict[str, str] | None] = ContextVar("resolved_roots", default=None)


@contextlib.contextmanager
def roots_resolved_once() -> Iterator[None]:
    """Resolve each root once in the block: one delivery (issue 15).

    A delivery opens the site's directories and its outbox more than
    once; inside the block :func:`resolve_root` resolves each path it is
    given the first time only, and a path it gave resolves to itself.
    So a symlink an admin changes during the block takes effect at the
    next block, as it would at the next run of a pipe program.
    """
    token = _RESOLVED.set({})
    try:
        yield
    finally:
        _RESOLVED.reset(token)


def encode_text(data: bytes | str) -> bytes:
    """The bytes stored for ``data`` (UTF-8, lone surrogates kept)."""
    return data if isinstance(data, bytes) else data.encode(ENCODING, ERRORS)


def decode_text(data: bytes) -> str:
    """Inverse of :func:`encode_text`; raises UnicodeDecodeError."""
    return data.decode(ENCODING, ERRORS)


# -- walking without following symlinks ------------------------------------------


def _is_link(directory: int | None, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=directory, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _open_child(
    directory: int | None, parts: tuple[str, ...], index: int, create: bool, flags: int
) -> int | None:
    """Directory ``parts[index]`` under ``directory`` (None: the working
    directory), created if missing and ``create``; None if missing (or not a
    directory) and not ``create``. ``parts`` is the whole path, for messages."""
    name = parts[index]
    try:
        return os.open(name, flags, dir_fd=directory)
    except FileNotFoundError:
        if not create:
            return None
    except OSError as exc:
        if exc.errno in _LINK_ERRORS and _is_link(directory, name):
            raise _refused(Path(*parts[: index + 1])) from exc
        if exc.errno == errno.ENOTDIR and not create:
            return None
        raise _unavailable("open directory", Path(*parts[: index + 1]), exc) from exc
    path = Path(*parts[: index + 1])
    _make_directory(directory, name, path)
    created = _open_child(directory, parts, index, False, flags)
    if created is None:
        raise StoreUnavailable(f"cannot create directory {path}: removed meanwhile")
    return created


def _make_directory(directory: int | None, name: str, path: Path) -> None:
    """``mkdir`` (a concurrent one is fine), then fsync the parent."""
    try:
        os.mkdir(name, 0o777, dir_fd=directory)
    except FileExistsError:
        return
    except OSError as exc:
        raise _unavailable("create directory", path, exc) from exc
    try:
        # The parent was walked with O_PATH, which fsync refuses: reopen it.
        readable = os.open(".", _READ, dir_fd=directory)
        try:
            os.fsync(readable)
        finally:
            os.close(readable)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise _unavailable("sync directory", path.parent, exc) from exc


def _open_directory(path: Path, create: bool, flags: int) -> tuple[int | None, bool]:
    """An fd of directory ``path`` opened with ``flags``, reached without
    following any symlink below a resolved root (see :func:`_open_child` for
    None and ``create``), and whether the caller must close it (not so for
    a held directory's own, see :func:`held_directory`)."""
    parts = path.parts
    last = len(parts) - 1
    first, current, owned = _open_start(path, flags)
    if first > last:
        return current, owned
    try:
        for index in range(first, last + 1):
            child = _open_child(current, parts, index, create, flags if index == last else _WALK)
            if owned and current is not None:
                os.close(current)
            current, owned = child, True
            if current is None:
                return None, False
    except BaseException:
        if owned and current is not None:
            os.close(current)
        raise
    return current, owned


def _open_start(path: Path, flags: int) -> tuple[int, int | None, bool]:
    """Where a walk of ``path`` starts: (index of the first part still to
    walk, fd of what comes before it, None for the working directory;
    whether that fd is the walk's own to close).

    The innermost held directory (:func:`held_directory`) that ``path`` is
    or lies in starts it without any call (its fd is not the walk's).
    Else the longest resolved root (:func:`resolve_root`) that ``path``
    lies in is opened in one call: it holds no symlink but an admin's. Else
    the walk starts at ``/`` (or the working directory, for a relative path).
    """
    text = str(path)
    for hold in reversed(_HELD.get()):
        if text == hold.path or text.startswith(hold.prefix):
            return hold.count, hold.descriptor, False
    first, descriptor = _open_unheld_start(path, text, flags)
    return first, descriptor, True


def _open_unheld_start(path: Path, text: str, flags: int) -> tuple[int, int | None]:
    """:func:`_open_start` outside held directories: (first part, fd)."""
    parts = path.parts
    end = len(text)
    while end > 1:  # "/" itself is walked as usual
        prefix = text[:end]
        if prefix in _ROOTS:
            count = prefix.count(os.sep) + 1
            try:
                return count, os.open(
                    prefix, (flags if count == len(parts) else _WALK) & ~os.O_NOFOLLOW
                )
            except FileNotFoundError:
                break  # not created yet: walked (and created) below
        end = text.rfind(os.sep, 0, end)
    if not path.is_absolute():
        return 0, (os.open(".", flags) if not parts else None)
    return 1, os.open(parts[0], flags if len(parts) == 1 else _WALK)


class _OpenDirectory:
    """:func:`_open_directory` for a ``with`` block: the descriptor (or
    None) is what ``with`` gives, closed after the block however it ends,
    unless it is a held directory's own. A class rather than a generator
    context manager: every file operation opens one (issue 15)."""

    __slots__ = ("create", "descriptor", "flags", "owned", "path")

    def __init__(self, path: Path, create: bool, flags: int) -> None:
        self.path = path
        self.create = create
        self.flags = flags
        self.descriptor: int | None = None
        self.owned = False

    def __enter__(self) -> int | None:
        try:
            self.descriptor, self.owned = _open_directory(self.path, self.create, self.flags)
        except OSError as exc:
            raise _unavailable("open directory", self.path, exc) from exc
        return self.descriptor

    def __exit__(self, *exc_info: object) -> None:
        if self.owned and self.descriptor is not None:
            os.close(self.descriptor)


def _directory(path: Path, create: bool = False, flags: int = _WALK) -> _OpenDirectory:
    """:func:`_open_directory` for a ``with`` block (closed after it, unless
    it is a held directory's own)."""
    return _OpenDirectory(path, create, flags)


@dataclass(frozen=True)
class _Hold:
    """A directory held open by :func:`held_directory`."""

    #: Its path as given (absolute), that path followed by ``/``, and its
    #: number of parts (where a walk below it goes on).
    path: str
    prefix: str
    count: int
    #: Opened with ``_READ``: walked from, listed, fsynced.
    descriptor: int


#: The directories held open in this context, innermost last. A context
#: variable, so that threads (and tasks) of one process never share one;
#: each entry lives exactly as long as its :func:`held_directory` block.
_HELD: ContextVar[tuple[_Hold, ...]] = ContextVar("held_directories", default=())


@contextlib.contextmanager
def held_directory(path: Path, required: bool = True) -> Iterator[None]:
    """Keep the existing directory ``path`` (absolute) open for the block,
    and start every walk of a path in or below it at that descriptor.

    ``path`` is walked once, on entry, as ever (a symlink on the way raises
    :class:`~imiptools.errors.SymlinkRefused`; a missing directory
    :class:`StoreUnavailable`). Inside the block the directory itself is
    not looked up again: it must be one that nothing renames or removes
    meanwhile (the file store holds a user's directory while it holds the
    user's lock, whose file is in it). Whatever lies below it is walked
    per call, without following symlinks, exactly as outside the block.
    The descriptor is closed when the block ends, however it ends; blocks
    nest (the innermost held directory containing a path is used). Unless
    ``required``, a missing ``path`` is not held (and not created): the
    block runs as without it.
    """
    if not path.is_absolute():
        raise ValueError(f"a held directory must be absolute: {path}")
    with _directory(path, flags=_READ) as descriptor:
        if descriptor is None and not required:
            yield
            return
        if descriptor is None:
            raise StoreUnavailable(f"cannot open directory {path}: missing")
        text = str(path)
        hold = _Hold(text, text.rstrip(os.sep) + os.sep, len(path.parts), descriptor)
        token = _HELD.set((*_HELD.get(), hold))
        try:
            yield
        finally:
            _HELD.reset(token)


#: The directories whose fsync :func:`deferred_directory_syncs` put off (in
#: order, each once); None outside such a block. A context variable, so that
#: threads (and tasks) of one process never share a batch.
_DEFERRED: ContextVar[dict[Path, None] | None] = ContextVar("deferred_syncs", default=None)


def _sync(directory: int, path: Path) -> None:
    """fsync the directory open (readable) as ``directory`` (see
    :func:`deferred_directory_syncs` for when it is put off); EINVAL (not
    supported by the filesystem) is fine."""
    deferred = _DEFERRED.get()
    if deferred is not None:
        deferred[path] = None
        return
    _fsync(directory, path)


def _fsync(directory: int, path: Path) -> None:
    try:
        os.fsync(directory)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise _unavailable("sync directory", path, exc) from exc


@contextlib.contextmanager
def deferred_directory_syncs() -> Iterator[None]:
    """Put off the directory fsyncs of the writes in the block, and make
    each directory's entries durable once when the block ends.

    Inside the block, :func:`atomic_write`, :func:`move_file` and
    :func:`remove_file` still fsync every file's data before renaming it
    into place (so each file is always a complete old or new version), but
    a rename or removal becomes durable only at the end of the block, when
    every directory touched is fsynced once (a directory removed meanwhile
    is skipped: its parent's fsync covers that). Until then a power failure
    may keep any subset of the block's renames and removals.

    So a caller may use it only where something already durable makes a
    redo converge from any such subset: the file store's apply of a
    committed transaction (its ``.txn`` record is removed only after the
    block). A step whose redo depends on earlier steps being durable puts
    :func:`sync_deferred_directories` before it. If the block raises,
    nothing more is synced: the record stays and is applied again. Blocks
    nest (the outer one syncs).
    """
    if _DEFERRED.get() is not None:
        yield
        return
    deferred: dict[Path, None] = {}
    token = _DEFERRED.set(deferred)
    try:
        yield
    finally:
        _DEFERRED.reset(token)
    for path in deferred:
        _sync_if_present(path)


def sync_deferred_directories() -> None:
    """Inside :func:`deferred_directory_syncs`, make every rename and
    removal so far durable now (a barrier: for a step that must not become
    durable before the earlier ones); outside one, nothing to do."""
    deferred = _DEFERRED.get()
    if not deferred:
        return
    for path in list(deferred):
        _sync_if_present(path)
    deferred.clear()


def _sync_if_present(path: Path) -> None:
    """fsync directory ``path`` unless it has gone (see :func:`fsync_directory`)."""
    with _directory(path, flags=_READ) as descriptor:
        if descriptor is not None:
            _fsync(descriptor, path)


def _open_in(directory: int, path: Path, flags: int, mode: int, action: str) -> int:
    """``open`` of ``path.name`` in ``directory`` with ``O_NOFOLLOW``."""
    try:
        return os.open(path.name, flags | os.O_NOFOLLOW | _CLOEXEC, mode, dir_fd=directory)
    except OSError as exc:
        if exc.errno in _LINK_ERRORS and _is_link(directory, path.name):
            raise _refused(path) from exc
        raise _unavailable(action, path, exc) from exc


# -- directories --------------------------------------------------------------


def fsync_directory(path: Path) -> None:
    """Make the entries of directory ``path`` (renames, removals) durable,
    now (never deferred: callers use it to order one step before the next).

    Filesystems that cannot fsync a directory (EINVAL) are tolerated; a
    missing directory raises :class:`StoreUnavailable`.
    """
    with _directory(path, flags=_READ) as descriptor:
        if descriptor is None:
            raise StoreUnavailable(f"cannot sync directory {path}: missing")
        _fsync(descriptor, path)


def ensure_directory(path: Path) -> None:
    """Create directory ``path`` and its missing parents, durably.

    The parent of each directory created is fsynced. An existing directory
    is fine (also when another process creates it concurrently).
    """
    with _directory(path, create=True):
        pass


def is_directory(path: Path) -> bool:
    """True if ``path`` is a directory itself (a symlink to one is not)."""
    return stat.S_ISDIR(_mode(path))


def is_symlink(path: Path) -> bool:
    """True if ``path`` itself is a symlink (the way to it is walked as usual)."""
    return stat.S_ISLNK(_mode(path))


def _mode(path: Path) -> int:
    """``st_mode`` of ``path`` itself (not followed); 0 if missing."""
    with _directory(path.parent) as parent:
        if parent is None:
            return 0
        try:
            return os.stat(path.name, dir_fd=parent, follow_symlinks=False).st_mode
        except OSError:
            return 0


def list_names(path: Path, hidden: bool = False) -> list[str]:
    """Names in directory ``path``, sorted; ``[]`` if it does not exist.

    Names starting with a dot (temporary and lock files) are left out unless
    ``hidden`` is true.
    """
    with _directory(path, flags=_READ) as descriptor:
        if descriptor is None:
            return []
        try:
            names = os.listdir(descriptor)
        except OSError as exc:
            raise _unavailable("list", path, exc) from exc
    return sorted(name for name in names if hidden or not name.startswith("."))


class DirectoryReader:
    """A directory opened once, to list it and read many files in it
    (issue 15: ``imip-admin check`` reads thousands of files of a few
    directories; a walk per file cost a pathlib join and a directory open).

    It is reached as every path is (no symlink followed on the way, see the
    module docstring) and then never looked up again: use it only while
    nothing renames or replaces it (the file store reads a user's records
    so while it holds the user's lock). Each file, and each subdirectory
    opened from it, is opened relative to its descriptor with
    ``O_NOFOLLOW``: a symlink there raises
    :class:`~imiptools.errors.SymlinkRefused`, as for any path. Names are
    single path components (``ValueError`` otherwise). A missing directory
    reads as an empty one: no names, every file missing. Close it (it is a
    context manager); a held directory's own descriptor is never closed
    here (see :func:`held_directory`).
    """

    __slots__ = ("descriptor", "owned", "path")

    def __init__(self, path: Path, descriptor: int | None, owned: bool) -> None:
        self.path = path
        self.descriptor = descriptor
        self.owned = owned

    def __enter__(self) -> DirectoryReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the descriptor (once; not a held directory's own)."""
        descriptor, self.descriptor = self.descriptor, None
        if self.owned and descriptor is not None:
            os.close(descriptor)

    def names(self, hidden: bool = False) -> list[str]:
        """The names in the directory, sorted, as :func:`list_names` gives them."""
        if self.descriptor is None:
            return []
        try:
            names = os.listdir(self.descriptor)
        except OSError as exc:
            raise _unavailable("list", self.path, exc) from exc
        return sorted(name for name in names if hidden or not name.startswith("."))

    def directory(self, name: str) -> DirectoryReader:
        """The subdirectory ``name``, opened relative to this one (missing,
        or not a directory: an empty one, as for :func:`list_names`)."""
        descriptor = None if self.descriptor is None else self._open_child(_component(name))
        return DirectoryReader(self.path / name, descriptor, True)

    def _open_child(self, name: str) -> int | None:
        try:
            return os.open(name, _READ, dir_fd=self.descriptor)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in _LINK_ERRORS and _is_link(self.descriptor, name):
                raise _refused(self.path / name) from exc
            if exc.errno == errno.ENOTDIR:
                return None
            raise _unavailable("open directory", self.path / name, exc) from exc

    def read_bytes(self, name: str) -> bytes | None:
        """The content of file ``name``, or None if it does not exist (as
        :func:`read_bytes`)."""
        if self.descriptor is None:
            return None
        name = _component(name)
        descriptor = _open_present_in(self.descriptor, name, os.O_RDONLY, self.path, "read")
        if descriptor is None:
            return None
        try:
            return _read_all(descriptor)
        except OSError as exc:
            raise _unavailable("read", self.path / name, exc) from exc
        finally:
            os.close(descriptor)

    def read_text(self, name: str) -> str | None:
        """The text of file ``name``, or None if missing (as :func:`read_text`)."""
        return _decoded(self.read_bytes(name), self.path / name)


def reading_directory(path: Path) -> DirectoryReader:
    """Directory ``path`` opened for reading (see :class:`DirectoryReader`),
    walked as every path is; close it after use."""
    try:
        descriptor, owned = _open_directory(path, False, _READ)
    except OSError as exc:
        raise _unavailable("open directory", path, exc) from exc
    return DirectoryReader(path, descriptor, owned)


def _component(name: str) -> str:
    """``name`` if it is one path component, else ValueError."""
    if not name or os.sep in name or name in (".", ".."):
        raise ValueError(f"not a single path component: {name[:80]!r}")
    return name


def remove_directory(path: Path) -> None:
    """Remove the flat directory ``path``: its files one by one, then itself.

    A missing directory is fine. Subdirectories are not expected (they make
    the removal fail with :class:`StoreUnavailable`).
    """
    with _directory(path, flags=_READ) as descriptor:
        if descriptor is None:
            return
        try:
            names = os.listdir(descriptor)
        except OSError as exc:
            raise _unavailable("list", path, exc) from exc
        for name in names:
            _unlink(descriptor, path / name)
    _remove_directory_entry(path, strict=True)


def remove_empty_directory(path: Path) -> None:
    """Remove directory ``path`` if it is empty; missing or non-empty is fine."""
    _remove_directory_entry(path, strict=False)


def _remove_directory_entry(path: Path, strict: bool) -> None:
    """``rmdir`` relative to the parent; a non-empty directory raises only
    if ``strict``; a missing one (or a symlink, left alone) is fine."""
    with _directory(path.parent, flags=_READ) as parent:
        if parent is None:
            return
        try:
            os.rmdir(path.name, dir_fd=parent)
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) and not strict:
                return
            raise _unavailable("remove directory", path, exc) from exc
        _sync(parent, path.parent)


# -- files ----------------------------------------------------------------------


def _create_temporary(directory: int, name: str) -> tuple[int, str]:
    """Open a new temporary file beside ``name`` (exclusive create)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC
    while True:
        temporary = f".{name[:100]}.{token_hex(8)}.tmp"
        try:
            return os.open(temporary, flags, 0o666, dir_fd=directory), temporary
        except FileExistsError:
            continue


def write_fully(descriptor: int, data: bytes) -> None:
    """Write all of ``data`` to an open file and fsync it."""
    _write_all(descriptor, data)
    os.fsync(descriptor)


def _write_all(descriptor: int, data: bytes) -> None:
    """Write all of ``data`` to an open file (no fsync)."""
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]


def atomic_write(path: Path, data: bytes | str) -> None:
    """Replace the content of ``path`` with ``data``, atomically and durably.

    On return the new content and its directory entry are on disk. On any
    error the temporary file is removed and ``path`` keeps its old content;
    an :class:`OSError` is raised as :class:`StoreUnavailable`. A symlink at
    ``path`` is replaced, not followed.
    """
    payload = encode_text(data)
    with _directory(path.parent, create=True, flags=_READ) as directory:
        assert directory is not None  # created
        _replace(directory, path, payload)
        _sync(directory, path.parent)


def overwrite_checked(path: Path, data: bytes) -> None:
    """Make ``path`` hold ``data`` in place: neither atomically nor durably
    (no temporary file, no rename, nothing fsynced; the directory is created
    without an fsync of its parent), so a reader may find it torn, empty,
    old or gone.

    Only for derived data that carries its own digest and that its reader
    checks against what it was derived from (see
    :meth:`imiptools.records.UserRecords.record_derivation` and
    :mod:`imiptools.stores.bucketindex`): about a fifth of the cost of a
    temporary file renamed over the old one. Errors are raised as for
    :func:`atomic_write`.
    """
    with _directory(path.parent.parent) as parent:
        if parent is None:
            raise StoreUnavailable(f"cannot write {path}: its directory is missing")
        try:
            os.mkdir(path.parent.name, 0o777, dir_fd=parent)
        except FileExistsError:
            pass
        except OSError as exc:
            raise _unavailable("create directory", path.parent, exc) from exc
        with _directory(path.parent, flags=_READ) as directory:
            if directory is None:
                raise StoreUnavailable(f"cannot write {path}: its directory is missing")
            descriptor = _open_in(directory, path, os.O_WRONLY | os.O_CREAT, 0o666, "write")
    try:  # written over, then cut: the blocks of a record as long are not freed
        _write_all(descriptor, data)
        os.ftruncate(descriptor, len(data))
    except OSError as exc:
        raise _unavailable("write", path, exc) from exc
    finally:
        os.close(descriptor)


def _replace(directory: int, path: Path, payload: bytes, sync: bool = True) -> None:
    temporary: str | None = None
    try:
        descriptor, temporary = _create_temporary(directory, path.name)
        try:
            if sync:
                write_fully(descriptor, payload)
            else:
                _write_all(descriptor, payload)
        finally:
            os.close(descriptor)
        os.replace(temporary, path.name, src_dir_fd=directory, dst_dir_fd=directory)
        temporary = None
    except OSError as exc:
        raise _unavailable("write", path, exc) from exc
    finally:
        if temporary is not None:
            _discard(directory, temporary)


def _discard(directory: int, name: str) -> None:
    """Remove a temporary file, ignoring every error (we are failing anyway)."""
    with contextlib.suppress(OSError):
        os.unlink(name, dir_fd=directory)


def write_new_file(path: Path, data: bytes) -> None:
    """Create ``path`` (it must not exist) holding ``data``, fsynced; the
    parents are created. A failed write removes the file again."""
    with _directory(path.parent, create=True) as directory:
        assert directory is not None  # created
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        descriptor = _open_in(directory, path, flags, 0o666, "create")
        done = False
        try:
            write_fully(descriptor, data)
            done = True
        except OSError as exc:
            raise _unavailable("write", path, exc) from exc
        finally:
            os.close(descriptor)
            if not done:
                _discard(directory, path.name)


def rewrite_in_place(path: Path, data: bytes) -> None:
    """Make ``path`` hold ``data`` durably, in the same file once it exists:
    written from its start, cut to the length of ``data``, fsynced (and, the
    call that creates it, its directory too, which must exist).

    Not atomic: a crash before the fsync returns may leave the file torn (new
    bytes over old ones), so it is only for a record that carries its own
    digest (the file store's ``.txn``, :func:`imiptools.pending.sealed`).
    What it saves over :func:`atomic_write` is a new file, a rename and the
    directory's fsync each time: about half a millisecond of kernel time a
    file on some filesystems (docs/development/performance.md).
    """
    with _directory(path.parent, flags=_READ) as directory:
        if directory is None:
            raise StoreUnavailable(f"cannot write {path}: its directory is missing")
        descriptor, created = _open_or_create(directory, path)
        try:
            _write_all(descriptor, data)
            os.ftruncate(descriptor, len(data))
            os.fsync(descriptor)
        except OSError as exc:
            raise _unavailable("write", path, exc) from exc
        finally:
            os.close(descriptor)
        if created:
            _fsync(directory, path.parent)


def _open_or_create(directory: int, path: Path) -> tuple[int, bool]:
    """``path`` opened for writing in ``directory`` (created if missing), and
    whether this call created it."""
    try:
        return _open_in(directory, path, os.O_WRONLY, 0, "write"), False
    except StoreUnavailable as exc:
        if not isinstance(exc.__cause__, FileNotFoundError):
            raise
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    return _open_in(directory, path, flags, 0o666, "create"), True


def move_file(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target`` (replacing it), creating the target's
    directory if missing, and fsync the target's directory."""
    with (
        _directory(source.parent) as origin,
        _directory(target.parent, create=True, flags=_READ) as destination,
    ):
        if origin is None:
            raise StoreUnavailable(f"cannot move {source}: its directory is missing")
        assert destination is not None  # created
        try:
            os.rename(source.name, target.name, src_dir_fd=origin, dst_dir_fd=destination)
        except OSError as exc:
            raise _unavailable("move", source, exc) from exc
        _sync(destination, target.parent)


def open_file(path: Path, flags: int, mode: int = 0o666, action: str = "open") -> int:
    """A descriptor of ``path`` opened with ``flags`` (plus ``O_NOFOLLOW``
    and ``O_CLOEXEC``); the parents are created when ``flags`` has
    ``O_CREAT``. Errors name ``action``; a missing file raises too."""
    create = bool(flags & os.O_CREAT)
    with _directory(path.parent, create=create) as directory:
        if directory is None:
            raise StoreUnavailable(f"cannot {action} {path}: its directory is missing")
        return _open_in(directory, path, flags, mode, action)


def open_if_present(path: Path, flags: int, action: str = "open") -> int | None:
    """A descriptor of the existing file ``path`` opened with ``flags`` (as
    :func:`open_file`, never creating it); None when it or its directory is
    missing. Errors name ``action``."""
    with _directory(path.parent) as directory:
        if directory is None:
            return None
        return _open_present_in(directory, path.name, flags, path.parent, action)


def _open_present_in(
    directory: int, name: str, flags: int, parent: Path, action: str
) -> int | None:
    """``open`` of ``name`` in ``directory`` (``parent``, for messages) with
    ``O_NOFOLLOW``; None when it is missing."""
    try:
        return os.open(name, flags | os.O_NOFOLLOW | _CLOEXEC, dir_fd=directory)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in _LINK_ERRORS and _is_link(directory, name):
            raise _refused(parent / name) from exc
        raise _unavailable(action, parent / name, exc) from exc


def same_file(descriptor: int, path: Path) -> bool:
    """Whether ``path`` (its last component not followed) still names the
    file open as ``descriptor``: False once it was removed, renamed or
    replaced (the path is looked up as it is: a symlink on the way can only
    make it False)."""
    try:
        named = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    opened = os.fstat(descriptor)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def append_line(path: Path, data: bytes, mode: int = 0o666) -> None:
    """Append ``data`` to ``path`` (created if missing) with ``O_APPEND``
    and fsync it: a crash can only cut what was being appended."""
    descriptor = open_file(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode, "append to")
    try:
        write_fully(descriptor, data)
    except OSError as exc:
        raise _unavailable("append to", path, exc) from exc
    finally:
        os.close(descriptor)


def remove_file(path: Path, durable: bool = True) -> None:
    """Remove ``path``; a missing file (or directory) is fine. A symlink at
    ``path`` is removed itself.

    ``durable``: the removal is made durable (its directory fsynced) before
    returning; without it, a power failure soon after may bring the file
    back (for a removal that may be undone, like forgetting a sent message).
    """
    with _directory(path.parent, flags=_READ) as directory:
        if directory is None:
            return
        _unlink(directory, path)
        if durable:
            _sync(directory, path.parent)


def _unlink(directory: int, path: Path) -> None:
    try:
        os.unlink(path.name, dir_fd=directory)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise _unavailable("remove", path, exc) from exc


def read_bytes(path: Path) -> bytes | None:
    """The content of ``path``, or None if it does not exist."""
    descriptor = open_if_present(path, os.O_RDONLY, "read")
    if descriptor is None:
        return None
    try:
        return _read_all(descriptor)
    except OSError as exc:
        raise _unavailable("read", path, exc) from exc
    finally:
        os.close(descriptor)


def _read_all(descriptor: int) -> bytes:
    """Everything from an open file's offset to its end.

    ``read`` until one returns nothing (a short read is not taken for the
    end, nor the size ``fstat`` gave: the file may grow meanwhile), asking
    for :data:`_FIRST_READ` bytes, twice as many after each full answer: a
    small file costs two calls and no buffered file object, whose set-up
    alone costs four (issue 15: a delivery reads about ten files, a check
    four an event).
    """
    chunks, want = [], _FIRST_READ
    while chunk := os.read(descriptor, want):
        chunks.append(chunk)
        if len(chunk) == want:
            want *= 2
    return b"".join(chunks)


def read_text(path: Path) -> str | None:
    """The text of ``path`` (see :func:`decode_text`), or None if missing.

    Undecodable content (not written by :func:`atomic_write`) raises
    :class:`StoreUnavailable`: an admin must look at the file.
    """
    return _decoded(read_bytes(path), path)


def _decoded(data: bytes | None, path: Path) -> str | None:
    """:func:`decode_text` of ``data`` read from ``path`` (None: None);
    StoreUnavailable when it is not UTF-8."""
    if data is None:
        return None
    try:
        return decode_text(data)
    except UnicodeDecodeError as exc:
        raise StoreUnavailable(f"cannot decode {path}: not UTF-8") from exc
