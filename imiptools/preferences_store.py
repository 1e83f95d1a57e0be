"""Preference files: one file per preference, in a directory per user.

The original's layout: ``root/<user>/<name>`` holds the value of preference
``<name>`` for calendar user ``<user>`` (the directory is
:func:`~imiptools.stores.names.user_component`, e.g.
``mailto:room@example.com``), so that an admin edits a preference with any
editor. What the values mean is :mod:`imiptools.preferences`' business.

Contracts:

* Preference names match ``[A-Za-z][A-Za-z0-9_-]{0,63}`` (``CN``, ``TZID``,
  ``scheduling_function``: :func:`~imiptools.stores.names.check_preference_name`);
  anything else raises :class:`~imiptools.errors.UnsafeName`, so a name
  never reaches a path unchecked.
* :meth:`PreferenceFiles.get` returns the file's text without its trailing
  line ends (an editor adds one); inner lines are kept (multi-line values
  such as ``scheduling_function``).
* Writes are atomic (:func:`~imiptools.fileutil.atomic_write`) and end the
  file with one newline; errors leave as
  :class:`~imiptools.errors.StoreUnavailable`.
* The root may be reached through symlinks (resolved once); a symlink
  below it is refused, never followed
  (:class:`~imiptools.errors.SymlinkRefused`, see :mod:`imiptools.fileutil`).
"""

from __future__ import annotations

from pathlib import Path

from imiptools.fileutil import atomic_write, list_names, read_text, remove_file, resolve_root
from imiptools.stores.names import check_preference_name, is_preference_name, user_component


class PreferenceFiles:
    """Per-user preference files under ``root`` (see the module docstring):
    a :class:`~imiptools.preferences.PreferenceSource`."""

    def __init__(self, root: Path) -> None:
        self.root = resolve_root(root)

    def _path(self, user: str, name: str) -> Path:
        return self.root / user_component(user) / check_preference_name(name)

    def get(self, user: str, name: str) -> str | None:
        """The value of ``name`` for ``user``, or None if it is not set."""
        text = read_text(self._path(user, name))
        return None if text is None else text.rstrip("\r\n")

    def set(self, user: str, name: str, value: str) -> None:
        """Set ``name`` to ``value`` for ``user`` (atomically)."""
        atomic_write(self._path(user, name), value.rstrip("\r\n") + "\n")

    def unset(self, user: str, name: str) -> None:
        """Remove ``name`` for ``user``; unset already is fine."""
        remove_file(self._path(user, name))

    def names(self, user: str) -> list[str]:
        """The preference names set for ``user``, sorted."""
        directory = self.root / user_component(user)
        return [name for name in list_names(directory) if is_preference_name(name)]

    def values(self, user: str) -> dict[str, str]:
        """Every value set for ``user``: one listing of the directory, one
        read a file (a file removed meanwhile is left out)."""
        found = {name: self.get(user, name) for name in self.names(user)}
        return {name: value for name, value in found.items() if value is not None}
