"""OpenPGP fixtures: real GnuPG with throwaway homes, never ``~/.gnupg``.

The keys (ed25519/cv25519, no passphrase: quick even on a loaded machine)
are made once per session (per xdist worker): the room's, the organiser
Alice's and Mallory's, each in a GnuPG home of its own that plays that
party's mail client. A test's site gets the keys it needs with
``imip-admin key import``, as an admin would. Every gpg-agent started in a
home is stopped when the home is done with. The homes live under short
temporary paths: gpg-agent's socket path must stay below 108 bytes.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from imiptools.mail.keyring import Keyring
from tests.support import IN_CI, ROOM, Agent

ALICE = "alice@example.com"
MALLORY = "mallory@example.com"
NOBODY = "nobody@example.com"


@dataclass(frozen=True)
class Party:
    """Someone with a key: a GnuPG home that plays their mail client."""

    address: str
    home: Path

    def gpg(self, *args: str, data: bytes = b"") -> bytes:
        """Run gpg in this home; its output (fails the test on an error)."""
        argv = [
            *("gpg", "--homedir", str(self.home), "--batch", "--yes", "--trust-model", "always"),
            *("--no-auto-key-locate", "--no-auto-key-retrieve"),
        ]
        done = subprocess.run(
            [*argv, *args], input=data, capture_output=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
        return done.stdout

    def public(self) -> bytes:
        """The armored public key."""
        return self.gpg("--armor", "--export", self.address)

    def secret(self) -> bytes:
        """The armored secret key (the room's goes to the site's keyring)."""
        return self.gpg("--armor", "--export-secret-keys", self.address)


@dataclass(frozen=True)
class Parties:
    """The session's keys."""

    room: Party
    alice: Party
    mallory: Party
    nobody: Party


def _short_directory(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


@pytest.fixture(scope="session")
def parties() -> Iterator[Parties]:
    """Keys of the room, Alice, Mallory and a stranger, made once; Alice and
    Mallory know the room's public key, the room's home knows Alice's.
    Without gpg the tests skip (fail in CI: tools/ci-gnupg installs it)."""
    if shutil.which("gpg") is None or shutil.which("gpgconf") is None:
        if IN_CI:
            pytest.fail("gpg is not installed (tools/ci-gnupg installs it)")
        pytest.skip("gpg is not installed (tools/ci-gnupg installs it)")
    top = _short_directory("pgp-")
    made = {}
    for name, address in (
        ("room", ROOM),
        ("alice", ALICE),
        ("mallory", MALLORY),
        ("nobody", NOBODY),
    ):
        keyring = Keyring(top / name)
        keyring.generate(address, name.title())
        made[name] = Party(address, top / name)
    room = made["room"]
    for name in ("alice", "mallory"):
        made[name].gpg("--import", data=room.public())
        made[name].gpg("--import", data=made["nobody"].public())
        room.gpg("--import", data=made[name].public())
    yield Parties(**made)
    for party in made.values():
        Keyring(party.home).stop_agents()
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def site(tmp_path: Path, parties: Parties) -> Iterator[Agent]:
    """A file site whose keyring (a short path) holds the room's secret key
    and Alice's public key, put there with ``imip-admin key import``."""
    keys = _short_directory("k-")
    config = tmp_path / "site.toml"
    config.write_text(f'[agent]\nkeyring = "{keys}"\n', encoding="utf-8")
    agent = Agent(tmp_path, config=config)
    for party in (parties.room, parties.alice):
        source = tmp_path / f"{party.home.name}.asc"
        source.write_bytes(party.secret() if party is parties.room else party.public())
        done = agent.admin("key", "import", party.address, str(source))
        assert done.returncode == 0, done.stdout + done.stderr
    yield agent
    Keyring(keys).stop_agents()
    shutil.rmtree(keys, ignore_errors=True)
