"""Preference files: the contract, plus what only files can get wrong
(the layout an admin edits, line ends an editor adds, hashed directories)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imiptools.errors import StoreUnavailable, SymlinkRefused, UnsafeName
from imiptools.preferences import PreferenceSource, UnitPreferences
from imiptools.preferences_store import PreferenceFiles
from tests.preferences.contract import PreferenceContract

USER = "mailto:room@example.com"


class TestPreferenceFiles(PreferenceContract):
    @pytest.fixture
    def source(self, tmp_path: Path) -> PreferenceSource:
        return PreferenceFiles(tmp_path / "preferences")


@pytest.fixture
def prefs(tmp_path: Path) -> PreferenceFiles:
    return PreferenceFiles(tmp_path / "preferences")


def test_unset_preference_is_none(prefs: PreferenceFiles) -> None:
    assert prefs.get(USER, "TZID") is None
    assert prefs.names(USER) == []


def test_set_and_get(prefs: PreferenceFiles) -> None:
    prefs.set(USER, "TZID", "Europe/Oslo")
    assert prefs.get(USER, "TZID") == "Europe/Oslo"
    assert (prefs.root / USER / "TZID").read_text() == "Europe/Oslo\n"


def test_multi_line_value(prefs: PreferenceFiles) -> None:
    value = "schedule_in_freebusy 2\nsame_domain_only"
    prefs.set(USER, "scheduling_function", value)
    assert prefs.get(USER, "scheduling_function") == value


def test_admin_written_file_loses_its_line_ends(prefs: PreferenceFiles) -> None:
    (prefs.root / USER).mkdir(parents=True)
    (prefs.root / USER / "LANG").write_bytes(b"de\r\n\n")
    assert prefs.get(USER, "LANG") == "de"


def test_user_spellings_share_files(prefs: PreferenceFiles) -> None:
    prefs.set("MAILTO:Room@Example.com", "CN", "Room 1")
    assert prefs.get("<room@example.com>", "CN") == "Room 1"
    assert os.listdir(prefs.root) == [USER]


def test_unset(prefs: PreferenceFiles) -> None:
    prefs.set(USER, "CN", "Room 1")
    prefs.unset(USER, "CN")
    prefs.unset(USER, "CN")
    assert prefs.get(USER, "CN") is None


def test_names(prefs: PreferenceFiles) -> None:
    prefs.set(USER, "TZID", "UTC")
    prefs.set(USER, "freebusy_sharing", "share")
    (prefs.root / USER / ".TZID.123.tmp").write_text("partial")
    (prefs.root / USER / "not a name").write_text("admin's note")
    assert prefs.names(USER) == ["TZID", "freebusy_sharing"]
    assert prefs.names("mailto:other@example.com") == []


def test_users_are_separate(prefs: PreferenceFiles) -> None:
    prefs.set(USER, "CN", "Room 1")
    assert prefs.get("mailto:car@example.com", "CN") is None


@pytest.mark.parametrize(
    "name", ["", "../x", "a/b", ".hidden", "1abc", "has space", "x" * 65, "ünï", "a\x00"]
)
def test_unsafe_names_are_refused(prefs: PreferenceFiles, name: str) -> None:
    with pytest.raises(UnsafeName):
        prefs.get(USER, name)
    with pytest.raises(UnsafeName):
        prefs.set(USER, name, "x")
    with pytest.raises(UnsafeName):
        prefs.unset(USER, name)
    assert not prefs.root.exists()


def test_unsafe_user_is_refused(prefs: PreferenceFiles) -> None:
    with pytest.raises(UnsafeName):
        prefs.set("../../etc@x/y", "CN", "x")


def test_hashed_user_directory(prefs: PreferenceFiles) -> None:
    long_user = "mailto:" + "r" * 200 + "@example.com"
    prefs.set(long_user, "CN", "Long")
    assert prefs.get(long_user, "CN") == "Long"
    (name,) = os.listdir(prefs.root)
    assert name.startswith("_h_")


@pytest.mark.parametrize("spoil", ["symlink", "not utf-8"])
def test_a_units_view_fails_only_for_the_unreadable_value(
    prefs: PreferenceFiles, tmp_path: Path, spoil: str
) -> None:
    """One unreadable file under a preference name fails the messages that
    need that value (75, deferred), not every message of the user, as
    before the unit read all values at once."""
    prefs.set(USER, "CN", "Room 1")
    broken = prefs.root / USER / "LANG"
    if spoil == "symlink":
        (tmp_path / "elsewhere").write_text("de\n")
        broken.symlink_to(tmp_path / "elsewhere")
    else:
        broken.write_bytes(b"\xff\xfe\n")
    with pytest.raises(StoreUnavailable):
        prefs.values(USER)
    unit = UnitPreferences(prefs, USER)
    assert unit.get(USER, "CN") == "Room 1"
    assert unit.get(USER, "TZID") is None
    with pytest.raises(SymlinkRefused if spoil == "symlink" else StoreUnavailable):
        unit.get(USER, "LANG")
    broken.unlink()
    unit.set(USER, "LANG", "de")  # a write: the one reading again
    assert (unit.get(USER, "LANG"), unit.get(USER, "CN")) == ("de", "Room 1")
