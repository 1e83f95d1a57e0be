"""The OpenPGP keys of a site: GnuPG homes driven through python-gnupg.

Why python-gnupg: it runs the ``gpg`` binary that admins already have and
trust (Debian's ``gnupg``), talks to it only through ``--status-fd`` lines
and pipes, is pure Python with no dependencies (it installs into the
agent's virtual environment like the rest), and is maintained. GPGME's
binding (Debian's ``python3-gpg``) is only packaged for the system Python
and is not on PyPI in a usable form; a virtual environment cannot use it.

Two GnuPG homes (RFC 4880 keys, Autocrypt Level 1 §2.1):

- ``home`` (the ``[agent] keyring`` setting, by default ``keys`` beside the
  store): the keys the admin put there with ``imip-admin key``: the secret
  keys of calendar users (generated here, never exported) and the public
  keys of organisers the admin imported. Only a signature by a key of this
  home counts as proof of who sent a message.
- ``home/autocrypt``: keys learned from ``Autocrypt:`` headers. Anyone can
  send such a header with a forged From, so these keys are used to encrypt
  replies only (what Autocrypt is for), never to authenticate a sender.

A key belongs to an address when one of its user ids holds that address
(``Name <address>`` or the bare address), compared as
:func:`imiptools.addresses.normalise` does. Decryption and verification
happen in memory (pipes to ``gpg``); only a detached signature, which is
public, passes through a temporary file (``gpg --verify`` reads it from
one). Every failure of ``gpg`` becomes a value or :class:`KeyringError`,
never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imiptools import addresses
from imiptools.deferred import dataclass
from imiptools.mail.parse import single_line

if TYPE_CHECKING:
    import gnupg

__all__ = [
    "Decrypted",
    "GpgFailed",
    "Key",
    "Keyring",
    "KeyringError",
    "NoKey",
    "Signature",
    "key_addresses",
]

log = logging.getLogger(__name__)

#: Where learned keys are kept, inside the keyring's home.
AUTOCRYPT_HOME = "autocrypt"
#: The Autocrypt state of each address (when its key was last seen).
AUTOCRYPT_STATE = "state.json"
#: OpenPGP hash algorithm ids (RFC 4880 §9.4) -> RFC 3156 §5 ``micalg``.
MICALG = {"2": "pgp-sha1", "8": "pgp-sha256", "9": "pgp-sha384", "10": "pgp-sha512"}
#: How long one gpg run may take (key generation included).
GPG_TIMEOUT = 60
_UNSAFE_NAME = r"[^\w .,'()-]+"


class KeyringError(Exception):
    """A key operation that cannot be done (a key that does not fit)."""


class NoKey(KeyringError):
    """The keyring holds no (such) key."""


class GpgFailed(KeyringError):
    """gpg could not be run, or failed."""


@dataclass(frozen=True)
class Key:
    """One OpenPGP key as the admin sees it."""

    fingerprint: str
    uids: tuple[str, ...]
    secret: bool
    #: ``keyring`` (the admin's) or ``autocrypt`` (learned from a header).
    source: str
    created: str = ""
    expires: str = ""

    @property
    def addresses(self) -> tuple[str, ...]:
        """The addresses of its user ids, normalised."""
        return key_addresses(self.uids)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "fingerprint": self.fingerprint,
            "uids": list(self.uids),
            "addresses": list(self.addresses),
            "secret": self.secret,
            "source": self.source,
            "created": self.created,
            "expires": self.expires,
        }


@dataclass(frozen=True)
class Signature:
    """What a signature proved: ``valid`` with the primary key's
    ``fingerprint`` and the addresses of its user ids (keys of the admin's
    home only), else the ``problem``."""

    valid: bool
    fingerprint: str = ""
    addresses: tuple[str, ...] = ()
    problem: str = ""


@dataclass(frozen=True)
class Decrypted:
    """The plaintext of an OpenPGP message (``ok``) or why not, and the
    signature found inside it (None: not signed)."""

    ok: bool
    data: bytes = b""
    problem: str = ""
    signature: Signature | None = None


def key_addresses(uids: Iterable[str]) -> tuple[str, ...]:
    """The distinct addresses named by OpenPGP user ids, normalised."""
    found: list[str] = []
    for uid in uids:
        address = addresses.normalise(parseaddr(uid)[1] or uid)
        if address and "@" in address and address not in found:
            found.append(address)
    return tuple(found)


def _gpg_key(raw: dict[str, Any], secret: bool, source: str) -> Key:
    return Key(
        fingerprint=str(raw.get("fingerprint", "")),
        uids=tuple(str(u) for u in raw.get("uids", [])),
        secret=secret,
        source=source,
        created=str(raw.get("date", "")),
        expires=str(raw.get("expires", "")),
    )


class Keyring:
    """The site's keys (see the module docstring); cheap to build: nothing
    runs until a key is needed, and a home that does not exist means the
    site has no keys (:meth:`exists`)."""

    def __init__(self, home: Path, binary: str = "gpg") -> None:
        self.home = home
        self.binary = binary
        self._gpg: dict[Path, gnupg.GPG] = {}
        #: The keys of each home, listed once until a key changes.
        self._listed: dict[Path, list[Key]] = {}

    # -- the homes ----------------------------------------------------------

    def exists(self) -> bool:
        """Whether the site has a keyring (the home is a directory)."""
        return self.home.is_dir()

    def create(self) -> None:
        """Make both homes (mode 0700, as gpg requires)."""
        for path in (self.home, self.home / AUTOCRYPT_HOME):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(path, 0o700)

    def _run(self, home: Path) -> gnupg.GPG:
        """The python-gnupg handle of ``home`` (built once: it runs ``gpg
        --version``)."""
        import gnupg  # lazy: start-up (only mail that needs a key pays)

        if home not in self._gpg:
            if not home.is_dir():
                raise NoKey(f"no keyring at {home} (imip-admin key generate makes one)")
            try:
                self._gpg[home] = gnupg.GPG(
                    gpgbinary=self.binary,
                    gnupghome=str(home),
                    options=["--no-auto-key-retrieve", "--no-auto-key-locate"],
                )
            except (OSError, ValueError, RuntimeError) as exc:
                raise GpgFailed(f"cannot run {self.binary}: {exc}") from exc
        return self._gpg[home]

    def stop_agents(self) -> None:
        """Stop the gpg-agents that gpg started for the homes (an admin's
        must not keep the keys open; tests leave none behind). Quiet."""
        import subprocess  # lazy: start-up (only the admin's commands stop agents)

        for home in (self.home, self._learned):
            if not home.is_dir():
                continue
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(
                    ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                    capture_output=True,
                    timeout=GPG_TIMEOUT,
                    check=False,
                )

    @property
    def _learned(self) -> Path:
        return self.home / AUTOCRYPT_HOME

    # -- listing ------------------------------------------------------------

    def keys(self, address: str | None = None) -> list[Key]:
        """Every key (of ``address`` when given): the admin's, then learned."""
        if not self.exists():
            return []
        found = self._keys(self.home, "keyring")
        if self._learned.is_dir():
            found += self._keys(self._learned, "autocrypt")
        if address is None:
            return found
        wanted = addresses.normalise(address)
        return [key for key in found if wanted in key.addresses]

    def _keys(self, home: Path, source: str) -> list[Key]:
        if home not in self._listed:
            gpg = self._run(home)
            secret = {k["fingerprint"] for k in gpg.list_keys(secret=True)}
            keys = [_gpg_key(k, k["fingerprint"] in secret, source) for k in gpg.list_keys()]
            self._listed[home] = keys
        return list(self._listed[home])

    def _changed(self) -> None:
        """Forget the listings (a key was added or removed)."""
        self._listed.clear()

    def secret_key(self, address: str) -> Key | None:
        """The usable secret key of ``address`` in the admin's home, if any."""
        usable = [k for k in self.keys(address) if k.secret and k.source == "keyring"]
        return usable[-1] if usable else None

    def public_key(self, address: str) -> Key | None:
        """A key to encrypt to ``address``: the admin's first, else learned."""
        found = self.keys(address)
        for source in ("keyring", "autocrypt"):
            matching = [k for k in found if k.source == source]
            if matching:
                return matching[-1]
        return None

    # -- admin operations ---------------------------------------------------

    def generate(self, address: str, name: str = "") -> Key:
        """A new ed25519 signing key with a cv25519 encryption subkey for
        ``address``, without passphrase (the agent must use it unattended:
        the home's mode 0700 protects it) and without expiry."""
        self.create()
        address = addresses.check(addresses.normalise(address))
        real = re.sub(_UNSAFE_NAME, " ", single_line(name)).strip() or address.split("@")[0]
        gpg = self._run(self.home)
        request = gpg.gen_key_input(
            key_type="EDDSA",
            key_curve="ed25519",
            key_usage="sign",
            subkey_type="ECDH",
            subkey_curve="cv25519",
            subkey_usage="encrypt",
            name_real=real,
            name_email=address,
            expire_date="0",
            no_protection=True,
        )
        made = gpg.gen_key(request)
        self._changed()
        if not made.fingerprint:
            raise GpgFailed(f"gpg could not generate a key: {single_line(made.stderr)[-300:]}")
        return self._one(self.home, str(made.fingerprint), "keyring")

    def _one(self, home: Path, fingerprint: str, source: str) -> Key:
        for key in self._keys(home, source):
            if key.fingerprint == fingerprint:
                return key
        raise NoKey(f"no key {fingerprint}")

    def import_keys(self, address: str, data: bytes) -> list[Key]:
        """Import the keys in ``data`` (armored or binary; public, or secret
        without passphrase) that have a user id of ``address``; refuse
        (KeyringError) when none has one."""
        self.create()
        wanted = addresses.normalise(address)
        gpg = self._run(self.home)
        scanned = gpg.scan_keys_mem(data)
        bound = [k["fingerprint"] for k in scanned if wanted in key_addresses(k.get("uids", []))]
        if not bound:
            named = sorted({a for k in scanned for a in key_addresses(k.get("uids", []))})
            names = ", ".join(named) or "nothing"
            raise KeyringError(f"the data holds no key of {wanted} (its keys name: {names})")
        result = gpg.import_keys(data)
        self._changed()
        imported = set(result.fingerprints) & set(bound)
        if not imported:
            raise GpgFailed(f"gpg imported nothing: {single_line(result.stderr)[-300:]}")
        return [k for k in self._keys(self.home, "keyring") if k.fingerprint in imported]

    def export(self, address: str, minimal: bool = False) -> str:
        """The public key of ``address`` (armored); never a secret key."""
        key = self.secret_key(address) or self.public_key(address)
        if key is None:
            raise NoKey(f"no key for {addresses.normalise(address)}")
        home = self.home if key.source == "keyring" else self._learned
        text = self._run(home).export_keys(key.fingerprint, minimal=minimal)
        return str(text)

    def remove(self, address: str) -> list[Key]:
        """Delete every key of ``address`` (secret ones too) from both homes."""
        gone = self.keys(address)
        for key in gone:
            gpg = self._run(self.home if key.source == "keyring" else self._learned)
            if key.secret:
                gpg.delete_keys(key.fingerprint, secret=True, expect_passphrase=False)
            gpg.delete_keys(key.fingerprint)
        self._changed()
        return gone

    # -- messages -----------------------------------------------------------

    def decrypt(self, data: bytes, max_output: int | None = None) -> Decrypted:
        """Decrypt an OpenPGP message (RFC 4880) with the admin's secret
        keys, checking a signature inside it (RFC 3156 §6.2). ``max_output``
        bounds the plaintext (``gpg --max-output``: a compressed message
        cannot grow without limit); a bigger one is not decrypted."""
        if not self.exists():
            return Decrypted(False, problem="the site has no keyring")
        limit = ["--max-output", str(max_output)] if max_output else None
        try:
            result = self._run(self.home).decrypt(data, always_trust=True, extra_args=limit)
        except (OSError, ValueError, KeyringError) as exc:
            return Decrypted(False, problem=f"gpg failed: {exc}")
        if not result.ok:
            return Decrypted(False, problem=_decrypt_problem(result))
        over = len(result.data) >= (max_output or len(result.data) + 1)
        if max_output and (over or "--max-output" in str(result.stderr)):  # gpg stopped there
            return Decrypted(False, problem=f"the plaintext exceeds {max_output} bytes")
        signed = bool(getattr(result, "key_id", None) or result.fingerprint)
        signature = self._signature(result) if signed else None
        return Decrypted(True, bytes(result.data), "", signature)

    def verify(self, data: bytes, signature: bytes) -> Signature:
        """Check a detached signature (RFC 3156 §5) over ``data`` with the
        admin's keys (a learned key proves nothing)."""
        if not self.exists():
            return Signature(False, problem="the site has no keyring")
        import tempfile  # lazy: start-up (and shutil, lzma, bz2: only to verify)

        with tempfile.NamedTemporaryFile(prefix="imip-sig-", suffix=".asc") as sig:
            sig.write(signature)
            sig.flush()
            try:
                result = self._run(self.home).verify_data(sig.name, data)
            except (OSError, ValueError, KeyringError) as exc:
                return Signature(False, problem=f"gpg failed: {exc}")
        return self._signature(result)

    def _signature(self, result: Any) -> Signature:
        fingerprint = str(
            getattr(result, "pubkey_fingerprint", None) or getattr(result, "fingerprint", "") or ""
        )
        problems = list(getattr(result, "problems", []) or [])
        if not result.valid or not fingerprint or problems:
            return Signature(False, fingerprint, problem=_signature_problem(result, problems))
        found = [k for k in self._keys(self.home, "keyring") if k.fingerprint == fingerprint]
        uids = found[0].uids if found else tuple(getattr(result, "username", "") or "")
        return Signature(True, fingerprint, key_addresses(uids))

    def sign(self, data: bytes, address: str) -> tuple[bytes, str]:
        """A detached armored signature of ``data`` by ``address``'s secret
        key, and its ``micalg`` (RFC 3156 §5). KeyringError without one."""
        key = self.secret_key(address)
        if key is None:
            raise NoKey(f"no secret key for {address}")
        signed = self._run(self.home).sign(
            data,
            keyid=key.fingerprint,
            detach=True,
            clearsign=False,
            extra_args=["--digest-algo", "SHA256"],
        )
        if not signed.data:
            raise GpgFailed(f"gpg could not sign: {single_line(signed.stderr)[-300:]}")
        micalg = MICALG.get(str(getattr(signed, "hash_algo", "8")), "pgp-sha256")
        return bytes(signed.data), micalg

    def encrypt(self, data: bytes, recipients: Sequence[str]) -> bytes:
        """``data`` encrypted (armored) to the key of each recipient
        (admin's or learned); KeyringError when one has none."""
        keys = []
        for each in recipients:
            key = self.public_key(each)
            if key is None:
                raise NoKey(f"no key for {each}")
            keys.append(key)
        homes = {k.source for k in keys}
        home = self.home if homes == {"keyring"} else self._learned
        if len(homes) > 1:
            for key in keys:  # one home must hold them all: copy the admin's keys over
                if key.source == "keyring":
                    exported = self._run(self.home).export_keys(key.fingerprint)
                    self._run(home).import_keys(exported)
                    self._changed()
        done = self._run(home).encrypt(data, [k.fingerprint for k in keys], always_trust=True)
        if not done.ok:
            raise GpgFailed(f"gpg could not encrypt: {single_line(done.stderr)[-300:]}")
        return bytes(done.data)

    # -- Autocrypt ------------------------------------------------------------

    def learn(self, address: str, keydata: bytes, seen: str) -> Key | None:
        """Keep the key of an ``Autocrypt:`` header (Autocrypt Level 1 §2.3)
        for ``address``, seen in a message dated ``seen`` (ISO 8601, UTC).

        Ignored when the admin's home has a key of ``address`` (the admin's
        key wins), when the key has no user id of ``address``, or when an
        Autocrypt key from a later message is kept already. Returns the key
        kept (None: nothing changed)."""
        if not self.exists():
            return None
        address = addresses.normalise(address)
        if any(k.source == "keyring" for k in self.keys(address)):
            return None
        self._learned.mkdir(mode=0o700, exist_ok=True)
        state = self._state()
        if state.get(address, {}).get("seen", "") > seen:
            return None
        gpg = self._run(self._learned)
        scanned = gpg.scan_keys_mem(keydata)
        fingerprints = [
            k["fingerprint"] for k in scanned if address in key_addresses(k.get("uids", []))
        ]
        if len(scanned) != 1 or not fingerprints:
            return None
        previous = [k for k in self._keys(self._learned, "autocrypt") if address in k.addresses]
        if [k.fingerprint for k in previous] != fingerprints:
            for key in previous:
                gpg.delete_keys(key.fingerprint)
            imported = gpg.import_keys(keydata).fingerprints
            self._changed()
            if fingerprints[0] not in imported:
                return None
        state[address] = {"seen": seen, "fingerprint": fingerprints[0]}
        self._save_state(state)
        return self._one(self._learned, fingerprints[0], "autocrypt")

    def _state(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads((self._learned / AUTOCRYPT_STATE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save_state(self, state: dict[str, dict[str, str]]) -> None:
        path = self._learned / AUTOCRYPT_STATE
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(json.dumps(state, sort_keys=True), encoding="utf-8")
        os.replace(temporary, path)

    def autocrypt_keydata(self, address: str) -> bytes | None:
        """The minimal binary public key of ``address``'s secret key, for
        its ``Autocrypt:`` header (Level 1 §2.1.1); None without one."""
        key = self.secret_key(address)
        if key is None:
            return None
        gpg = self._run(self.home)
        data = gpg.export_keys(key.fingerprint, armor=False, minimal=True)
        return data if isinstance(data, bytes) else str(data).encode("latin-1")


#: python-gnupg's words for a signature's problem, as a reason says them.
_SIGNATURE_PROBLEMS = {
    "signature error": "no key of the keyring made it",
    "signature bad": "bad signature",
    "signature expired": "expired signature",
}


def _signature_problem(result: Any, problems: list[dict[str, str]]) -> str:
    """Why a signature did not verify, with the key id it names."""
    if problems:
        status, key = problems[-1].get("status", ""), problems[-1].get("keyid", "")
    else:
        status, key = str(getattr(result, "status", "") or ""), getattr(result, "key_id", "")
    why = _SIGNATURE_PROBLEMS.get(status, status or "no valid signature")
    return f"{why} (key {key})" if key else why


def _decrypt_problem(result: Any) -> str:
    status = str(getattr(result, "status", "") or "")
    if "no secret key" in status or "NO_SECKEY" in str(getattr(result, "stderr", "")):
        return "encrypted to a key the agent does not hold"
    return f"cannot decrypt: {status or 'gpg failed'}"
