"""The preference source contract: one test class run against every source.

A test module subclasses :class:`PreferenceContract` and provides a
``source`` fixture returning an empty
:class:`~imiptools.preferences.PreferenceSource`. Values are opaque text
here; what they mean is :mod:`imiptools.preferences`' business.
"""

from __future__ import annotations

import pytest

from imiptools.errors import UnsafeName
from imiptools.preferences import PreferenceSource, UnitPreferences

USER = "mailto:room@example.com"
OTHER = "mailto:car@example.com"

#: Names no source may accept (they could reach a path or a query unchecked).
UNSAFE_NAMES = ["", "../x", "a/b", ".hidden", "1abc", "has space", "x" * 65, "ünï", "a\x00"]


class PreferenceContract:
    """Tests of the :class:`PreferenceSource` interface; subclasses provide ``source``."""

    @pytest.fixture
    def source(self) -> PreferenceSource:
        raise NotImplementedError("subclasses provide an empty source")

    def test_unset_preference_is_none(self, source: PreferenceSource) -> None:
        assert source.get(USER, "TZID") is None
        assert source.names(USER) == []

    def test_set_and_get(self, source: PreferenceSource) -> None:
        source.set(USER, "TZID", "Europe/Oslo")
        assert source.get(USER, "TZID") == "Europe/Oslo"

    def test_set_replaces(self, source: PreferenceSource) -> None:
        source.set(USER, "CN", "Room 1")
        source.set(USER, "CN", "Room 2")
        assert source.get(USER, "CN") == "Room 2"

    def test_multi_line_value_is_kept(self, source: PreferenceSource) -> None:
        value = "schedule_in_freebusy 2\nsame_domain_only"
        source.set(USER, "scheduling_function", value)
        assert source.get(USER, "scheduling_function") == value

    def test_trailing_line_ends_are_dropped(self, source: PreferenceSource) -> None:
        source.set(USER, "LANG", "de\r\n\n")
        assert source.get(USER, "LANG") == "de"

    def test_unicode_value(self, source: PreferenceSource) -> None:
        source.set(USER, "CN", "Besprechungsraum Süd – 日本")
        assert source.get(USER, "CN") == "Besprechungsraum Süd – 日本"

    def test_user_spellings_are_one_user(self, source: PreferenceSource) -> None:
        source.set("MAILTO:Room@Example.com", "CN", "Room 1")
        assert source.get("<room@example.com>", "CN") == "Room 1"
        assert source.names(USER) == ["CN"]

    def test_unset_is_idempotent(self, source: PreferenceSource) -> None:
        source.set(USER, "CN", "Room 1")
        source.unset(USER, "CN")
        source.unset(USER, "CN")
        assert source.get(USER, "CN") is None
        assert source.names(USER) == []

    def test_names_are_sorted(self, source: PreferenceSource) -> None:
        source.set(USER, "freebusy_sharing", "share")
        source.set(USER, "TZID", "UTC")
        source.set(USER, "CN", "Room")
        assert source.names(USER) == ["CN", "TZID", "freebusy_sharing"]

    def test_values_are_every_value_at_once(self, source: PreferenceSource) -> None:
        assert source.values(USER) == {}
        source.set(USER, "TZID", "UTC")
        source.set(USER, "scheduling_function", "schedule_in_freebusy\ncheck_quota q\n")
        source.set(OTHER, "CN", "Other")
        assert source.values(USER) == {
            "TZID": "UTC",
            "scheduling_function": "schedule_in_freebusy\ncheck_quota q",
        }

    def test_a_units_view_reads_once_and_sees_its_writes(self, source: PreferenceSource) -> None:
        source.set(USER, "CN", "Room 1")
        unit = UnitPreferences(source, USER)
        assert unit.get(USER, "CN") == "Room 1"
        source.set(USER, "CN", "Room 2")  # by someone else, during the unit
        assert unit.get(USER, "CN") == "Room 1"
        assert unit.get(OTHER, "CN") is None
        unit.set(USER, "TZID", "UTC")
        assert (unit.get(USER, "CN"), unit.get(USER, "TZID")) == ("Room 2", "UTC")
        unit.unset(USER, "TZID")
        assert unit.get(USER, "TZID") is None
        with pytest.raises(UnsafeName):
            unit.get(USER, "../x")

    def test_users_are_separate(self, source: PreferenceSource) -> None:
        source.set(USER, "CN", "Room 1")
        assert source.get(OTHER, "CN") is None
        assert source.names(OTHER) == []

    def test_long_user_address(self, source: PreferenceSource) -> None:
        long_user = "mailto:" + "r" * 200 + "@example.com"
        source.set(long_user, "CN", "Long")
        assert source.get(long_user, "CN") == "Long"
        assert source.names(long_user) == ["CN"]

    @pytest.mark.parametrize("name", UNSAFE_NAMES)
    def test_unsafe_names_are_refused(self, source: PreferenceSource, name: str) -> None:
        with pytest.raises(UnsafeName):
            source.get(USER, name)
        with pytest.raises(UnsafeName):
            source.set(USER, name, "x")
        with pytest.raises(UnsafeName):
            source.unset(USER, name)
        assert source.names(USER) == []

    def test_unsafe_user_is_refused(self, source: PreferenceSource) -> None:
        with pytest.raises(UnsafeName):
            source.set("../../etc@x/y", "CN", "x")
