"""Manual pages: made from the parsers at build time and installed with the
package (issue 14 item 3).

The wheel is built from a copy of the source (offline: without build
isolation, with the test venv's setuptools) and installed by the pip of a
fresh venv, as ``pip install`` does; each installed page must be the one
``tools/manpages.py`` makes from the parsers, and must render with
``man -l`` (or groff) without warnings.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import docgen
import manpages

PROGRAMS = [name for name, _ in docgen.PROGRAMS]
IGNORED = shutil.ignore_patterns(
    ".venv", "build", "dist", "var", ".git", "*.egg-info", "__pycache__", ".*_cache"
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the wheel built from this source installed in it."""
    root = tmp_path_factory.mktemp("install")
    source, wheels, venv = root / "source", root / "wheels", root / "venv"
    shutil.copytree(ROOT, source, ignore=IGNORED)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    built = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(wheels), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    # The venv's own pip (ensurepip: offline): "pip install --prefix" from
    # this venv would uninstall the package from this venv first.
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    (wheel,) = wheels.glob("imip_agent-*.whl")
    done = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "--disable-pip-version-check",
            "install",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return venv


def render(page: Path) -> str:
    """The page as ``man -l`` shows it (groff where man-db is missing)."""
    env = {**os.environ, "MANWIDTH": "100", "MAN_KEEP_FORMATTING": "", "LANG": "C.UTF-8"}
    if shutil.which("man"):
        command = ["man", "-l", str(page)]
    elif shutil.which("groff"):
        command = ["groff", "-man", "-Tutf8", str(page)]
    else:
        pytest.skip("neither man nor groff is installed")
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0 and not done.stderr, done.stderr
    return done.stdout


@pytest.mark.parametrize("program", PROGRAMS)
def test_each_program_s_page_is_installed_as_the_parsers_make_it(
    installed: Path, program: str, tmp_path: Path
) -> None:
    page = installed / "share" / "man" / "man1" / f"{program}.1"
    assert page.is_file(), sorted(p.name for p in page.parent.glob("*"))
    manpages.write_pages(tmp_path)
    assert page.read_text(encoding="utf-8") == (tmp_path / f"{program}.1").read_text("utf-8")


@pytest.mark.parametrize("program", PROGRAMS)
def test_each_page_renders_with_its_sections(installed: Path, program: str) -> None:
    page = installed / "share" / "man" / "man1" / f"{program}.1"
    if shutil.which("groff"):
        lint = subprocess.run(
            ["groff", "-man", "-ww", "-z", str(page)], capture_output=True, text=True, check=False
        )
        assert lint.returncode == 0 and not lint.stderr, lint.stderr
    text = render(page)
    plain = " ".join(text.replace("\u2010", "-").split())
    for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXAMPLES", "ENVIRONMENT"):
        assert f"\n{heading}\n" in text, heading
    assert f"{program} - " in plain and f"{program} [OPTIONS]" in plain
    assert "IMIP_AGENT_CONFIG" in plain and "/var/lib/imip-agent/store" in plain
    assert "EXIT STATUS" in text and "SEE ALSO" in text


def test_the_admin_page_describes_every_command(installed: Path) -> None:
    text = render(installed / "share" / "man" / "man1" / "imip-admin.1")
    parser = dict(docgen.PROGRAMS)["imip-admin"]()
    for prog, _ in docgen.walk(parser):
        if prog != "imip-admin":
            assert f"\n   {prog}\n" in text, prog
    assert "DURATIONS (RFC 5545)" in text and "PT30M" in text
