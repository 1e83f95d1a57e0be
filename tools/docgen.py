"""The manual's generated pages: an mkdocs hook, and a script to read them.

``mkdocs.yml`` names this file under ``hooks:``. On every build,
:func:`on_files` adds pages made from the code itself, so that they cannot
drift from it (nothing generated is committed):

- ``reference/preferences.md``: every preference, from
  ``imiptools.preferences.DEFINITIONS`` (default, help, what validation accepts);
- ``reference/scheduling.md``: every built-in scheduling function, from the
  registry ``imiptools.scheduling.FUNCTIONS`` (names and docstrings);
- ``reference/imip-*.md``: the programs' ``--help``, from their argparse
  parsers (every ``imip-admin`` subcommand included);
- ``reference/configuration.md``: every configuration key, from the schema
  of ``imiptools.config``;
- ``reference/texts.md``: every text the agent writes to people, with its
  translations, from the message catalogues in ``imiptools/locale``;
- ``reference/contract.md``: the README's sections on the command line and
  the exit codes (they stay in the README, where tools outside the project
  look for them).

:func:`on_config` adds ``docs/architecture*.md`` to the navigation when they
exist. As a script, ``tools/docgen.py DIR`` writes the generated pages into DIR.
"""

from __future__ import annotations

import argparse
import ast
import html
import inspect
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import imiptools.scheduling as scheduling
from imip_agent import admin, client, lmtp, person, person_outgoing, resource
from imip_agent.manager import cli as manager
from imiptools.config import example_config
from imiptools.preferences import DEFINITIONS, validate

ROOT = Path(__file__).resolve().parent.parent
#: Width of the rendered --help texts (argparse reads $COLUMNS).
HELP_COLUMNS = "88"
#: The programs of the command-line reference: (name, function building its parser).
PROGRAMS: tuple[tuple[str, Callable[[], argparse.ArgumentParser]], ...] = (
    ("imip-resource", resource.parser),
    ("imip-person", person.parser),
    ("imip-person-outgoing", person_outgoing.parser),
    ("imip-admin", admin.build_parser),
    ("imip-agent-lmtp", lmtp.parser),
    ("imip-client", client.parser),
    ("imip-manager", manager.parser),
)
#: README sections repeated in reference/contract.md (by the start of their heading).
CONTRACT_SECTIONS = ("Command line", "Exit codes")


def generated_pages() -> dict[str, str]:
    """Every generated page, by its path under ``docs/``."""
    pages = {
        "reference/preferences.md": preferences_page(),
        "reference/scheduling.md": scheduling_page(),
        "reference/texts.md": texts_page(),
        "reference/configuration.md": configuration_page(),
        "reference/contract.md": contract_page((ROOT / "README.md").read_text(encoding="utf-8")),
    }
    for name, build in PROGRAMS:
        pages[f"reference/{name}.md"] = program_page(name, build())
    return pages


def notice(source: str) -> str:
    """The line saying where a page comes from."""
    return f"*Generated at each build of the manual from {source}; edit that, not this page.*"


# -- preferences ------------------------------------------------------------------


def preferences_page() -> str:
    """Every preference of ``DEFINITIONS``: default, accepted values, meaning."""
    lines = [
        "# Preferences: reference",
        "",
        notice("`imiptools/preferences.py` (`DEFINITIONS`)"),
        "",
        "Every preference a calendar user can have, with its built-in default. A",
        "preference is one file, `PREFERENCES_DIR/<uri>/<name>`, holding its value;",
        "the configuration's `[preferences]` table gives site defaults that come",
        "before the built-in ones. `imip-admin prefs set` refuses a value that",
        "validation does not accept (the column *accepted* says what it checks; for",
        "the others, what a wrong value is told); a bad value in a file is logged",
        "and the site default, then the built-in default, is used instead. What",
        "each preference does, with examples, is in [Preferences](../admin/preferences.md).",
        "",
        "| preference | built-in default | accepted | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for name, definition in DEFINITIONS.items():
        default = f"`{definition.default}`" if definition.default else "(unset)"
        lines.append(f"| `{name}` | {default} | {cell(accepted(name))} | {cell(definition.help)} |")
    return "\n".join(lines) + "\n"


def accepted(name: str) -> str:
    """What validation accepts, from what it says to a wrong value (``?``)."""
    try:
        validate(name, "?")
    except ValueError as exc:
        message = str(exc)
    else:
        return "any text"
    choices = re.fullmatch(r"must be one of (.*)", message)
    known = re.search(r"\(known: (.*)\)", message)
    listed = choices or known
    if listed:
        prefix = "one a line, arguments after the name: " if known else ""
        return prefix + ", ".join(f"`{word}`" for word in listed.group(1).split(", "))
    lines = "one a line: " if message.startswith("line 1: ") else ""
    message = message.removeprefix("line 1: ")
    for pattern, template in (
        (r"must be (.*)", r"\1"),
        (r".*\bexpected (.*?)(, not '\?')?", r"\1"),
        (r"not (an? .*?)(: '\?')?", r"\1"),
        (r"unknown ([^'\[]*?)( \['\?'\])?", r"known \1"),
    ):
        match = re.fullmatch(pattern, message)
        if match:
            return lines + match.expand(template)
    return f"checked (a wrong value: *{message}*)"


def cell(text: str) -> str:
    """Text made safe for one Markdown table cell."""
    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", "<br>")


# -- configuration --------------------------------------------------------------


def configuration_page() -> str:
    """Every key of the configuration file, as the schema writes the example."""
    return "\n".join(
        [
            "# Configuration keys: reference",
            "",
            notice("the schema in `imiptools/config.py` (`conf/imip-agent.toml` is the same)"),
            "",
            "Every key of the configuration file (`-c FILE` or `IMIP_AGENT_CONFIG`), with its",
            "default and meaning. What the limits do is in",
            "[Configuration](../admin/configuration.md).",
            "",
            "```toml",
            example_config().rstrip(),
            "```",
            "",
        ]
    )


# -- scheduling functions -----------------------------------------------------------


def scheduling_page() -> str:
    """The registry's scheduling functions (and event limits, where registered)."""
    functions: dict[str, Callable[..., Any]] = scheduling.FUNCTIONS
    confirmations = getattr(scheduling, "CONFIRMATIONS", {})
    lines = [
        "# Scheduling functions: reference",
        "",
        notice("the registry of `imiptools/scheduling` (the functions' docstrings)"),
        "",
        "A resource's `scheduling_function` preference holds one function a line,",
        "with its arguments (`schedule_in_freebusy 2`); every line must accept, in",
        "order, after the event limits. `imip-admin prefs set` checks each name and",
        "its arguments against this registry. Third parties add functions through",
        "the `imip_agent.scheduling` entry-point group. How to combine them is in",
        "[Preferences](../admin/preferences.md#scheduling-functions) and",
        "[Quotas](../admin/quotas.md).",
        "",
    ]
    for name in sorted(functions):
        function = functions[name]
        lines += [f"## `{name}`", "", f"Defined in `{function.__module__}`.", ""]
        lines += [markdown_docstring(inspect.getdoc(function) or "(no description)"), ""]
        if name in confirmations:
            lines += [
                "After a booking it helped accept, and when that booking ends early, a",
                "step of its own brings its records in line (run by itself).",
                "",
            ]
    limits = getattr(scheduling, "LIMITS", None)
    if limits:
        lines += [
            "## Event limits",
            "",
            "Checked before the functions, in this order; each reads the preference",
            "it is named after.",
            "",
        ]
        for name, (_rank, limit) in sorted(limits.items(), key=lambda item: item[1][0]):
            doc = inspect.getdoc(limit) or ""
            lines.append(f"- `{name}`: {markdown_docstring(doc.split(chr(10) * 2)[0])}")
        lines.append("")
    return "\n".join(lines)


_ROLE = re.compile(r":[a-z]+:`~?(?:[\w.]+\.)?([\w]+)(?:\(\))?`")


def markdown_docstring(text: str) -> str:
    """A reStructuredText docstring as Markdown: literals and cross-references."""
    text = _ROLE.sub(r"`\1`", text)
    text = re.sub(r"``([^`]+)``", r"`\1`", text)
    return text.replace("::\n", ":\n")


# -- the programs' command lines --------------------------------------------------


def program_page(name: str, parser: argparse.ArgumentParser) -> str:
    """``--help`` of the program and of every subcommand, one section each."""
    lines = [
        f"# {name}",
        "",
        notice(f"the argparse parser of `{name}`: this is its `--help`"),
        "",
    ]
    for prog, sub in walk(parser):
        if prog != parser.prog:
            lines += [f"## {prog}", ""]
        lines += ["```text", help_text(sub).rstrip(), "```", ""]
    return "\n".join(lines)


def walk(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """The parser and its subcommands' parsers, depth first, in the order added."""
    yield parser.prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield from walk(sub)


def help_text(parser: argparse.ArgumentParser) -> str:
    """``parser.format_help()`` at a fixed width, whatever the terminal."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        return parser.format_help()
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved


# -- texts ------------------------------------------------------------------------

#: Where a text is written, by the start of its source path (first match).
TEXT_GROUPS = (
    ("imiptools/scheduling/", "Reasons a resource gives (scheduling functions and limits)"),
    ("imiptools/handlers/resource", "A resource's replies"),
    ("imiptools/handlers/organiser", "An organiser's summaries of answers"),
    ("imiptools/handlers/person", "A person's summaries of invitations"),
    ("imiptools/handlers/summary", "A person's summaries of invitations"),
    ("imiptools/mail/summary", "A person's summaries of invitations"),
    ("imiptools/", "Common parts of replies and summaries"),
)


def texts_page() -> str:
    """Every msgid of the catalogues with its translations, grouped by use."""
    catalogues = {
        path.parent.parent.name: read_po(path.read_text(encoding="utf-8"))
        for path in sorted((ROOT / "imiptools" / "locale").glob("*/LC_MESSAGES/*.po"))
    }
    languages = sorted(catalogues)
    entries: dict[str, dict[str, Any]] = {}
    for language in languages:
        for entry in catalogues[language]:
            entries.setdefault(entry["msgid"], entry).setdefault("translations", {})[language] = (
                entry["msgstr"]
            )
    lines = [
        "# Texts people see: reference",
        "",
        notice("the message catalogues in `imiptools/locale`"),
        "",
        "Every text the agents put into replies and summaries, in English and in",
        "each translation, by where it is used. `{name}` is filled in when the text is",
        "written (a date, a duration, an address); a text with two English forms",
        "(singular / plural) is chosen by the number it counts. The language is the",
        "recipient's `LANG` preference. How replies and summaries are put together",
        "is in [What people and organisers see](../users.md).",
        "",
    ]
    groups: dict[str, list[dict[str, Any]]] = {title: [] for _, title in TEXT_GROUPS}
    for entry in entries.values():
        title = next((t for p, t in TEXT_GROUPS if entry["source"].startswith(p)), "Other")
        groups.setdefault(title, []).append(entry)
    header = "| English | " + " | ".join(languages) + " |"
    for title, group in groups.items():
        if not group:
            continue
        lines += [f"## {title}", "", header, "|---" * (len(languages) + 1) + "|"]
        for entry in sorted(group, key=lambda e: e["msgid"].lower()):
            english = entry["msgid"] + (" / " + entry["plural"] if entry["plural"] else "")
            translated = [
                " / ".join(entry["translations"].get(language, [])) for language in languages
            ]
            lines.append("| " + " | ".join(cell(text) for text in [english, *translated]) + " |")
        lines.append("")
    return "\n".join(lines)


def read_po(text: str) -> list[dict[str, Any]]:
    """The entries of a PO file: source (first ``#:`` path), msgid, plural, msgstr list."""
    entries = []
    for block in re.split(r"\n\s*\n", text):
        source = ""
        fields: dict[str, list[str]] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith("#:") and not source:
                source = line[2:].split()[0] if line[2:].split() else ""
            elif line.startswith("#"):
                continue
            elif line.startswith('"'):
                fields[key][-1] += ast.literal_eval(line)
            elif line.strip():
                key, _, value = line.partition(" ")
                key = re.sub(r"\[\d+\]$", "", key)
                fields.setdefault(key, []).append(ast.literal_eval(value))
        msgid = "".join(fields.get("msgid", []))
        if msgid:
            entries.append(
                {
                    "source": source,
                    "msgid": msgid,
                    "plural": "".join(fields.get("msgid_plural", [])),
                    "msgstr": fields.get("msgstr", []),
                }
            )
    return entries


# -- the README's contract ------------------------------------------------------------


def contract_page(readme: str) -> str:
    """The README's sections on the command line and the exit codes."""
    lines = [
        "# Command-line contract and exit codes",
        "",
        notice("the sections of `README.md` named below, which stay there"),
        "",
    ]
    for title in CONTRACT_SECTIONS:
        lines += [readme_section(readme, title), ""]
    return "\n".join(lines)


def readme_section(readme: str, title: str) -> str:
    """The README's ``## title...`` section, its links made relative to reference/."""
    match = re.search(rf"(?ms)^## {re.escape(title)}.*?(?=^## |\Z)", readme)
    if match is None:
        raise ValueError(f"README.md has no section '## {title}...' (tools/docgen.py)")
    return re.sub(r"\]\(docs/", "](../", match.group(0).rstrip())


# -- mkdocs hooks -------------------------------------------------------------------


def on_config(config: Any) -> Any:
    """Add the architecture pages that exist to the navigation."""
    docs = Path(config["docs_dir"])
    listed = str(config["nav"])
    pages = [path.name for path in sorted(docs.glob("architecture*.md")) if path.name not in listed]
    if pages:
        config["nav"].append({"Architecture": pages})
    return config


def on_files(files: Any, config: Any) -> Any:
    """Add the generated pages to the build."""
    from mkdocs.structure.files import File

    for path, text in generated_pages().items():
        files.append(File.generated(config, path, content=text))
    return files


def main(argv: list[str]) -> int:
    """``tools/docgen.py DIR``: write the generated pages into DIR."""
    if len(argv) != 1:
        print("usage: tools/docgen.py DIR  (writes the manual's generated pages)")
        return 64
    for path, text in generated_pages().items():
        target = Path(argv[0]) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        print(target)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
