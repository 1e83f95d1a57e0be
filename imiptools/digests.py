"""SHA-256 digests and random tokens without loading OpenSSL at start-up.

``hashlib`` loads OpenSSL's ``libcrypto`` when it is imported (``secrets``
does too, through ``hmac``): for a pipe program that hashes a few short
strings a message, that is about 2 ms of CPU and 3.5 MiB of resident memory
spent before the first line runs, a fifth of what the whole agent adds to
the interpreter's peak. CPython also builds its own SHA-256 into the
interpreter (``_sha2`` since 3.12, ``_sha256`` before), which the standard
library's ``random`` uses the same way for SHA-512: this module takes that
one and falls back to ``hashlib`` where an interpreter lacks it. The
digests are the same bytes either way.

:func:`token_hex` is :func:`secrets.token_hex`: ``secrets`` reads
:func:`os.urandom`, as this does, without importing ``hmac``.
"""

from __future__ import annotations

import os

__all__ = ["sha256_hex", "token_hex"]

try:  # the interpreter's own SHA-256: _sha2 from Python 3.12 on, _sha256 before
    from _sha2 import sha256 as _SHA256  # type: ignore[import-not-found]
except ImportError:
    try:
        from _sha256 import sha256 as _SHA256  # type: ignore[import-not-found]
    except ImportError:  # an interpreter built without it
        from hashlib import sha256 as _SHA256


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of ``data`` in lower-case hex (as ``hashlib``'s ``hexdigest``)."""
    return str(_SHA256(data).hexdigest())


def token_hex(nbytes: int) -> str:
    """``nbytes`` random bytes from :func:`os.urandom`, in hex (``2 * nbytes``
    characters), as :func:`secrets.token_hex`."""
    return os.urandom(nbytes).hex()
