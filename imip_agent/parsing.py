"""The programs' parsers: errors as exit codes, short usage lines, ``--version``.

Every program (``imip-resource``, ``imip-person``, ``imip-person-outgoing``,
``imip-admin``) parses with a :class:`Parser`, so that they behave alike:

* a wrong command line never exits 2: it raises ``error_class``
  (:class:`~imiptools.errors.ConfigError`, 75, for the agents: the MTA keeps
  the mail; :class:`~imiptools.errors.UsageError`, 64, for ``imip-admin``);
* the error names the unknown option, the missing argument or the unknown
  command (with the nearest command), shows the usage and says ``try
  PROG --help``. Under an MTA all of it is one line (the agents print
  nothing else); ``imip-admin`` prints the usage and the hint as two more
  lines on stderr (:attr:`~imiptools.errors.ImipError.hint`);
* the usage line shows a subcommand's own arguments, the options every
  program shares being ``[OPTIONS]`` (listed in full by ``--help``);
* positional arguments are shown in capitals (``USER``);
* ``--version`` prints the program and the package version;
* options are never abbreviated (``--pre`` is not ``--preferences``): a
  mistyped option is an error, never another option.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

from imiptools.errors import ConfigError, ImipError

#: The options every program takes (the site options, -h, --version): the
#: usage line of a subcommand shows them as ``[OPTIONS]``.
SHARED_OPTIONS = frozenset(
    {"help", "version", "config", "store", "preferences", "journal", "publishing", "now"}
    | {"verbose", "log_file"}
)

_UNRECOGNISED = "unrecognized arguments: "
_INVALID_CHOICE = r"argument (\S+): invalid choice: '(.*)' \(choose from .*\)$"


def package_version() -> str:
    """The installed version of imip-agent (``unknown`` when not installed)."""
    from importlib.metadata import PackageNotFoundError, version  # lazy: start-up

    try:
        return version("imip-agent")
    except PackageNotFoundError:
        return "unknown"


def terminal_columns() -> int:
    """The width help is formatted for, as :func:`shutil.get_terminal_size`
    gives it: ``$COLUMNS`` when a positive number, else the width of the
    terminal on stdout, else 80.

    argparse asks :mod:`shutil`, but it makes a formatter for every option
    a parser is given (to check the option's metavar), so that every run of
    an agent imported shutil, and bz2 and lzma with it, for help it does not
    show (about 1% of a resource's run, issue 15)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written (examples keep their lines); a
    usage line built by :func:`usage_line` unless the parser gives one."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        """As argparse's, the width from :func:`terminal_columns` (less 2, as
        argparse takes it) unless given."""
        if width is None:
            width = terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)

    def add_usage(
        self,
        usage: str | None,
        actions: Iterable[argparse.Action],
        groups: Iterable[Any],
        prefix: str | None = None,
    ) -> None:
        """As argparse does, with :func:`usage_line` for a missing ``usage``."""
        if usage is None:
            usage = usage_line(list(actions))
        super().add_usage(usage, actions, groups, prefix)


def usage_line(actions: Sequence[argparse.Action]) -> str:
    """``%(prog)s [OPTIONS] USER [--start DATE-TIME]``: a parser's own
    arguments, the shared options as ``[OPTIONS]``."""
    words = ["%(prog)s", "[OPTIONS]"]
    for action in actions:
        if action.dest in SHARED_OPTIONS or action.help == argparse.SUPPRESS:
            continue
        words.append(_action_usage(action))
    return " ".join(words)


def _action_usage(action: argparse.Action) -> str:
    if isinstance(action, argparse._SubParsersAction):
        return "COMMAND [ARGUMENTS]"
    metavar = action.metavar or (
        "{" + ",".join(map(str, action.choices)) + "}" if action.choices else action.dest.upper()
    )
    name = str(metavar)
    if not action.option_strings:
        return {"?": f"[{name}]", "*": f"[{name} ...]", "+": f"{name} [{name} ...]"}.get(
            str(action.nargs), name
        )
    option = max(action.option_strings, key=len)
    if action.nargs == 0:
        text = option
    elif action.nargs == "?":
        text = f"{option} [{name}]"
    else:
        text = f"{option} {name}"
    return text if action.required else f"[{text}]"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of exiting 2 (see the module
    docstring). ``error_class`` is ConfigError for agents (75: the MTA keeps
    the mail); ``imip-admin``'s parser sets UsageError (64) and ``hints``."""

    error_class: type[ImipError] = ConfigError
    #: Print the usage and "try --help" as lines of their own (on stderr),
    #: rather than in the one status line an MTA reads.
    hints: bool = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        # No abbreviations: "--pre week" must not be read as "--preferences week".
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def add_subparsers(self, **kwargs: Any) -> Any:
        """As argparse does, the subcommands named ``PROG COMMAND`` (not
        after a usage line) and not required by argparse: a missing one is
        reported by :meth:`parse_args`, after any unknown option."""
        kwargs.setdefault("prog", self.prog)
        kwargs["required"] = False
        return super().add_subparsers(**kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        """As argparse does; a positional argument without a metavar or
        choices is shown in capitals (``USER``)."""
        positional = bool(args) and not str(args[0]).startswith(self.prefix_chars)
        if positional and "metavar" not in kwargs and "choices" not in kwargs:
            kwargs["metavar"] = str(args[0]).upper()
        return super().add_argument(*args, **kwargs)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        """Parse ``args``; an unknown option is reported by the (sub)command
        it was given to, and a missing command as such."""
        parsed, extras = self.parse_known_args(args, namespace)
        parser = self._chosen(parsed)
        if extras:
            parser.error(unrecognised(extras))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                parser.error("missing COMMAND")
        return parsed

    def _chosen(self, parsed: argparse.Namespace) -> Parser:
        """The parser of the deepest subcommand named in ``parsed`` (self if none)."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                sub = action.choices.get(getattr(parsed, action.dest, None) or "")
                if isinstance(sub, Parser):
                    return sub._chosen(parsed)
        return self

    def error(self, message: str) -> NoReturn:
        """Raise ``error_class``: the message, the usage, "try --help"."""
        text = f"{self.prog}: {plain(message, self)}"
        usage = " ".join(self.format_usage().split())
        hint = f"try '{self.prog} --help'"
        if self.hints:
            exc = self.error_class(text)
            exc.hint = f"{usage}\n{hint}"
            raise exc
        raise self.error_class(f"{text} ({usage}; {hint})")


def unrecognised(words: Sequence[str]) -> str:
    """What argparse calls "unrecognized arguments", in plain words."""
    options = [word.split("=", 1)[0] for word in words if word.startswith("-") and word != "-"]
    if options:
        return f"unknown option{'s' if len(options) > 1 else ''} {', '.join(options)}"
    return f"unexpected argument{'s' if len(words) > 1 else ''} {' '.join(words)}"


def plain(message: str, parser: argparse.ArgumentParser) -> str:
    """argparse's ``message``, with an unknown command named as such (and
    the nearest one suggested); every other message is kept as it is."""
    if message.startswith(_UNRECOGNISED):
        return unrecognised(message[len(_UNRECOGNISED) :].split())
    match = re.match(_INVALID_CHOICE, message, flags=re.S)
    commands = _commands(parser)
    if match is None or not commands:
        return message
    name = match.group(2)
    import difflib  # lazy: start-up (only for a mistyped command)

    near = difflib.get_close_matches(name, commands, n=1)
    return f"unknown command '{name}'" + (f" (did you mean '{near[0]}'?)" if near else "")


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    """The subcommand names of ``parser`` (none for a parser without)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


def add_version(parser: argparse.ArgumentParser, program: str) -> None:
    """``--version``: ``PROGRAM (imip-agent) VERSION`` on stdout, exit 0."""
    parser.add_argument("--version", action=_Version, program=program)


class _Version(argparse.Action):
    """``--version``, reading the package's metadata only when asked (the
    agents' start-up does not pay for it)."""

    def __init__(self, option_strings: list[str], dest: str, program: str) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS,
            help="print the version and exit",
        )  # fmt: skip
        self.program = program

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        print(f"{self.program} (imip-agent) {package_version()}")
        parser.exit()
