"""Atomic writes, removals and reads (imiptools.fileutil)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from imiptools import fileutil
from imiptools.errors import StoreUnavailable, SymlinkRefused
from imiptools.fileutil import (
    append_line,
    atomic_write,
    ensure_directory,
    fsync_directory,
    held_directory,
    is_directory,
    is_symlink,
    list_names,
    move_file,
    open_file,
    read_bytes,
    read_text,
    reading_directory,
    remove_directory,
    remove_empty_directory,
    remove_file,
    resolve_root,
    roots_resolved_once,
    write_new_file,
)
from tests.support import open_descriptors


def test_write_and_read_text(tmp_path: Path) -> None:
    atomic_write(tmp_path / "f", "Ünïcödé\r\nline\n")
    assert read_text(tmp_path / "f") == "Ünïcödé\r\nline\n"
    assert (tmp_path / "f").read_bytes() == "Ünïcödé\r\nline\n".encode()


def test_write_bytes(tmp_path: Path) -> None:
    atomic_write(tmp_path / "f", b"\x00\xff raw")
    assert read_bytes(tmp_path / "f") == b"\x00\xff raw"


def test_write_replaces(tmp_path: Path) -> None:
    atomic_write(tmp_path / "f", "old")
    atomic_write(tmp_path / "f", "new")
    assert read_text(tmp_path / "f") == "new"


def test_lone_surrogates_round_trip(tmp_path: Path) -> None:
    atomic_write(tmp_path / "f", "bad\udcffbyte")
    assert read_text(tmp_path / "f") == "bad\udcffbyte"


def test_write_creates_parent_directories(tmp_path: Path) -> None:
    atomic_write(tmp_path / "a" / "b" / "c" / "f", "x")
    assert read_text(tmp_path / "a" / "b" / "c" / "f") == "x"


def test_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    atomic_write(tmp_path / "f", "x")
    atomic_write(tmp_path / "f", "y")
    assert os.listdir(tmp_path) == ["f"]


def test_failed_rename_keeps_old_content_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    atomic_write(tmp_path / "f", "old")

    def broken_replace(source: object, target: object, **dir_fds: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(StoreUnavailable, match="No space left") as caught:
        atomic_write(tmp_path / "f", "new")
    assert isinstance(caught.value.__cause__, OSError)
    assert read_text(tmp_path / "f") == "old"
    assert os.listdir(tmp_path) == ["f"]


def test_failed_fsync_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_fsync(descriptor: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(StoreUnavailable):
        atomic_write(tmp_path / "f", "new")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


def test_interrupted_write_cleans_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(descriptor: int, data: bytes) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(fileutil, "write_fully", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "f", "new")
    assert os.listdir(tmp_path) == []


def test_temporary_name_is_hidden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real_replace = os.replace

    def spy(source: str, target: str, **dir_fds: int) -> None:
        seen.append(Path(source).name)
        real_replace(source, target, **dir_fds)

    monkeypatch.setattr(os, "replace", spy)
    atomic_write(tmp_path / "objects", "x")
    (name,) = seen
    assert name.startswith(".objects.") and name.endswith(".tmp")


def test_parent_that_is_a_file_is_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreUnavailable):
        atomic_write(tmp_path / "file" / "f", "x")


def test_ensure_directory(tmp_path: Path) -> None:
    ensure_directory(tmp_path / "a" / "b")
    ensure_directory(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir()


def test_fsync_directory(tmp_path: Path) -> None:
    fsync_directory(tmp_path)
    with pytest.raises(StoreUnavailable):
        fsync_directory(tmp_path / "missing")


def test_read_missing_is_none(tmp_path: Path) -> None:
    assert read_text(tmp_path / "missing") is None
    assert read_text(tmp_path / "missing" / "deeper") is None
    assert read_bytes(tmp_path / "missing") is None


def test_read_undecodable_is_store_unavailable(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"\xff\xfe")
    with pytest.raises(StoreUnavailable, match="decode"):
        read_text(tmp_path / "f")


def test_read_a_directory_is_store_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable):
        read_text(tmp_path)


def test_remove_file(tmp_path: Path) -> None:
    atomic_write(tmp_path / "f", "x")
    remove_file(tmp_path / "f")
    remove_file(tmp_path / "f")
    remove_file(tmp_path / "missing" / "f")
    assert os.listdir(tmp_path) == []


def test_remove_directory(tmp_path: Path) -> None:
    for name in ("a", "b", ".hidden.tmp"):
        atomic_write(tmp_path / "d" / name, "x")
    remove_directory(tmp_path / "d")
    remove_directory(tmp_path / "d")
    assert os.listdir(tmp_path) == []


def test_remove_directory_with_subdirectory_fails(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    with pytest.raises(StoreUnavailable):
        remove_directory(tmp_path / "d")


def test_remove_empty_directory(tmp_path: Path) -> None:
    atomic_write(tmp_path / "full" / "f", "x")
    (tmp_path / "empty").mkdir()
    remove_empty_directory(tmp_path / "full")
    remove_empty_directory(tmp_path / "empty")
    remove_empty_directory(tmp_path / "missing")
    assert os.listdir(tmp_path) == ["full"]


def test_list_names(tmp_path: Path) -> None:
    for name in ("b", "a", ".lock"):
        (tmp_path / name).write_text("x")
    assert list_names(tmp_path) == ["a", "b"]
    assert list_names(tmp_path, hidden=True) == [".lock", "a", "b"]
    assert list_names(tmp_path / "missing") == []
    assert list_names(tmp_path / "a") == []


def test_new_files_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "d" / "f", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "d" / "f").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o750


# -- symlinks are refused, never followed (issue 11, item 7) ---------------------


@pytest.fixture
def planted(tmp_path: Path) -> tuple[Path, Path]:
    """A root with ``d`` a symlink to a directory ``outside`` (holding ``f``)."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "f").write_text("outside")
    os.symlink(outside, root / "d")
    return root, outside


OPERATIONS = {
    "atomic_write": lambda path: atomic_write(path, "x"),
    "read_bytes": read_bytes,
    "list_names": lambda path: list_names(path.parent),
    "remove_file": remove_file,
    "remove_directory": lambda path: remove_directory(path.parent),
    "ensure_directory": lambda path: ensure_directory(path.parent / "sub"),
    "fsync_directory": lambda path: fsync_directory(path.parent),
    "append_line": lambda path: append_line(path, b"x\n"),
    "write_new_file": lambda path: write_new_file(path.with_name("new"), b"x"),
    "open_file": lambda path: open_file(path, os.O_RDWR | os.O_CREAT),
    "move_file": lambda path: move_file(path.parent.parent / "g", path.parent / "g"),
    "overwrite_checked": lambda path: fileutil.overwrite_checked(path, b"x"),
    "rewrite_in_place": lambda path: fileutil.rewrite_in_place(path, b"x"),
    "reading_directory": lambda path: reading_directory(path.parent).close(),
}


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_a_symlinked_directory_on_the_way_is_refused_not_followed(
    planted: tuple[Path, Path],
    operation: Callable[[Path], object],
    caplog: pytest.LogCaptureFixture,
) -> None:
    root, outside = planted
    (root / "g").write_text("to move")
    with pytest.raises(SymlinkRefused, match="is a symlink") as caught:
        operation(root / "d" / "f")
    assert str(root / "d") in str(caught.value)
    assert sorted(os.listdir(outside)) == ["f"] and (outside / "f").read_text() == "outside"
    assert [r.levelname for r in caplog.records] == ["ERROR"]
    assert str(root / "d") in caplog.records[0].getMessage()


def test_a_symlink_as_the_file_itself_is_refused_by_reads_appends_and_opens(
    planted: tuple[Path, Path],
) -> None:
    root, outside = planted
    os.symlink(outside / "f", root / "file")
    os.symlink(outside / "missing", root / "dangling")
    for link in (root / "file", root / "dangling"):
        with pytest.raises(SymlinkRefused):
            read_bytes(link)
        with pytest.raises(SymlinkRefused):
            append_line(link, b"x\n")
        with pytest.raises(SymlinkRefused):
            open_file(link, os.O_RDWR | os.O_CREAT)
    assert sorted(os.listdir(outside)) == ["f"] and (outside / "f").read_text() == "outside"


def test_a_symlink_as_the_file_itself_is_replaced_or_removed_not_followed(
    planted: tuple[Path, Path],
) -> None:
    root, outside = planted
    os.symlink(outside / "f", root / "file")
    atomic_write(root / "file", "inside")
    assert not (root / "file").is_symlink() and read_text(root / "file") == "inside"
    os.symlink(outside / "f", root / "other")
    remove_file(root / "other")
    remove_empty_directory(root / "d")
    assert sorted(os.listdir(root)) == ["d", "file"]
    assert (outside / "f").read_text() == "outside"


def test_a_resolved_root_may_be_reached_through_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "configured")
    with pytest.raises(SymlinkRefused):
        atomic_write(tmp_path / "configured" / "f", "x")
    root = resolve_root(tmp_path / "configured")
    atomic_write(root / "a" / "f", "x")
    assert read_text(root / "a" / "f") == "x" and list_names(root) == ["a"]
    assert (tmp_path / "real" / "a" / "f").read_text() == "x"


def test_a_root_is_resolved_once_a_block_and_anew_in_the_next(tmp_path: Path) -> None:
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
    configured = tmp_path / "configured"
    os.symlink(tmp_path / "one", configured)
    with roots_resolved_once():
        assert resolve_root(configured) == tmp_path / "one"
        configured.unlink()
        os.symlink(tmp_path / "two", configured)  # the admin moves it meanwhile
        assert resolve_root(configured) == tmp_path / "one"
        assert resolve_root(tmp_path / "one") == tmp_path / "one"
    assert resolve_root(configured) == tmp_path / "two"  # outside any block
    with roots_resolved_once():
        assert resolve_root(configured) == tmp_path / "two"


def test_is_directory_and_is_symlink_do_not_follow(planted: tuple[Path, Path]) -> None:
    root, _ = planted
    (root / "real").mkdir()
    assert is_directory(root / "real") and not is_symlink(root / "real")
    assert not is_directory(root / "d") and is_symlink(root / "d")
    assert not is_directory(root / "missing") and not is_symlink(root / "missing")


# -- batched directory fsyncs ------------------------------------------------------


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What ``os.fsync`` syncs from now on (each call still syncs):
    ``dir NAME`` or ``file NAME`` (NAME relative to nothing: the last part)."""
    found: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        found.append(f"{'dir' if path.is_dir() else 'file'} {path.name}")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return found


def test_each_rename_syncs_its_directory_outside_a_batch(tmp_path: Path, synced: list[str]) -> None:
    (tmp_path / "d").mkdir()
    for name in "abc":
        atomic_write(tmp_path / "d" / name, name)
    assert [entry.split()[0] for entry in synced] == ["file", "dir"] * 3


def test_a_batch_syncs_each_directory_once_at_its_end(tmp_path: Path, synced: list[str]) -> None:
    for name in ("d", "e", "gone"):
        (tmp_path / name).mkdir()
    (tmp_path / "gone" / "x").write_text("x")
    with fileutil.deferred_directory_syncs():
        for name in "abc":
            atomic_write(tmp_path / "d" / name, name)
        move_file(tmp_path / "d" / "a", tmp_path / "e" / "a")
        remove_file(tmp_path / "d" / "b")
        with fileutil.deferred_directory_syncs():  # nested: the outer one syncs
            atomic_write(tmp_path / "e" / "f", "f")
        remove_directory(tmp_path / "gone")  # its parent is synced, it is skipped
        assert all(entry.startswith("file ") for entry in synced)
    assert synced.count("dir d") == synced.count("dir e") == 1
    assert synced.count(f"dir {tmp_path.name}") == 1 and "dir gone" not in synced
    assert len(synced) == 4 + 3
    assert read_text(tmp_path / "e" / "a") == "a" and read_text(tmp_path / "d" / "b") is None


def test_a_failed_batch_syncs_no_directory(tmp_path: Path, synced: list[str]) -> None:
    with pytest.raises(RuntimeError), fileutil.deferred_directory_syncs():
        atomic_write(tmp_path / "a", "a")
        raise RuntimeError("crash")
    assert [entry.split()[0] for entry in synced] == ["file"]  # the data, not the rename
    atomic_write(tmp_path / "b", "b")  # the batch is over
    assert [entry.split()[0] for entry in synced] == ["file", "file", "dir"]


def test_a_removal_need_not_be_durable(tmp_path: Path, synced: list[str]) -> None:
    (tmp_path / "a").write_text("a")
    remove_file(tmp_path / "a", durable=False)
    assert not (tmp_path / "a").exists() and synced == []


def test_a_barrier_makes_the_batch_so_far_durable(tmp_path: Path, synced: list[str]) -> None:
    (tmp_path / "d").mkdir()
    with fileutil.deferred_directory_syncs():
        atomic_write(tmp_path / "d" / "a", "a")
        fileutil.sync_deferred_directories()
        assert synced[-1] == "dir d"
        atomic_write(tmp_path / "d" / "b", "b")
        assert synced[-1].startswith("file ")
    assert synced[-1] == "dir d" and synced.count("dir d") == 2
    fileutil.sync_deferred_directories()  # outside a batch: nothing to do
    assert len(synced) == 4


# -- held directories ---------------------------------------------------------------


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_a_symlink_below_a_held_directory_is_refused_not_followed(
    planted: tuple[Path, Path], operation: Callable[[Path], object]
) -> None:
    root, outside = planted
    (root / "g").write_text("to move")
    with held_directory(root), pytest.raises(SymlinkRefused, match="is a symlink"):
        operation(root / "d" / "f")
    assert sorted(os.listdir(outside)) == ["f"] and (outside / "f").read_text() == "outside"


@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_a_directory_swapped_for_a_symlink_while_held_is_refused(
    tmp_path: Path, operation: Callable[[Path], object]
) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "d").mkdir(parents=True)
    outside.mkdir()
    (root / "g").write_text("to move")
    with held_directory(root):
        atomic_write(root / "d" / "f", "inside")  # d walked once, as a directory
        os.rename(root / "d", outside / "d")
        os.symlink(outside / "d", root / "d")
        with pytest.raises(SymlinkRefused):
            operation(root / "d" / "f")
    assert os.listdir(outside / "d") == ["f"] and (outside / "d" / "f").read_text() == "inside"


def test_a_held_directory_is_walked_once_and_what_is_below_per_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "user" / "sub").mkdir(parents=True)
    opened: list[str] = []
    real = os.open

    def counting(path: str, *args: object, **kwargs: object) -> int:
        opened.append(str(path))
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", counting)
    with held_directory(tmp_path / "user"):
        held = len(opened)
        assert read_text(tmp_path / "user" / "f") is None
        assert opened[held:] == ["f"]  # the file itself, no walk
        atomic_write(tmp_path / "user" / "sub" / "f", "x")
        assert opened[held + 1 : held + 2] == ["sub"]  # the subdirectory, per call
        assert read_text(tmp_path / "user" / "sub" / "f") == "x"
        assert opened[-2:] == ["sub", "f"]
        fsync_directory(tmp_path / "user")
        assert opened[-2:] == ["sub", "f"]  # the held descriptor itself
    atomic_write(tmp_path / "user" / "f", "x")
    assert "user" in opened[-3:]  # walked again after the block


def test_a_held_directory_is_closed_when_its_block_ends(tmp_path: Path) -> None:
    (tmp_path / "user").mkdir()
    before = open_descriptors()
    with held_directory(tmp_path / "user"):
        atomic_write(tmp_path / "user" / "sub" / "f", "x")
        assert str(tmp_path / "user") in open_descriptors() - before
    assert open_descriptors() == before
    with pytest.raises(RuntimeError), held_directory(tmp_path / "user"):
        raise RuntimeError("the block fails")
    assert open_descriptors() == before
    assert fileutil._HELD.get() == ()


def test_held_directories_nest_and_are_not_shared_with_other_threads(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    seen: list[tuple[object, ...]] = []
    with held_directory(tmp_path / "a"), held_directory(tmp_path / "b"):
        assert [hold.path for hold in fileutil._HELD.get()] == [
            str(tmp_path / "a"),
            str(tmp_path / "b"),
        ]
        atomic_write(tmp_path / "a" / "f", "a")
        atomic_write(tmp_path / "b" / "f", "b")
        thread = threading.Thread(target=lambda: seen.append(fileutil._HELD.get()))
        thread.start()
        thread.join()
    assert seen == [()] and fileutil._HELD.get() == ()
    assert (tmp_path / "a" / "f").read_text() == "a" and (tmp_path / "b" / "f").read_text() == "b"


def test_a_held_directory_must_exist_and_not_be_a_symlink(planted: tuple[Path, Path]) -> None:
    root, _ = planted
    with pytest.raises(StoreUnavailable, match="missing"), held_directory(root / "missing"):
        pass
    with pytest.raises(SymlinkRefused), held_directory(root / "d"):
        pass
    with pytest.raises(ValueError, match="absolute"), held_directory(Path("relative")):
        pass
    assert fileutil._HELD.get() == ()


def test_a_held_directory_renamed_away_is_still_the_one_written(tmp_path: Path) -> None:
    (tmp_path / "user").mkdir()
    (tmp_path / "outside").mkdir()
    with held_directory(tmp_path / "user"):
        os.rename(tmp_path / "user", tmp_path / "moved")
        os.symlink(tmp_path / "outside", tmp_path / "user")
        atomic_write(tmp_path / "user" / "f", "x")  # the held directory, not the link
    assert (tmp_path / "moved" / "f").read_text() == "x"
    assert os.listdir(tmp_path / "outside") == []
    with pytest.raises(SymlinkRefused):
        atomic_write(tmp_path / "user" / "f", "x")  # walked again: refused


def test_overwrite_checked_writes_in_place_without_fsync(tmp_path: Path, synced: list[str]) -> None:
    """Derived data with its own digest: no temporary file, no fsync; the
    directory is made if missing; a shorter text leaves no tail behind."""
    path = tmp_path / "user" / "derived" / "uid"
    (tmp_path / "user").mkdir()
    fileutil.overwrite_checked(path, b"a longer first text\n")
    fileutil.overwrite_checked(path, b"short\n")
    assert path.read_bytes() == b"short\n"
    assert os.listdir(path.parent) == ["uid"]
    assert synced == []


def test_overwrite_checked_refuses_a_symlink_as_the_file(planted: tuple[Path, Path]) -> None:
    root, outside = planted
    (root / "e").mkdir()
    os.symlink(outside / "f", root / "e" / "f")
    with pytest.raises(SymlinkRefused):
        fileutil.overwrite_checked(root / "e" / "f", b"x")
    assert (outside / "f").read_text() == "outside"


def test_rewrite_in_place_keeps_the_file_and_syncs_its_directory_once(
    tmp_path: Path, synced: list[str]
) -> None:
    """A sealed record (the store's ``.txn``): the call that creates the file
    syncs it and its directory; later ones the file only, in the same inode,
    and a shorter text leaves no tail; nothing else is left beside it."""
    path = tmp_path / "user" / ".txn"
    (tmp_path / "user").mkdir()
    fileutil.rewrite_in_place(path, b"a longer first record\n")
    assert synced == ["file .txn", "dir user"]
    inode = path.stat().st_ino
    fileutil.rewrite_in_place(path, b"short\n")
    fileutil.rewrite_in_place(path, b"")
    assert path.read_bytes() == b"" and path.stat().st_ino == inode
    assert synced[2:] == ["file .txn", "file .txn"]
    assert os.listdir(path.parent) == [".txn"]


def test_rewrite_in_place_needs_its_directory_and_refuses_a_symlink_as_the_file(
    planted: tuple[Path, Path],
) -> None:
    root, outside = planted
    with pytest.raises(StoreUnavailable, match="missing"):
        fileutil.rewrite_in_place(root / "nowhere" / ".txn", b"x")
    (root / "e").mkdir()
    os.symlink(outside / "f", root / "e" / "f")
    with pytest.raises(SymlinkRefused):
        fileutil.rewrite_in_place(root / "e" / "f", b"x")
    assert (outside / "f").read_text() == "outside"


# -- a directory opened once to read many files (imip-admin check) -------------------


def test_a_directory_reader_lists_and_reads_as_the_path_functions(tmp_path: Path) -> None:
    atomic_write(tmp_path / "d" / "f", "Ünïcödé\r\n")
    atomic_write(tmp_path / "d" / ".hidden", "x")
    atomic_write(tmp_path / "d" / "sub" / "g", b"\x00\xff")
    (tmp_path / "d" / "bad").write_bytes(b"\xff")
    with reading_directory(tmp_path / "d") as directory:
        assert directory.names() == list_names(tmp_path / "d") == ["bad", "f", "sub"]
        assert directory.names(hidden=True) == list_names(tmp_path / "d", hidden=True)
        assert directory.read_text("f") == read_text(tmp_path / "d" / "f") == "Ünïcödé\r\n"
        assert directory.read_text("missing") is None
        with pytest.raises(StoreUnavailable, match="not UTF-8"):
            directory.read_text("bad")
        with pytest.raises(StoreUnavailable, match="Is a directory"):
            directory.read_bytes("sub")
        with directory.directory("sub") as sub:
            assert sub.names() == ["g"] and sub.read_bytes("g") == b"\x00\xff"
        for empty in (directory.directory("missing"), directory.directory("f")):
            with empty:
                assert empty.names() == [] and empty.read_bytes("g") is None


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 300_001])
def test_a_directory_reader_reads_files_of_any_size(tmp_path: Path, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    atomic_write(tmp_path / "d" / "f", data)
    with reading_directory(tmp_path / "d") as directory:
        assert directory.read_bytes("f") == read_bytes(tmp_path / "d" / "f") == data


def test_a_missing_directory_reads_as_an_empty_one(tmp_path: Path) -> None:
    with reading_directory(tmp_path / "missing") as directory:
        assert directory.names() == [] and directory.read_text("f") is None
        with directory.directory("sub") as sub:
            assert sub.names() == []


def test_a_directory_reader_takes_single_components_only(tmp_path: Path) -> None:
    atomic_write(tmp_path / "d" / "sub" / "f", "x")
    with reading_directory(tmp_path / "d") as directory:
        for name in ("sub/f", "..", ".", "", "/etc"):
            with pytest.raises(ValueError, match="single path component"):
                directory.read_bytes(name)
            with pytest.raises(ValueError, match="single path component"):
                directory.directory(name)


def test_a_directory_reader_refuses_symlinks_in_it(planted: tuple[Path, Path]) -> None:
    root, outside = planted
    os.symlink(outside / "f", root / "file")
    os.symlink(outside / "missing", root / "dangling")
    with reading_directory(root) as directory:
        for name in ("file", "dangling", "d"):
            with pytest.raises(SymlinkRefused, match="is a symlink"):
                directory.read_bytes(name)
        with pytest.raises(SymlinkRefused, match="is a symlink"):
            directory.directory("d")
    with pytest.raises(SymlinkRefused):
        reading_directory(root / "d")


def test_a_directory_reader_closes_what_it_opened(tmp_path: Path) -> None:
    atomic_write(tmp_path / "user" / "sub" / "f", "x")
    before = open_descriptors()
    with reading_directory(tmp_path / "user") as directory, directory.directory("sub") as sub:
        assert sub.read_text("f") == "x"
        assert str(tmp_path / "user" / "sub") in open_descriptors() - before
    assert open_descriptors() == before
    with held_directory(tmp_path / "user"):
        held = open_descriptors()
        with reading_directory(tmp_path / "user") as directory:
            assert directory.read_text("f") is None
        assert open_descriptors() == held  # the held descriptor is not the reader's
        assert read_text(tmp_path / "user" / "sub" / "f") == "x"


def test_open_if_present_opens_a_file_there_and_refuses_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "file")
    descriptor = fileutil.open_if_present(tmp_path / "file", os.O_RDONLY)
    assert descriptor is not None
    try:
        assert os.read(descriptor, 1) == b"x"
        assert fileutil.same_file(descriptor, tmp_path / "file")
        os.rename(tmp_path / "file", tmp_path / "moved")
        assert not fileutil.same_file(descriptor, tmp_path / "file")
        (tmp_path / "file").write_bytes(b"another")
        assert not fileutil.same_file(descriptor, tmp_path / "file")
    finally:
        os.close(descriptor)
    assert fileutil.open_if_present(tmp_path / "missing", os.O_RDONLY) is None
    assert fileutil.open_if_present(tmp_path / "no" / "file", os.O_RDONLY) is None
    with pytest.raises(SymlinkRefused):
        fileutil.open_if_present(tmp_path / "link", os.O_RDONLY)


def test_a_directory_held_unless_missing(tmp_path: Path) -> None:
    """``held_directory(..., required=False)``: held when it is there (what
    lies in it is reached from it), the block run unheld when it is not;
    a symlink there is refused as ever."""
    (tmp_path / "there").mkdir()
    (tmp_path / "there" / "file").write_bytes(b"x")
    with fileutil.held_directory(tmp_path / "there", required=False):
        (held,) = fileutil._HELD.get()
        assert held.path == str(tmp_path / "there")
        assert fileutil.read_bytes(tmp_path / "there" / "file") == b"x"
    with fileutil.held_directory(tmp_path / "missing", required=False):
        assert fileutil._HELD.get() == ()
    assert not (tmp_path / "missing").exists()
    (tmp_path / "link").symlink_to(tmp_path / "there")
    with pytest.raises(SymlinkRefused), fileutil.held_directory(tmp_path / "link", required=False):
        pass
