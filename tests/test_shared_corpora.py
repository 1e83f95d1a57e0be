"""A clone without ``../shared`` fails clearly in CI and skips locally."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT


def _pytest(tmp_path: Path, ci: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CI": ci, "IMIP_SHARED_DIR": str(tmp_path / "absent")}
    env.pop("IMIP_PEER_ITIP", None)
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/peers"]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)


def test_missing_shared_corpora_fail_the_run_in_ci(tmp_path: Path) -> None:
    done = _pytest(tmp_path, "true")
    assert done.returncode == 1
    assert "CI=true but the shared test corpora are missing" in done.stdout + done.stderr


def test_missing_shared_corpora_skip_locally_with_a_message(tmp_path: Path) -> None:
    done = _pytest(tmp_path, "")
    assert done.returncode == 0, done.stdout
    assert "skipped" in done.stdout
