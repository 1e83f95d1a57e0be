"""End to end through Postfix: the scenarios of ``scenarios.py``.

Postfix runs from our ``conf/postfix`` files (see ``mailsystem.py``) with
the agents installed in a world-readable venv and run as ``imip-agent``;
people's mail reaches Dovecot (``conftest.py``) over LMTP. Needs root and
Postfix (``tools/ci-services`` installs it); skips otherwise, and fails
under ``CI=true``.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.mta import mailsystem as ms
from tests.mta.conftest import POSTFIX, REAPER, Dovecot, _accepts, _stop, _unavailable
from tests.mta.scenarios import OUTGOING, Delivery, MailSystem, Scenarios

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
def mta(site: ms.Site, dovecot: Dovecot) -> Iterator[ms.MailLog]:
    """Postfix from conf/postfix, on 127.0.0.1:25, for the whole session."""
    if ms.postfix_running():
        if not ms.postfix_is_ours():
            _unavailable("a Postfix not configured by these tests is running")
        ms.stop_postfix()
    if _accepts(socket.AF_INET, ("127.0.0.1", 25)):
        _unavailable("something else listens on 127.0.0.1:25")
    ms.configure_postfix(site, dovecot)
    ms.clear_queue()
    process = subprocess.Popen(
        [sys.executable, "-c", REAPER, str(POSTFIX), "start-fg"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        ms.wait_for(
            lambda: _accepts(socket.AF_INET, ("127.0.0.1", 25)),
            "Postfix did not listen on 127.0.0.1:25",
            lambda: ms.MailLog().text()[-3000:],
        )
        yield ms.MailLog()
    finally:
        subprocess.run(["postfix", "stop"], capture_output=True, check=False)
        _stop(process)


class PostfixSystem(MailSystem):
    """Postfix's queue (``postqueue``) and log (``maillog_file``)."""

    name = "Postfix"
    # Postfix takes our status code as the DSN's and the rest as its text.
    bounce_logged = "dsn=5.6.0, status=bounced (REQUEST without ORGANIZER"
    bounce_says = ("Status: 5.6.0", "Diagnostic-Code: x-unix; REQUEST without ORGANIZER")

    def queue(self) -> list[dict[str, object]]:
        return ms.queue()

    def clear_queue(self) -> None:
        ms.clear_queue()

    def flush(self) -> None:
        ms.flush_queue()

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
