"""Senders' VTIMEZONEs: what is accepted, what is refused, and the fallback."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from icalendar import Calendar

from imiptools.dates import resolve_zone
from imiptools.errors import CalendarDataError
from imiptools.itip import zones
from imiptools.itip.objects import parse_calendars
from tests.scenarios.test_interop_resource import FILES, calendars_of


def calendar(tzid: str, daylight_rule: str, standard: bool = True) -> str:
    """A VEVENT at 2030-07-08 10:00 in a VTIMEZONE whose DAYLIGHT rule is given."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//tests//EN", "BEGIN:VTIMEZONE"]
    lines.append(f"TZID:{tzid}")
    if standard:
        lines += ["BEGIN:STANDARD", "DTSTART:19701025T030000", "TZOFFSETFROM:+0200"]
        lines += ["TZOFFSETTO:+0100", "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU", "END:STANDARD"]
    lines += ["BEGIN:DAYLIGHT", "DTSTART:19700329T020000", "TZOFFSETFROM:+0100"]
    lines += ["TZOFFSETTO:+0200", f"RRULE:{daylight_rule}", "END:DAYLIGHT"]
    if not standard:
        lines += ["BEGIN:DAYLIGHT", "DTSTART:19800329T020000", "TZOFFSETFROM:+0100"]
        lines += ["TZOFFSETTO:+0200", "END:DAYLIGHT"]
    lines += ["END:VTIMEZONE", "BEGIN:VEVENT", "UID:z@example.com", "DTSTAMP:20300101T000000Z"]
    lines += [f"DTSTART;TZID={tzid}:20300708T100000", "END:VEVENT", "END:VCALENDAR"]
    zones.install()  # forget zones seen by earlier tests: a fresh process
    return "\r\n".join(lines) + "\r\n"


def offset_of(text: str) -> timedelta | None:
    event = parse_calendars(text)[0].walk("VEVENT")[0]
    return event.decoded("DTSTART").utcoffset()


def test_a_real_zone_is_used() -> None:
    text = calendar("Office", "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU")
    assert offset_of(text) == timedelta(hours=2)


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ("FREQ=SECONDLY", "FREQ=SECONDLY"),
        ("FREQ=MINUTELY;BYSECOND=0,30", "FREQ=MINUTELY"),
        ("FREQ=YEARLY;BYYEARDAY=1,50,100,150,200", "more than 2 times a year"),
        ("FREQ=YEARLY;BYHOUR=1,2;BYMONTH=3;BYDAY=-1SU", "several BYHOUR values"),
        ("FREQ=YEARLY;BYHOUR=25;BYMONTH=3;BYDAY=-1SU", "BYHOUR=25 out of range"),
        ("FREQ=YEARLY;INTERVAL=-1;BYMONTH=3;BYDAY=-1SU", "INTERVAL=-1 out of range"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "never matches"),
        ("FREQ=YEARLY;BYMONTH=1;BYMONTHDAY=1;BYSETPOS=2", "never matches"),
    ],
)
def test_an_observance_changing_too_often_or_never_makes_an_unknown_tzid_unusable(
    rule: str, says: str
) -> None:
    with pytest.raises(CalendarDataError, match="unusable VTIMEZONE 'Office'") as caught:
        parse_calendars(calendar("Office", rule))
    assert says in str(caught.value)


def test_a_known_tzid_with_an_unusable_vtimezone_uses_the_zone_of_that_name() -> None:
    text = calendar("W. Europe Standard Time", "FREQ=SECONDLY")
    assert offset_of(text) == timedelta(hours=2)  # Europe/Berlin in July


def test_several_daylight_observances_without_standard_are_refused() -> None:
    # dateutil raises TypeError for times before such a zone's first onset
    text = calendar("Office", "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", standard=False)
    with pytest.raises(CalendarDataError, match="no STANDARD"):
        parse_calendars(text)


def test_zone_names_no_file_can_have_are_unknown_not_an_os_error() -> None:
    assert resolve_zone("x" * 300) is None
    assert resolve_zone("Europe/" + "x" * 300) is None
    assert zones.GuardedZones().timezone("x" * 300) is None


@pytest.mark.skipif(not FILES, reason="shared/interop is not present")
def test_every_vtimezone_of_the_corpus_is_accepted_or_named_by_a_known_zone() -> None:
    for path in FILES:
        for _, text in calendars_of(path):
            try:
                calendars = Calendar.from_ical(text, multiple=True)
            except ValueError:
                continue
            for vtimezone in (z for c in calendars for z in c.walk("VTIMEZONE")):
                tzid = str(vtimezone.get("TZID", ""))
                problem = zones.vtimezone_problem(vtimezone)
                assert problem is None or not tzid or zones.named_zone(tzid), (path, problem)


def test_a_zone_is_checked_once_per_text_and_few_verdicts_are_kept() -> None:
    """Checking samples 28 years of each rule, so a verdict is remembered
    by the VTIMEZONE's text (not timed here: see benchmarks/)."""
    text = calendar("Office", "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU")
    vtimezone = Calendar.from_ical(text).walk("VTIMEZONE")[0]
    key = vtimezone.to_ical()
    zones._VERDICTS.pop(key, None)
    assert zones.vtimezone_problem(vtimezone) is None
    assert key in zones._VERDICTS
    for offset in range(zones.MAX_VERDICTS + 1):
        other = calendar(f"Office {offset}", "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU")
        zones.vtimezone_problem(Calendar.from_ical(other).walk("VTIMEZONE")[0])
    assert len(zones._VERDICTS) == zones.MAX_VERDICTS
    assert key not in zones._VERDICTS  # the oldest went first


def test_the_sample_of_a_rule_ends_where_dateutil_stops() -> None:
    """A rule that never matches is searched to dateutil's last year and no
    further, and one that matches too often is cut after the limit: the work
    of one check is bounded whatever the rule."""
    assert zones._SAMPLE_FIRST_YEAR + zones._SAMPLE_YEARS - 1 == 9999
    never = calendar("Never", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30")
    vtimezone = Calendar.from_ical(never).walk("VTIMEZONE")[0]
    assert "never matches" in str(zones.vtimezone_problem(vtimezone))


def test_verdicts_are_remembered_by_the_zones_text_not_its_name() -> None:
    good = calendar("Office", "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU")
    bad = calendar("Office", "FREQ=SECONDLY")
    for _ in range(2):
        for text, verdict in ((good, None), (bad, "FREQ=SECONDLY")):
            vtimezone = Calendar.from_ical(text).walk("VTIMEZONE")[0]
            problem = zones.vtimezone_problem(vtimezone)
            assert problem == verdict or (verdict and verdict in str(problem))


def test_a_vtimezone_for_a_known_name_is_not_checked_against_the_rules() -> None:
    text = calendar("Europe/Berlin", "FREQ=SECONDLY")
    assert offset_of(text) == timedelta(hours=2)  # the named zone, no refusal


@pytest.mark.parametrize(
    ("tzid", "known"),
    [
        ("Europe/Berlin", True),
        ("UTC", True),
        ("Office", False),
        ("Europe", False),  # a directory of the database
        ("zone.tab", False),  # a file of it that is no zone
        ("../../etc/passwd", False),
        ("/etc/localtime", False),
        ("Europe/../Europe/Berlin", False),
        ("x" * 300, False),
        ("Europe/Berlin\x00", False),
        ("Europe/\udcff", False),
    ],
)
def test_a_known_zone_name_is_one_the_database_can_load(tzid: str, known: bool) -> None:
    assert zones.GuardedZones().knows_timezone_id(tzid) is known


def test_reading_a_vtimezone_never_lists_the_whole_zone_database() -> None:
    """icalendar's provider opens each of the database's files to list its
    names the first time a VTIMEZONE is read (about 20 ms a process); ours
    looks the one name up. Checked in a fresh process: icalendar's list
    stays unmade, and the zones are still told apart."""
    script = (
        "import sys\n"
        "from imiptools.itip.objects import parse_calendars\n"
        "from icalendar.timezone.zoneinfo import ZONEINFO\n"
        "for text in sys.argv[1:]:\n"
        "    start = parse_calendars(text)[0].walk('VEVENT')[0].decoded('DTSTART')\n"
        "    print(type(start.tzinfo).__name__, start.utcoffset())\n"
        "print(ZONEINFO._available_timezones_cache is None)\n"
    )
    texts = [
        calendar("Europe/Berlin", "FREQ=SECONDLY"),
        calendar("Office", "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU"),
    ]
    run = subprocess.run(
        [sys.executable, "-c", script, *texts], capture_output=True, text=True, check=True
    )
    named, built, listed = run.stdout.splitlines()
    assert named == "ZoneInfo 2:00:00"  # the system's zone of that name
    assert built.endswith(" 2:00:00") and not built.startswith("ZoneInfo")  # from the VTIMEZONE
    assert listed == "True"
