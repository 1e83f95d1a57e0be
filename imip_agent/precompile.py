"""``python -m imip_agent.precompile``: compile every library class's
generated methods once, as ``compileall`` compiles bytecode.

:mod:`imiptools.deferred` keeps the code :mod:`dataclasses` compiles for a
class in the ``__pycache__`` of the class's module, written by whichever
process first makes the class, if it may write there. An installation whose
``__pycache__`` the MTA's user cannot write (a venv owned by root) runs this
once as its owner after each install; otherwise every delivery compiles its
classes' methods again (about 14 ms of a room's delivery, issue 15).

It imports every module that declares a class: the programs, and the
modules they import only when a message needs them (those of an optional
dependency that is not installed, the web interface's and the PostgreSQL
backend's, are skipped); ``tests/test_deferred.py`` checks that nothing is
missed. Prints how many classes it made; exits 0.
"""

from __future__ import annotations

import contextlib
import sys

# The programs, and what they import at start-up (imported for their classes):
import imip_agent.admin
import imip_agent.client
import imip_agent.lmtp
import imip_agent.person
import imip_agent.person_outgoing
import imip_agent.resource

# What they import only when a message or a command needs it:
import imiptools.itip.budget
import imiptools.itip.recurrence_set
import imiptools.mail.approval
from imiptools import deferred

with contextlib.suppress(ImportError):  # the [manager] extra
    import imip_agent.manager.app  # noqa: F401
with contextlib.suppress(ImportError):  # the [postgresql] extra
    import imiptools.backends.postgresql.ledger  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    """Make every class, keeping its compiled methods; print how many."""
    del argv
    made = deferred.pending()
    deferred.settle_all()
    deferred.save_caches(always=True)  # as compileall, even under python -B
    print(f"{made} classes made; their compiled methods kept in __pycache__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
