"""Sending: hand a finished message (RFC 6047 §3) to the mail system.

Every :class:`Sender` takes an envelope sender (``""`` is the null reverse
path), the envelope recipients and the message bytes, and either returns
once the mail system has taken responsibility for the message or raises
:class:`~imiptools.errors.DeliveryFailed`. That error maps to exit 75, so
the MTA keeps the incoming message and retries: a duplicate reply later is
better than a lost one. Its subclass
:class:`~imiptools.errors.DeliveryRefused` says that this message will
never be taken (the outbox sets it aside instead of retrying it). Every
sender first checks the envelope with :func:`imiptools.addresses.check_envelope`
(:class:`~imiptools.errors.UnusableAddress`), the check the agent makes
before spooling.

- :class:`SendmailSender` pipes into ``sendmail``: any non-zero exit, a
  timeout or a failure to start is DeliveryFailed; the exits in
  :data:`REFUSED_EXITS` are DeliveryRefused.
- :class:`SmtpSender` talks SMTP to a relay (no TLS, no AUTH: meant for the
  local MTA). 4xx replies and connection errors are DeliveryFailed, and so
  is a 5xx greeting, HELO or MAIL FROM reply (the relay refuses us, not
  this message: configuration); a 5xx reply to the data, or 5xx refusal of
  every recipient, is DeliveryRefused (the message says "permanent" for
  5xx). When
  only some recipients are refused the others have the message already;
  the refusal is logged and not raised, since a retry would duplicate it.
- :class:`DirectorySender` writes each message into a directory as
  ``NNNN-<recipient>.eml`` (temporary dot-file, fsync, hard link into
  place, fsync of the directory: the Maildir protocol), for tests and
  dry runs; the last number is kept in the directory's extended attribute
  ``user.imip-agent.sequence``. The file holds exactly the message; the
  envelope is not kept.
- :class:`PrintSender` writes messages to a text stream.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol, TextIO

from imiptools import addresses
from imiptools.digests import token_hex
from imiptools.errors import DeliveryFailed, DeliveryRefused
from imiptools.mail.parse import single_line

__all__ = [
    "DirectorySender",
    "PrintSender",
    "Sender",
    "SendmailSender",
    "SmtpSender",
    "parse_smtp_target",
]

log = logging.getLogger(__name__)

SENDMAIL_TIMEOUT = 60.0
#: sendmail exits that refuse this message for good (sysexits.h EX_DATAERR,
#: EX_NOUSER, EX_NOHOST); every other failure may pass (EX_TEMPFAIL, a
#: configuration or system error, a timeout).
REFUSED_EXITS = frozenset({65, 67, 68})
SEPARATOR = "-" * 72
_NAME = re.compile(r"(\d{4,})-.*\.eml")
_UNSAFE = re.compile(r"[^a-z0-9.@_-]+")
_LINK_ATTEMPTS = 100
#: The extended attribute of a :class:`DirectorySender`'s directory that
#: holds the last message number given there (see :func:`_link_next`).
SEQUENCE_ATTRIBUTE = "user.imip-agent.sequence"
#: The directories this process has listed and whose attribute it has
#: written since: their attribute is trusted (see :func:`_link_next`).
_SEQUENCED: set[str] = set()


class Sender(Protocol):
    """Something that sends a message or raises DeliveryFailed."""

    def send(self, envelope_from: str, recipients: Sequence[str], message: bytes) -> None:
        """Send ``message`` to ``recipients`` with reverse path ``envelope_from``."""


def _check_envelope(envelope_from: str, recipients: Sequence[str]) -> None:
    """UnusableAddress (a ValueError) for no recipients or an address no
    sender can use: :func:`imiptools.addresses.check_envelope`, the same
    check the agent makes before anything is spooled."""
    addresses.check_envelope(envelope_from, recipients)


# -- sendmail ----------------------------------------------------------------


class SendmailSender:
    """Send through a sendmail-compatible command (``/usr/sbin/sendmail -i``)."""

    def __init__(self, command: str, timeout: float = SENDMAIL_TIMEOUT) -> None:
        import shlex  # lazy: start-up (only the sendmail sender splits a command)

        self.argv = shlex.split(command)
        if not self.argv:
            raise ValueError("empty sendmail command")
        self.timeout = timeout

    def command_line(self, envelope_from: str, recipients: Sequence[str]) -> list[str]:
        """The full argv: command, ``-f <from>``, ``--``, recipients."""
        return [*self.argv, "-f", envelope_from, "--", *recipients]

    def send(self, envelope_from: str, recipients: Sequence[str], message: bytes) -> None:
        """Run the command with ``message`` on stdin; exit 0 means accepted."""
        _check_envelope(envelope_from, recipients)
        import subprocess  # lazy: start-up (not loaded by --output, SMTP or the LMTP service)

        argv = self.command_line(envelope_from, recipients)
        try:
            done = subprocess.run(
                argv,
                input=message,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise DeliveryFailed(f"{argv[0]} timed out after {self.timeout:g} s") from exc
        except OSError as exc:
            raise DeliveryFailed(f"cannot run {argv[0]}: {exc}") from exc
        if done.returncode != 0:
            failure = DeliveryRefused if done.returncode in REFUSED_EXITS else DeliveryFailed
            raise failure(f"{argv[0]} exited with {done.returncode}: {_first_line(done.stdout)}")


def _first_line(output: bytes) -> str:
    for line in output.decode("utf-8", errors="replace").splitlines():
        if line.strip():
            return single_line(line)[:200]
    return "(no output)"


# -- SMTP --------------------------------------------------------------------


class SmtpSender:
    """Send to an SMTP relay (RFC 5321), plain, without authentication."""

    def __init__(self, host: str, port: int = 25, timeout: float = 30) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout

    def send(self, envelope_from: str, recipients: Sequence[str], message: bytes) -> None:
        """One SMTP transaction; see the module docstring for the outcomes."""
        import smtplib  # lazy: start-up (with ssl: only the SMTP sender pays)

        _check_envelope(envelope_from, recipients)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                refused = smtp.sendmail(envelope_from, list(recipients), message)
        except smtplib.SMTPRecipientsRefused as exc:
            failure = DeliveryRefused if _all_permanent(exc.recipients) else DeliveryFailed
            raise failure(_refusal(exc.recipients)) from exc
        except smtplib.SMTPDataError as exc:
            failure = DeliveryRefused if _permanent(exc.smtp_code) else DeliveryFailed
            raise failure(_reply(exc.smtp_code, exc.smtp_error)) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(_reply(exc.smtp_code, exc.smtp_error)) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"SMTP to {self.host}:{self.port} failed: {exc}") from exc
        for recipient, (code, text) in refused.items():
            log.warning("SMTP relay refused %s: %s", recipient, _reply(code, text))


def _permanent(code: int) -> bool:
    """A 5xx reply (RFC 5321 §4.2.1: permanent negative completion)."""
    return 500 <= code < 600


def _all_permanent(recipients: dict[str, tuple[int, bytes]]) -> bool:
    return all(_permanent(code) for code, _ in recipients.values())


def _reply(code: int, text: bytes | str) -> str:
    """``"permanent 550 ..."`` or ``"temporary 451 ..."`` for one SMTP reply."""
    kind = "permanent" if _permanent(code) else "temporary"
    raw = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
    return f"{kind} SMTP failure {code} {single_line(raw)[:200]}"


def _refusal(recipients: dict[str, tuple[int, bytes]]) -> str:
    """The message for "every recipient refused"."""
    replies = sorted({_reply(code, text) for code, text in recipients.values()})
    return "all recipients refused: " + "; ".join(replies)


def parse_smtp_target(target: str) -> tuple[str, int]:
    """``"host[:port]"`` (or ``"[v6]:port"``) -> ``(host, port)``, port 25 default."""
    text = target.strip()
    host, port = text, "25"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"bad SMTP target: {target!r}")
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad SMTP target: {target!r}")
    return host, int(port)


# -- directory ---------------------------------------------------------------


class DirectorySender:
    """Write each message to ``directory`` as ``NNNN-<recipient>.eml``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, envelope_from: str, recipients: Sequence[str], message: bytes) -> None:
        """Write the message file atomically; OSError becomes DeliveryFailed."""
        _check_envelope(envelope_from, recipients)
        try:
            self._write(_slug(recipients[0]), message)
        except OSError as exc:
            raise DeliveryFailed(f"cannot write to {self.directory}: {exc}") from exc

    def _write(self, slug: str, message: bytes) -> Path:
        """Write ``message`` under the next free number and return its path."""
        if not self.directory.is_dir():
            _make_directories(self.directory)
        handle = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            temporary = _write_temporary(self.directory, message)
            try:
                path = _link_next(temporary, self.directory, handle, slug)
            finally:
                temporary.unlink()
            os.fsync(handle)
        finally:
            os.close(handle)
        return path

    def files(self) -> list[Path]:
        """The message files written so far, in order."""
        return sorted(p for p in self.directory.glob("*.eml") if _NAME.fullmatch(p.name))


def _make_directories(directory: Path) -> None:
    """Create ``directory`` and its missing parents durably: each parent is
    fsynced after its new child, as :func:`imiptools.fileutil.ensure_directory`
    does, so that a power failure cannot take back a directory whose messages
    were fsynced (the outbox forgets a message once it is written here).
    Unlike the store's, this path is the admin's own and may hold symlinks."""
    missing = []
    path = directory
    while not path.is_dir() and path != path.parent:
        missing.append(path)
        path = path.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile: synced below all the same
            path.mkdir()
        parent = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(parent)
        finally:
            os.close(parent)


def _slug(recipient: str) -> str:
    return _UNSAFE.sub("_", recipient.lower()).strip("._")[:60] or "message"


def _write_temporary(directory: Path, data: bytes) -> Path:
    """A fsynced ``.tmp-*`` file in ``directory`` holding ``data``.

    Created with mode 0666 less the umask, as Maildir does, so that a
    delivery process running as another user in the group can read it.
    """
    name = directory / f".tmp-{os.getpid()}-{token_hex(8)}.eml"
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
    except BaseException:
        os.unlink(name)
        raise
    return name


def _link_next(temporary: Path, directory: Path, handle: int, slug: str) -> Path:
    """Hard-link ``temporary`` to the next free ``NNNN-slug.eml`` name in
    ``directory`` (``handle``: its descriptor).

    The number is taken under an exclusive flock of the directory, and the
    last one given is kept in the directory's extended attribute
    :data:`SEQUENCE_ATTRIBUTE`: a message costs no listing (a dry run's
    directory grows without end, and a listing a message made sending
    quadratic, issue 15). The directory is listed instead at a process's
    first message there (the attribute is not synced: after a power failure
    it may lag behind the files), and for every message where the file
    system refuses the lock or the attribute (a network file system, say).
    A link never replaces an existing file (unlike ``os.replace``): two
    writers racing for a number cannot lose a message, and a writer that
    does not keep the attribute (an older version) costs at worst a number
    given twice, to different recipients, never a message.
    """
    with _locked(handle) as locked:
        number = _last_number(directory, handle, locked) + 1
        for _ in range(_LINK_ATTEMPTS):
            path = directory / f"{number:04d}-{slug}.eml"
            try:
                os.link(temporary, path)
            except FileExistsError:
                number += 1
                continue
            if locked and _store_number(handle, number):
                _SEQUENCED.add(str(directory))
            return path
    raise FileExistsError(f"no free message file name in {directory}")


@contextlib.contextmanager
def _locked(handle: int) -> Iterator[bool]:
    """An exclusive flock of the directory open as ``handle`` for the block;
    False, and no lock, where the file system refuses one."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
    except OSError:  # an NFS directory open read-only: EBADF; no locks: ENOLCK
        yield False
        return
    try:
        yield True
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)


def _last_number(directory: Path, handle: int, locked: bool) -> int:
    """The highest message number given in ``directory`` (0: none): its
    attribute, if ``locked`` and this process has seen it written; else by
    a listing (names only: no path object a file)."""
    if locked and str(directory) in _SEQUENCED:
        stored = _stored_number(handle)
        if stored is not None:
            return stored
    names = os.listdir(directory)
    return max((int(m.group(1)) for name in names if (m := _NAME.fullmatch(name))), default=0)


def _stored_number(handle: int) -> int | None:
    """The directory's :data:`SEQUENCE_ATTRIBUTE`; None if it has none or
    it is not a number."""
    try:
        value = os.getxattr(handle, SEQUENCE_ATTRIBUTE)
    except OSError:  # none yet (ENODATA), or not on this file system (ENOTSUP)
        return None
    return int(value) if value.isdigit() and len(value) < 20 else None


def _store_number(handle: int, number: int) -> bool:
    """Keep ``number`` as the directory's last; False if it cannot be kept."""
    try:
        os.setxattr(handle, SEQUENCE_ATTRIBUTE, b"%d" % number)
    except OSError:
        return False
    return True


# -- printing ----------------------------------------------------------------


class PrintSender:
    """Write each message, then a separator line, to a text stream."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def send(self, envelope_from: str, recipients: Sequence[str], message: bytes) -> None:
        """Print the message (UTF-8, LF line endings) and :data:`SEPARATOR`."""
        _check_envelope(envelope_from, recipients)
        text = message.decode("utf-8", errors="replace").replace("\r\n", "\n")
        if not text.endswith("\n"):
            text += "\n"
        self.stream.write(text + SEPARATOR + "\n")
        self.stream.flush()
