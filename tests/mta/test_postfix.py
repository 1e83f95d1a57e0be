"""End to end through Postfix: the scenarios of ``scenarios.py``.

A private Postfix (``postfix -c DIR``, see ``mailsystem.py``) runs from our
``conf/postfix`` files with the agents installed in a venv they can read and
run as ``nobody``; people's mail reaches the private Dovecot
(``conftest.py``) over LMTP. Needs root and Postfix (``tools/ci-services``
installs it); skips otherwise, and fails under ``CI=true``. The system's
own Postfix, if any, is neither read nor stopped: the instance listens on a
port of its own.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from imiptools.config import load_settings
from imiptools.mail.keyring import Keyring
from imiptools.site import open_site
from tests.mta import mailsystem as ms
from tests.mta.conftest import (
    AGENT_USER,
    POSTFIX,
    Dovecot,
    _accepts,
    _stop,
    _unavailable,
    free_port,
    start_reaped,
)
from tests.mta.scenarios import (
    ORGANISER,
    OUTGOING,
    ROOM,
    Delivery,
    MailSystem,
    Scenarios,
    messages,
    request,
    uids,
)
from tests.openpgp.conftest import Party
from tests.openpgp.messages import gpg_encrypted
from tests.openpgp.test_resource import opened
from tests.support import parse_calendar_part, partstat_of

pytestmark = pytest.mark.skipif(
    os.environ.get("IMIP_TEST_EXIM") == "1" and not POSTFIX.exists(),
    reason="IMIP_TEST_EXIM=1 and Exim is the installed MTA (Postfix cannot be installed beside"
    " it; tools/ci-services without the variable brings Postfix back)",
)

#: Postfix's log line of a run of one of our pipe services (one recipient each):
#: ``4F2A1234: to=<imiptest2@example.test>, relay=imip-person, ..., status=sent (...)``.
PIPE_RUN = (
    r": ([0-9A-F]+): to=<([^>]*)>, (?:orig_to=<[^>]*>, )?relay=(imip-[a-z-]+), .*, status=(\w+)"
)


@pytest.fixture(scope="session")
def mta(site: ms.Site, dovecot: Dovecot, private_root: Path) -> Iterator[ms.PrivatePostfix]:
    """A private Postfix from conf/postfix, on a free port of 127.0.0.1, for the session."""
    if not POSTFIX.exists():
        _unavailable(f"{POSTFIX} is not installed (run tools/ci-services as root)")
    postfix = ms.configure_postfix(site, dovecot, private_root / "postfix", free_port())
    process = start_reaped(ms.start_postfix(postfix))
    try:
        ms.wait_for(
            lambda: (
                _accepts(socket.AF_INET, ("127.0.0.1", postfix.port)) and postfix.logging_ready()
            ),
            f"Postfix did not listen on 127.0.0.1:{postfix.port}",
            lambda: postfix.log.text()[-3000:],
        )
        ms.write_config(site, f"127.0.0.1:{postfix.port}")
        yield postfix
    finally:
        ms.write_config(site, ms.NOWHERE)
        ms.stop_postfix(postfix)
        _stop(process)


class PostfixSystem(MailSystem):
    """Postfix's queue (``postqueue``) and log (``maillog_file``)."""

    name = "Postfix"
    # Postfix takes our status code as the DSN's and the rest as its text.
    bounce_logged = "dsn=5.6.0, status=bounced (REQUEST without ORGANIZER"
    bounce_says = ("Status: 5.6.0", "Diagnostic-Code: x-unix; REQUEST without ORGANIZER")
    resource_tables = ("imip-transport", "imip-resources")

    def _pipe_runs(self) -> list[tuple[str, str, str, str]]:
        """(queue id, recipient, service, status) of every pipe line, whatever its status."""
        found = []
        for line in self.log.pipe_lines():
            match = re.search(PIPE_RUN, line)
            assert match, f"a pipe line not understood: {line}"
            found.append((match.group(1), match.group(2), match.group(3), match.group(4)))
        return found

    def runs(self) -> list[Delivery]:
        """Every run: delivered, deferred or bounced (one line each)."""
        return [(q, r, t) for q, r, t, _ in self._pipe_runs()]

    def deliveries(self) -> list[Delivery]:
        return [(q, r, t) for q, r, t, status in self._pipe_runs() if status == "sent"]

    def deferred(self, queue_id: str, recipient: str) -> bool:
        pattern = rf"{queue_id}: to=<{re.escape(recipient)}>, .*status=deferred"
        return re.search(pattern, self.log.text()) is not None

    def bounce_lines(self, queue_id: str, recipient: str) -> list[str]:
        """Each pipe line of delivering ``queue_id`` to ``recipient`` (one per attempt)."""
        return [line for line in self.log.pipe_lines() if f"{queue_id}: to=<{recipient}>" in line]

    def received_from(self, sender: str) -> bool:
        return f"from=<{sender}>" in self.log.text()

    def outgoing_copy_to(self, *recipients: str) -> tuple[str, ...]:
        """sender_bcc_maps: one more recipient, whatever the message's."""
        return (OUTGOING,)


class TestPostfix(Scenarios):
    """The scenarios through Postfix."""

    mail_system = PostfixSystem

    # -- imip-admin check-install: the Postfix side ---------------------------

    def check_install(self, system: MailSystem) -> tuple[int, list[str]]:
        done = system.imip_admin("check-install", "--user", AGENT_USER, *system.mta.options())
        assert done.stderr == "", done.stderr
        return done.returncode, done.stdout.splitlines()

    def test_check_install_passes_for_the_routed_users(self, system: MailSystem) -> None:
        for user in (ROOM, ORGANISER):
            ms.admin(system.site, "init-user", user, *(["--resource"] if user == ROOM else []))
        code, lines = self.check_install(system)
        assert code == 0, "\n".join(lines)
        directory = system.mta.directory
        for expected in (
            f"ok   Postfix service imip-resource: runs {system.site.program('imip-resource')}"
            f" as {AGENT_USER}",
            f"ok   Postfix map hash:{directory}/imip-transport: compiled",
            "ok   Postfix imip-resource_destination_recipient_limit = 1",
            f"ok   {ROOM} (resource): Postfix routes it to imip-resource",
            f"ok   {ORGANISER} (person): Postfix routes it to imip-person, their mail sent to"
            " imip-person-outgoing",
        ):
            assert expected in lines, "\n".join(lines)

    def test_check_install_finds_unrouted_users_and_an_uncompiled_map(
        self, system: MailSystem
    ) -> None:
        """A resource Postfix would refuse, a person it does not route, a stale map."""
        unlisted, stranger = f"room9@{ms.RESOURCES}", f"carol@{ms.DOMAIN}"
        ms.admin(system.site, "init-user", unlisted, "--resource")
        ms.admin(system.site, "init-user", stranger)
        transport = system.mta.table("imip-transport")
        compiled = Path(f"{transport}.db").stat().st_mtime
        os.utime(transport, (compiled + 10, compiled + 10))
        try:
            code, lines = self.check_install(system)
        finally:
            os.utime(transport, (compiled - 10, compiled - 10))
        assert code == 75, "\n".join(lines)
        fails = [line for line in lines if line.startswith("FAIL")]
        assert fails == [
            f"FAIL Postfix map hash:{transport}: changed since it was compiled"
            f" (run postmap hash:{transport})",
            f"FAIL {stranger} (person): Postfix routes it to no imip-agent service, not"
            f" imip-person (imip-admin add-person {stranger} --apply)",
            f"FAIL {unlisted}: refused at RCPT: not in relay_recipient_maps"
            f" (imip-admin add-resource {unlisted} --apply)",
        ], "\n".join(lines)
        assert lines[-1].startswith("4.3.5 check-install: 3 problem(s)")

    def test_add_resource_refuses_tables_that_main_cf_does_not_use(
        self, system: MailSystem, tmp_path: Path
    ) -> None:
        """Editing maps Postfix never reads would route nothing: 75, nothing written."""
        (tmp_path / "main.cf").write_text("compatibility_level = 3.6\n")
        for name in ("imip-transport", "imip-resources"):
            (tmp_path / name).write_text("")
        add = ("add-resource", ROOM, "--name", "Room", "--tz", "UTC", "--apply")
        done = system.imip_admin(*add, "--mta", "postfix", "--postfix-config", str(tmp_path))
        assert (done.returncode, done.stdout) == (
            75,
            f"4.3.5 {tmp_path}/imip-transport is not a map of {tmp_path}/main.cf (transport_maps,"
            " relay_recipient_maps, sender_bcc_maps): add the lines of conf/postfix/main.cf\n",
        )
        assert (tmp_path / "imip-transport").read_text() == ""
        assert not (system.site.directory("store") / f"mailto:{ROOM}").exists()

    # -- OpenPGP (issue 20) -----------------------------------------------------

    def test_an_encrypted_signed_invitation_through_postfix(self, system: MailSystem) -> None:
        """The organiser sends the room an invitation encrypted to its key and
        signed; Postfix pipes it to imip-resource (as the agents' user, with
        the keyring an admin filled as root); the room books it and its REPLY,
        encrypted to the organiser and signed, reaches the organiser's Maildir,
        where the organiser's key opens it."""
        keys = system.site.root / "keys"
        homes = Path(tempfile.mkdtemp(prefix="pgp-mta-"))
        try:
            room, organiser = _parties(homes)
            for party, data in ((room, room.secret()), (organiser, organiser.public())):
                source = homes / f"{party.home.name}.asc"
                source.write_bytes(data)
                done = system.imip_admin("key", "import", party.address, str(source))
                assert done.returncode == 0, done.stdout + done.stderr
            assert keys.stat().st_uid == pwd.getpwnam(AGENT_USER).pw_uid
            ms.admin(system.site, "prefs", "set", ROOM, "require_signature", "all")
            message = gpg_encrypted(request("sealed-1", ROOM), organiser, room)
            system.send(message, ORGANISER, ROOM)
            system.settle()
            (reply,) = [m for m in messages(system.organiser) if m["From"] == ROOM]
            inner = opened(reply, organiser, room)
            assert partstat_of(parse_calendar_part(inner), ROOM) == "ACCEPTED"
            assert uids(ms.exported(system.site, ROOM)) == ["sealed-1"]
            records = open_site(load_settings(str(system.site.config))).records(f"mailto:{ROOM}")
            (decision,) = [json.loads(line) for line in records.decisions()]
            assert decision["signed_by"] == Keyring(organiser.home).keys(ORGANISER)[0].fingerprint
        finally:
            ms.as_agent(["gpgconf", "--homedir", str(keys), "--kill", "gpg-agent"])
            shutil.rmtree(keys, ignore_errors=True)
            for home in homes.iterdir():
                Keyring(home).stop_agents()
            shutil.rmtree(homes, ignore_errors=True)


def _parties(homes: Path) -> tuple[Party, Party]:
    """The room's and the organiser's keys, each in a gpg home of its own
    that knows the other's public key."""
    made = []
    for address in (ROOM, ORGANISER):
        home = homes / address.split("@")[0]
        Keyring(home).generate(address)
        made.append(Party(address, home))
    room, organiser = made
    organiser.gpg("--import", data=room.public())
    return room, organiser
