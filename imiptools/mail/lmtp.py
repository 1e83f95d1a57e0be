"""Local delivery over LMTP (RFC 2033): hand a message to the mailbox server.

:class:`LmtpSender` is a :class:`~imiptools.mail.send.Sender` that speaks
LMTP to a unix socket (a target starting with ``/``) or to ``HOST:PORT``,
for example Dovecot's ``/run/dovecot/lmtp``. The person agent uses it to
put each incoming message into the person's mailbox.

One recipient per transaction: after the data, an LMTP server sends one
reply for each accepted recipient (RFC 2033 §4.2), but ``smtplib.LMTP``
reads only one. So every recipient gets its own MAIL/RCPT/DATA transaction
on one connection, and each reply belongs to exactly one recipient. A
transaction can therefore never succeed for some of its recipients and
fail for others (the case :class:`~imiptools.mail.send.SmtpSender` has to
log and swallow): every recipient's outcome is known.

Outcomes of :meth:`LmtpSender.send`:

- every recipient accepted (2xx): return.
- a 4xx reply, a refused connection, a missing socket, a timeout or a
  dropped connection: :class:`~imiptools.errors.DeliveryFailed` (exit 75:
  the MTA keeps the message and retries). Sending stops there, so that the
  remaining recipients get the message once, on the retry. Recipients
  already delivered in this run get it *again* on the retry: LMTP has no
  way to take a delivery back or to make the MTA retry only some
  recipients, and a duplicate is better than a loss.
- a 5xx reply in a recipient's transaction (MAIL, RCPT or DATA): that
  recipient is rejected and the others are still delivered; then
  :class:`DeliveryRejected` (exit 65: the MTA bounces), naming each
  rejected recipient with the server's reply.
- a 5xx greeting or LHLO reply refuses the client, not a recipient: that is
  a configuration problem, so it is DeliveryFailed, not a bounce.

Timeouts apply to each network operation (connect, each reply).
"""

from __future__ import annotations

import logging
import re
import smtplib
import socket
from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

from imiptools.errors import DeliveryFailed, InputError
from imiptools.mail.parse import single_line
from imiptools.mail.send import _check_envelope, parse_smtp_target

__all__ = ["LMTP_TIMEOUT", "DeliveryRejected", "LmtpSender", "parse_lmtp_target"]

log = logging.getLogger(__name__)

LMTP_TIMEOUT = 30.0
_REPLY_CHARS = 200
_ENHANCED = re.compile(r"5\.\d{1,3}\.\d{1,3}(?=\s|$)")
_LINE_END = re.compile(rb"\r?\n")


class DeliveryRejected(InputError):
    """The LMTP server permanently refused a recipient (a 5xx reply).

    ``status`` is the server's RFC 3463 enhanced status code when it gave
    a permanent one (RFC 2033 §5 requires ENHANCEDSTATUSCODES), otherwise
    5.1.1; the message keeps the server's reply on one line.
    """

    status = "5.1.1"

    def __init__(self, reason: str, status: str | None = None) -> None:
        super().__init__(single_line(reason))
        if status is not None:
            self.status = status


class _Reply(NamedTuple):
    """One server reply: the code and its text on one line."""

    code: int
    text: str

    @classmethod
    def of(cls, code: int, text: bytes | str) -> _Reply:
        raw = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
        return cls(code, single_line(raw)[:_REPLY_CHARS])

    def __str__(self) -> str:
        return f"{self.code} {self.text}"

    def enhanced_status(self) -> str | None:
        """The permanent RFC 3463 code at the start of the text, if any."""
        found = _ENHANCED.match(self.text)
        return found.group() if found else None


class _Rejection(NamedTuple):
    recipient: str
    step: str
    reply: _Reply


def parse_lmtp_target(target: str) -> tuple[str, int]:
    """``"/path/to/socket"`` -> ``(path, 0)``; ``"host:port"`` -> ``(host, port)``.

    ``"[v6]:port"`` works as for SMTP
    (:func:`~imiptools.mail.send.parse_smtp_target`). LMTP has no default
    port and must not be run on port 25 (RFC 2033 §5): a missing port or
    port 25 is a ValueError.
    """
    text = target.strip()
    if "\x00" in text:
        raise ValueError(f"bad LMTP target: {target!r}")
    if text.startswith("/"):
        return text, 0
    if not _has_port(text):
        raise ValueError(f"LMTP target needs a port (LMTP has no default): {target!r}")
    host, port = parse_smtp_target(text)
    if port == 25:
        raise ValueError(f"LMTP must not use port 25 (RFC 2033 §5): {target!r}")
    return host, port


def _has_port(text: str) -> bool:
    if text.startswith("["):
        return "]:" in text
    return text.count(":") == 1


class LmtpSender:
    """Deliver over LMTP (RFC 2033); see the module docstring for outcomes."""

    def __init__(self, target: str, timeout: float = LMTP_TIMEOUT) -> None:
        self.host, self.port = parse_lmtp_target(target)
        if not timeout > 0:
            raise ValueError(f"LMTP timeout must be positive: {timeout!r}")
        self.target = target.strip()
        self.timeout = timeout

    def send(self, envelope_from: str, recipients: Sequence[str], message: bytes) -> None:
        """Deliver ``message`` to each recipient, one transaction each.

        Raises DeliveryFailed (retry) or DeliveryRejected (bounce) as the
        module docstring says; UnusableAddress (a ValueError) for
        addresses that cannot be sent (the one check of
        :mod:`imiptools.addresses`: ASCII only, this client does not use
        SMTPUTF8).
        """
        _check_envelope(envelope_from, recipients)
        data = _LINE_END.sub(b"\r\n", message)
        try:
            rejections = self._deliver(envelope_from, recipients, data)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"LMTP to {self.target} failed: {_describe(exc)}") from exc
        if rejections:
            raise _rejected(self.target, rejections)

    def _deliver(
        self, envelope_from: str, recipients: Sequence[str], data: bytes
    ) -> list[_Rejection]:
        """Run the transactions on one connection; the permanent refusals."""
        lmtp = self._connect()
        rejections: list[_Rejection] = []
        try:
            for recipient in recipients:
                rejection = self._transaction(lmtp, envelope_from, recipient, data)
                if rejection is not None:
                    rejections.append(rejection)
        except BaseException:
            lmtp.close()
            raise
        _quit(lmtp)
        return rejections

    def _connect(self) -> smtplib.LMTP:
        """Connect, read the greeting and say LHLO (RFC 2033 §4.1)."""
        lmtp = smtplib.LMTP(
            self.host, self.port, local_hostname=socket.gethostname(), timeout=self.timeout
        )
        reply = _Reply.of(*lmtp.ehlo())
        if reply.code != 250:
            lmtp.close()
            raise DeliveryFailed(f"LMTP to {self.target}: LHLO refused: {reply}")
        return lmtp

    def _transaction(
        self, lmtp: smtplib.LMTP, envelope_from: str, recipient: str, data: bytes
    ) -> _Rejection | None:
        """MAIL, RCPT and DATA for one recipient (RFC 2033 §4.2).

        With a single RCPT the server sends exactly one reply after the
        data. None when delivered; the rejection for a 5xx reply (after
        RSET, so that the next transaction starts clean); DeliveryFailed
        for any other reply.
        """
        steps: tuple[tuple[str, Callable[[], tuple[int, bytes]]], ...] = (
            ("MAIL", partial(lmtp.mail, envelope_from, _body_options(lmtp, data))),
            ("RCPT", partial(lmtp.rcpt, recipient)),
            ("DATA", partial(_data, lmtp, data)),
        )
        for step, command in steps:
            reply = _Reply.of(*command())
            if 200 <= reply.code < 300:
                continue
            if 500 <= reply.code < 600:
                log.warning("LMTP %s rejected %s at %s: %s", self.target, recipient, step, reply)
                _reset(lmtp)
                return _Rejection(recipient, step, reply)
            raise DeliveryFailed(f"LMTP to {self.target}: {recipient} deferred at {step}: {reply}")
        log.info("LMTP %s delivered to %s", self.target, recipient)
        return None


def _body_options(lmtp: smtplib.LMTP, data: bytes) -> list[str]:
    """``BODY=8BITMIME`` for 8-bit data when the server offers it (RFC 6152)."""
    if not data.isascii() and lmtp.has_extn("8bitmime"):
        return ["BODY=8BITMIME"]
    return []


def _data(lmtp: smtplib.LMTP, data: bytes) -> tuple[int, bytes]:
    """DATA, then the dot-stuffed message; the reply after the final dot.

    A refusal of the DATA command itself is returned as that reply.
    """
    try:
        return lmtp.data(data)
    except smtplib.SMTPDataError as exc:
        text = exc.smtp_error
        return exc.smtp_code, text if isinstance(text, bytes) else text.encode()


def _reset(lmtp: smtplib.LMTP) -> None:
    """RSET after a refused transaction (RFC 5321 §4.1.1.5)."""
    reply = _Reply.of(*lmtp.rset())
    if reply.code != 250:
        raise DeliveryFailed(f"LMTP RSET refused: {reply}")


def _quit(lmtp: smtplib.LMTP) -> None:
    """QUIT; every transaction is over, so a failure here changes nothing."""
    try:
        lmtp.quit()
    except (smtplib.SMTPException, OSError) as exc:
        log.debug("LMTP QUIT failed: %s", exc)
        lmtp.close()


def _describe(exc: smtplib.SMTPException | OSError) -> str:
    """One line for a connection-level failure."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return str(_Reply.of(exc.smtp_code, exc.smtp_error))
    return single_line(str(exc) or type(exc).__name__)[:_REPLY_CHARS]


def _rejected(target: str, rejections: list[_Rejection]) -> DeliveryRejected:
    """One DeliveryRejected for every refused recipient of a run."""
    parts = [f"{r.recipient} at {r.step}: {r.reply}" for r in rejections]
    status = rejections[0].reply.enhanced_status()
    return DeliveryRejected(f"LMTP {target} rejected " + "; ".join(parts), status)
