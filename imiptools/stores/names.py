"""Untrusted names to store names: calendar users and path components.

Calendar users are named by a normalised ``mailto:`` URI
(:func:`normalise_user`). Every untrusted text that names a file (a UID, a
RECURRENCE-ID, an attendee URI, a user URI) goes through
:func:`safe_component`, which returns one path component that can never
escape its directory, as Radicale's ``pathutils`` insists:

* text matching ``[A-Za-z0-9][A-Za-z0-9@.+_=:-]{0,149}`` without ``..`` is
  kept verbatim, so that an admin recognises ``mailto:room@example.com`` or
  ``040000008200E00074C5B7101A82E008...`` at a glance;
* anything else becomes ``_h_`` and the SHA-256 hex digest of its UTF-8
  bytes. The verbatim form never starts with ``_``, so the two forms never
  collide, and neither starts with ``.`` (reserved for lock, temporary and
  marker files).

Preference names are not untrusted text turned into names: they must match
``[A-Za-z][A-Za-z0-9_-]{0,63}`` or be refused (:func:`check_preference_name`).

Hashing is one-way: stores that must list such names keep the original
beside it (see :mod:`imiptools.stores.file`). Note that verbatim names are
case-sensitive: a store on a case-insensitive filesystem is not supported.
"""

from __future__ import annotations

import functools
import re

from imiptools.addresses import normalise
from imiptools.digests import sha256_hex
from imiptools.errors import UnsafeName

HASH_PREFIX = "_h_"
MAX_ADDRESS = 254

_VERBATIM = re.compile(r"[A-Za-z0-9][A-Za-z0-9@.+_=:-]{0,149}")
_HASHED = re.compile(rf"{HASH_PREFIX}[0-9a-f]{{64}}")
_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f/\\<>\"(),;:\[\]]")
_MAILTO = "mailto:"
_PREFERENCE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


def normalise_user(value: str) -> str:
    """The canonical URI of a calendar user: ``mailto:`` + the normalised address.

    Accepts ``room@example.com``, ``MAILTO:Room@Example.com``,
    ``<room@example.com>`` and ``mailto:r%6Fom@example.com.?subject=x``
    (RFC 5545 §3.3.3 CAL-ADDRESS, RFC 6068 mailto), normalised by
    :func:`imiptools.addresses.normalise`, the one parser of addresses.
    Raises :class:`UnsafeName` unless the address is ``local@domain`` with
    one ``@``, no whitespace, control characters, path separators or
    address punctuation, does not start with ``.`` and has at most 254
    characters (RFC 5321 §4.5.3.1.3). Whether mail can be sent to it is
    :func:`imiptools.addresses.check`'s question, not this one's.
    """
    address = normalise(value)
    _check_address(address, value)
    return _MAILTO + address


def _check_address(address: str, original: str) -> None:
    local, at, domain = address.partition("@")
    if not (local and at and domain) or "@" in domain:
        raise UnsafeName(f"not a mail address: {original!r}")
    if len(address) > MAX_ADDRESS or address.startswith("."):
        raise UnsafeName(f"not a usable mail address: {original!r}")
    if _FORBIDDEN.search(address):
        raise UnsafeName(f"unsafe characters in address: {original!r}")


def is_verbatim(text: str) -> bool:
    """True if :func:`safe_component` keeps ``text`` as it is."""
    return _VERBATIM.fullmatch(text) is not None and ".." not in text


def is_hashed(name: str) -> bool:
    """True if ``name`` is the hashed form made by :func:`safe_component`."""
    return _HASHED.fullmatch(name) is not None


def is_safe_component(name: str) -> bool:
    """True if ``name`` is something :func:`safe_component` can return.

    Listings use it to skip everything else (temporary files, lock files,
    strays an admin left behind).
    """
    return is_verbatim(name) or is_hashed(name)


def hashed_component(text: str) -> str:
    """``_h_`` + SHA-256 hex of ``text`` (UTF-8, lone surrogates kept)."""
    digest = sha256_hex(text.encode("utf-8", "surrogatepass"))
    return HASH_PREFIX + digest


def safe_component(text: str) -> str:
    """One path component for untrusted ``text``; deterministic, never escapes.

    The result is ``text`` itself when :func:`is_verbatim`, else
    :func:`hashed_component`.
    """
    return text if is_verbatim(text) else hashed_component(text)


@functools.lru_cache(maxsize=4096)
def user_component(user: str) -> str:
    """The directory name of calendar user ``user`` (normalised first).

    Remembered (a pure function that every store access of a user calls,
    several times each; an unusable address raises every time)."""
    return safe_component(normalise_user(user))


def is_preference_name(name: str) -> bool:
    """Whether ``name`` is a usable preference name (``CN``, ``TZID``,
    ``scheduling_function``): ``[A-Za-z][A-Za-z0-9_-]{0,63}``."""
    return _PREFERENCE.fullmatch(name) is not None


def check_preference_name(name: str) -> str:
    """Return ``name`` if :func:`is_preference_name`, else raise UnsafeName
    (every preference source checks names with it before any use)."""
    if not is_preference_name(name):
        raise UnsafeName(f"not a preference name: {name[:80]!r}")
    return name
