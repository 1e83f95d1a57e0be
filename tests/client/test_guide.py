"""The library guide's Python examples run (docs/development/client-library.md):
every ``python`` block of the page, in order, in one namespace, in a scratch
directory (its shell blocks are run by tests/test_docs.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support import ROOT

GUIDE = ROOT / "docs" / "development" / "client-library.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def test_the_guides_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the examples make ./calendar
    blocks = BLOCK.findall(GUIDE.read_text(encoding="utf-8"))
    assert len(blocks) >= 4
    namespace: dict[str, object] = {"__name__": "guide"}
    for number, code in enumerate(blocks, 1):
        exec(compile(code, f"{GUIDE.name} block {number}", "exec"), namespace)
