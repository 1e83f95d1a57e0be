#!/usr/bin/env python3
"""Manual pages (man(7) roff) made from the programs' argparse parsers.

One page per installed program (``imip-admin.1``, ``imip-resource.1`` ...),
from the same parsers as ``--help`` and the manual's reference
(:data:`docgen.PROGRAMS`), so that none of them can drift: NAME and
DESCRIPTION from the parser's description, SYNOPSIS from its usage line,
OPTIONS by argument group, for ``imip-admin`` a COMMANDS section with every
subcommand (its usage, text, examples and own options), then the epilog's
sections (EXAMPLES, DATES AND TIMES, ENVIRONMENT, EXIT STATUS) and SEE ALSO.

``setup.py`` runs :func:`write_pages` at build time (``build_man``) and
installs the pages as ``share/man/man1/*.1``; nothing generated is
committed. As a script: ``tools/manpages.py DIR`` writes them into DIR.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import docgen  # beside this file (also when setup.py runs this one)

ROOT = docgen.ROOT
SECTION = "1"
#: A block whose first line is a heading: ``examples:``, ``exit status:``.
HEADING = re.compile(r"^([a-z][A-Za-z0-9 ()/-]*):$")


def project_version() -> str:
    """The version in pyproject.toml (the package need not be installed)."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return str(data["project"]["version"])


def program_names() -> list[str]:
    """The programs that get a page (those of the reference)."""
    return [name for name, _ in docgen.PROGRAMS]


def write_pages(directory: Path) -> list[Path]:
    """Write every program's page into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in docgen.PROGRAMS:
        path = directory / f"{name}.{SECTION}"
        path.write_text(manual_page(name, build()), "utf-8")
        written.append(path)
    return written


# -- roff ----------------------------------------------------------------------------


def escape(text: str) -> str:
    r"""Text for roff: backslashes and hyphens escaped (``\-``, so that
    options copy as typed), a leading dot or quote made harmless."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(
        "\\&" + line if line.startswith((".", "'")) else line for line in text.split("\n")
    )


def quoted(text: str) -> str:
    """A macro argument in double quotes."""
    return '"' + escape(text).replace('"', "\\(dq") + '"'


def paragraphs(text: str, heading_macro: str) -> list[str]:
    """Roff for a help text: blank-line separated blocks; a block starting
    with ``heading:`` becomes ``heading_macro`` (``.SH`` or a bold line)
    followed by its lines as written; an indented block is kept as written;
    other blocks are filled paragraphs."""
    out: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip("\n")):
        lines = block.rstrip().split("\n")
        match = HEADING.match(lines[0])
        if match and len(lines) > 1:
            title = match.group(1)
            out += (
                [f".SH {quoted(title.upper())}"]
                if heading_macro == ".SH"
                else [".PP", f"\\fB{escape(title)}:\\fR"]
            )
            out += _verbatim(_dedent(lines[1:]))
        elif lines[0].startswith(" "):
            out += [".PP", *_verbatim(_dedent(lines))]
        else:
            out += [".PP", escape(" ".join(line.strip() for line in lines))]
    return out


def _dedent(lines: list[str]) -> list[str]:
    indent = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
    return [line[indent:] for line in lines]


def _verbatim(lines: list[str]) -> list[str]:
    return [".RS 4", ".nf", *(escape(line) for line in lines), ".fi", ".RE"]


# -- the page ---------------------------------------------------------------------------


def manual_page(name: str, parser: argparse.ArgumentParser) -> str:
    """The roff source of program ``name``'s page."""
    lines = [
        f'.TH {quoted(name.upper())} {SECTION} "" {quoted("imip-agent " + project_version())} '
        '"imip-agent manual"',
        ".nh",
        ".ad l",
        ".SH NAME",
        f"{escape(name)} \\- {escape(summary(parser))}",
        ".SH SYNOPSIS",
        escape(usage(parser)),
        ".SH DESCRIPTION",
        *paragraphs(parser.description or "", ".PP"),
        ".SH OPTIONS",
        *options(parser, shared=True),
    ]
    subcommands = list(commands(parser))
    if subcommands:
        lines += [
            ".SH COMMANDS",
            ".PP",
            escape(
                f"Each command takes the site options above, before or after it; "
                f"'{name} COMMAND --help' shows the same as this section."
            ),
        ]
        for prog, sub in subcommands:
            lines += command(prog, sub)
    lines += paragraphs(parser.epilog or "", ".SH")
    others = [other for other in program_names() if other != name]
    lines += ['.SH "SEE ALSO"', ",\n".join(f".BR {other} ({SECTION})" for other in others)]
    lines += [".PP", escape("The imip-agent manual (docs/ in the source, built with MkDocs).")]
    return "\n".join(lines) + "\n"


def summary(parser: argparse.ArgumentParser) -> str:
    """The first sentence of the description, as NAME wants it."""
    text = " ".join((parser.description or "").split())
    first = re.split(r"(?<=[.])\s", text, maxsplit=1)[0].rstrip(".")
    if len(first) > 60:
        first = first.split(":")[0]
    return first[:1].lower() + first[1:]


def usage(parser: argparse.ArgumentParser) -> str:
    """The usage line without ``usage:``."""
    return " ".join(parser.format_usage().split()).removeprefix("usage: ")


def options(parser: argparse.ArgumentParser, shared: bool) -> list[str]:
    """Each argument group with its arguments (``.TP`` each); the site
    options only when ``shared``."""
    out: list[str] = []
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.help != argparse.SUPPRESS]
        if not actions or (group.title == "site options" and not shared):
            continue
        out += [f".SS {quoted(group.title or 'options')}"]
        for action in actions:
            out += argument(action)
    return out


def argument(action: argparse.Action) -> list[str]:
    """``.TP`` entries for one argument (each subcommand, for a command list)."""
    if isinstance(action, argparse._SubParsersAction):
        return [
            line
            for choice in action._choices_actions
            for line in (".TP", f"\\fB{escape(choice.dest)}\\fR", escape(choice.help or ""))
        ]
    metavar = action.metavar or (action.dest.upper() if action.nargs != 0 else None)
    if isinstance(metavar, tuple):
        metavar = " ".join(metavar)
    if action.choices and not action.metavar:
        metavar = "{" + ",".join(map(str, action.choices)) + "}"
    if action.option_strings:
        names = ", ".join(f"\\fB{escape(option)}\\fR" for option in action.option_strings)
        term = names + (f" \\fI{escape(str(metavar))}\\fR" if action.nargs != 0 else "")
    else:
        term = f"\\fI{escape(str(metavar))}\\fR"
    return [".TP", term, escape(str(action.help or "").replace("%%", "%"))]


def commands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every subcommand's parser, depth first (``imip-admin quota set-limit``)."""
    for prog, sub in docgen.walk(parser):
        if sub is not parser:
            yield prog, sub


def command(prog: str, parser: argparse.ArgumentParser) -> list[str]:
    """One subcommand: its usage, text (with its examples) and own options."""
    return [
        f".SS {quoted(prog)}",
        escape(usage(parser)),
        *paragraphs(parser.description or "", ".PP"),
        *paragraphs(parser.epilog or "", ".PP"),
        *_own_options(parser),
    ]


def _own_options(parser: argparse.ArgumentParser) -> list[str]:
    """A subcommand's own arguments (not the site options or -h, --version)."""
    out: list[str] = []
    for group in parser._action_groups:
        if group.title == "site options":
            continue
        for action in group._group_actions:
            if action.dest in ("help", "version") or action.help == argparse.SUPPRESS:
                continue
            out += argument(action)
    return [".RS 2", *out, ".RE"] if out else []


def main(argv: list[str]) -> int:
    """``tools/manpages.py DIR``: write the manual pages into DIR."""
    if len(argv) != 1:
        print("usage: tools/manpages.py DIR  (writes the programs' manual pages)")
        return 64
    for path in write_pages(Path(argv[0])):
        print(path)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
