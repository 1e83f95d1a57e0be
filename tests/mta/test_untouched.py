"""The identity test's fingerprint notices every kind of change (see ``untouched.py``).

The fingerprint itself runs around every MTA test session; these check on a
scratch tree that it would catch a test writing where it must not.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.mta.untouched import WATCHED, differences, fingerprint


def tree(root: Path) -> tuple[Path, ...]:
    (root / "conf").mkdir()
    (root / "conf" / "main.cf").write_text("myhostname = mail.example.test\n")
    (root / "conf" / "sub").mkdir()
    (root / "conf" / "sub" / "map").write_text("a b\n")
    os.symlink("main.cf", root / "conf" / "link")
    (root / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    return (root / "conf", root / "passwd", root / "absent")


def test_an_untouched_tree_has_no_differences(tmp_path: Path) -> None:
    paths = tree(tmp_path)
    assert differences(fingerprint(paths), fingerprint(paths)) == []


def test_every_kind_of_change_is_named(tmp_path: Path) -> None:
    paths = tree(tmp_path)
    before = fingerprint(paths)
    (tmp_path / "conf" / "main.cf").write_text("myhostname = other\n")  # content
    (tmp_path / "conf" / "sub" / "map").chmod(0o600)  # mode
    (tmp_path / "conf" / "link").unlink()
    os.symlink("sub/map", tmp_path / "conf" / "link")  # link target
    (tmp_path / "conf" / "new.cf").write_text("")  # a new file
    (tmp_path / "passwd").unlink()  # a removed file
    (tmp_path / "absent").mkdir()  # a path that did not exist
    changed = [line.split(":")[0] for line in differences(before, fingerprint(paths))]
    assert changed == sorted(
        str(tmp_path / name)
        for name in ("absent", "conf/link", "conf/main.cf", "conf/new.cf", "conf/sub/map", "passwd")
    )


def test_the_mail_systems_and_the_accounts_are_watched() -> None:
    """What issue 14 names, in /etc: the three servers' configuration and passwd."""
    names = {str(path.relative_to("/etc")) for path in WATCHED}
    assert {"postfix", "exim4", "dovecot", "passwd", "group", "shadow"} <= names
