"""Command lines people expect (issue 14 item 3): --version everywhere, an
unknown option named with the usage and "try --help", help texts written
for admins (no module paths, class names or issue numbers; an example for
every command that takes arguments; formats, defaults, IMIP_AGENT_CONFIG)."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.support import BIN, ROOT

sys.path.insert(0, str(ROOT / "tools"))
import docgen

#: The console scripts the package installs (pyproject.toml).
SCRIPTS = sorted(
    tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
)
#: The pipe programs (the LMTP service is a daemon and the manager a web
#: application: no envelope options; imip-client is a mail client's and
#: answers in JSON: tests/client).
AGENTS = [
    name
    for name in SCRIPTS
    if name not in ("imip-admin", "imip-agent-lmtp", "imip-client", "imip-manager")
]
#: What a help text must not show: module paths, reST roles, issue or bug
#: numbers, Python class names (CamelCase), tracebacks.
INTERNALS = re.compile(
    r"imiptools|imip_agent|``|:(mod|func|class|meth):|\bissue \d|#\d|\bbpo-"
    r"|\b(?:[A-Z][a-z]+){2,}\b|Traceback"
)
SHARED = {"help", "version", "config", "store", "preferences", "journal", "publishing", "now"}
SHARED |= {"verbose", "log_file"}


@pytest.fixture(autouse=True)
def private_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A configuration naming directories under ``tmp_path``: a command that
    should have been refused never acts on the machine's own site."""
    config = tmp_path / "imip-agent.toml"
    config.write_text(
        "[agent]\n"
        + "".join(
            f'{key} = "{tmp_path / key}"\n'
            for key in ("store", "preferences", "journal", "publishing")
        )
    )
    monkeypatch.setenv("IMIP_AGENT_CONFIG", str(config))


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / argv[0]), *argv[1:]],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "IMIP_AGENT_CONFIG": os.environ["IMIP_AGENT_CONFIG"],
        },
    )


def parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    """Every program's parser and every subcommand's, as the manual shows them."""
    found = []
    for _, build in docgen.PROGRAMS:
        found += list(docgen.walk(build()))
    return found


def test_every_installed_program_is_in_the_reference_and_the_manual_pages() -> None:
    assert sorted(name for name, _ in docgen.PROGRAMS) == SCRIPTS


# -- --version -------------------------------------------------------------------------


@pytest.mark.parametrize("program", SCRIPTS)
def test_version(program: str) -> None:
    done = run(program, "--version")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"{program} (imip-agent) {version('imip-agent')}\n"


def test_version_after_an_admin_command() -> None:
    done = run("imip-admin", "quota", "report", "--version")
    assert done.returncode == 0 and done.stdout.startswith("imip-admin (imip-agent) ")


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("program", AGENTS)
@pytest.mark.parametrize(("word", "said"), [("--bogus", "unknown option --bogus"),
                                            ("--bogus=1", "unknown option --bogus"),
                                            ("extra", "unexpected argument extra")])  # fmt: skip
def test_an_agent_names_what_it_does_not_know_in_one_line(
    program: str, word: str, said: str
) -> None:
    """Under an MTA the one status line is all there is: 75 keeps the mail."""
    done = run(program, "-o", "room@example.com", word)
    assert done.returncode == 75
    assert done.stdout == (
        f"4.3.5 {program}: {said} (usage: {program} [OPTIONS] -o ADDRESS [-s ADDRESS] "
        f"< MESSAGE; try '{program} --help')\n"
    )
    assert done.stderr == ""


def test_the_lmtp_service_names_what_it_does_not_know_with_usage_and_help_hint() -> None:
    done = run("imip-agent-lmtp", "--resource", "127.0.0.1:1", "--bogus")
    assert done.returncode == 75
    assert done.stdout == "4.3.5 imip-agent-lmtp: unknown option --bogus\n"
    usage_line, hint = done.stderr.splitlines()
    assert usage_line.startswith("usage: imip-agent-lmtp [OPTIONS] --resource|--person")
    assert hint == "try 'imip-agent-lmtp --help'"


@pytest.mark.parametrize(
    ("argv", "said", "usage"),
    [
        (("--bogus",), "imip-admin: unknown option --bogus", "imip-admin [OPTIONS] COMMAND"),
        ((), "imip-admin: missing COMMAND", "imip-admin [OPTIONS] COMMAND"),
        (
            ("exprot", "room@example.com"),
            "imip-admin: unknown command 'exprot' (did you mean 'export'?)",
            "imip-admin [OPTIONS] COMMAND",
        ),
        (
            ("export", "room@example.com", "--bogus", "--other=1"),
            "imip-admin export: unknown options --bogus, --other",
            "imip-admin export [OPTIONS] USER",
        ),
        (
            ("freebusy",),
            "imip-admin freebusy: the following arguments are required: USER",
            "imip-admin freebusy [OPTIONS] USER [--start DATE-TIME] [--end DATE-TIME]",
        ),
        (("quota",), "imip-admin quota: missing COMMAND", "imip-admin quota [OPTIONS] COMMAND"),
        (
            ("quota", "set-limit", "rooms", "*", "PT1H", "--pre", "week"),
            "imip-admin quota set-limit: unknown option --pre",
            "imip-admin quota set-limit [OPTIONS] QUOTA WHO LIMIT [--per PERIOD] [--remove]",
        ),
    ],
)
def test_imip_admin_names_what_it_does_not_know_with_usage_and_help_hint(
    argv: tuple[str, ...], said: str, usage: str
) -> None:
    done = run("imip-admin", *argv)
    assert done.returncode == 64
    assert done.stdout == f"5.5.4 {said}\n"
    prog = said.split(":")[0]
    usage_line, hint = done.stderr.splitlines()
    assert usage_line.startswith(f"usage: {usage}")
    assert hint == f"try '{prog} --help'"


# -- help texts ----------------------------------------------------------------------------


@pytest.mark.parametrize("program", SCRIPTS)
def test_help_exits_0_with_defaults_formats_and_the_environment(program: str) -> None:
    done = run(program, "--help")
    assert (done.returncode, done.stderr) == (0, "")
    text = " ".join(done.stdout.split())
    for needed in (
        f"usage: {program} [OPTIONS]",
        "IMIP_AGENT_CONFIG",
        "else /var/lib/imip-agent/store",
        "else /var/lib/imip-agent/preferences",
        "2030-01-08T10:00:00Z",
        "exit status:",
        "example",
    ):
        assert needed in text, (program, needed)
    if program == "imip-admin":
        assert "durations (RFC 5545): PT30M" in text


@pytest.mark.parametrize(("prog", "parser"), parsers(), ids=lambda p: getattr(p, "prog", p))
def test_help_shows_no_python_internals(prog: str, parser: argparse.ArgumentParser) -> None:
    found = sorted({m.group(0) for m in INTERNALS.finditer(docgen.help_text(parser))})
    assert not found, f"{prog} --help shows {found}"


@pytest.mark.parametrize(("prog", "parser"), parsers(), ids=lambda p: getattr(p, "prog", p))
def test_every_command_that_takes_arguments_has_an_example(
    prog: str, parser: argparse.ArgumentParser
) -> None:
    own = [action for action in parser._actions if action.dest not in SHARED]
    text = docgen.help_text(parser)
    if own:
        assert re.search(r"^examples?:\n  \S", text, re.M), f"{prog} --help has no example"
        assert re.search(rf"^ +{re.escape(prog)} ", text, re.M), f"{prog}: example of another"


@pytest.mark.parametrize("columns", [None, "100", "0", "-3", "wide"])
def test_help_is_as_wide_as_shutil_would_make_it(
    columns: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parsers' width without importing shutil (imip_agent/parsing.py)."""
    import shutil

    from imip_agent.parsing import terminal_columns

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert terminal_columns() == shutil.get_terminal_size().columns
