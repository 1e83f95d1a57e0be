"""Others' published free/busy in "find a time": fetched from the URLs a
user names, only under the site's ``freebusy_urls`` prefixes, from a real
HTTP server on loopback (:mod:`imiptools.views.published`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from imip_agent.manager.app import create_app
from imiptools.dates import FixedClock, parse_datetime
from imiptools.mail.send import DirectorySender
from imiptools.views.published import MAX_BYTES, Unreadable, allowed, fetch_busy
from tests.manager.support import ALICE, NOW, invited, settings_of
from tests.manager.test_findtime import row, summary

AS_ALICE = {"REMOTE_USER": ALICE}
ERIN = "erin@elsewhere.example"
ERINS_FREEBUSY = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//elsewhere//EN\r\nMETHOD:PUBLISH\r\n"
    "BEGIN:VFREEBUSY\r\nDTSTAMP:20300101T000000Z\r\n"
    f"ORGANIZER:mailto:{ERIN}\r\n"
    "DTSTART:20300101T000000Z\r\nDTEND:20300201T000000Z\r\n"
    "FREEBUSY:20300108T110000Z/20300108T120000Z\r\n"
    "FREEBUSY;FBTYPE=FREE:20300108T130000Z/20300108T140000Z\r\n"
    "END:VFREEBUSY\r\nEND:VCALENDAR\r\n"
).encode()


class _Files(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/fb/erin.ifb":
            self._send(200, ERINS_FREEBUSY)
        elif self.path == "/fb/huge.ifb":
            self._send(200, b"X" * (MAX_BYTES + 10))
        elif self.path == "/fb/away":
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{self.server.server_port}/x.ifb")
            self.end_headers()
        else:
            self._send(404, b"no")

    def _send(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "text/calendar")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}/fb/"
    finally:
        httpd.shutdown()
        httpd.server_close()


SPAN = (datetime(2030, 1, 8, tzinfo=UTC), datetime(2030, 1, 9, tzinfo=UTC))


def test_the_busy_time_published_at_an_allowed_url(server: str) -> None:
    found = fetch_busy(f"{server}erin.ifb", [server], *SPAN)
    assert found.label == ERIN
    assert [(p.start.hour, p.end.hour) for p in found.busy] == [(11, 12)], "FREE is not busy"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("huge.ifb", "larger than"),
        ("away", "redirected outside"),
        ("missing.ifb", "answered 404"),
    ],
)
def test_what_cannot_be_read_is_said(server: str, path: str, reason: str) -> None:
    with pytest.raises(Unreadable, match=reason):
        fetch_busy(f"{server}{path}", [server], *SPAN)


def test_only_the_sites_prefixes_are_fetched(server: str) -> None:
    assert not allowed("file:///etc/passwd", ["file:///"])
    assert not allowed("http://user:pw@127.0.0.1/fb/x", ["http://user:pw@127.0.0.1/"])
    with pytest.raises(Unreadable, match="not an allowed address"):
        fetch_busy(server.replace("/fb/", "/other/"), [server], *SPAN)


def test_find_a_time_reads_published_free_busy(tmp_path: Path, server: str) -> None:
    agent = invited(tmp_path)
    settings = settings_of(agent).updated(freebusy_urls=server)
    clock = FixedClock(parse_datetime(NOW))
    app = create_app(settings, clock, DirectorySender(tmp_path / "sent"), secure_cookies=False)
    client = app.test_client()
    form = client.get(f"/calendar/{ALICE}/find-time", environ_base=AS_ALICE)
    assert 'name="urls"' in form.get_data(as_text=True)
    query = {
        "duration": "60",
        "from": "2030-01-08",
        "days": "1",
        "urls": f"{server}erin.ifb http://127.0.0.1:1/elsewhere.ifb",
    }
    page = client.get(
        f"/calendar/{ALICE}/find-time", query_string=query, environ_base=AS_ALICE
    ).get_data(as_text=True)
    assert row(page, ERIN)[4:6] == ["busy", "busy"]  # 11:00-12:00 UTC
    assert summary(page).startswith("Everyone free: Tue 08 Jan 09:00–10:00; Tue 08 Jan 12:00–13:00")
    assert "Not read: http://127.0.0.1:1/elsewhere.ifb (not an allowed address" in page
    plain = create_app(
        settings_of(agent), clock, DirectorySender(tmp_path / "sent"), secure_cookies=False
    )
    shown = plain.test_client().get(f"/calendar/{ALICE}/find-time", environ_base=AS_ALICE)
    assert 'name="urls"' not in shown.get_data(as_text=True), "off unless the site allows it"
