"""Mail addresses of calendar users: one parser and one check for all.

Every address the agents compare, store under or send to passes through
here, so that what the programs accept at the front and what the senders
send can never disagree (an ORGANIZER the front once accepted and a
sender then refused blocked every later delivery).

:func:`normalise` never raises. It turns what a message, the MTA or an admin
gives into the one form compared everywhere:

- ``<...>`` around the address and a ``mailto:`` scheme (any case) are
  removed. For a ``mailto:`` URI (RFC 6068 §2) the header fields after
  ``?`` are dropped (``?subject=x`` names no one) and the address is
  percent-decoded as UTF-8 (``jane%2Edoe`` is ``jane.doe``); a bare
  address is taken as it is (``%`` and ``?`` are ordinary characters of
  an RFC 5322 local part);
- lower case (the project compares addresses case-insensitively);
- the domain loses one trailing dot (``example.com.`` is the absolute form
  of ``example.com``, RFC 1034 §3.1). Internationalised domains are kept
  as they are (not converted to their ASCII form: that would rename
  existing calendar users in the store), and so are not usable below.

:func:`check` says whether a normalised address can be sent to or from by
every sender (sendmail, SMTP, LMTP, files) and written into a header:

- ASCII only: internationalised addresses (SMTPUTF8, RFC 6531) are not
  supported;
- ``local@domain`` with a dot-atom local part of at most 64 characters
  (RFC 5322 §3.4.1, RFC 5321 §4.5.3.1.1) that does not start with ``-``
  (a command line would read it as an option);
- a domain of host-name labels (RFC 5321 §4.1.2: letters, digits, inner
  hyphens, at most 63 characters each); no address literals;
- at most 254 characters (RFC 5321 §4.5.3.1.3), and no ``=?`` (a header
  parser takes it for the start of an RFC 2047 encoded word).

Anything else raises :class:`~imiptools.errors.UnusableAddress` (exit 65,
RFC 3463 5.1.3), which is also a ValueError.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from urllib.parse import unquote

from imiptools.errors import UnusableAddress

__all__ = ["check", "check_envelope", "is_usable", "normalise", "problem", "uri"]

MAILTO = "mailto:"
MAX_ADDRESS = 254
MAX_LOCAL = 64

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def normalise(value: object) -> str:
    """The bare, lower-cased address in ``value`` ('' for nothing); never raises.

    ``MAILTO:Jane%2EDoe@Example.NET.?subject=x`` -> ``jane.doe@example.net``
    (see the module docstring). The result is not checked: see :func:`check`.
    A function of the text alone: the last texts of address length are
    remembered (issue 15: deriving an event's free/busy normalises its
    organiser, its attendees and the user's own address, over and over).
    """
    text = str(value or "")
    return _remembered(text) if len(text) <= _REMEMBERED_LENGTH else _normalised(text)


#: The longest text :func:`normalise` remembers (a mailto: URI of the
#: longest address, with room for header fields).
_REMEMBERED_LENGTH = 320


def _normalised(value: str) -> str:
    """:func:`normalise` of ``value``, worked out."""
    text = value.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if text[: len(MAILTO)].lower() == MAILTO:
        text = _mailto_address(text[len(MAILTO) :])
    return _canonical(text)


_remembered = functools.lru_cache(maxsize=1024)(_normalised)


def uri(value: object) -> str:
    """The ``mailto:`` URI of :func:`normalise` (``mailto:`` alone for nothing)."""
    return MAILTO + normalise(value)


def _mailto_address(rest: str) -> str:
    """The addresses part of a mailto URI after the scheme, percent-decoded.

    RFC 6068 §2: ``mailtoURI = "mailto:" [ to ] [ hfields ]`` where
    ``hfields`` starts with ``?``; ``to`` is percent-encoded UTF-8.
    """
    to = rest.partition("?")[0].strip()
    if "%" not in to:
        return to
    try:
        return unquote(to, errors="strict")
    except UnicodeDecodeError:
        return to  # not UTF-8: kept encoded, and so never usable


def _canonical(text: str) -> str:
    local, at, domain = text.lower().rpartition("@")
    if not at:
        return text.lower()
    return f"{local}@{_domain(domain)}"


def _domain(domain: str) -> str:
    """``domain`` without one trailing dot."""
    return domain.removesuffix(".")


def problem(address: str) -> str:
    """Why ``address`` cannot be sent to or from ('' when it can)."""
    if not address:
        return "empty address"
    if not address.isascii():
        return "not ASCII (internationalised addresses are not supported)"
    if len(address) > MAX_ADDRESS:
        return f"longer than {MAX_ADDRESS} characters"
    local, at, domain = address.rpartition("@")
    if not (at and local and domain):
        return "not of the form local@domain"
    return _local_problem(local) or _domain_problem(domain) or _header_problem(address)


def _local_problem(local: str) -> str:
    if local.startswith("-"):
        return "starts with '-'"
    if len(local) > MAX_LOCAL or not _DOT_ATOM.fullmatch(local):
        return "unusable local part"
    return ""


def _domain_problem(domain: str) -> str:
    if not all(_LABEL.fullmatch(label) for label in domain.split(".")):
        return "the domain is not a host name"
    return ""


def _header_problem(address: str) -> str:
    return "holds '=?'" if "=?" in address else ""


def is_usable(address: str) -> bool:
    """True if :func:`check` accepts ``address``."""
    return not problem(address)


def check(address: str) -> str:
    """Return ``address`` if every sender can use it, else raise UnusableAddress."""
    why = problem(address)
    if why:
        raise UnusableAddress(f"unusable address {address[:100]!r}: {why}")
    return address


def check_envelope(envelope_from: str, recipients: Sequence[str]) -> None:
    """Check an SMTP envelope: ``envelope_from`` '' (the null reverse path,
    RFC 5321 §4.5.5) or usable, and at least one recipient, each usable.

    Raises UnusableAddress (a ValueError).
    """
    if isinstance(recipients, str) or not recipients:
        raise UnusableAddress("a message needs at least one recipient")
    if envelope_from:
        check(envelope_from)
    for recipient in recipients:
        check(recipient)
