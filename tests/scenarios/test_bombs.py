"""Regression tests: hostile calendar data gets a clear, bounded answer.

Each message is a fixture under ``tests/fixtures/bombs/`` (issue 11, items 4
and 6). A resource bounces unusable data with exit 65 and a one-line reason;
a person's mail is delivered unchanged (exit 0); nothing ends in 75 (which
would make the MTA retry for days) or a traceback, and nothing runs without
bound.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.measure import measured_run
from tests.support import BIN, ROOM, Agent, Run

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bombs"
PERSON = "bob@example.com"
NOW = "2030-01-01T12:00:00Z"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def bounced(run: Run, reason: str) -> None:
    """Exit 65 with ``reason`` in the one status line, and nothing sent."""
    assert run.code == 65, run.stdout
    assert reason in run.stdout and run.stdout.startswith("5.")
    assert run.stdout.count("\n") == 1 and "Traceback" not in run.stdout + run.stderr
    assert run.sent == []


def delivered_unchanged(run: Run) -> None:
    """A person's mail reaches the mailbox as it came (and nothing else is sent)."""
    assert run.code == 0, run.stdout
    assert run.files == [run.given]


def both(agent: Agent, name: str, reason: str) -> None:
    bounced(agent.resource(fixture(name), now=NOW), reason)
    delivered_unchanged(agent.person(fixture(name), PERSON, now=NOW))


def measured_resource(agent: Agent, name: str, *args: str) -> tuple[int, str, float, float]:
    argv = [str(BIN / "imip-resource"), *agent.store_options, "--now", NOW, "-o", ROOM]
    argv += ["-s", "alice@example.com", "--output", str(agent.root / "out"), *args]
    done = measured_run(argv, fixture(name), timeout=60)
    return done.code, done.stdout, done.seconds, done.peak_rss_mb


# -- time zones (item 4, item 6) ------------------------------------------------


@pytest.mark.parametrize("name", ["vtimezone_secondly.eml", "vtimezone_minutely_bysecond.eml"])
def test_vtimezone_observance_recurring_more_than_yearly_is_refused_before_expansion(
    agent: Agent, name: str
) -> None:
    code, stdout, seconds, peak = measured_resource(agent, name)
    assert code == 65 and "unusable VTIMEZONE 'Office'" in stdout and "FREQ=" in stdout
    assert seconds < 5 and peak < 200
    delivered_unchanged(agent.person(fixture(name), PERSON, now=NOW))


def test_vtimezone_bomb_is_bounded_in_whatif(agent: Agent) -> None:
    argv = [str(BIN / "imip-admin"), *agent.store_options, "--now", NOW, "whatif", ROOM]
    done = measured_run(argv, fixture("vtimezone_secondly.eml"), timeout=60)
    assert done.code == 65 and "unusable VTIMEZONE" in done.stdout
    assert done.seconds < 5 and done.peak_rss_mb < 200


def test_vtimezone_rule_with_byhour_25_bounces_with_the_reason(agent: Agent) -> None:
    both(agent, "vtimezone_byhour_25.eml", "BYHOUR=25 out of range")


def test_vtimezone_rule_with_negative_interval_bounces_with_the_reason(agent: Agent) -> None:
    both(agent, "vtimezone_interval_negative.eml", "INTERVAL=-1 out of range")


def test_tzid_longer_than_a_file_name_is_an_unknown_zone_not_an_internal_error(
    agent: Agent,
) -> None:
    run = agent.resource(fixture("tzid_over_255.eml"), now=NOW)
    assert run.code == 0 and len(run.replies()) == 1  # floating: read in the room's zone
    delivered = agent.person(fixture("tzid_over_255.eml"), PERSON, now=NOW)
    assert delivered.code == 0 and delivered.given in delivered.files


# -- values the handlers rely on (item 6) -------------------------------------------


def test_recurrence_id_that_is_not_a_date_is_unusable_data(agent: Agent) -> None:
    both(agent, "recurrence_id_not_a_date.eml", "unreadable RECURRENCE-ID")


def test_sequence_beyond_32_bits_is_unusable_data(agent: Agent) -> None:
    both(agent, "sequence_beyond_any_integer.eml", "SEQUENCE out of range")


def test_bare_cr_in_attendee_is_unusable_data(agent: Agent) -> None:
    both(agent, "attendee_bare_cr.eml", "unreadable ATTENDEE")


def test_value_icalendar_reads_but_cannot_write_is_unusable_data(agent: Agent) -> None:
    # found by tests/fuzz: a DTSTAMP read as a PERIOD ending before it starts
    both(agent, "dtstamp_period_ending_before_it_starts.eml", "cannot be written back")


# -- limits on work per message (item 4) ---------------------------------------------


def test_more_scheduling_objects_than_max_objects_are_refused_as_a_whole(agent: Agent) -> None:
    code, stdout, seconds, _ = measured_resource(agent, "one_hundred_and_one_uids.eml")
    assert code == 65 and "more than 100 scheduling objects" in stdout
    assert not list((agent.root / "out").glob("*")), "no reply at all"
    assert seconds < 5
    delivered_unchanged(agent.person(fixture("one_hundred_and_one_uids.eml"), PERSON, now=NOW))


def test_more_properties_than_max_properties_are_refused(agent: Agent) -> None:
    both(agent, "two_thousand_unknown_properties.eml", "more than 2000 properties")


def test_components_nested_deeper_than_real_data_are_refused(agent: Agent) -> None:
    both(agent, "components_nested_ten_deep.eml", "nested more than 8 deep")


@pytest.mark.parametrize("program", ["imip-resource", "imip-person"])
def test_cpu_time_per_message_is_bounded_over_many_recurring_objects(
    agent: Agent, program: str
) -> None:
    recipient = ROOM if program == "imip-resource" else PERSON
    argv = [str(BIN / program), *agent.store_options, "--now", NOW, "-o", recipient]
    argv += ["-s", "alice@example.com", "--output", str(agent.root / "out")]
    argv += ["--log", str(agent.root / "log")]
    done = measured_run(argv, fixture("sixty_secondly_series.eml"), timeout=120)
    assert done.code == 0, done.stdout
    assert done.cpu_seconds < 5 and done.peak_rss_mb < 200


@pytest.mark.parametrize("program", ["imip-resource", "imip-person"])
def test_instance_only_request_reads_each_stored_instance_once(agent: Agent, program: str) -> None:
    # 300 instances of one UID: each looked up the whole stored object (N² parses)
    recipient = ROOM if program == "imip-resource" else PERSON
    argv = [str(BIN / program), *agent.store_options, "--now", NOW, "-o", recipient]
    argv += ["-s", "alice@example.com", "--output", str(agent.root / "out")]
    done = measured_run(argv, fixture("three_hundred_instances.eml"), timeout=300)
    assert done.code == 0, done.stdout
    assert done.cpu_seconds < 5, done.cpu_seconds
    store = agent.site().store
    assert len(list(store.recurrence_ids(f"mailto:{recipient}", "instances@example.com"))) == 300


def test_reply_answering_many_instances_expands_the_event_once(agent: Agent) -> None:
    request = agent.outgoing(fixture("organiser_request_300_instances.eml"), "alice@example.com")
    assert request.code == 0, request.stdout
    argv = [str(BIN / "imip-person"), *agent.store_options, "--now", NOW, "-o"]
    argv += ["alice@example.com", "-s", "bob@example.com", "--output", str(agent.root / "out")]
    done = measured_run(argv, fixture("reply_with_300_instances.eml"), timeout=300)
    assert done.code == 0, done.stdout
    assert done.cpu_seconds < 5, done.cpu_seconds


def test_organiser_starting_with_a_dash_gets_a_clear_answer(agent: Agent) -> None:
    run = agent.resource(fixture("organiser_starting_with_a_dash.eml"), now=NOW)
    assert run.code in (0, 65), run.stdout
    assert not list((agent.root / "store" / ".outbox" / "new").glob("*"))


def test_objects_left_when_max_seconds_is_spent_are_not_processed(
    agent: Agent, tmp_path: Path
) -> None:
    config = tmp_path / "quick.toml"
    config.write_text("[agent]\nmax_seconds = 0.2\n")
    message = fixture("sixty_secondly_series.eml")
    run = agent.person(message, PERSON, args=("-c", str(config), "--log", str(tmp_path / "log")))
    assert run.code == 0 and run.given in run.files
    log = (tmp_path / "log").read_text()
    assert "scheduling object(s) not processed: the message used its 0.2 s of CPU" in log
    assert len(agent.exported(PERSON, check_vobject=False).walk("VEVENT")) < 60


def test_limits_are_settings(agent: Agent, tmp_path: Path) -> None:
    config = tmp_path / "limits.toml"
    config.write_text("[agent]\nmax_calendar_size = 5000\nmax_objects = 1000\n")
    run = agent.resource(fixture("one_hundred_and_one_uids.eml"), args=("-c", str(config)))
    bounced(run, "exceeds the limit of 5000 bytes")


def test_person_message_over_max_message_size_is_delivered_unchanged(
    agent: Agent, tmp_path: Path
) -> None:
    config = tmp_path / "small.toml"
    config.write_text("[agent]\nmax_message_size = 300\n")
    message = fixture("recurrence_id_not_a_date.eml")
    delivered_unchanged(agent.person(message, PERSON, args=("-c", str(config))))
    run = agent.resource(message, args=("-c", str(config)))
    assert run.code == 65 and run.stdout.startswith("5.3.4 ")


# -- preferences (item 6) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("booking_window", "P999999999D", "P36525D"),
        ("min_notice", "-PT1H", "from PT0S"),
        ("scheduling_function", "check_quota ../x", "not a usable quota name"),
        ("scheduling_function", "schedule_whenever", "known: access_control_list"),
        ("scheduling_function", "schedule_in_freebusy two", "schedule_in_freebusy two"),
        ("TZID", "x" * 300, "unknown time zone"),
        ("max_instances", "²", "positive whole number"),
    ],
)
def test_prefs_set_refuses_what_the_agent_cannot_use(
    agent: Agent, name: str, value: str, says: str
) -> None:
    result = agent.admin("prefs", "set", ROOM, name, "--", value)
    assert result.returncode == 64, result.stdout + result.stderr
    assert says in result.stdout and result.stdout.count("\n") == 1
    assert not (agent.root / "prefs" / f"mailto:{ROOM}" / name).exists()


def test_hand_edited_booking_window_beyond_a_century_is_ignored_not_75(agent: Agent) -> None:
    folder = agent.root / "prefs" / f"mailto:{ROOM}"
    folder.mkdir(parents=True)
    (folder / "booking_window").write_text("P999999999D\n")
    run = agent.resource(fixture("sequence_beyond_any_integer.eml").replace(b"9" * 26, b"0"))
    assert run.code == 0 and len(run.replies()) == 1


def test_hand_edited_quota_name_with_a_path_declines_as_misconfigured_not_65(
    agent: Agent,
) -> None:
    folder = agent.root / "prefs" / f"mailto:{ROOM}"
    folder.mkdir(parents=True)
    (folder / "scheduling_function").write_text("check_quota ../x\n")
    run = agent.resource(fixture("sequence_beyond_any_integer.eml").replace(b"9" * 26, b"0"))
    assert run.code == 0, run.stdout
    reply = run.replies()[0]
    assert str(reply.walk("VEVENT")[0]["ATTENDEE"].params["PARTSTAT"]) == "DECLINED"
    assert "misconfigured" in str(reply.walk("VEVENT")[0].get("COMMENT", ""))
