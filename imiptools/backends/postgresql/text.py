"""Text as the database keeps it: any Python string, exactly, in a text column.

PostgreSQL text holds neither NUL nor lone surrogates, both of which a
badly encoded message can put into a Python string (the file store keeps
them, see :mod:`imiptools.fileutil`). :func:`to_db` escapes exactly those,
and ``%`` so that the escape is reversible; everything else (nearly all
text: UIDs, iCalendar data, addresses) is stored as it is, readable with
``psql``. :func:`from_db` is its inverse.

Escapes: ``%`` -> ``%25``, NUL -> ``%00``, a lone surrogate U+DXXX ->
``%uDXXX`` (four hex digits, upper case).
"""

from __future__ import annotations

import re

from imiptools.stores.names import normalise_user

_NEEDS_ESCAPE = re.compile("[%\x00\ud800-\udfff]")
_ESCAPED = re.compile(r"%(25|00|u[0-9A-F]{4})")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "%":
        return "%25"
    if char == "\x00":
        return "%00"
    return f"%u{ord(char):04X}"


def _unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    if code == "25":
        return "%"
    if code == "00":
        return "\x00"
    return chr(int(code[1:], 16))


def to_db(text: str) -> str:
    """``text`` as stored (see the module docstring)."""
    return _NEEDS_ESCAPE.sub(_escape, text) if _NEEDS_ESCAPE.search(text) else text


def from_db(text: str) -> str:
    """Inverse of :func:`to_db`."""
    return _ESCAPED.sub(_unescape, text) if "%" in text else text


def user_key(user: str) -> str:
    """A calendar user as the tables key it: normalised (UnsafeName else), stored."""
    return to_db(normalise_user(user))
