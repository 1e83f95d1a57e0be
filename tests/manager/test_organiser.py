"""The organiser's pages through Flask's test client over a real site: a
new event (validation, preview, the REQUEST sent and recorded), the event
page, its update, cancelling one instance or the series, removing an
attendee; another user's calendar is 403 and a form without its token is
refused."""

from __future__ import annotations

import re
from datetime import UTC
from pathlib import Path

import pytest
import vobject
from flask.testing import FlaskClient
from icalendar import Calendar
from werkzeug.datastructures import MultiDict

from tests.manager.support import (
    ALICE,
    BOB,
    calendar_of,
    form_fields,
    invited,
    manager,
    sent_messages,
    token_in,
)
from tests.support import Agent, calendar_text, imip_message, vevent

AS_ALICE = {"REMOTE_USER": ALICE}
ROOM = "room3@example.com"
CAROL = "carol@example.com"
NEW = f"/calendar/{ALICE}/new"


def fields(**changes: str | list[str]) -> MultiDict[str, str]:
    """A new event's form: every other Tuesday at 10:00 Berlin until 30
    June 2030, room 3, bob and carol; ``changes`` replace fields."""
    values: dict[str, str | list[str]] = {
        "summary": "Planning <b>",
        "location": "Room 3",
        "description": "Line one\r\nline two",
        "categories": "work, planning",
        "url": "https://example.com/plan",
        "class": "PRIVATE",
        "priority": "5",
        "status": "CONFIRMED",
        "transp": "OPAQUE",
        "start_date": "2030-01-08",
        "start_time": "10:00",
        "end_date": "2030-01-08",
        "end_time": "11:00",
        "tzid": "Europe/Berlin",
        "freq": "WEEKLY",
        "interval": "2",
        "byday": ["TU"],
        "ends": "until",
        "until": "2030-06-30",
        "exdates": "2030-02-05 10:00",
        "attendee": [ROOM, BOB, CAROL],
        "role": ["NON-PARTICIPANT", "REQ-PARTICIPANT", "OPT-PARTICIPANT"],
        "cutype": ["ROOM", "INDIVIDUAL", "INDIVIDUAL"],
    }
    values.update(changes)
    form: MultiDict[str, str] = MultiDict()
    for name, value in values.items():
        for each in value if isinstance(value, list) else [value]:
            form.add(name, each)
    return form


def client_of(agent: Agent, sent: Path) -> FlaskClient:
    return manager(agent, sent).test_client()


def post(client: FlaskClient, path: str, form: MultiDict[str, str], page: str = NEW):
    """Post ``form`` to ``path`` with the token of ``page`` (as a browser would)."""
    shown = client.get(page, environ_base=AS_ALICE).get_data(as_text=True)
    form = MultiDict(form)
    form["csrf_token"] = token_in(shown)
    return client.post(path, data=form, environ_base=AS_ALICE)


def created(agent: Agent, sent: Path, **changes: str | list[str]) -> tuple[FlaskClient, str]:
    """The event of :func:`fields` made through the page: the client and the event's path."""
    client = client_of(agent, sent)
    answer = post(client, NEW, fields(**changes))
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client, answer.headers["Location"]


def uid_of(path: str) -> str:
    return path.partition("uid=")[2]


def test_the_form_has_a_label_for_every_control_and_legends(tmp_path: Path) -> None:
    client = client_of(invited(tmp_path), tmp_path / "sent")
    page = client.get(NEW, environ_base=AS_ALICE).get_data(as_text=True)
    ids = re.findall(r'<(?:input|select|textarea) id="([^"]+)"', page)
    assert len(ids) > 30
    for each in ids:
        assert f'<label for="{each}"' in page or f'<label class="hidden-label" for="{each}"' in page
    assert page.count("<legend>") >= 5
    assert "<option selected>UTC</option>" in page, "the user's zone (no TZID: UTC) is the default"


def test_the_default_zone_is_the_users_tzid(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    agent.set_pref(ALICE, "TZID", "Europe/Berlin")
    page = client_of(agent, tmp_path / "sent").get(NEW, environ_base=AS_ALICE)
    assert "<option selected>Europe/Berlin</option>" in page.get_data(as_text=True)


def test_a_new_event_is_sent_to_everyone_and_recorded(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client, path = created(agent, tmp_path / "sent")
    shown = client.get(path, environ_base=AS_ALICE).get_data(as_text=True)
    assert f"Invitation sent to {ROOM}, {BOB}, {CAROL}." in shown
    assert "every second week on Tuesday until 30 June 2030" in shown
    assert "Planning &lt;b&gt;" in shown and "<b>" not in shown.replace("<b>sync", "")
    (message,) = sent_messages(tmp_path / "sent")
    assert message["From"] == ALICE
    data, calendar = calendar_of(message)
    parsed = vobject.readOne(data.decode())
    assert parsed.method.value == "REQUEST"
    (event,) = calendar.walk("VEVENT")
    assert event["RRULE"].to_ical() == b"FREQ=WEEKLY;UNTIL=20300630T215959Z;INTERVAL=2;BYDAY=TU"
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert str(event["CLASS"]) == "PRIVATE" and int(event["PRIORITY"]) == 5
    assert str(event["URL"]) == "https://example.com/plan"
    assert str(event["DESCRIPTION"]) == "Line one\nline two"
    rooms = [a for a in event["ATTENDEE"] if a.params.get("CUTYPE") == "ROOM"]
    assert [str(a) for a in rooms] == [f"mailto:{ROOM}"]
    assert uid_of(path) in agent.admin("export", ALICE).stdout, "recorded in alice's calendar"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"summary": "  "}, "Summary: say what the event is."),
        ({"end_time": "09:00"}, "The end must be after the start."),
        ({"start_date": "someday"}, "Start: give a date and a time."),
        ({"tzid": "Mars/Olympus"}, "Time zone: not a time zone"),
        ({"rrule": "FREQ=SOMETIMES"}, "Repeat: the rule"),
        ({"exdates": "next tuesday"}, "Exceptions: 'next tuesday' is not YYYY-MM-DD HH:MM."),
        ({"attendee": ["not an address"]}, "Attendee: not a mail address"),
        ({"priority": "12"}, "Priority: a number from 0 to 9."),
        ({"ends": "count", "count": ""}, "Repeat: give how many times."),
    ],
)
def test_an_invalid_form_is_shown_again_with_the_messages(
    tmp_path: Path, changes: dict[str, str], message: str
) -> None:
    client = client_of(invited(tmp_path), tmp_path / "sent")
    answer = post(client, NEW, fields(**changes))
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert 'role="alert"' in page and message.replace("'", "&#39;") in page
    assert sent_messages(tmp_path / "sent") == []
    assert 'value="Planning &lt;b&gt;"' in page or "summary" in changes, "the values are kept"


def test_the_raw_rule_wins_and_is_shown_back(tmp_path: Path) -> None:
    client = client_of(invited(tmp_path), tmp_path / "sent")
    rule = "FREQ=MONTHLY;BYDAY=-1FR;COUNT=6;WKST=SU"
    preview = post(client, NEW, fields(rrule=rule, action="preview"))
    page = preview.get_data(as_text=True)
    assert preview.status_code == 200 and f'value="{rule}"' in page
    assert "every month on the last Friday 6 times" in page
    assert sent_messages(tmp_path / "sent") == [], "a preview sends nothing"
    answer = post(client, NEW, fields(rrule=rule))
    (message,) = sent_messages(tmp_path / "sent")
    (event,) = calendar_of(message)[1].walk("VEVENT")
    assert event["RRULE"].to_ical() == b"FREQ=MONTHLY;COUNT=6;BYDAY=-1FR;WKST=SU"
    shown = client.get(answer.headers["Location"], environ_base=AS_ALICE).get_data(as_text=True)
    assert 'id="rrule" name="rrule" value="FREQ=MONTHLY;COUNT=6;BYDAY=-1FR;WKST=SU"' in shown


def test_an_all_day_event_of_ones_own(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client, path = created(
        agent, tmp_path / "sent", all_day="yes", end_date="2030-01-09", attendee=[], freq=""
    )
    assert "Saved in your calendar." in client.get(path, environ_base=AS_ALICE).get_data(
        as_text=True
    )
    assert sent_messages(tmp_path / "sent") == [], "nobody to invite: nothing sent"
    exported = agent.exported(ALICE)
    (event,) = [e for e in exported.walk("VEVENT") if str(e["UID"]) == uid_of(path)]
    assert str(event.decoded("DTSTART")) == "2030-01-08"
    assert str(event.decoded("DTEND")) == "2030-01-10", "the last day is the 9th"


def test_the_organiser_changes_the_event(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client, path = created(agent, tmp_path / "sent")
    answer = post(
        client,
        f"/calendar/{ALICE}/event",
        fields(summary="Planning, moved", start_time="14:00", end_time="15:00")
        | {"uid": uid_of(path)},
        page=path,
    )
    assert answer.status_code == 302
    _, update = sent_messages(tmp_path / "sent")
    (event,) = calendar_of(update)[1].walk("VEVENT")
    assert str(calendar_of(update)[1]["METHOD"]) == "REQUEST"
    assert int(event["SEQUENCE"]) == 1 and str(event["SUMMARY"]) == "Planning, moved"
    assert event.decoded("DTSTART").hour == 14
    assert all(a.params["PARTSTAT"] == "NEEDS-ACTION" for a in event["ATTENDEE"][1:])
    shown = client.get(path, environ_base=AS_ALICE).get_data(as_text=True)
    assert "Update sent to" in shown and "Planning, moved" in shown


def test_nothing_changed_sends_nothing(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client, path = created(agent, tmp_path / "sent")
    answer = post(client, f"/calendar/{ALICE}/event", fields() | {"uid": uid_of(path)}, page=path)
    shown = client.get(answer.headers["Location"], environ_base=AS_ALICE).get_data(as_text=True)
    assert "Nothing changed." in shown
    assert len(sent_messages(tmp_path / "sent")) == 1


def test_removing_an_attendee_cancels_for_them_and_updates_the_others(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client, path = created(agent, tmp_path / "sent")
    form = fields() | {"uid": uid_of(path)}
    form.add("remove", CAROL)
    answer = post(client, f"/calendar/{ALICE}/event", form, page=path)
    assert answer.status_code == 302
    _, removal, update = sent_messages(tmp_path / "sent")
    assert removal["To"] == CAROL
    cancel = calendar_of(removal)[1]
    assert str(cancel["METHOD"]) == "CANCEL"
    (gone,) = cancel.walk("VEVENT")
    assert str(gone["ATTENDEE"]) == f"mailto:{CAROL}" and "STATUS" not in gone
    assert update["To"] == f"{ROOM}, {BOB}"
    (event,) = calendar_of(update)[1].walk("VEVENT")
    assert CAROL not in event.to_ical().decode()
    shown = client.get(path, environ_base=AS_ALICE).get_data(as_text=True)
    assert f'<span class="address">{CAROL}' not in shown
    assert f'<span class="address">{BOB}' in shown, "the event itself stays"


def test_cancelling_one_instance_then_the_series(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client, path = created(agent, tmp_path / "sent")
    page = client.get(path, environ_base=AS_ALICE).get_data(as_text=True)
    rid = "20300122T090000Z"
    assert f'<option value="{rid}">' in page, "the instances are listed"
    one = post(
        client,
        f"/calendar/{ALICE}/event/cancel",
        MultiDict({"uid": uid_of(path), "recurrence_id": rid}),
        page=path,
    )
    assert one.status_code == 302
    message = sent_messages(tmp_path / "sent")[-1]
    (event,) = calendar_of(message)[1].walk("VEVENT")
    assert str(calendar_of(message)[1]["METHOD"]) == "CANCEL"
    moment = event.decoded("RECURRENCE-ID").astimezone(UTC)
    assert moment.strftime("%Y%m%dT%H%M%SZ") == rid, "in the series' zone, the same instant"
    assert event["RECURRENCE-ID"].params["TZID"] == "Europe/Berlin"
    shown = client.get(path, environ_base=AS_ALICE).get_data(as_text=True)
    assert '<span class="tag">cancelled</span>' in shown
    whole = post(
        client,
        f"/calendar/{ALICE}/event/cancel",
        MultiDict({"uid": uid_of(path), "recurrence_id": ""}),
        page=path,
    )
    assert whole.status_code == 302
    message = sent_messages(tmp_path / "sent")[-1]
    (event,) = calendar_of(message)[1].walk("VEVENT")
    assert "RECURRENCE-ID" not in event and str(event["STATUS"]) == "CANCELLED"
    assert int(event["SEQUENCE"]) == 2, "more than the instance's CANCEL (RFC 5545 §3.8.7.4)"
    assert message["To"] == f"{ROOM}, {BOB}, {CAROL}"
    assert whole.headers["Location"] == f"/calendar/{ALICE}/?week=2030-01-08"
    assert client.get(path, environ_base=AS_ALICE).status_code == 404, "no longer stored"


def test_an_unknown_instance_or_event_is_404(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client, path = created(agent, tmp_path / "sent")
    form = MultiDict({"uid": uid_of(path), "recurrence_id": "20300123T090000Z"})
    assert post(client, f"/calendar/{ALICE}/event/cancel", form, page=path).status_code == 404
    assert (
        client.get(f"/calendar/{ALICE}/event?uid=nothing", environ_base=AS_ALICE).status_code == 404
    )
    assert len(sent_messages(tmp_path / "sent")) == 1


def test_an_invitation_from_someone_else_is_shown_but_not_changed(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client = client_of(agent, tmp_path / "sent")
    path = f"/calendar/{ALICE}/event?uid=weekly-sync@example.com"
    page = client.get(path, environ_base=AS_ALICE).get_data(as_text=True)
    assert "Team &lt;b&gt;sync" in page and "Send the update" not in page
    form = MultiDict({"uid": "weekly-sync@example.com", "recurrence_id": ""})
    assert post(client, f"/calendar/{ALICE}/event/cancel", form).status_code == 403
    assert sent_messages(tmp_path / "sent") == []


def test_another_user_cannot_open_or_post(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client, path = created(agent, tmp_path / "sent")
    as_bob = {"REMOTE_USER": BOB}
    for page in (NEW, path):
        assert client.get(page, environ_base=as_bob).status_code == 403
    with client.session_transaction() as session:
        session.update(user=f"mailto:{BOB}", csrf="bobs-token")
    for target, form in (
        (NEW, fields()),
        (f"/calendar/{ALICE}/event/cancel", MultiDict({"uid": uid_of(path), "recurrence_id": ""})),
        (f"/calendar/{ALICE}/event", fields() | {"uid": uid_of(path)}),
    ):
        form["csrf_token"] = "bobs-token"
        assert client.post(target, data=form, environ_base=as_bob).status_code == 403
    assert len(sent_messages(tmp_path / "sent")) == 1


@pytest.mark.parametrize("target", [NEW, f"/calendar/{ALICE}/event/cancel"])
def test_a_post_without_the_sessions_token_is_refused(tmp_path: Path, target: str) -> None:
    agent = invited(tmp_path)
    client = client_of(agent, tmp_path / "sent")
    client.get(NEW, environ_base=AS_ALICE)  # a session exists
    form = fields() | {"uid": "weekly-sync@example.com", "csrf_token": "forged"}
    assert client.post(target, data=form, environ_base=AS_ALICE).status_code == 403
    assert sent_messages(tmp_path / "sent") == []
    before = Calendar.from_ical(agent.admin("export", ALICE).stdout)
    assert len(before.walk("VEVENT")) == 1


def test_another_zone_does_not_move_an_all_day_event(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    day = {"all_day": "yes", "end_date": "2030-01-09", "freq": ""}
    client, path = created(agent, tmp_path / "sent", **day)
    form = fields(**day, tzid="Asia/Kolkata") | {"uid": uid_of(path)}
    answer = post(client, f"/calendar/{ALICE}/event", form, page=path)
    shown = client.get(answer.headers["Location"], environ_base=AS_ALICE).get_data(as_text=True)
    assert "Nothing changed." in shown
    assert len(sent_messages(tmp_path / "sent")) == 1


# -- a series in parts: one occurrence, this and following, a date, a role ----------

#: Occurrences of :func:`fields`' event (Tuesdays 10:00 Berlin, every other week).
JAN_22, FEB_5, FEB_19, MAR_5 = (
    "20300122T090000Z",
    "20300205T090000Z",
    "20300219T090000Z",
    "20300305T090000Z",
)
INSTANCE = f"/calendar/{ALICE}/event/instance"
EXCLUDE = f"/calendar/{ALICE}/event/exclude"


def instance_form(uid: str, rid: str, scope: str = "this", **changes: str) -> MultiDict[str, str]:
    """The form of one occurrence of :func:`fields`' event, ``changes`` made."""
    day = f"{rid[:4]}-{rid[4:6]}-{rid[6:8]}"
    values = {
        "uid": uid,
        "recurrence_id": rid,
        "scope": scope,
        "summary": "Planning <b>",
        "location": "Room 3",
        "description": "Line one\nline two",
        "start_date": day,
        "start_time": "10:00",
        "end_date": day,
        "end_time": "11:00",
    }
    values.update(changes)
    return MultiDict(values)


def reply_from(agent: Agent, uid: str, rid: str, who: str, cutype: str, partstat: str) -> None:
    """``who`` answers ``partstat`` for occurrence ``rid``; alice's agent records it."""
    event = vevent(
        uid,
        rid,
        rid[:9] + "100000Z",
        organiser=ALICE,
        attendees=(),
        extra=f"RECURRENCE-ID:{rid}\nATTENDEE;CUTYPE={cutype};PARTSTAT={partstat}:mailto:{who}",
    )
    message = imip_message(
        calendar_text(event, method="REPLY"), sender=who, to=ALICE, method="REPLY"
    )
    run = agent.person(message, ALICE)
    assert run.code == 0, run.stdout + run.stderr


def test_one_occurrence_is_changed_and_sent_alone(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client, path = created(agent, tmp_path / "sent")
    uid = uid_of(path)
    page = client.get(f"{INSTANCE}?uid={uid}&rid={FEB_19}", environ_base=AS_ALICE)
    shown = page.get_data(as_text=True)
    assert page.status_code == 200 and 'value="2030-02-19"' in shown and 'value="10:00"' in shown
    form = instance_form(
        uid, FEB_19, summary="Planning, later", start_time="14:00", end_time="15:00"
    )
    answer = post(client, INSTANCE, form, page=path)
    assert answer.status_code == 302 and answer.headers["Location"] == path
    message = sent_messages(tmp_path / "sent")[-1]
    assert message["To"] == f"{ROOM}, {BOB}, {CAROL}"
    data, calendar = calendar_of(message)
    assert vobject.readOne(data.decode()).vevent.recurrence_id.value.hour == 10
    (event,) = calendar.walk("VEVENT")
    assert event.decoded("RECURRENCE-ID").astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") == FEB_19
    assert event.decoded("DTSTART").hour == 14 and str(event["SUMMARY"]) == "Planning, later"
    assert int(event["SEQUENCE"]) == 1 and "RRULE" not in event
    shown = client.get(path, environ_base=AS_ALICE).get_data(as_text=True)
    assert "Change of the occurrence sent to" in shown
    assert '<span class="tag">moved</span> from Tue 19 Feb 09:00' in shown, "in alice's zone"


def test_an_occurrence_is_recorded_as_imip_person_outgoing_records_it(tmp_path: Path) -> None:
    agent = invited(tmp_path / "manager")
    client, path = created(agent, tmp_path / "sent")
    post(client, INSTANCE, instance_form(uid_of(path), FEB_19, location="Room 4"), page=path)
    other = invited(tmp_path / "outgoing")
    for message in sent_messages(tmp_path / "sent"):
        run = other.outgoing(message.as_bytes(), ALICE)
        assert run.code == 0, run.stdout + run.stderr
    assert agent.admin("export", ALICE).stdout == other.admin("export", ALICE).stdout


def test_an_update_after_an_occurrence_changed_keeps_it(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client, path = created(agent, tmp_path / "sent")
    uid = uid_of(path)
    post(
        client,
        INSTANCE,
        instance_form(uid, FEB_19, start_time="14:00", end_time="15:00"),
        page=path,
    )
    post(
        client,
        f"/calendar/{ALICE}/event",
        fields(summary="Planning, renamed") | {"uid": uid},
        page=path,
    )
    master, override = calendar_of(sent_messages(tmp_path / "sent")[-1])[1].walk("VEVENT")
    assert int(master["SEQUENCE"]) == int(override["SEQUENCE"]) == 2
    assert (
        str(override["SUMMARY"]) == "Planning, renamed" and override.decoded("DTSTART").hour == 14
    )
    stored = agent.site().records(f"mailto:{ALICE}").stored(uid)
    assert stored is not None and len(stored.overrides) == 1, "the override is still stored"


def test_this_and_following_makes_a_new_series(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client, path = created(agent, tmp_path / "sent")
    uid = uid_of(path)
    answer = post(
        client, INSTANCE, instance_form(uid, FEB_19, "following", location="Room 5"), page=path
    )
    assert answer.status_code == 302
    new_uid = uid_of(answer.headers["Location"])
    assert new_uid != uid
    old, new = sent_messages(tmp_path / "sent")[-2:]
    for message in (old, new):
        assert vobject.readOne(calendar_of(message)[0].decode()).method.value == "REQUEST"
    (ended,) = calendar_of(old)[1].walk("VEVENT")
    assert b"UNTIL=20300219T085959Z" in ended["RRULE"].to_ical() and int(ended["SEQUENCE"]) == 1
    assert str(ended["RELATED-TO"]) == new_uid and ended["RELATED-TO"].params["RELTYPE"] == "NEXT"
    (rest,) = calendar_of(new)[1].walk("VEVENT")
    assert str(rest["UID"]) == new_uid and str(rest["LOCATION"]) == "Room 5"
    assert str(rest["RELATED-TO"]) == uid and rest["RELATED-TO"].params["RELTYPE"] == "FIRST"
    assert new["To"] == f"{ROOM}, {BOB}, {CAROL}"
    records = agent.site().records(f"mailto:{ALICE}")
    assert records.stored(uid) is not None and records.stored(new_uid) is not None
    shown = client.get(answer.headers["Location"], environ_base=AS_ALICE).get_data(as_text=True)
    assert "The following occurrences sent to" in shown and "Room 5" in shown


def test_this_and_following_from_the_first_is_refused(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client, path = created(agent, tmp_path / "sent")
    first = "20300108T090000Z"
    shown = client.get(f"{INSTANCE}?uid={uid_of(path)}&rid={first}", environ_base=AS_ALICE)
    assert 'value="following"' not in shown.get_data(as_text=True)
    answer = post(client, INSTANCE, instance_form(uid_of(path), first, "following"), page=path)
    assert answer.status_code == 422
    assert "The first occurrence: change the whole series instead." in answer.get_data(as_text=True)
    bad = post(client, INSTANCE, instance_form(uid_of(path), JAN_22, end_time="09:00"), page=path)
    assert bad.status_code == 422 and "The end must be after the start." in bad.get_data(
        as_text=True
    )
    assert len(sent_messages(tmp_path / "sent")) == 1


def test_a_date_is_excluded_and_restored_with_one_action(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client, path = created(agent, tmp_path / "sent")
    uid = uid_of(path)
    form = MultiDict({"uid": uid, "recurrence_id": FEB_19, "action": "exclude"})
    assert post(client, EXCLUDE, form, page=path).status_code == 302
    (event,) = calendar_of(sent_messages(tmp_path / "sent")[-1])[1].walk("VEVENT")
    days = sorted(d.dt.day for e in _listed(event["EXDATE"]) for d in e.dts)
    assert days == [5, 19] and int(event["SEQUENCE"]) == 1
    shown = client.get(path, environ_base=AS_ALICE).get_data(as_text=True)
    assert shown.count('<span class="tag">excluded</span>') == 2
    form = MultiDict({"uid": uid, "recurrence_id": FEB_5, "action": "restore"})
    assert post(client, EXCLUDE, form, page=path).status_code == 302
    (event,) = calendar_of(sent_messages(tmp_path / "sent")[-1])[1].walk("VEVENT")
    assert [d.dt.day for e in _listed(event["EXDATE"]) for d in e.dts] == [19]
    assert int(event["SEQUENCE"]) == 2
    nowhere = MultiDict({"uid": uid, "recurrence_id": "20300220T090000Z", "action": "exclude"})
    assert post(client, EXCLUDE, nowhere, page=path).status_code == 404


def _listed(value: object) -> list:  # type: ignore[type-arg]
    return value if isinstance(value, list) else [value]


def test_the_preview_marks_moved_cancelled_excluded_and_declined(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client, path = created(agent, tmp_path / "sent")
    uid = uid_of(path)
    cancel = MultiDict({"uid": uid, "recurrence_id": JAN_22})
    post(client, f"/calendar/{ALICE}/event/cancel", cancel, page=path)
    post(
        client, INSTANCE, instance_form(uid, MAR_5, start_time="12:00", end_time="13:00"), page=path
    )
    reply_from(agent, uid, FEB_19, BOB, "INDIVIDUAL", "DECLINED")
    reply_from(agent, uid, FEB_19, ROOM, "ROOM", "DECLINED")
    shown = client.get(path, environ_base=AS_ALICE).get_data(as_text=True)
    rows = re.findall(
        r"<tr[^>]*>\s*<td class=\"when\">(.*?)</td>\s*<td class=\"marks\">(.*?)</td>", shown, re.S
    )
    marks = {when.strip()[:15]: re.sub(r"<[^>]+>", "", mark).strip() for when, mark in rows}
    assert marks["Tue 08 Jan 2030"] == ""
    assert marks["Tue 22 Jan 2030"] == "cancelled"
    assert marks["Tue 05 Feb 2030"] == "excluded"
    assert marks["Tue 19 Feb 2030"] == f"declined by room {ROOM} declined by person {BOB}"
    assert marks["Tue 05 Mar 2030"] == "moved from Tue 05 Mar 09:00"
    assert len(rows) == 13, "to the end of June"
    assert 'value="restore"' in shown and 'value="exclude"' in shown
    whole = post(
        client,
        f"/calendar/{ALICE}/event/cancel",
        MultiDict({"uid": uid, "recurrence_id": ""}),
        page=path,
    )
    assert whole.status_code == 302
    (event,) = calendar_of(sent_messages(tmp_path / "sent")[-1])[1].walk("VEVENT")
    assert int(event["SEQUENCE"]) == 3, "above the instance's CANCEL (1) and the change (2)"


def test_an_attendees_role_is_changed_by_an_update(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client, path = created(agent, tmp_path / "sent")
    form = fields(role=["NON-PARTICIPANT", "CHAIR", "OPT-PARTICIPANT"]) | {"uid": uid_of(path)}
    assert post(client, f"/calendar/{ALICE}/event", form, page=path).status_code == 302
    update = sent_messages(tmp_path / "sent")[-1]
    (event,) = calendar_of(update)[1].walk("VEVENT")
    roles = {str(a): a.params["ROLE"] for a in event["ATTENDEE"]}
    assert roles[f"mailto:{BOB}"] == "CHAIR" and roles[f"mailto:{CAROL}"] == "OPT-PARTICIPANT"
    assert update["To"] == f"{ROOM}, {BOB}, {CAROL}"
    shown = client.get(path, environ_base=AS_ALICE).get_data(as_text=True)
    assert f"{BOB}</span> · individual · chair" in shown


def test_the_new_pages_are_the_organisers_own(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client, path = created(agent, tmp_path / "sent")
    uid = uid_of(path)
    as_bob = {"REMOTE_USER": BOB}
    assert client.get(f"{INSTANCE}?uid={uid}&rid={FEB_19}", environ_base=as_bob).status_code == 403
    bobs = f"/calendar/{ALICE}/event/instance?uid=weekly-sync@example.com&rid=20300115T100000Z"
    assert client.get(bobs, environ_base=AS_ALICE).status_code == 403, "bob organises it"
    assert client.get(f"{INSTANCE}?uid={uid}&rid={FEB_5}", environ_base=AS_ALICE).status_code == 404
    with client.session_transaction() as session:
        session.update(user=f"mailto:{BOB}", csrf="bobs-token")
    for target, form in (
        (INSTANCE, instance_form(uid, FEB_19)),
        (EXCLUDE, MultiDict({"uid": uid, "recurrence_id": FEB_19, "action": "exclude"})),
    ):
        form["csrf_token"] = "bobs-token"
        assert client.post(target, data=form, environ_base=as_bob).status_code == 403
    assert len(sent_messages(tmp_path / "sent")) == 1


@pytest.mark.parametrize("target", [INSTANCE, EXCLUDE])
def test_a_post_to_the_new_pages_without_the_token_is_refused(tmp_path: Path, target: str) -> None:
    agent = invited(tmp_path)
    client, path = created(agent, tmp_path / "sent")
    form = instance_form(uid_of(path), FEB_19) | {"action": "exclude"}
    assert client.post(target, data=form, environ_base=AS_ALICE).status_code == 403
    form["csrf_token"] = "forged"
    assert client.post(target, data=form, environ_base=AS_ALICE).status_code == 403
    assert len(sent_messages(tmp_path / "sent")) == 1


def test_an_attendees_agent_takes_the_instance_and_the_split(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client, path = created(agent, tmp_path / "sent")
    uid = uid_of(path)
    moved = instance_form(uid, JAN_22, start_time="12:00", end_time="13:00")
    post(client, INSTANCE, moved, page=path)
    split = post(client, INSTANCE, instance_form(uid, FEB_19, "following"), page=path)
    new_uid = uid_of(split.headers["Location"])
    for message in sent_messages(tmp_path / "sent"):
        run = agent.person(message.as_bytes(), BOB)
        assert run.code == 0, run.stdout + run.stderr
    records = agent.site().records(f"mailto:{BOB}")
    old, new = records.stored(uid), records.stored(new_uid)
    assert old is not None and old.master is not None and new is not None
    assert b"UNTIL=20300219T085959Z" in old.master["RRULE"].to_ical()
    (override,) = old.overrides
    assert override.decoded("DTSTART").hour == 12, "the moved instance kept"
    assert (new_uid, "", "REQUEST") in agent.requests(BOB), "the new series to answer"


def following_page(client: FlaskClient, uid: str, rid: str) -> MultiDict[str, str]:
    """The form of occurrence ``rid`` as the page shows it, to post "this and following"."""
    page = client.get(f"{INSTANCE}?uid={uid}&rid={rid}", environ_base=AS_ALICE)
    form = form_fields(page.get_data(as_text=True), INSTANCE)
    form["scope"] = "following"
    return form


def test_the_following_get_their_own_rule_and_attendees(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client, path = created(agent, tmp_path / "sent")
    uid = uid_of(path)
    form = following_page(client, uid, FEB_19)
    assert form["following_series"] == "yes" and form["freq"] == "WEEKLY"
    assert form["interval"] == "2" and form.getlist("attendee")[:3] == [ROOM, BOB, CAROL]
    form["interval"] = "1"
    form.add("remove", CAROL)
    attendees = form.getlist("attendee")
    attendees[3] = "dave@example.com"
    form.setlist("attendee", attendees)
    answer = client.post(INSTANCE, data=form, environ_base=AS_ALICE)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    new_uid = uid_of(answer.headers["Location"])
    old, new = sent_messages(tmp_path / "sent")[-2:]
    assert old["To"] == f"{ROOM}, {BOB}, {CAROL}", "the series so far to everyone it had"
    assert new["To"] == f"{ROOM}, {BOB}, dave@example.com", "the new one to its own"
    (ended,) = calendar_of(old)[1].walk("VEVENT")
    assert b"UNTIL=20300219T085959Z" in ended["RRULE"].to_ical()
    assert str(ended["RELATED-TO"]) == new_uid and ended["RELATED-TO"].params["RELTYPE"] == "NEXT"
    (rest,) = calendar_of(new)[1].walk("VEVENT")
    parsed = vobject.readOne(calendar_of(new)[0].decode())
    assert parsed.method.value == "REQUEST" and "INTERVAL" not in parsed.vevent.rrule.value
    assert "INTERVAL" not in rest["RRULE"] and rest["RRULE"]["BYDAY"] == ["TU"]
    assert rest["RELATED-TO"].params["RELTYPE"] == "FIRST" and str(rest["RELATED-TO"]) == uid
    partstats = {str(a): a.params["PARTSTAT"] for a in rest["ATTENDEE"]}
    assert f"mailto:{CAROL}" not in partstats and "mailto:dave@example.com" in partstats
    asked = {a: p for a, p in partstats.items() if a != f"mailto:{ALICE}"}
    assert set(asked.values()) == {"NEEDS-ACTION"}, "a new rule: everyone asked again"
    records = agent.site().records(f"mailto:{ALICE}")
    stored = records.stored(new_uid)
    assert stored is not None and stored.master is not None
    assert {str(a) for a in stored.master["ATTENDEE"]} >= {"mailto:dave@example.com"}
    for message in (old, new):
        if CAROL in message["To"]:  # delivered to her as the mail system would
            run = agent.person(message.as_bytes(), CAROL)
            assert run.code == 0, run.stdout + run.stderr
    held = agent.site().records(f"mailto:{CAROL}")
    assert held.stored(new_uid) is None, "carol is not invited to the new series"
    ended_for_carol = held.stored(uid)
    assert ended_for_carol is not None and ended_for_carol.master is not None
    assert b"UNTIL=20300219T085959Z" in ended_for_carol.master["RRULE"].to_ical()


def test_the_following_keep_the_answers_when_only_attendees_change(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client, path = created(agent, tmp_path / "sent")
    uid = uid_of(path)
    series = calendar_of(sent_messages(tmp_path / "sent")[-1])[1].walk("VEVENT")[0]
    rule = series["RRULE"].to_ical()
    reply = vevent(
        uid,
        "20300108T090000Z",
        "20300108T100000Z",
        organiser=ALICE,
        attendees=(),
        extra=f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{BOB}",
    )
    message = imip_message(
        calendar_text(reply, method="REPLY"), sender=BOB, to=ALICE, method="REPLY"
    )
    assert agent.person(message, ALICE).code == 0
    form = following_page(client, uid, FEB_19)
    form.add("remove", CAROL)
    answer = client.post(INSTANCE, data=form, environ_base=AS_ALICE)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    (rest,) = calendar_of(sent_messages(tmp_path / "sent")[-1])[1].walk("VEVENT")
    assert rest["RRULE"].to_ical() == rule, "the rule unchanged"
    partstats = {str(a): str(a.params["PARTSTAT"]) for a in rest["ATTENDEE"]}
    assert partstats[f"mailto:{BOB}"] == "ACCEPTED", "bob's answer carried over"
    assert f"mailto:{CAROL}" not in partstats


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"scope": "this", "interval": "1"}, "The rule and the attendees change only for this"),
        ({"freq": ""}, "Repeat: the following occurrences need a rule."),
        ({"rrule": "FREQ=SOMETIMES"}, "Repeat:"),
        ({"attendee": "not an address"}, "Attendee: not a mail address"),
    ],
)
def test_the_following_series_is_checked_before_anything_is_sent(
    tmp_path: Path, change: dict[str, str], said: str
) -> None:
    agent = invited(tmp_path)
    client, path = created(agent, tmp_path / "sent")
    form = following_page(client, uid_of(path), FEB_19)
    for name, value in change.items():
        if name == "attendee":
            attendees = form.getlist("attendee")
            attendees[3] = value
            form.setlist("attendee", attendees)
        else:
            form[name] = value
    answer = client.post(INSTANCE, data=form, environ_base=AS_ALICE)
    text = answer.get_data(as_text=True)
    assert answer.status_code == 422 and said in text, text
    assert len(sent_messages(tmp_path / "sent")) == 1, "nothing sent"
    assert 'name="following_series"' in text, "the new series' part is shown again"


def test_the_occurrence_page_labels_every_control_once(tmp_path: Path) -> None:
    client, path = created(invited(tmp_path), tmp_path / "sent")
    page = client.get(f"{INSTANCE}?uid={uid_of(path)}&rid={FEB_19}", environ_base=AS_ALICE)
    text = page.get_data(as_text=True)
    ids = re.findall(r'<(?:input|select|textarea) id="([^"]+)"', text)
    assert len(ids) == len(set(ids)) > 20
    for each in ids:
        assert f'<label for="{each}"' in text or f'<label class="hidden-label" for="{each}"' in text
    assert "Only for this and the following occurrences: the new series" in text


def test_rsvp_is_chosen_per_attendee_and_kept_by_updates(tmp_path: Path) -> None:
    agent = invited(tmp_path)
    client, path = created(agent, tmp_path / "sent", rsvp=["FALSE", "TRUE", "TRUE"])

    def rsvps() -> dict[str, str]:
        (event,) = calendar_of(sent_messages(tmp_path / "sent")[-1])[1].walk("VEVENT")
        return {str(a): str(a.params.get("RSVP")) for a in event["ATTENDEE"][1:]}

    room, bob, carol = (f"mailto:{a}" for a in (ROOM, BOB, CAROL))
    assert rsvps() == {room: "FALSE", bob: "TRUE", carol: "TRUE"}
    page = client.get(path, environ_base=AS_ALICE).get_data(as_text=True)
    shown = form_fields(page, f"/calendar/{ALICE}/event")
    assert shown.getlist("rsvp")[:3] == ["FALSE", "TRUE", "TRUE"], "the form shows them"
    form = fields(rsvp=["FALSE", "FALSE", "TRUE"]) | {"uid": uid_of(path)}
    assert post(client, f"/calendar/{ALICE}/event", form, page=path).status_code == 302
    assert rsvps() == {room: "FALSE", bob: "FALSE", carol: "TRUE"}
    later = fields(rsvp=["FALSE", "FALSE", "TRUE"], start_time="11:00", end_time="12:00")
    assert post(client, f"/calendar/{ALICE}/event", later | {"uid": uid_of(path)}, page=path)
    assert rsvps() == {room: "FALSE", bob: "FALSE", carol: "TRUE"}, (
        "a new time asks everyone again but those the organiser asked for no answer"
    )
    refused = post(client, NEW, fields(rsvp=["MAYBE", "TRUE", "TRUE"]))
    assert refused.status_code == 422
    assert "Attendee &#39;room3@example.com&#39;: not one of the choices." in refused.get_data(
        as_text=True
    )
