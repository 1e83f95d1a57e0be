"""Real mail clients answer a real Outlook invitation (issue 19 item 3).

NeoMutt and alot, from Debian's packages (``tools/ci-clients``), run in a
private tmux server with the configuration shipped in ``conf/clients/``,
copied as a user would copy it into a home directory made for the test.
Keys are sent with ``send-keys`` and the screen read with
``capture-pane``. The mailbox is a Maildir holding Exchange's invitation
from the interop corpus (``text/calendar`` undisposed inside
multipart/alternative), read where it lies. What the client hands to
sendmail is captured by a script; the REPLY must be read by icalendar and
vobject, and the attendee's calendar must hold the answer. Then the
organiser records the REPLY with ``imip-client apply`` and sees it.

Only the test's paths are injected: a wrapper named ``imip-client`` adds
``--calendar``, ``--now`` and ``--sendmail`` (NeoMutt), and a hooks file
imports the shipped one and sets its ``CALENDAR``, ``CLOCK`` and
``SENDMAIL`` (alot). Without the programs or the corpus the tests skip
here and fail in CI.

aerc's configuration (``conf/clients/aerc``) was tried by hand the same
way and works, but aerc 0.14 under tmux drops the answer key in about one
run of three on a loaded machine, so it has no test here.
"""

from __future__ import annotations

import email
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage, MIMEPart
from pathlib import Path

import pytest
from icalendar import Calendar

from imiptools.itip.objects import find_attendee
from tests.support import BIN, IN_CI, INTEROP, ROOT, parse_calendar_part, partstat_of

INVITATION = INTEROP / "outlook" / "tine20__invite_outlook.eml"
ATTENDEE = "oliver@roth.myftp.org"
ORGANISER = "oliver.roth@mobi.ch"
NOW = "2012-11-17T09:00:00Z"
SUBJECT = "Test von Outlook an Tine20"
CLIENTS = ROOT / "conf" / "clients"
#: How long to wait for a screen or a file before failing (a wait, not a
#: measurement: the test passes as soon as the text appears).
PATIENCE = 60.0


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def _require(*programs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        _unavailable(f"not installed: {', '.join(missing)} (run tools/ci-clients as root)")
    if not INVITATION.exists():
        _unavailable(f"the interop corpus is missing: {INVITATION}")


class Tmux:
    """A private tmux server (its own socket) running one program."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def _tmux(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-S", str(self.socket), "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def start(self, command: list[str], env: dict[str, str]) -> None:
        """Run ``command`` in a 120x50 window with exactly ``env`` (tmux
        would otherwise put its own PATH in)."""
        line = " ".join(_quote(w) for w in ["env", "-i", *_pairs(env), *command])
        self._tmux("new-session", "-d", "-x", "120", "-y", "50", line)

    def keys(self, *keys: str) -> None:
        """Press ``keys`` one by one (tmux key names: ``Enter``, ``v``)."""
        for key in keys:
            self._tmux("send-keys", key)
            time.sleep(0.2)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p")

    def wait_for(self, text: str) -> str:
        """The screen once it shows ``text``; fails, showing it, when it
        does not within PATIENCE seconds."""
        deadline = time.monotonic() + PATIENCE
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                pytest.fail(f"the screen never showed {text!r}:\n{screen}")
            time.sleep(0.3)

    def stop(self) -> None:
        subprocess.run(
            ["tmux", "-S", str(self.socket), "kill-server"], capture_output=True, check=False
        )


def _pairs(env: dict[str, str]) -> list[str]:
    return [f"{name}={value}" for name, value in env.items()]


def _quote(word: str) -> str:
    return "'" + word.replace("'", "'\\''") + "'"


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    server = Tmux(tmp_path / "tmux.sock")
    yield server
    server.stop()


def _maildir(root: Path) -> Path:
    for name in ("cur", "new", "tmp"):
        (root / name).mkdir(parents=True)
    shutil.copyfile(INVITATION, root / "new" / "1.eml")
    return root


def _capture_script(tmp_path: Path) -> tuple[Path, Path]:
    """A sendmail that keeps each message and its arguments in ``out/``."""
    out = tmp_path / "out"
    out.mkdir()
    script = tmp_path / "capture-sendmail"
    script.write_text(
        "#!/bin/sh\n"
        f'n=$(ls "{out}" | wc -l)\n'
        f'printf \'%s\\n\' "$*" > "{out}/$n.args"\n'
        f'cat > "{out}/$n.eml"\n'
    )
    script.chmod(0o755)
    return script, out


def _wrapper(tmp_path: Path, calendar: Path, sendmail: Path) -> Path:
    """A directory holding ``imip-client``: the real one with the test's
    calendar, time and sendmail."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "imip-client"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'exec "{BIN / "imip-client"}" --calendar "{calendar}" --now {NOW}'
        f' --sendmail "{sendmail}" "$@"\n'
    )
    wrapper.chmod(0o755)
    return bin_dir


def _sent(out: Path) -> list[tuple[str, EmailMessage]]:
    """The captured messages, waited for (the client sends in the background)."""
    deadline = time.monotonic() + PATIENCE
    while not list(out.glob("*.eml")) and time.monotonic() < deadline:
        time.sleep(0.3)
    time.sleep(0.5)
    found = []
    for path in sorted(out.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        found.append((path.with_suffix(".args").read_text().strip(), message))
    return found


def _client(calendar: Path, identity: str, *argv: str) -> dict[str, object]:
    done = subprocess.run(
        [
            str(BIN / "imip-client"),
            "--calendar",
            str(calendar),
            "--identity",
            identity,
            "--now",
            NOW,
            *argv,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    document: dict[str, object] = json.loads(done.stdout)
    assert document["ok"], document
    return document


def _check_answered(calendar: Path, out: Path) -> EmailMessage:
    """One REPLY, ACCEPTED, to the organiser, readable by icalendar and
    vobject; the attendee's calendar holds the answer."""
    ((arguments, reply),) = _sent(out)
    assert arguments.split()[-1] == ORGANISER and f"-f {ATTENDEE}" in arguments
    assert partstat_of(parse_calendar_part(reply), ATTENDEE) == "ACCEPTED"
    assert _client(calendar, ATTENDEE, "pending")["pending"] == []
    seen = _client(calendar, ATTENDEE, "inspect", str(INVITATION))
    (obj,) = seen["inspection"]["objects"]  # type: ignore[index]
    assert obj["state"] == "answered"
    assert _stored_answer(calendar, ATTENDEE) == "PARTSTAT=ACCEPTED"
    return reply


def _stored_answer(calendar: Path, identity: str) -> str:
    """The attendee's PARTSTAT parameter in ``identity``'s stored copy of
    the event, read from its vdir export."""
    vdir = calendar.with_name(calendar.name + "-vdir")
    _client(calendar, identity, "export", "--vdir", str(vdir))
    (item,) = vdir.glob("*.ics")
    event = Calendar.from_ical(item.read_bytes()).walk("VEVENT")[0]
    attendee = find_attendee(event, ATTENDEE)
    return f"PARTSTAT={attendee.params.get('PARTSTAT', '')}" if attendee is not None else ""


def _organiser_records(tmp_path: Path, reply: EmailMessage) -> None:
    """The organiser's side: its invitation, then the REPLY, recorded with
    imip-client; the attendee's answer is in the organiser's event."""
    calendar = tmp_path / "organiser"
    _client(calendar, ORGANISER, "apply", "--sent", str(INVITATION))
    path = tmp_path / "reply.eml"
    path.write_bytes(reply.as_bytes())
    assert _stored_answer(calendar, ORGANISER) == "PARTSTAT=NEEDS-ACTION"
    _client(calendar, ORGANISER, "apply", str(path))
    assert _stored_answer(calendar, ORGANISER) == "PARTSTAT=ACCEPTED"


def test_neomutt_shows_and_accepts_an_outlook_invitation(tmux: Tmux, tmp_path: Path) -> None:
    _require("tmux", "neomutt")
    home, calendar = tmp_path / "home", tmp_path / "calendar"
    shutil.copytree(CLIENTS / "neomutt", home / ".config" / "neomutt")
    sendmail, out = _capture_script(tmp_path)
    bin_dir = _wrapper(tmp_path, calendar, sendmail)
    mail = _maildir(tmp_path / "mail")
    muttrc = tmp_path / "muttrc"
    muttrc.write_text(
        f"set folder = {mail}\nset spoolfile = {mail}\nset mbox_type = Maildir\n"
        f"set sendmail = {sendmail}\nset header_cache = ''\n"
        "ignore *\nunignore from: to: date: subject:\n"
        f"source {home}/.config/neomutt/imip.muttrc\n"
        f"setenv IMIP_CLIENT_IDENTITY {ATTENDEE}\n"
    )
    env = {"HOME": str(home), "PATH": f"{bin_dir}:/usr/bin:/bin", "TERM": "xterm"}
    tmux.start(["neomutt", "-n", "-F", str(muttrc)], env)
    tmux.wait_for(SUBJECT)
    tmux.keys("Enter")
    pager = tmux.wait_for("state:     new")
    assert f"REQUEST {SUBJECT}" in pager and f"you:       {ATTENDEE} NEEDS-ACTION" in pager
    tmux.keys("v")
    tmux.wait_for("text/calendar")
    tmux.keys("*", ",", "a")
    tmux.wait_for(f"sent to {ORGANISER}")
    reply = _check_answered(calendar, out)
    _organiser_records(tmp_path, reply)


def test_alot_hook_accepts_an_outlook_invitation(tmux: Tmux, tmp_path: Path) -> None:
    _require("tmux", "alot", "notmuch")
    system = subprocess.run(
        ["/usr/bin/python3", "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if system != str(sys.version_info[:2]):
        _unavailable(f"alot's python {system} cannot load this venv's {sys.version_info[:2]}")
    home, calendar = tmp_path / "home", tmp_path / "calendar"
    config = home / ".config" / "alot"
    config.mkdir(parents=True)
    shutil.copyfile(CLIENTS / "alot" / "hooks.py", config / "imip_hooks.py")
    sendmail, out = _capture_script(tmp_path)
    (config / "hooks.py").write_text(
        f"import sys\nsys.path.insert(0, {str(config)!r})\n"
        "import imip_hooks\nfrom imip_hooks import *\nimip_hooks._library()\n"
        "from imiptools.dates import FixedClock, parse_datetime\n"
        f"imip_hooks.CLOCK = FixedClock(parse_datetime({NOW!r}))\n"
        f"imip_hooks.CALENDAR = {str(calendar)!r}\n"
        f"imip_hooks.SENDMAIL = [{str(sendmail)!r}]\n"
    )
    (config / "config").write_text(
        (CLIENTS / "alot" / "config").read_text()
        + f"\n[accounts]\n  [[oliver]]\n    realname = Oliver\n    address = {ATTENDEE}\n"
        f"    sendmail_command = {sendmail}\n"
    )
    mail = _maildir(tmp_path / "mail")
    notmuch = tmp_path / "notmuch-config"
    notmuch.write_text(
        f"[database]\npath={mail}\n[user]\nname=Oliver\nprimary_email={ATTENDEE}\n"
        "[new]\ntags=unread;inbox;\n"
    )
    subprocess.run(
        ["notmuch", "new"],
        env={**os.environ, "NOTMUCH_CONFIG": str(notmuch)},
        capture_output=True,
        check=True,
    )
    env = {
        "HOME": str(home),
        "PATH": "/usr/bin:/bin",
        "TERM": "xterm",
        "NOTMUCH_CONFIG": str(notmuch),
        "IMIP_AGENT_VENV": sys.prefix,
    }
    log = tmp_path / "alot.log"
    tmux.start(["alot", "-l", str(log), "-n", str(notmuch), "-c", str(config / "config")], env)
    tmux.wait_for(SUBJECT)
    tmux.keys("Enter")
    tmux.wait_for("[1: thread]")
    tmux.keys(",", "a")
    found = _sent(out)
    assert found, f"nothing was sent; alot's log:\n{log.read_text() if log.exists() else ''}"
    reply = _check_answered(calendar, out)
    _organiser_records(tmp_path, reply)


def _gpg(home: Path, *args: str, data: bytes = b"") -> bytes:
    done = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback", *args],
        input=data,
        capture_output=True,
        check=True,
    )
    return done.stdout


def _keyring(tmp_path: Path) -> Path:
    """A throwaway GnuPG home with keys for the attendee and the organiser
    (each an ed25519 key with a cv25519 encryption subkey, no passphrase)."""
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    for who in (ATTENDEE, ORGANISER):
        _gpg(home, "--passphrase", "", "--quick-gen-key", who, "future-default", "default", "never")
    return home


def _encrypted_invitation(home: Path) -> bytes:
    """The Outlook invitation as PGP/MIME (RFC 3156): its body entity
    signed by the organiser and encrypted to the attendee, the envelope
    headers left outside, as ``gpg --encrypt --sign`` makes it."""
    original = email.message_from_bytes(INVITATION.read_bytes(), policy=policy.default)
    inner = EmailMessage(policy=policy.SMTP)
    for name, value in original.items():
        if name.lower().startswith("content-"):
            inner[name] = value
    inner.set_payload(original.get_payload())
    armoured = _gpg(
        home,
        "--armor",
        "--trust-model",
        "always",
        "--encrypt",
        "--sign",
        "--local-user",
        ORGANISER,
        "--recipient",
        ATTENDEE,
        data=inner.as_bytes(policy=policy.SMTP),
    )
    outer = EmailMessage(policy=policy.SMTP)
    outer["From"] = f"Oliver Roth <{ORGANISER}>"
    for name in ("To", "Subject", "Date", "Message-ID"):
        outer[name] = str(original[name])
    outer["MIME-Version"] = "1.0"
    control, payload = MIMEPart(policy=policy.SMTP), MIMEPart(policy=policy.SMTP)
    control.set_content(b"Version: 1\r\n", "application", "pgp-encrypted", cte="7bit")
    payload.set_content(armoured, "application", "octet-stream", cte="7bit", filename="msg.asc")
    outer.set_type("multipart/encrypted")
    outer.set_param("protocol", "application/pgp-encrypted")
    outer.set_payload([control, payload])
    return outer.as_bytes(policy=policy.SMTP)


def test_neomutt_answers_an_encrypted_invitation_encrypted(tmux: Tmux, tmp_path: Path) -> None:
    """Issue 19 item 4: NeoMutt decrypts and verifies the invitation, hands
    imip-client the cleartext part, and signs and encrypts the REPLY that
    imip-client postponed for it, to the organiser's key."""
    _require("tmux", "neomutt", "gpg")
    keys = _keyring(tmp_path)
    home, calendar = tmp_path / "home", tmp_path / "calendar"
    shutil.copytree(CLIENTS / "neomutt", home / ".config" / "neomutt")
    sendmail, out = _capture_script(tmp_path)
    bin_dir = _wrapper(tmp_path, calendar, sendmail)
    mail, postponed = tmp_path / "mail", tmp_path / "postponed"
    for name in ("cur", "new", "tmp"):
        (mail / name).mkdir(parents=True)
    (mail / "new" / "1.eml").write_bytes(_encrypted_invitation(keys))
    fingerprint = next(
        line.split(":")[9]
        for line in _gpg(keys, "--with-colons", "--list-secret-keys", ATTENDEE).decode().split()
        if line.startswith("fpr:")
    )
    muttrc = tmp_path / "muttrc"
    muttrc.write_text(
        f"set folder = {mail}\nset spoolfile = {mail}\nset mbox_type = Maildir\n"
        f"set sendmail = {sendmail}\nset header_cache = ''\nset from = {ATTENDEE}\n"
        "ignore *\nunignore from: to: date: subject:\n"
        f"source {home}/.config/neomutt/imip.muttrc\n"
        f"setenv IMIP_CLIENT_IDENTITY {ATTENDEE}\n"
        f"set postponed = {postponed}\nsetenv IMIP_CLIENT_POSTPONE {postponed}\n"
        f"set crypt_use_gpgme = yes\nset pgp_default_key = {fingerprint}\n"
        "set editor = true\nset abort_unmodified = no\n"
    )
    env = {
        "HOME": str(home),
        "GNUPGHOME": str(keys),
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "TERM": "xterm",
    }
    tmux.start(["neomutt", "-n", "-F", str(muttrc)], env)
    tmux.wait_for(SUBJECT)
    tmux.keys("Enter")
    pager = tmux.wait_for("state:     new")
    assert f"Good signature from: {ORGANISER}" in pager and "signed and encrypted" in pager
    tmux.keys("v")
    tmux.wait_for("text/calendar")
    tmux.keys("*", ",", "A")
    tmux.wait_for("Security: Sign, Encrypt")
    tmux.keys("y")
    tmux.wait_for("Mail sent")
    ((arguments, sent),) = _sent(out)
    assert arguments.split()[-1] == ORGANISER
    assert sent.get_content_type() == "multipart/encrypted"
    armoured = sent.get_payload()[1].get_payload(decode=True)
    organiser_key = next(
        line.split(":")[4]
        for line in _gpg(keys, "--with-colons", "--list-keys", ORGANISER).decode().split()
        if line.startswith("sub:")
    )
    assert f"keyid {organiser_key}" in _gpg(keys, "--list-packets", data=armoured).decode()
    clear = email.message_from_bytes(_gpg(keys, "--decrypt", data=armoured), policy=policy.default)
    assert isinstance(clear, EmailMessage)
    assert partstat_of(parse_calendar_part(clear), ATTENDEE) == "ACCEPTED"
    assert _client(calendar, ATTENDEE, "pending")["pending"] == []
    assert _stored_answer(calendar, ATTENDEE) == "PARTSTAT=ACCEPTED"
