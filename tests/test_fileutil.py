"""Atomic writes, removals and reads (imiptools.fileutil)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imiptools import fileutil
from imiptools.errors import StoreUnavailable
from imiptools.fileutil import (
    atomic_write,
    ensure_directory,
    fsync_directory,
    list_names,
    read_bytes,
    read_text,
    remove_directory,
    remove_empty_directory,
    remove_file,
)


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
