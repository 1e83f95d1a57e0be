"""The end-to-end scenarios, written once for every MTA.

Real mail goes over SMTP through the MTA, the agents and Dovecot, every one
a private instance of the test session (``conftest.py``, ``mailsystem.py``):
the MTA runs from our ``conf/`` files with the agents installed in a venv
they can read and run as an unprivileged user (``conftest.AGENT_USER``:
``nobody``, or Exim's own user); people's mail reaches
Dovecot over LMTP. The people are Dovecot's virtual users ``imiptest1`` (the
organiser) and ``imiptest2``; the resources are ``room`` and ``room2`` in
``resources.example.test``, and ``room3``, which a scenario adds with
``imip-admin add-resource``.

Each scenario sends mail with smtplib, waits until the MTA's queue is empty
(nothing in flight, nothing deferred) and then looks at the Maildirs, the
stores (``imip-admin``), the MTA's log and the agent's log.

:class:`Scenarios` holds them as test methods; ``test_postfix.py`` and
``test_exim.py`` each collect them in a ``Test...`` subclass, with the MTA
running (their ``mta`` fixture: a :class:`~tests.mta.mailsystem.PrivatePostfix`
or :class:`~tests.mta.mailsystem.PrivateExim`) and a :class:`MailSystem`
subclass that says how the MTA logs deliveries, deferrals and bounces, and
what its bounce says.
"""

from __future__ import annotations

import contextlib
import email
import os
import subprocess
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage

import pytest
from icalendar import Calendar

from tests.mta import mailsystem as ms
from tests.mta.conftest import AGENT_GROUP, AGENT_USER, Mailbox
from tests.support import calendar_text, check_reply, imip_message, vevent

ORGANISER = f"imiptest1@{ms.DOMAIN}"
PERSON = f"imiptest2@{ms.DOMAIN}"
ROOM = f"room@{ms.RESOURCES}"
ROOM2 = f"room2@{ms.RESOURCES}"
#: A room that exists only while a scenario has added it (imip-admin add-resource).
ROOM3 = f"room3@{ms.RESOURCES}"
#: Where conf/postfix's sender_bcc_maps sends the organiser's outgoing copy.
OUTGOING = "outgoing@imip-agent.invalid"

# A day well inside the booking window, whatever the date the tests run.
DAY = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y%m%d")
START, END = f"{DAY}T100000Z", f"{DAY}T110000Z"
STAMP = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")

# Holds a user's store lock, as the agent takes it, until stdin closes.
HOLD_LOCK = """\
import sys
from imiptools.config import load_settings
from imiptools.site import open_site
with open_site(load_settings(sys.argv[1])).store.lock(sys.argv[2], 10.0):
    print("locked", flush=True)
    sys.stdin.read()
"""


@contextlib.contextmanager
def room_locked(site: ms.Site) -> Iterator[None]:
    """The room's lock held by another process of the agent's user
    (:data:`HOLD_LOCK`) for the block, as a long delivery would hold it."""
    holder = subprocess.Popen(
        [str(site.program("python")), "-c", HOLD_LOCK, str(site.config), f"mailto:{ROOM}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        user=AGENT_USER,
        group=AGENT_GROUP,
        extra_groups=[],
        cwd="/",
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline() == b"locked\n"
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


#: A delivery as the scenarios see it: (queue id, recipient, transport), the
#: transport named as conf/postfix names its pipe services (``imip-person``).
Delivery = tuple[str, str, str]
#: A private MTA of the session (PrivatePostfix or PrivateExim).
Mta = ms.PrivatePostfix | ms.PrivateExim


class MailSystem:
    """What a scenario drives and inspects: SMTP in, Maildirs, stores, logs.

    Subclasses say what differs between the MTAs.
    """

    #: The MTA's name, for messages.
    name = "the MTA"
    #: What the one log line of a bounce by ``imip-resource`` says (see :meth:`bounce_lines`).
    bounce_logged: str
    #: What the bounce (DSN) of a message ``imip-resource`` refused says.
    bounce_says: tuple[str, ...]
    #: The MTA's tables that list a resource (``imip-admin add-resource`` edits them).
    resource_tables: tuple[str, ...]

    def __init__(self, site: ms.Site, mta: Mta, organiser: Mailbox, person: Mailbox) -> None:
        self.site = site
        self.mta = mta
        self.log = mta.log
        self.organiser = organiser
        self.person = person

    # -- what differs between the MTAs ----------------------------------------

    def runs(self) -> list[Delivery]:
        """Each run of our pipe transports the MTA logged, with its first recipient."""
        raise NotImplementedError

    def deliveries(self) -> list[Delivery]:
        """Each recipient our pipe transports delivered (several per run when batched)."""
        raise NotImplementedError

    def deferred(self, queue_id: str, recipient: str) -> bool:
        """Whether the MTA logged that delivering ``queue_id`` to ``recipient`` was deferred."""
        raise NotImplementedError

    def bounce_lines(self, queue_id: str, recipient: str) -> list[str]:
        """The log lines that tell how delivering ``queue_id`` to ``recipient`` bounced."""
        raise NotImplementedError

    def received_from(self, sender: str) -> bool:
        """Whether the MTA logged a message from ``sender``."""
        raise NotImplementedError

    # -- the same for every MTA -----------------------------------------------

    def queue(self) -> Sequence[object]:
        """What is queued (deferred or in flight)."""
        return self.mta.queue()

    def clear_queue(self) -> None:
        """Delete every queued message (between tests)."""
        self.mta.clear_queue()

    def flush(self) -> None:
        """Retry deferred mail now."""
        self.mta.flush()

    def send(self, message: bytes, sender: str, *recipients: str) -> str:
        """Submit over SMTP; the queue id."""
        return ms.submit(self.mta.port, message, sender, list(recipients))

    def accepts(self, recipient: str) -> bool:
        """Whether the MTA accepts ``recipient`` at RCPT (from the organiser)."""
        code, _ = ms.rcpt_reply(self.mta.port, ORGANISER, recipient)
        return code == 250

    def imip_admin(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``imip-admin -c CONFIG ARGS`` as root, as an admin runs it."""
        argv = [str(self.site.program("imip-admin")), "-c", str(self.site.config), *args]
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        return subprocess.run(
            argv, capture_output=True, text=True, env=env, cwd="/", timeout=120, check=False
        )

    def entries(self, table: str, address: str) -> list[str]:
        """The lines of the MTA's ``table`` (imip-transport, imip-resources...) for ``address``."""
        lines = self.mta.table(table).read_text().splitlines()
        return [line for line in lines if line.split()[:1] in ([address], [f"{address}:"])]

    def settle(self) -> None:
        """Wait until the queue is empty (fails with the logs if it never is)."""
        ms.wait_for(lambda: not self.queue(), "the queue did not empty", self.explain)

    def explain(self) -> str:
        return (
            f"queue: {self.queue()}\n--- {self.name} log:\n{self.log.text()[-4000:]}"
            f"\n--- agent log:\n{self.site.log_text()[-4000:]}"
        )

    def replies(self, mailbox: Mailbox) -> list[tuple[str, str]]:
        """(UID, PARTSTAT) of each iTIP REPLY in ``mailbox``, checked (RFC 5546)."""
        found = []
        for message in messages(mailbox):
            for part in message.walk():
                if part.get_content_type() == "text/calendar" and "REPLY" in part.get(
                    "Content-Type", ""
                ):
                    found.append(_reply_of(part))
        return found

    def agent_outcomes(self) -> list[tuple[str, str]]:
        """(queue id, status word) of each outcome line in the agent's log."""
        pattern = r": ([0-9A-Za-z-]+): INFO imip_agent: to=.* status=(\w+) \("
        return [(m.group(1), m.group(2)) for m in ms.each_line(self.site.log_text(), pattern)]

    def outgoing_copy_to(self, *recipients: str) -> tuple[str, ...]:
        """The addresses the MTA logs the organiser's outgoing copy to."""
        return recipients


def _reply_of(part: email.message.Message) -> tuple[str, str]:
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    calendar = Calendar.from_ical(payload)
    event = calendar.walk("VEVENT")[0]
    who = str(event["ATTENDEE"]).removeprefix("mailto:")
    check_reply(calendar, who)
    return str(event["UID"]), str(event["ATTENDEE"].params["PARTSTAT"])


def messages(mailbox: Mailbox) -> list[EmailMessage]:
    """The messages in the Maildir's ``new/``, parsed."""
    parsed = []
    for data in mailbox.messages():
        message = email.message_from_bytes(data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        parsed.append(message)
    return parsed


def request(
    uid: str,
    *attendees: str,
    sequence: int = 0,
    organiser: str = ORGANISER,
    headers: dict[str, str] | None = None,
) -> bytes:
    """The organiser's invitation (RFC 6047), addressed to ``attendees``."""
    event = vevent(
        uid, START, END, organiser=organiser, attendees=attendees, sequence=sequence, dtstamp=STAMP
    )
    return imip_message(
        calendar_text(event),
        sender=organiser,
        to=", ".join(attendees),
        message_id=f"<{uid}.{sequence}@{ms.DOMAIN}>",
        headers=headers,
    )


def cancel(uid: str, *attendees: str, sequence: int) -> bytes:
    event = vevent(
        uid, START, END, organiser=ORGANISER, attendees=attendees, sequence=sequence, dtstamp=STAMP
    )
    return imip_message(
        calendar_text(event, method="CANCEL"),
        method="CANCEL",
        sender=ORGANISER,
        to=", ".join(attendees),
        subject="Cancelled",
        message_id=f"<{uid}.cancel@{ms.DOMAIN}>",
    )


def reply(uid: str, attendee: str, partstat: str) -> bytes:
    """``attendee``'s REPLY to the organiser, as their mail client sends it."""
    event = vevent(
        uid,
        START,
        END,
        organiser=ORGANISER,
        attendees=(),
        dtstamp=STAMP,
        extra=f"ATTENDEE;PARTSTAT={partstat}:mailto:{attendee}",
    )
    return imip_message(
        calendar_text(event, method="REPLY"),
        method="REPLY",
        sender=attendee,
        to=ORGANISER,
        subject="Accepted",
        message_id=f"<{uid}.reply@{ms.DOMAIN}>",
    )


def uids(calendar: Calendar) -> list[str]:
    return sorted({str(e["UID"]) for e in calendar.walk("VEVENT")})


def partstats(site: ms.Site, user: str, uid: str) -> dict[str, str]:
    """ATTENDEE -> PARTSTAT of ``uid`` in ``user``'s store."""
    for event in ms.exported(site, user).walk("VEVENT"):
        if str(event["UID"]) == uid:
            attendees = event.get("ATTENDEE", [])
            attendees = attendees if isinstance(attendees, list) else [attendees]
            return {
                str(a).removeprefix("mailto:"): str(a.params.get("PARTSTAT")) for a in attendees
            }
    raise AssertionError(f"{uid} not in the store of {user}")


def busy(site: ms.Site, user: str) -> list[str]:
    """The busy periods of ``user`` (``imip-admin freebusy``), as text."""
    text = ms.admin(site, "freebusy", user).replace("\r\n ", "")
    return [
        v
        for line in text.splitlines()
        if line.startswith("FREEBUSY")
        for v in line.partition(":")[2].split(",")
    ]


def invite(system: MailSystem, uid: str = "meeting-1") -> str:
    """The organiser invites the person and the room; wait until all is done."""
    queue_id = system.send(request(uid, PERSON, ROOM), ORGANISER, PERSON, ROOM)
    system.settle()
    return queue_id


def resource_runs(system: MailSystem) -> tuple[list[str], list[str]]:
    """The recipients of ``imip-resource``'s runs, and those it delivered to."""
    return (
        [r for _, r, t in system.runs() if t == "imip-resource"],
        [r for _, r, t in system.deliveries() if t == "imip-resource"],
    )


class Scenarios:
    """The scenarios; a ``Test...`` subclass per MTA collects them.

    Its module provides the session fixture ``mta`` (the MTA running, its
    log) and the subclass names the MTA's :class:`MailSystem`.
    """

    mail_system: type[MailSystem]

    @pytest.fixture
    def system(
        self, mta: Mta, site: ms.Site, mailbox: Mailbox, second_mailbox: Mailbox
    ) -> Iterator[MailSystem]:
        """An empty queue, empty stores, empty Maildirs, and a log read from now."""
        system = self.mail_system(site, mta, mailbox, second_mailbox)
        system.clear_queue()
        ms.reset_site(site)
        mta.log.skip()
        yield system
        system.clear_queue()

    # -- the invitation -------------------------------------------------------

    def test_invitation_reaches_person_room_and_organiser(self, system: MailSystem) -> None:
        queue_id = invite(system)
        # The person's copy went through imip-person, then Dovecot LMTP.
        (delivered,) = messages(system.person)
        assert delivered["Message-ID"] == f"<meeting-1.0@{ms.DOMAIN}>"
        assert delivered["Delivered-To"] == PERSON
        assert "LMTP" in delivered["Received"]
        # The room's answer reached the organiser's Maildir.
        assert system.replies(system.organiser) == [("meeting-1", "ACCEPTED")]
        # The stores: the person's, the room's, and the organiser's own (outgoing copy).
        assert uids(ms.exported(system.site, PERSON)) == ["meeting-1"]
        assert uids(ms.exported(system.site, ROOM)) == ["meeting-1"]
        assert uids(ms.exported(system.site, ORGANISER)) == ["meeting-1"]
        assert "ACCEPTED" in ms.admin(system.site, "log", ROOM)
        # One pipe run for the person, the room, the organiser's outgoing copy
        # and the room's REPLY to the organiser.
        runs = Counter(t for _, _, t in system.runs())
        assert runs == {"imip-person": 2, "imip-resource": 1, "imip-person-outgoing": 1}
        ours = Counter((r, t) for q, r, t in system.deliveries() if q == queue_id)
        assert ours[(PERSON, "imip-person")] == 1
        assert ours[(ROOM, "imip-resource")] == 1
        # The outgoing copy: one run (above) for all its recipients, recording once.
        for recipient in system.outgoing_copy_to(PERSON, ROOM):
            assert ours[(recipient, "imip-person-outgoing")] == 1, ours
        transports = Counter(t for _, _, t in system.deliveries())
        assert transports["imip-person"] == 2  # the person, then the room's REPLY

    def test_one_log_line_per_delivery_with_the_queue_id(self, system: MailSystem) -> None:
        """Each pipe run the MTA logs has one outcome line, with the same queue id."""
        invite(system)
        mta_runs = Counter(queue_id for queue_id, _, _ in system.runs())
        agent_runs = Counter(queue_id for queue_id, _ in system.agent_outcomes())
        assert mta_runs == agent_runs
        assert {status for _, status in system.agent_outcomes()} == {"done"}

    def test_person_reply_through_the_mta_updates_the_organiser(self, system: MailSystem) -> None:
        invite(system)
        system.send(reply("meeting-1", PERSON, "ACCEPTED"), PERSON, ORGANISER)
        system.settle()
        assert partstats(system.site, ORGANISER, "meeting-1")[PERSON] == "ACCEPTED"
        # The person's REPLY is in the organiser's Maildir too (after the room's).
        assert sorted(system.replies(system.organiser)) == [("meeting-1", "ACCEPTED")] * 2

    # -- the room's calendar --------------------------------------------------

    def test_clash_is_declined_and_a_cancel_frees_the_room(self, system: MailSystem) -> None:
        invite(system, "meeting-1")
        system.send(request("meeting-2", ROOM), ORGANISER, ROOM)
        system.settle()
        assert sorted(system.replies(system.organiser)) == [
            ("meeting-1", "ACCEPTED"),
            ("meeting-2", "DECLINED"),
        ]

        assert busy(system.site, ROOM) == [f"{START}/{END}"]

        system.send(cancel("meeting-1", PERSON, ROOM, sequence=1), ORGANISER, PERSON, ROOM)
        system.settle()
        assert busy(system.site, ROOM) == []  # the declined meeting-2 is kept, not busy
        assert "meeting-1" not in uids(ms.exported(system.site, ROOM))
        assert uids(ms.exported(system.site, PERSON)) == []

        system.send(request("meeting-2", ROOM, sequence=1), ORGANISER, ROOM)
        system.settle()
        assert ("meeting-2", "ACCEPTED") in system.replies(system.organiser)
        assert busy(system.site, ROOM) == [f"{START}/{END}"]

    def test_an_owner_approves_by_mail_through_the_mta(self, system: MailSystem) -> None:
        """Issue 17: the room holds the request (TENTATIVE), asks its owner
        (the person), who answers "approve" by mail; the organiser then has
        ACCEPTED and the room is busy."""
        ms.admin(system.site, "prefs", "set", ROOM, "approvers", PERSON)
        ms.admin(system.site, "prefs", "set", ROOM, "approval", "always")
        system.send(request("approval-1", ROOM), ORGANISER, ROOM)
        system.settle()
        assert system.replies(system.organiser) == [("approval-1", "TENTATIVE")]
        assert busy(system.site, ROOM) == [f"{START}/{END}"]  # held, busy-tentative
        (asked,) = [m for m in messages(system.person) if "[approval " in str(m["Subject"])]
        answer = EmailMessage()
        answer["From"] = PERSON
        answer["To"] = ROOM
        answer["Subject"] = f"Re: {asked['Subject']}"
        answer["Message-ID"] = f"<approval-1.answer@{ms.DOMAIN}>"
        answer["In-Reply-To"] = str(asked["Message-ID"])
        answer.set_content("Approve: the board meets there.\n")
        system.send(bytes(answer), PERSON, ROOM)
        system.settle()
        assert sorted(system.replies(system.organiser)) == [
            ("approval-1", "ACCEPTED"),
            ("approval-1", "TENTATIVE"),
        ]
        assert partstats(system.site, ROOM, "approval-1")[ROOM] == "ACCEPTED"
        assert ms.admin(system.site, "approvals") == ""

    def test_held_lock_defers_and_the_mta_delivers_once_free(self, system: MailSystem) -> None:
        with room_locked(system.site):
            queue_id = system.send(request("meeting-1", ROOM), ORGANISER, ROOM)
            ms.wait_for(
                lambda: (queue_id, "deferred") in system.agent_outcomes(),
                "the agent did not defer",
                system.explain,
            )
            ms.wait_for(
                lambda: system.deferred(queue_id, ROOM),
                f"{system.name} did not defer",
                system.explain,
            )
            assert system.replies(system.organiser) == []
        system.flush()
        system.settle()
        assert system.replies(system.organiser) == [("meeting-1", "ACCEPTED")]
        assert uids(ms.exported(system.site, ROOM)) == ["meeting-1"]
        assert ms.admin(system.site, "log", ROOM).count("meeting-1") == 1
        outcomes = [status for qid, status in system.agent_outcomes() if qid == queue_id]
        # Deferred first, then done once; the other "done" is the organiser's copy.
        assert sorted(outcomes) == ["deferred", "done", "done"], outcomes
        delivered = [d for d in system.deliveries() if d == (queue_id, ROOM, "imip-resource")]
        assert len(delivered) == 1, system.explain()

    # -- what must not be answered --------------------------------------------

    def test_unusable_message_bounces_with_our_reason(self, system: MailSystem) -> None:
        """No ORGANIZER: 65, and the bounce says why with our one status line."""
        event = vevent("broken-1", START, END, organiser="", attendees=(ROOM,), dtstamp=STAMP)
        message = imip_message(calendar_text(event), sender=ORGANISER, to=ROOM)
        queue_id = system.send(message, ORGANISER, ROOM)
        system.settle()
        bounced = system.bounce_lines(queue_id, ROOM)
        assert len(bounced) == 1, bounced
        assert system.bounce_logged in bounced[0], bounced
        (dsn,) = messages(system.organiser)
        assert dsn.get_content_type() == "multipart/report"
        text = dsn.as_string()  # the delivery-status part is its second part
        for expected in system.bounce_says:
            assert expected in text, text
        assert "Traceback" not in text
        assert uids(ms.exported(system.site, ROOM)) == []

    def test_null_sender_and_auto_submitted_get_no_reply(self, system: MailSystem) -> None:
        system.send(request("from-bounce", ROOM), "", ROOM)
        system.send(
            request("automatic", ROOM, headers={"Auto-Submitted": "auto-generated"}),
            ORGANISER,
            ROOM,
        )
        system.settle()
        assert messages(system.organiser) == []
        assert not system.received_from(ROOM)  # the room sent nothing
        # Both reached the room, once each.
        runs, delivered = resource_runs(system)
        assert runs == delivered == [ROOM] * 2

    def test_resources_answering_each_other_do_not_loop(self, system: MailSystem) -> None:
        """room2 invites room: room answers once; room2 never answers a REPLY."""
        system.send(request("rooms", ROOM, organiser=ROOM2), ROOM2, ROOM)
        system.send(request("ourselves", ROOM, organiser=ROOM), ROOM, ROOM)
        system.settle()
        runs, delivered = resource_runs(system)
        assert Counter(runs) == Counter(delivered) == {ROOM: 2, ROOM2: 1}
        assert "loop" not in system.log.text().lower()
        assert messages(system.organiser) == []
        assert os.path.exists(system.site.log)

    # -- adding a calendar user -------------------------------------------------

    def test_a_room_added_with_imip_admin_accepts_the_first_request(
        self, system: MailSystem
    ) -> None:
        """imip-admin add-resource --apply, then one SMTP message: ACCEPTED (issue 14)."""
        assert not system.accepts(ROOM3)  # not a resource yet: refused at RCPT
        add = (
            *("add-resource", ROOM3, "--name", "Room 3", "--tz", "Europe/Berlin"),
            *("--capacity", "2", "--apply", *system.mta.options()),
        )
        try:
            added = system.imip_admin(*add)
            assert added.returncode == 0, added.stdout + added.stderr
            assert added.stderr == ""
            system.send(request("room3-first", ROOM3), ORGANISER, ROOM3)
            system.settle()
            assert system.replies(system.organiser) == [("room3-first", "ACCEPTED")]
            assert ms.admin(system.site, "prefs", "get", ROOM3, "CN") == "Room 3\n"
            routed = system.resource_tables
            assert all(len(system.entries(table, ROOM3)) == 1 for table in routed)

            again = system.imip_admin(*add)  # idempotent: nothing added twice
            assert again.returncode == 0, again.stdout + again.stderr
            assert "already" in again.stdout
            assert all(len(system.entries(table, ROOM3)) == 1 for table in routed)
        finally:
            removed = system.imip_admin("remove-resource", ROOM3, "--apply", *system.mta.options())
        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert all(system.entries(table, ROOM3) == [] for table in system.resource_tables)
        assert not system.accepts(ROOM3)
