"""The manual (``docs/``): its shell examples run, and its reference is complete.

Every fenced ``sh`` block of every page is run, page by page and in order,
in a scratch directory against a fresh store (see ``docs/development/manual.md``
for the markers ``<!-- exit: N -->`` and ``<!-- not-run: REASON -->``). The
generated pages (``tools/docgen.py``) must name every preference, scheduling
function and ``imip-admin`` subcommand, and the hand-written admin guide must
describe every preference and function. ``conf/logrotate/imip-agent`` must
pass ``logrotate -d`` where logrotate exists.
"""

from __future__ import annotations

import grp
import importlib.util
import os
import pwd
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from tests.support import BIN, ROOT

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)\s*$")
MARKER = re.compile(r"^<!--\s*([\w-]+):\s*(.*?)\s*-->$")
#: Fence languages that would be shell examples the test does not run.
SHELL_ALIASES = {"bash", "shell", "console", "zsh", "shell-session"}
#: A line of an unlabelled fence that is a command: such a block must be ``sh``
#: (unlabelled fences are for diagrams and listings).
COMMAND = re.compile(
    r"^\s*(\$ |sudo |\./|\.venv/|imip-(admin|resource|person)\b|apt-get |postconf |pytest )"
)
#: Seconds one example block may take.
TIMEOUT = 120


@dataclass(frozen=True)
class Block:
    """A fenced code block of a page, with the marker on the line before it."""

    page: Path
    line: int
    language: str
    code: str
    marker: str = ""
    argument: str = ""

    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def runnable(self) -> bool:
        return self.language == "sh" and self.marker != "not-run"

    @property
    def expected_exit(self) -> int:
        return int(self.argument) if self.marker == "exit" else 0


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page`` (a longer fence may hold shorter ones)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found = []
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        fence, language = match.groups()
        end = index + 1
        while end < len(lines) and not _closes(lines[end], fence):
            end += 1
        marker = MARKER.match(lines[index - 1].strip()) if index else None
        found.append(
            Block(
                page,
                index + 1,
                language,
                "\n".join(lines[index + 1 : end]),
                *(marker.groups() if marker else ()),
            )
        )
        index = end + 1
    return found


def _closes(line: str, fence: str) -> bool:
    text = line.strip()
    return len(text) >= len(fence) and set(text) == {fence[0]}


PAGES_WITH_EXAMPLES = [page for page in PAGES if any(b.runnable for b in blocks(page))]


def scratch(work: Path) -> dict[str, str]:
    """A directory like a checkout's (examples/, conf/), a configuration whose
    store, preferences, journal, publishing directory, log and sendmail are
    all inside it; the environment the examples run in."""
    work.mkdir()
    for name in ("examples", "conf"):
        shutil.copytree(ROOT / name, work / name)
    var = work / "var"
    for name in ("store", "preferences", "journal", "publishing", "sent"):
        (var / name).mkdir(parents=True)
    sendmail = var / "sendmail"
    sendmail.write_text(f'#!/bin/sh\ncat >"$(mktemp {var}/sent/mail.XXXXXX)"\n')
    sendmail.chmod(stat.S_IRWXU)
    config = var / "imip-agent.toml"
    config.write_text(
        "[agent]\n"
        + "".join(
            f'{key} = "{var / value}"\n'
            for key, value in (
                ("store", "store"),
                ("preferences", "preferences"),
                ("journal", "journal"),
                ("publishing", "publishing"),
                ("log_file", "imip-agent.log"),
                ("sendmail", "sendmail"),
            )
        )
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("IMIP_", "PYTEST_", "COV_"))
    }
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
        IMIP_AGENT_CONFIG=str(config),
        HOME=str(work),
        LANG="C.UTF-8",
        TZ="UTC",
    )
    return env


@pytest.mark.parametrize(
    "page", PAGES_WITH_EXAMPLES, ids=[str(p.relative_to(DOCS)) for p in PAGES_WITH_EXAMPLES]
)
def test_shell_examples_run(page: Path, tmp_path: Path) -> None:
    """Each runnable block of the page exits as it says, in order, in one scratch site."""
    work = tmp_path / "work"
    env = scratch(work)
    for block in blocks(page):
        if not block.runnable:
            continue
        done = subprocess.run(
            ["bash", "-eu", "-o", "pipefail", "-c", block.code],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert done.returncode == block.expected_exit, (
            f"{block.where()}: exit {done.returncode}, expected {block.expected_exit}\n"
            f"--- example\n{block.code}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        )


def test_every_shell_example_is_run_or_says_why() -> None:
    """No shell example escapes the test: shell is ``sh`` (an unlabelled fence
    holds no command), markers are known and a block that is not run says why."""
    problems = []
    for page in PAGES:
        for block in blocks(page):
            commands = [line for line in block.code.splitlines() if COMMAND.match(line)]
            if not block.language and commands:
                problems.append(f"{block.where()}: commands in a fence without a language")
            elif block.language in SHELL_ALIASES:
                problems.append(f"{block.where()}: shell examples are ```sh")
            if block.marker and block.marker not in ("not-run", "exit"):
                problems.append(f"{block.where()}: unknown marker {block.marker!r}")
            if block.marker and block.language != "sh":
                problems.append(f"{block.where()}: a marker before a {block.language} block")
            if block.marker == "not-run" and len(block.argument) < 10:
                problems.append(f"{block.where()}: not-run needs a reason")
            if block.marker == "exit" and not block.argument.isdigit():
                problems.append(f"{block.where()}: exit needs a number")
    assert not problems, "\n".join(problems)
    assert PAGES_WITH_EXAMPLES, "no runnable example found: is docs/ there?"


def docgen() -> ModuleType:
    """tools/docgen.py, imported (it is an mkdocs hook, not a package module)."""
    spec = importlib.util.spec_from_file_location("docgen", ROOT / "tools" / "docgen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def backticked_names(text: str) -> set[str]:
    """The names in backticks of the first cell of every table row."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            first = line.split(" | ")[0]
            names.update(word.split()[0] for word in re.findall(r"`([^`]+)`", first))
    return names


def test_generated_reference_names_everything() -> None:
    """Every preference, scheduling function and imip-admin subcommand has its
    entry in the generated pages, and the README's contract sections are found."""
    from imip_agent.admin import build_parser
    from imiptools.preferences import DEFINITIONS
    from imiptools.scheduling import FUNCTIONS

    pages = docgen().generated_pages()
    assert set(DEFINITIONS) <= backticked_names(pages["reference/preferences.md"])
    for name in FUNCTIONS:
        assert f"## `{name}`" in pages["reference/scheduling.md"]
    admin = pages["reference/imip-admin.md"]
    for prog, _ in docgen().walk(build_parser()):
        if prog != "imip-admin":
            assert f"## {prog}\n" in admin
    contract = pages["reference/contract.md"]
    assert "## Command line" in contract and "## Exit codes" in contract


def test_admin_guide_describes_every_preference_and_function() -> None:
    """A new preference or scheduling function cannot go undescribed: the
    hand-written guide has a table row for each."""
    from imiptools.preferences import DEFINITIONS
    from imiptools.scheduling import FUNCTIONS

    guide = (DOCS / "admin" / "preferences.md").read_text(encoding="utf-8")
    quotas = (DOCS / "admin" / "quotas.md").read_text(encoding="utf-8")
    described = backticked_names(guide) | backticked_names(quotas)
    assert not set(DEFINITIONS) - described, "add them to docs/admin/preferences.md"
    assert not set(FUNCTIONS) - described, "add them to docs/admin/preferences.md"


def limits_table(text: str) -> dict[str, str]:
    """Setting -> default, from the rows of a "Limits on work per message" table."""
    section = text.split("## Limits on work per message", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| `?([^`|]+?)`? \|", section, re.MULTILINE)
    return dict(rows)


@pytest.mark.parametrize("page", ["README.md", "docs/admin/configuration.md"])
def test_limits_on_work_per_message_are_the_settings_defaults(page: str) -> None:
    """The README (issue 11) and the configuration page state every limit
    that bounds a message's work, with the default the code has."""
    from imiptools.config import SCHEMA, Settings

    table = limits_table((ROOT / page).read_text(encoding="utf-8"))
    limits = ("max_message_size", "max_calendar_size", "max_components", "max_objects")
    limits += ("max_properties", "max_instances", "expansion_seconds", "max_seconds", "window")
    assert set(table) == set(limits)
    defaults = Settings()
    for name, shown in table.items():
        assert SCHEMA[name].parse(shown) == getattr(defaults, name), name


@pytest.mark.skipif(shutil.which("logrotate") is None, reason="logrotate is not installed")
def test_logrotate_file_passes_a_dry_run(tmp_path: Path) -> None:
    """conf/logrotate/imip-agent reads without error (``logrotate -d``), with the
    agents' user and log directory replaced by this test's own."""
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    logs = tmp_path / "log"
    logs.mkdir(mode=0o750)
    (logs / "imip-agent.log").write_text("a line\n")
    text = (ROOT / "conf" / "logrotate" / "imip-agent").read_text()
    assert "su imip-agent imip-agent" in text and "/var/log/imip-agent/" in text
    text = text.replace("imip-agent imip-agent", f"{user} {group}")
    config = tmp_path / "imip-agent"
    config.write_text(text.replace("/var/log/imip-agent/", f"{logs}/"))
    config.chmod(0o644)
    done = subprocess.run(
        ["logrotate", "-d", "-f", "-s", str(tmp_path / "state"), str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "error" not in output.lower(), output
    assert "rotating log" in output, output


STOCK_POSTFIX = Path("/usr/share/postfix")


@pytest.mark.skipif(
    shutil.which("postconf") is None or not (STOCK_POSTFIX / "main.cf.dist").exists(),
    reason="Postfix is not installed",
)
def test_postfix_steps_change_nothing_when_run_again(tmp_path: Path) -> None:
    """The Postfix page's steps, run twice on a copy of Debian's stock main.cf
    and master.cf (``/etc/postfix`` replaced by a scratch directory, ``postconf``
    given ``-c`` that directory, ``postfix`` a no-op): the second run changes no
    byte of the configuration or the tables, and the settings, services and
    tables are there once each."""
    etc = tmp_path / "etc" / "postfix"
    etc.mkdir(parents=True)
    shutil.copy(STOCK_POSTFIX / "main.cf.dist", etc / "main.cf")
    shutil.copy(STOCK_POSTFIX / "master.cf.dist", etc / "master.cf")
    shims = tmp_path / "bin"
    shims.mkdir()
    postconf = shutil.which("postconf")
    (shims / "postconf").write_text(f'#!/bin/sh\nexec {postconf} -c {etc} "$@"\n')
    (shims / "postfix").write_text("#!/bin/sh\nexit 0\n")
    for shim in shims.iterdir():
        shim.chmod(stat.S_IRWXU)
    env = dict(os.environ, PATH=f"{shims}{os.pathsep}{os.environ['PATH']}")
    steps = [
        block.code.replace("/etc/postfix", str(etc))
        for block in blocks(DOCS / "install" / "postfix.md")
        if block.language == "sh"
    ]
    assert len(steps) == 4

    def run_steps() -> dict[str, bytes]:
        for code in steps:
            done = subprocess.run(
                ["bash", "-eu", "-o", "pipefail", "-c", code],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.returncode == 0, f"{code}\n{done.stdout}{done.stderr}"
        return {path.name: path.read_bytes() for path in sorted(etc.iterdir())}

    def text(files: dict[str, bytes]) -> dict[str, bytes]:
        return {name: data for name, data in files.items() if not name.endswith(".db")}

    first = run_steps()
    assert text(run_steps()) == text(first)  # (postmap's .db files differ in their bytes)
    settings = first["main.cf"].decode()
    for line in (
        "transport_maps = hash:$config_directory/imip-transport",
        "relay_domains = resources.example.com",
        "imip-resource_destination_recipient_limit = 1",
    ):
        assert settings.count(line) == 1, line
    services = first["master.cf"].decode()
    for service in ("imip-person", "imip-person-outgoing", "imip-resource"):
        assert len(re.findall(rf"(?m)^{service}\s+unix\s", services)) == 1, service
    assert "--log /var/log/imip-agent/imip-agent.log" in services
    assert b"outgoing@imip-agent.invalid" in first["imip-transport"]
    assert {"imip-transport.db", "imip-sender-bcc.db", "imip-resources.db"} <= set(first)
