"""The pipe programs' entry points (imip_agent/launch.py): start-up and exit.

Each test runs a fresh interpreter, as the MTA runs a program: the
collector is off while the program is imported and on for its work, and
the exit without teardown still runs the atexit functions, flushes what
was printed, keeps the status, and leaves the usual exit to a process that
still has a thread running or a status that is not a number.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.support import BIN, ROOT

#: The programs an MTA starts once per message, and their entry points.
PIPE_PROGRAMS = {
    "imip-resource": "resource",
    "imip-person": "person",
    "imip-person-outgoing": "person_outgoing",
}


def python(code: str, *, path: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``code`` run by a fresh interpreter (``path`` first on its module path)."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    if path is not None:
        env["PYTHONPATH"] = str(path)
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=ROOT,
    )


def test_the_pipe_programs_are_installed_through_the_launcher() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    entries = scripts["project"]["scripts"]
    for program, function in PIPE_PROGRAMS.items():
        assert entries[program] == f"imip_agent.launch:{function}"


def test_importing_the_launcher_loads_nothing_of_the_library() -> None:
    done = python("import sys, imip_agent.launch; print(' '.join(sorted(sys.modules)))")
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.split()
    heavy = [m for m in loaded if m.startswith(("imiptools", "icalendar", "email", "logging"))]
    assert heavy == []


def test_the_program_is_imported_without_the_collector_and_runs_with_it(
    tmp_path: Path,
) -> None:
    (tmp_path / "probe.py").write_text(
        "import gc, json, sys\n"
        "AT_IMPORT = gc.isenabled()\n"
        "def main():\n"
        "    print(json.dumps({'import': AT_IMPORT, 'main': gc.isenabled(),\n"
        "                      'frozen': gc.get_freeze_count()}))\n"
        "    sys.exit(65)\n"
    )
    done = python(
        "from imip_agent.launch import imports_uncollected, run\n"
        "with imports_uncollected():\n"
        "    import probe\n"
        "run(probe.main)\n",
        path=tmp_path,
    )
    assert done.returncode == 65, done.stderr
    seen = json.loads(done.stdout)
    assert seen["import"] is False
    assert seen["main"] is True
    assert seen["frozen"] > 1_000  # at least the interpreter's own start-up


def test_a_failing_import_leaves_the_collector_on(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("raise ImportError('broken install')\n")
    done = python(
        "import gc\n"
        "from imip_agent.launch import imports_uncollected\n"
        "try:\n"
        "    with imports_uncollected():\n"
        "        import broken\n"
        "except ImportError:\n"
        "    print(gc.isenabled())\n",
        path=tmp_path,
    )
    assert done.stdout.strip() == "True", done.stderr


def test_the_exit_runs_atexit_flushes_and_keeps_the_status(tmp_path: Path) -> None:
    marker = tmp_path / "atexit"
    log = tmp_path / "log"
    done = python(
        "import atexit, logging, sys\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write('ran'))\n"
        f"handler = logging.FileHandler({str(log)!r})\n"
        "logging.getLogger().addHandler(handler)\n"
        "logging.getLogger().warning('the outcome line')\n"
        "print('4.2.0 status line', end='')  # a pipe: block-buffered, not flushed yet\n"
        "sys.stderr.write('a hint')\n"
        "from imip_agent.launch import finish\n"
        "finish(75)\n"
        "print('never')\n"
    )
    assert done.returncode == 75
    assert done.stdout == "4.2.0 status line"
    assert done.stderr == "a hint"
    assert marker.read_text() == "ran"
    assert log.read_text() == "the outcome line\n"


def test_the_original_stdout_is_flushed_when_a_program_replaced_it() -> None:
    done = python(
        "import io, sys\n"
        "print('written before', end='')\n"
        "sys.stdout = io.StringIO()\n"
        "from imip_agent.launch import finish\n"
        "finish(0)\n"
    )
    assert (done.returncode, done.stdout) == (0, "written before")


def test_none_is_status_zero() -> None:
    done = python("from imip_agent.launch import finish; finish(None)")
    assert (done.returncode, done.stderr) == (0, "")


def test_a_running_thread_gets_the_usual_exit(tmp_path: Path) -> None:
    written = tmp_path / "written"
    done = python(
        "import threading, time\n"
        "def late():\n"
        "    time.sleep(0.2)\n"
        f"    open({str(written)!r}, 'w').write('done')\n"
        "threading.Thread(target=late).start()\n"
        "from imip_agent.launch import finish\n"
        "finish(3)\n"
    )
    assert done.returncode == 3, done.stderr
    assert written.read_text() == "done"  # the usual exit waited for the thread


def test_a_text_status_gets_the_usual_exit() -> None:
    done = python("from imip_agent.launch import finish; finish('a message')")
    assert (done.returncode, done.stderr) == (1, "a message\n")


def test_a_gone_reader_does_not_change_the_status() -> None:
    done = python(
        "import os, sys\n"
        "reader, writer = os.pipe()\n"
        "os.close(reader)\n"
        "os.dup2(writer, 1)  # stdout: a pipe nobody reads any more\n"
        "print('x' * 100, end='')\n"
        "from imip_agent.launch import finish\n"
        "finish(65)\n"
    )
    assert (done.returncode, done.stderr) == (65, "")


def test_a_program_run_logs_its_last_line(tmp_path: Path) -> None:
    """Through the installed script, the log file ends with the outcome line."""
    for name in ("store", "prefs"):
        (tmp_path / name).mkdir()
    log = tmp_path / "log"
    argv = [str(BIN / "imip-resource"), "-o", "room@example.com", "-s", "alice@example.com"]
    argv += ["-S", str(tmp_path / "store"), "-p", str(tmp_path / "prefs")]
    argv += ["-j", str(tmp_path / "journal"), "-P", str(tmp_path / "published")]
    argv += ["--now", "2026-11-01T09:00:00Z", "--output", str(tmp_path / "out")]
    argv += ["--log", str(log)]
    message = (ROOT / "examples" / "01-alice-books.eml").read_bytes()
    done = subprocess.run(argv, input=message, capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout
    lines = log.read_text().splitlines()
    assert "done" in lines[-1], lines[-3:]
    assert len(list((tmp_path / "out").iterdir())) == 1
