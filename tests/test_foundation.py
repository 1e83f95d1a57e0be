"""Unit tests of the foundation: exit-code table, dates, config, periods."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest

from imiptools import errors
from imiptools.config import Settings, example_config, load_settings, parse_duration
from imiptools.dates import (
    add_duration,
    format_recurrence_id,
    format_utc,
    parse_datetime,
    parse_utc,
    resolve_zone,
    to_utc,
)
from imiptools.errors import EXIT_CODES, ExitCode
from imiptools.periods import Period, line_uid, max_overlap

BERLIN = ZoneInfo("Europe/Berlin")


def test_exit_code_table() -> None:
    assert {int(c) for c in ExitCode} == {0, 64, 65, 67, 75}
    for cls, code in EXIT_CODES.items():
        assert cls.exit_code is code
        assert cls.status[0] == ("4" if code is ExitCode.TEMPFAIL else "5")
    assert EXIT_CODES[errors.LockTimeout] is ExitCode.TEMPFAIL
    assert EXIT_CODES[errors.CalendarDataError] is ExitCode.DATAERR


def test_status_line_is_one_line() -> None:
    line = errors.CalendarDataError("bad\r\nBcc: x\n\tdata").status_line()
    assert line == "5.6.0 bad Bcc: x data"


@pytest.mark.parametrize(
    "text",
    ["2030-01-08T10:00:00Z", "20300108T100000Z", "2030-01-08T11:00:00+01:00"],
)
def test_parse_datetime_forms(text: str) -> None:
    assert parse_datetime(text) == datetime(2030, 1, 8, 10, tzinfo=UTC)


def test_parse_datetime_local_and_dates() -> None:
    assert parse_datetime("20300108", BERLIN) == datetime(2030, 1, 8, tzinfo=BERLIN)
    with pytest.raises(ValueError):
        parse_datetime("next tuesday")


def test_zones_iana_and_windows() -> None:
    assert resolve_zone("Europe/Berlin") is not None
    assert resolve_zone("W. Europe Standard Time") is not None
    assert resolve_zone("Nowhere/Special") is None


def test_to_utc_floating_and_dates_in_user_zone() -> None:
    assert to_utc(datetime(2030, 7, 1, 12), BERLIN) == datetime(2030, 7, 1, 10, tzinfo=UTC)
    assert to_utc(date(2030, 1, 8), BERLIN) == datetime(2030, 1, 7, 23, tzinfo=UTC)


def test_recurrence_ids_normalised() -> None:
    assert format_recurrence_id(datetime(2030, 1, 8, 11, tzinfo=BERLIN)) == "20300108T100000Z"
    assert format_recurrence_id(date(2030, 1, 8)) == "20300108"
    assert format_utc(datetime(999, 1, 1, tzinfo=UTC)) == "09990101T000000Z"


@pytest.mark.parametrize(
    "text",
    ["20300108T100000Z", "09990101T000000Z", "99991231T235959Z", "19000101T000000Z"],
)
def test_parse_utc_reads_what_format_utc_writes(text: str) -> None:
    value = parse_utc(text)
    assert value.tzinfo is UTC and format_utc(value) == text


@pytest.mark.parametrize(
    "text",
    [
        # forms datetime.fromisoformat would accept: not the store's format
        "2030-01-08T10:00:00Z",
        "20300108T100000",
        "20300108T1000Z",
        "20300108T100000+01:00",
        "20300108T1000.5Z",
        "20300108T10:0:0Z",
        # the right shape, not a time
        "20300108T240000Z",
        "20301308T100000Z",
        "\u0662\u0660\u0663\u06600108T100000Z",
        "",
    ],
)
def test_parse_utc_refuses_other_text(text: str) -> None:
    with pytest.raises(ValueError):
        parse_utc(text)


def test_add_duration_days_in_wall_time() -> None:
    before_dst = datetime(2030, 3, 30, 10, tzinfo=BERLIN)
    assert add_duration(before_dst, timedelta(days=1)).astimezone(BERLIN).hour == 10


def test_config_file_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[agent]\nlock_timeout = 5\nwindow = "P30D"\n[preferences]\nTZID = "UTC"\n')
    settings = load_settings(str(good))
    assert settings.lock_timeout == 5 and settings.window == timedelta(days=30)
    assert settings.preference_defaults == {"TZID": "UTC"}
    for bad in ("[agent]\nnope = 1\n", "[agent]\nlock_timeout = -1\n", "[other]\n", "= ="):
        path = tmp_path / "bad.toml"
        path.write_text(bad)
        with pytest.raises(errors.ConfigError):
            load_settings(str(path))
    with pytest.raises(errors.ConfigError):
        load_settings(str(tmp_path / "missing.toml"))


def test_example_config_is_loadable(tmp_path: Path) -> None:
    path = tmp_path / "example.toml"
    path.write_text(example_config())
    assert load_settings(str(path)) == Settings()


def test_durations() -> None:
    assert parse_duration("PT10M") == timedelta(minutes=10)
    with pytest.raises(ValueError):
        parse_duration("ten minutes")


def test_period_lines_round_trip_hostile_fields() -> None:
    start = datetime(2030, 1, 8, 10, tzinfo=UTC)
    period = Period(start, start + timedelta(hours=1), "a\tb\nc%-", "", "OPAQUE", "-", "x", "BUSY")
    line = period.to_line()
    assert "\n" not in line and line.count("\t") == 7
    assert Period.from_line(line) == period


@pytest.mark.parametrize(
    "field",
    ["plain@example.com", "50% off", "back\\slash", "caf\u00e9", "a\x7fb", "\udc80", "é\t", " ~"],
)
def test_period_fields_escape_as_percent_encoding_does(field: str) -> None:
    """The fast path (printable ASCII without '%' or backslash is kept as
    it is) gives what percent-encoding gives; every field reads back."""
    start = datetime(2030, 1, 8, 10, tzinfo=UTC)
    period = Period(start, start + timedelta(hours=1), field, "", "OPAQUE", field, field, "BUSY")
    safe = " !\"#$&'()*+,-./:;<=>?@[]^_`{|}~"
    quoted = quote(field, safe=safe, errors="surrogatepass")
    assert period.to_line().split("\t")[2] == quoted
    assert Period.from_line(period.to_line()) == period


@pytest.mark.parametrize("uid", ["plain@example.com", "a\tb\nc%-", "-", "", "caf\u00e9", "\udc80"])
def test_a_lines_uid_is_its_periods(uid: str) -> None:
    """line_uid reads the uid field alone: what from_line gives, for a line
    that parses; None for a line from_line refuses for its field count."""
    start = datetime(2030, 1, 8, 10, tzinfo=UTC)
    line = Period(start, start + timedelta(hours=1), uid, "r", "OPAQUE", "s", "o", "BUSY").to_line()
    assert line_uid(line) == line_uid(line + "\n") == Period.from_line(line).uid == uid
    fields = line.split("\t")
    unreadable = "\t".join(["20301301T000000Z", *fields[1:]])
    assert line_uid(unreadable) == uid
    with pytest.raises(ValueError):
        Period.from_line(unreadable)
    for short in ("", "not a line", "\t".join(fields[:7]), line + "\textra"):
        assert line_uid(short) is None
        with pytest.raises(ValueError):
            Period.from_line(short)


def test_max_overlap() -> None:
    t = datetime(2030, 1, 1, tzinfo=UTC)
    h = timedelta(hours=1)
    periods = [Period(t, t + 2 * h), Period(t + h, t + 3 * h), Period(t + 2 * h, t + 4 * h)]
    assert max_overlap(periods, t, t + 4 * h) == 2
    assert max_overlap(periods, t + 3 * h, t + 4 * h) == 1
    assert max_overlap(periods, t + 5 * h, t + 6 * h) == 0
