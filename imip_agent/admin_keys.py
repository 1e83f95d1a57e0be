"""imip-admin key: the OpenPGP keys of calendar users and their correspondents.

The keys live in the site's GnuPG home (``[agent] keyring``, by default
``keys`` beside the store; see :mod:`imiptools.mail.keyring`). A resource's
secret key is made here and never leaves the keyring: ``export`` prints
public keys only. Run as root, what is written is given to the owner of the
store directory (the agents' user), as ``add-resource`` does.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from imip_agent.admin_parser import add_command
from imip_agent.cli import site_from
from imiptools.config import Settings
from imiptools.errors import ConfigError, InputError, NoSuchUser, UsageError
from imiptools.initialise import own_like
from imiptools.mail.keyring import GpgFailed, Key, Keyring, KeyringError, NoKey
from imiptools.site import keyring_home
from imiptools.stores.names import normalise_user

KEY = """\
Manage the OpenPGP keys of the site (a GnuPG home: [agent] keyring, by
default 'keys' beside the store):

  generate USER      a new ed25519/cv25519 key for a calendar user (no
                     passphrase: the agent uses it unattended; the keyring
                     directory, mode 0700, protects it)
  import USER [FILE] the keys in FILE (default: standard input) that have a
                     user id of USER: an organiser's public key (a signature
                     by it then proves who sent a message), or a resource's
                     secret key made elsewhere (without passphrase)
  export USER        USER's public key, armored (secret keys never leave)
  list [USER]        the keys (of USER): fingerprint, secret or public, where
                     from (keyring: put there by an admin; autocrypt: learned
                     from mail, used only to encrypt)
  remove USER        every key of USER, secret ones too

examples:
  imip-admin key generate room@example.com
  imip-admin key export room@example.com > room.asc
  imip-admin key import alice@example.com alice.asc
  imip-admin key list --json
"""

ACTIONS = ("generate", "import", "export", "list", "remove")


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``key``."""
    sub = add_command(commands, "key", _key, "manage OpenPGP keys (generate, import, ...)", KEY)
    sub.add_argument("action", choices=ACTIONS, help="what to do")
    sub.add_argument("user", nargs="?", metavar="USER", help="a calendar user or correspondent")
    sub.add_argument("file", nargs="?", metavar="FILE", help="import: the key file (default: -)")
    sub.add_argument("--name", default="", help="generate: the name in the user id")
    sub.add_argument("--json", action="store_true", help="list: one JSON document")


def _key(args: argparse.Namespace, settings: Settings) -> str:
    if args.action != "list" and not args.user:
        raise UsageError(f"key {args.action} needs USER")
    address = normalise_user(args.user).removeprefix("mailto:") if args.user else None
    keyring = Keyring(keyring_home(settings))
    try:
        if args.action == "generate":
            return _generate(args, settings, keyring, str(address))
        if args.action == "import":
            return _import(args, settings, keyring, str(address))
        if args.action == "export":
            return keyring.export(str(address))
        if args.action == "remove":
            return _remove(settings, keyring, str(address))
        return _list(keyring, address, args.json)
    except NoKey as exc:
        raise NoSuchUser(str(exc)) from exc
    except GpgFailed as exc:
        raise ConfigError(str(exc)) from exc
    except KeyringError as exc:
        raise InputError(str(exc)) from exc
    finally:
        keyring.stop_agents()


def _generate(args: argparse.Namespace, settings: Settings, keyring: Keyring, address: str) -> str:
    if keyring.secret_key(address) is not None:
        raise UsageError(f"{address} has a secret key already (key remove first)")
    name = args.name or site_from(args, settings).preferences_of(address).get("CN")
    key = keyring.generate(address, name)
    _hand_over(keyring, settings)
    return _line(key)


def _import(args: argparse.Namespace, settings: Settings, keyring: Keyring, address: str) -> str:
    if args.file and args.file != "-":
        try:
            data = Path(args.file).read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {args.file}: {exc.strerror}") from exc
    else:
        data = sys.stdin.buffer.read()
    keys = keyring.import_keys(address, data)
    _hand_over(keyring, settings)
    return "".join(_line(key) for key in keys)


def _remove(settings: Settings, keyring: Keyring, address: str) -> str:
    gone = keyring.remove(address)
    if not gone:
        raise NoSuchUser(f"no key for {address}")
    return "".join(f"removed {_line(key)}" for key in gone)


def _list(keyring: Keyring, address: str | None, as_json: bool) -> str:
    keys = keyring.keys(address)
    if as_json:
        return json.dumps({"keys": [k.as_dict() for k in keys]}, indent=2) + "\n"
    return "".join(_line(key) for key in keys)


def _line(key: Key) -> str:
    kind = "secret" if key.secret else "public"
    return f"{key.fingerprint}\t{kind}\t{key.source}\t{', '.join(key.uids)}\n"


def _hand_over(keyring: Keyring, settings: Settings) -> None:
    """The keyring's files to the owner of the store directory, when root."""
    paths = [keyring.home, *keyring.home.rglob("*")]
    own_like([p for p in paths if not p.is_symlink()], Path(settings.store))
