"""The build's one step beyond pyproject.toml: the manual pages.

The metadata lives in pyproject.toml. At build time (``pip install``,
``python -m build``, an editable install) the ``build_man`` step writes
``build/man/*.1`` from the programs' argparse parsers (``tools/manpages.py``,
the same parsers as ``--help`` and the manual's reference), and they are
installed as data files into ``share/man/man1`` (``/opt/imip-agent/venv/
share/man/man1/imip-admin.1``; ``man -l`` reads one there). The parsers
import the package, so its dependencies are also build requirements.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import ClassVar

from setuptools import Command, setup
from setuptools.command.build import build

ROOT = Path(__file__).resolve().parent
#: Where the pages are written, relative to the source tree (setuptools
#: wants relative data file paths).
MAN_DIR = "build/man"
PROGRAMS = sorted(
    tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
)


class BuildMan(Command):
    """Write the manual pages of the programs into ``build/man``."""

    description = "generate the manual pages from the programs' parsers"
    user_options: ClassVar[list[tuple[str, str | None, str]]] = []

    def initialize_options(self) -> None:
        """No options."""

    def finalize_options(self) -> None:
        """No options."""

    def run(self) -> None:
        """Import the generator and the package from this source tree; write the pages."""
        for path in (ROOT, ROOT / "tools"):
            if str(path) not in sys.path:
                sys.path.insert(0, str(path))
        import manpages

        written = {path.name for path in manpages.write_pages(ROOT / MAN_DIR)}
        missing = {f"{name}.1" for name in PROGRAMS} - written
        if missing:
            raise SystemExit(f"build_man: no manual page for {', '.join(sorted(missing))}")


class Build(build):
    """``build``, writing the manual pages first."""

    sub_commands: ClassVar[list[tuple[str, object]]] = [("build_man", None), *build.sub_commands]


setup(
    cmdclass={"build": Build, "build_man": BuildMan},
    data_files=[("share/man/man1", [f"{MAN_DIR}/{name}.1" for name in PROGRAMS])],
)
