"""imip-manager's own accounts: the password file and the feed tokens.

Both live in the manager's directory (``[agent] manager``, by default
``manager`` beside the store directory: :func:`manager_home`), each a file
readable by its owner only (mode 0600, written whole and atomically under
a lock), so that ``imip-admin`` and the application see the same:

- ``passwords``: one ``ADDRESS:HASH`` line per user, the hash argon2id in
  its PHC string form (argon2-cffi's defaults, RFC 9106 §4's second
  recommended option), never the password (:class:`PasswordFile`);
- ``feeds``: the subscription tokens (:class:`FeedTokens`), as JSON: per
  token its user, its kind (``events`` or ``freebusy``), a label, when it
  was made, a short public id to revoke it by, and the token's SHA-256,
  never the token itself. A token is 256 random bits, so a fast hash
  suffices: someone who reads the file cannot subscribe.

The tokens are kept in a file beside the password file rather than with
the site's preferences because they are secrets: preferences are printed
by ``imip-admin prefs list``, read by the agents, and meant to be edited
through forms; a token must be found from the URL alone, over every user,
with one read; and a file of hashes leaks nothing.

argon2 (argon2-cffi) is imported only when a password is hashed or
checked, so that ``imip-admin`` runs without it until it is needed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from imiptools.config import Settings
from imiptools.dates import format_utc
from imiptools.deferred import dataclass
from imiptools.errors import ConfigError, InputError, StoreUnavailable
from imiptools.stores.names import normalise_user

#: The kinds of feed: the user's events, or only their free/busy.
FEED_KINDS = ("events", "freebusy")
#: The shortest password accepted when one is set.
MIN_PASSWORD = 8
#: The longest password hashed (more is refused, not truncated).
MAX_PASSWORD = 1024


def manager_home(settings: Settings) -> Path:
    """The manager's directory: ``[agent] manager``, else ``manager``
    beside the store directory."""
    if settings.manager:
        return Path(settings.manager)
    return Path(settings.store).parent / "manager"


def bare(user: str) -> str:
    """``user`` (an address or ``mailto:`` URI) as the files keep it: the
    address without ``mailto:``; :class:`~imiptools.errors.UnsafeName`
    (an InputError) when it is not one."""
    return normalise_user(user).removeprefix("mailto:")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path``'s lock file (``.NAME.lock`` beside it)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(
            path.parent / f".{path.name}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600
        )
    except OSError as exc:
        raise StoreUnavailable(f"cannot lock {path}: {exc.strerror}") from exc
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise StoreUnavailable(f"cannot read {path}: {exc.strerror}") from exc


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` by ``text``, mode 0600, atomically and durably."""
    try:
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise StoreUnavailable(f"cannot write {path}: {exc.strerror}") from exc


# -- passwords -----------------------------------------------------------------


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (PHC string); InputError when it is
    shorter than :data:`MIN_PASSWORD` or longer than :data:`MAX_PASSWORD`."""
    from argon2 import PasswordHasher  # lazy: start-up (only to set or check a password)

    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InputError(
            f"a password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters, not {len(password)}"
        )
    return PasswordHasher().hash(password)


#: Checked against when the user is unknown, so that an unknown user costs
#: as much time as a wrong password (no telling who has an account).
_DUMMY: list[str] = []


def check_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches the hash ``stored`` (None: no account;
    False, after the same work as a wrong password)."""
    from argon2 import PasswordHasher  # lazy: start-up (only to set or check a password)
    from argon2.exceptions import InvalidHashError, VerificationError  # lazy: start-up

    if len(password) > MAX_PASSWORD:
        return False
    hasher = PasswordHasher()
    if stored is None and not _DUMMY:
        _DUMMY.append(hasher.hash(secrets.token_urlsafe(16)))
    try:
        return hasher.verify(stored or _DUMMY[0], password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


class PasswordFile:
    """The ``passwords`` file: ``ADDRESS:HASH`` lines (see the module)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def of(cls, settings: Settings) -> PasswordFile:
        """The site's password file (in :func:`manager_home`)."""
        return cls(manager_home(settings) / "passwords")

    def entries(self) -> dict[str, str]:
        """Address -> hash, as the file holds them (unreadable lines skipped)."""
        found: dict[str, str] = {}
        for line in _read(self.path).splitlines():
            address, colon, stored = line.strip().rpartition(":")
            if colon and address and stored.startswith("$argon2"):
                found[address] = stored
        return found

    def users(self) -> list[str]:
        """The addresses with a password, sorted."""
        return sorted(self.entries())

    def has(self, user: str) -> bool:
        """Whether ``user`` has a password."""
        return bare(user) in self.entries()

    def check(self, user: str, password: str) -> bool:
        """Whether ``password`` is ``user``'s (constant work for an unknown user)."""
        try:
            stored = self.entries().get(bare(user))
        except (InputError, ValueError):  # no address: no account
            stored = None
        return check_password(stored, password)

    def set(self, user: str, password: str) -> None:
        """Give ``user`` the password (replacing any)."""
        address, hashed = bare(user), hash_password(password)
        with _locked(self.path):
            entries = self.entries()
            entries[address] = hashed
            self._write(entries)

    def remove(self, user: str) -> bool:
        """Take ``user``'s password away; False when they had none."""
        address = bare(user)
        with _locked(self.path):
            entries = self.entries()
            if entries.pop(address, None) is None:
                return False
            self._write(entries)
        return True

    def _write(self, entries: dict[str, str]) -> None:
        _write_private(self.path, "".join(f"{a}:{h}\n" for a, h in sorted(entries.items())))


# -- feed tokens ---------------------------------------------------------------


@dataclass(frozen=True)
class Feed:
    """A subscription: ``user`` (an address), ``kind`` (:data:`FEED_KINDS`),
    ``label``, ``made`` (UTC, RFC 5545 form), the public ``id`` and the
    token's SHA-256 (hex)."""

    id: str
    user: str
    kind: str
    label: str
    made: str
    digest: str


def digest_of(token: str) -> str:
    """The SHA-256 of ``token`` (hex): what the file keeps of it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class FeedTokens:
    """The ``feeds`` file (see the module)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def of(cls, settings: Settings) -> FeedTokens:
        """The site's feed tokens (in :func:`manager_home`)."""
        return cls(manager_home(settings) / "feeds")

    def feeds(self, user: str | None = None) -> list[Feed]:
        """Every feed (of ``user``), oldest first."""
        text = _read(self.path)
        try:
            data: Any = json.loads(text) if text.strip() else {"feeds": []}
            found = [Feed(**item) for item in data["feeds"]]
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"{self.path} is not a feed file: {exc}") from exc
        address = bare(user) if user is not None else None
        return [f for f in found if address is None or f.user == address]

    def find(self, token: str) -> Feed | None:
        """The feed ``token`` opens, or None (wrong or revoked)."""
        if not token or len(token) > 200:
            return None
        wanted = digest_of(token)
        for feed in self.feeds():
            if secrets.compare_digest(feed.digest, wanted):
                return feed
        return None

    def make(self, user: str, kind: str, label: str, now: datetime) -> tuple[Feed, str]:
        """A new feed for ``user`` and its token (shown once, kept nowhere)."""
        if kind not in FEED_KINDS:
            raise InputError(f"a feed is one of {', '.join(FEED_KINDS)}, not {kind!r}")
        token = secrets.token_urlsafe(32)
        feed = Feed(
            id=secrets.token_hex(4),
            user=bare(user),
            kind=kind,
            label=" ".join(label.split())[:100],
            made=format_utc(now),
            digest=digest_of(token),
        )
        with _locked(self.path):
            self._write([*self.feeds(), feed])
        return feed, token

    def revoke(self, user: str, feed_id: str) -> bool:
        """Revoke ``user``'s feed ``feed_id``; False when they have none such."""
        address = bare(user)
        with _locked(self.path):
            feeds = self.feeds()
            kept = [f for f in feeds if not (f.user == address and f.id == feed_id)]
            if len(kept) == len(feeds):
                return False
            self._write(kept)
        return True

    def _write(self, feeds: list[Feed]) -> None:
        document = {"feeds": [asdict(f) for f in feeds]}
        _write_private(self.path, json.dumps(document, indent=1, sort_keys=True) + "\n")
