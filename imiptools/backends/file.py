"""The file backend: a site's data in directories an admin can read.

The store is :class:`~imiptools.stores.file.FileStore` at the ``store``
setting, the quota ledger :class:`~imiptools.quota.journal.QuotaJournal`
at ``journal``, the preferences
:class:`~imiptools.preferences_store.PreferenceFiles` at ``preferences``,
and the outbox a :class:`~imiptools.spool.Spool` in the store
(``STORE/.outbox``). Registered as ``file`` in the ``imip_agent.backends``
entry-point group (the default ``backend``).

What only files can get wrong is checked here
(:mod:`imiptools.stores.filecheck`): stray temporary files, free/busy lines
their index does not name, and symlinks below the configured directories,
which the agents refuse (:class:`~imiptools.errors.SymlinkRefused`) and
``--repair`` neither follows nor removes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path

from imiptools.backends.base import Backend, Problem
from imiptools.config import Settings
from imiptools.errors import StoreUnavailable, UnsafeName
from imiptools.fileutil import ensure_directory, is_symlink, list_names, remove_file
from imiptools.preferences_store import PreferenceFiles
from imiptools.quota.journal import QuotaJournal
from imiptools.spool import Spool
from imiptools.stores.file import FileStore
from imiptools.stores.filecheck import (
    link_target,
    stray_temporary_files,
    symlink_entries,
    symlinks_below,
    unindexed_periods,
)
from imiptools.stores.names import is_hashed, normalise_user, user_component

#: The outbox directory in the store.
OUTBOX = ".outbox"

#: Temporary files outside a locked user's records (preferences, outbox)
#: count as stray only when at least this old (seconds): they may be in use.
UNLOCKED_TEMPORARY_AGE = 3600.0


def outbox_of(store: Path | str) -> Spool:
    """The outbox of the file store at ``store`` (``STORE/.outbox``)."""
    return Spool(Path(store) / OUTBOX)


class FileBackend(Backend):
    """The site's directories, as the settings name them."""

    name = "file"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.files = FileStore(Path(settings.store))
        self.journal = QuotaJournal(Path(settings.journal), settings.lock_timeout)
        self.preference_files = PreferenceFiles(Path(settings.preferences))
        self.store = self.files
        self.ledger = self.journal
        self.preferences = self.preference_files
        self.spool = outbox_of(self.files.root)
        self.outbox = self.spool

    @property
    def store_location(self) -> str:
        """The store's directory (symlinks resolved)."""
        return str(self.files.root)

    # -- imip-admin check ----------------------------------------------------------

    def site_problems(self, users: Collection[str]) -> list[Problem]:
        """Symlinks outside the users' records: entries of the store and
        preferences roots (other than the directories of ``users``),
        anything in the outbox or the quota journal."""
        mine = {user_component(user) for user in users}
        paths: list[Path] = []
        for root in self._user_roots():
            paths += [path for path in symlink_entries(root) if path.name not in mine]
        paths += symlinks_below(self.spool.directory)
        paths += symlinks_below(self.journal.root)
        problems = [Problem(_link_text(path)) for path in paths]
        for root in self._user_roots():
            problems += [misnamed_problem(root, name) for name in misnamed_entries(root)]
        return problems

    def preference_users(self) -> list[str]:
        """The users with a preference directory (named as the agents read it)."""
        root = self.preference_files.root
        return [user for name in list_names(root) if (user := _user_named(name)) is not None]

    def user_problems(self, user: str) -> list[Problem]:
        """The user's directories that are symlinks, and symlinks below them."""
        found: list[Path] = []
        for root in self._user_roots():
            directory = root / user_component(user)
            found += [directory] if directory.is_symlink() else symlinks_below(directory)
        return [Problem(_link_text(path)) for path in found]

    def _user_roots(self) -> list[Path]:
        """The roots holding a directory per user (store, preference files)."""
        return [self.files.root, self.preference_files.root]

    def record_problems(self, user: str) -> list[Problem]:
        """Stray temporary files (notes, removed by a repair) and free/busy
        lines that their uid's index does not name (a reset repairs them)."""
        problems = [
            Problem(f"stray temporary file {path}", note=True, repair=_remover(path))
            for path in stray_temporary_files(self.files.user_directory(user))
        ]
        try:
            unindexed = unindexed_periods(self.files, user)
        except StoreUnavailable as exc:
            text = f"the free/busy index cannot be read: {exc}"
            return [*problems, Problem(text, rederive=True)]
        problems += [
            Problem(
                f'free/busy file(s) {", ".join(names)} hold periods of "{uid}" '
                "that its index does not name",
                rederive=True,
            )
            for uid, names in sorted(unindexed.items())
        ]
        return problems

    def preference_problems(self, user: str) -> list[Problem]:
        """Stray temporary files in the user's preference directory (an hour
        old: a preference may be being written), removed by a repair."""
        directory = self.preference_files.root / user_component(user)
        return [
            Problem(f"stray temporary file {path}", repair=_remover(path))
            for path in stray_temporary_files(directory, UNLOCKED_TEMPORARY_AGE)
        ]

    # -- calendar users --------------------------------------------------------------

    def create_user(self, user: str) -> None:
        """The user's store directory with its lock file, and preference directory."""
        with self.files.lock(user, self.settings.lock_timeout):
            pass  # creates the user's directory and lock file
        ensure_directory(self.preference_files.root / user_component(user))

    def hand_over(self, user: str, preferences: Collection[str]) -> None:
        """Give the user's directories (and the preference files named) the
        owner of the store and preferences directories, when run as root."""
        from imiptools.initialise import own_like  # lazy: start-up (only imip-admin)

        records = self.files.user_directory(user)
        own_like([records, records / ".lock"], self.files.root)
        directory = self.preference_files.root / user_component(user)
        named = [directory / name for name in preferences]
        own_like([directory, *named], self.preference_files.root)

    def data_directories(self) -> dict[str, Path]:
        """The store, preferences and quota journal directories, as configured."""
        settings = self.settings
        return {
            "store": Path(settings.store),
            "preferences": Path(settings.preferences),
            "journal": Path(settings.journal),
        }

    def missing_locations(self) -> dict[str, str]:
        """The store and preferences directories, when they do not exist (a
        file where a directory belongs counts as missing)."""
        roots = {"store": self.files.root, "preferences": self.preference_files.root}
        return {name: str(path) for name, path in roots.items() if not path.is_dir()}

    def user_locations(self, user: str) -> list[str]:
        """The user's store and preference directories that exist."""
        places = (
            self.files.user_directory(user),
            self.preference_files.root / user_component(user),
        )
        return [str(path) for path in places if path.exists()]


def open_backend(settings: Settings) -> FileBackend:
    """The file backend of ``settings`` (the ``imip_agent.backends`` entry point)."""
    return FileBackend(settings)


def _user_named(name: str) -> str | None:
    """The user whose directory is called ``name`` (by :func:`user_component`),
    else None (a hashed name, which cannot be read back, counts as none)."""
    try:
        user = normalise_user(name)
    except UnsafeName:
        return None
    return user if user_component(user) == name else None


def misnamed_entries(root: Path) -> list[str]:
    """Entries of a root of user directories (store, preferences) that the
    agents never read: names that are addresses, but not spelt as the
    agents spell them (``mailto:roomA@example.com``, ``room@example.com``).
    Hashed names, hidden names and symlinks (reported on their own) are
    left alone; so are names that are no address at all."""
    found = []
    for name in list_names(root):
        if is_hashed(name) or is_symlink(root / name) or _user_named(name) is not None:
            continue
        try:
            normalise_user(name)
        except UnsafeName:
            continue
        found.append(name)
    return found


def misnamed_problem(root: Path, name: str) -> Problem:
    """The problem of directory ``root/name`` (see :func:`misnamed_entries`)."""
    user = normalise_user(name)
    expected = root / user_component(user)
    advice = (
        f"move what it holds into {expected}, which exists"
        if expected.exists()
        else f"rename it: mv '{root / name}' '{expected}'"
    )
    return Problem(
        f"{root / name} is ignored: the agents read {user}'s data from {expected}; {advice}"
    )


def _link_text(path: Path) -> str:
    return (
        f"symlink {path} -> {link_target(path)}: the agents refuse it and defer mail "
        "until it is replaced by the real file or directory"
    )


def _remover(path: Path) -> Callable[[], object]:
    return lambda: remove_file(path)
