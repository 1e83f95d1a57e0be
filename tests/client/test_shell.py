"""imip-client driven from a second language: ``imip-client.sh`` (POSIX
shell and jq) on a real Outlook invitation of the interop corpus, read
where it lies (``../shared/interop``, never copied). jq comes from Debian
(``tools/ci-jq``, run by ``tools/ci-services``); without it, or without the
corpus, the test skips here and fails in CI."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import BIN, IN_CI, INTEROP

SCRIPT = Path(__file__).with_name("imip-client.sh")
INVITATION = INTEROP / "outlook" / "tine20__invite_outlook.eml"


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def test_the_shell_script_answers_an_outlook_invitation(tmp_path: Path) -> None:
    if shutil.which("jq") is None:
        _unavailable("jq is not installed (run tools/ci-jq as root)")
    if not INVITATION.exists():
        _unavailable(f"the interop corpus is missing: {INVITATION}")
    done = subprocess.run(
        ["sh", str(SCRIPT), str(BIN / "imip-client"), str(INVITATION), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ok\n"
