"""Write, for each Jinja template named, a stub of the Python calls its
messages are (``_("...")``, ``ngettext("...", "...", n)``), under the stub
directory at the template's own relative path, for ``xgettext`` to read.

Used by ``tools/i18n``: jinja2's own extractor (:func:`jinja2.ext.babel_extract`)
finds the messages; a call whose argument is no literal (``_(label)``) is
skipped (its msgid is marked where it is defined, with ``N_``).

Usage: ``python tools/i18n_templates.py STUBDIR TEMPLATE...``
"""

from __future__ import annotations

import sys
from pathlib import Path

from jinja2.ext import babel_extract

KEYWORDS = ("_", "gettext", "ngettext")


def calls(template: Path) -> list[str]:
    """The message calls of ``template``, one Python expression each."""
    lines = []
    with template.open("rb") as file:
        for _line, _function, message, _comments in babel_extract(file, KEYWORDS, [], {}):
            if isinstance(message, tuple) and None not in message[:2]:
                lines.append(f"ngettext({message[0]!r}, {message[1]!r}, n)")
            elif isinstance(message, str):
                lines.append(f"_({message!r})")
    return lines


def main(arguments: list[str]) -> None:
    """Write the stubs of the templates ``arguments[1:]`` under ``arguments[0]``."""
    stubs = Path(arguments[0])
    for name in arguments[1:]:
        stub = stubs / name
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("".join(f"{call}\n" for call in calls(Path(name))), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
