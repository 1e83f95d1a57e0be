#!/usr/bin/env python3
"""make_freebusy.py: the original's name for ``imip-admin make-freebusy``.

    tools/make_freebusy.py [store options] [USER ...] [--reset]

With no USER, every user of the store (``--all``). Store options (``-c``,
``-S``, ``-p`` ...) are passed on. ``imip-admin`` is taken from
``$IMIP_ADMIN``, beside this Python, or from ``PATH``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def imip_admin() -> str:
    """The imip-admin program to run."""
    beside = Path(sys.executable).parent / "imip-admin"
    found = os.environ.get("IMIP_ADMIN") or (str(beside) if beside.exists() else None)
    return found or shutil.which("imip-admin") or "imip-admin"


def main(argv: list[str]) -> int:
    """Run make-freebusy; ``--all`` unless a USER (an argument with '@') is named."""
    users = [arg for arg in argv if "@" in arg and not arg.startswith("-")]
    extra = [] if users or "--all" in argv else ["--all"]
    command = [imip_admin(), "make-freebusy", *argv, *extra]
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"4.3.0 cannot run imip-admin: {exc.strerror} (set IMIP_ADMIN or PATH)")
    return 75


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
