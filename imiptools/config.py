"""Site configuration: one schema drives validation, defaults and the example.

The configuration file is TOML (``-c FILE`` or ``IMIP_AGENT_CONFIG``)::

    [agent]
    backend = "file"
    store = "/var/lib/imip-agent/store"
    lock_timeout = 30

    [preferences]          # site defaults for every calendar user
    scheduling_function = "schedule_in_freebusy"

Command-line options override the file; the file overrides built-in
defaults. Unknown keys and bad values raise :class:`ConfigError` (exit 75:
the MTA keeps the mail while the admin fixes the file).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from icalendar.prop import vDuration

from imiptools.deferred import dataclass
from imiptools.errors import ConfigError

ENV_CONFIG = "IMIP_AGENT_CONFIG"
#: The longest duration a setting or preference may give (a century): dates
#: this far from now are still far from the end of Python's calendar.
MAX_DURATION = timedelta(days=36525)


def parse_duration(text: str) -> timedelta:
    """Parse an RFC 5545 §3.3.6 duration (``P1D``, ``PT10M``, ``-PT1H``)."""
    try:
        value = vDuration.from_ical(text.strip().upper())  # type: ignore[no-untyped-call]
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not an RFC 5545 duration: {text!r}") from exc
    if not isinstance(value, timedelta):
        raise ValueError(f"not an RFC 5545 duration: {text!r}")
    return value


def _positive_int(value: Any) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError("must be a positive integer")
    return number


def _positive_float(value: Any) -> float:
    number = float(value)
    if number <= 0:
        raise ValueError("must be positive")
    return number


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be text")
    return value


def _duration(value: Any) -> timedelta:
    return value if isinstance(value, timedelta) else parse_duration(_text(value))


def _window(value: Any) -> timedelta:
    window = _duration(value)
    if not timedelta(0) < window <= MAX_DURATION:
        raise ValueError(f"must be positive and at most P{MAX_DURATION.days}D")
    return window


@dataclass(frozen=True)
class Option:
    """One configuration option: its parser and its help text."""

    parse: Callable[[Any], Any]
    help: str


#: The schema of the ``[agent]`` table. Keys equal :class:`Settings` fields.
SCHEMA: dict[str, Option] = {
    "backend": Option(
        _text, "where the site's data is kept: file or postgresql (see imiptools.site)"
    ),
    "dsn": Option(
        _text,
        "postgresql backend: the libpq connection string (without a password: "
        "use dsn_file, ~/.pgpass or IMIP_AGENT_DSN for one)",
    ),
    "dsn_file": Option(
        _text,
        "postgresql backend: a file holding the connection string, readable only by its owner",
    ),
    "store": Option(_text, "directory of the filesystem store"),
    "preferences": Option(_text, "directory of per-user preference files"),
    "journal": Option(_text, "directory of quota journals"),
    "publishing": Option(_text, "directory of published free/busy (.ifb) files"),
    "keyring": Option(
        _text,
        "directory of the OpenPGP keys (a GnuPG home, imip-admin key); "
        "empty: keys beside the store directory",
    ),
    "manager": Option(
        _text,
        "directory of imip-manager's password file and feed tokens (imip-admin web-password, "
        "web-feed); empty: manager beside the store directory",
    ),
    "freebusy_urls": Option(
        _text,
        "imip-manager: URL prefixes (space-separated, http or https) from which others' "
        'published free/busy may be fetched for "find a time"; empty: none',
    ),
    "calendar_address": Option(
        _text, "From address of generated mail; empty: the user's own address"
    ),
    "lock_timeout": Option(_positive_float, "seconds to wait for a user's lock"),
    "max_message_size": Option(
        _positive_int, "largest message a resource reads, in bytes (larger: 65)"
    ),
    "max_calendar_size": Option(
        _positive_int, "most calendar data (all calendar parts) of one message, in bytes"
    ),
    "max_components": Option(_positive_int, "most iCalendar components in one message"),
    "max_objects": Option(_positive_int, "most scheduling objects (UIDs) in one message"),
    "max_properties": Option(
        _positive_int, "most properties (parameters and values included) of one component"
    ),
    "window": Option(_window, "how far ahead recurrences are expanded (RFC 5545)"),
    "max_instances": Option(_positive_int, "hard cap on instances of one event"),
    "expansion_seconds": Option(_positive_float, "time budget to expand one event"),
    "max_seconds": Option(
        _positive_float, "CPU seconds for one message (then its objects left are not processed)"
    ),
    "sendmail": Option(_text, "command used to send mail"),
    "smtp": Option(_text, "HOST[:PORT] to send through instead of sendmail"),
    "log_file": Option(_text, "file to log to; empty: syslog (/dev/log) if present"),
}


@dataclass(frozen=True)
class Settings:
    """The effective site settings (file, then command line, applied)."""

    backend: str = "file"
    dsn: str = ""
    dsn_file: str = ""
    store: str = "/var/lib/imip-agent/store"
    preferences: str = "/var/lib/imip-agent/preferences"
    journal: str = "/var/lib/imip-agent/journal"
    publishing: str = "/var/www/imip-agent/static"
    keyring: str = ""
    manager: str = ""
    freebusy_urls: str = ""
    calendar_address: str = ""
    lock_timeout: float = 30.0
    max_message_size: int = 10 * 1024 * 1024
    max_calendar_size: int = 1024 * 1024
    max_components: int = 1000
    max_objects: int = 100
    max_properties: int = 2000
    window: timedelta = timedelta(days=365)
    max_instances: int = 2000
    expansion_seconds: float = 2.0
    max_seconds: float = 3.0
    sendmail: str = "/usr/sbin/sendmail -i"
    smtp: str = ""
    log_file: str = ""
    #: Site defaults for preferences (``[preferences]``), validated on use.
    preference_defaults: Mapping[str, str] = field(default_factory=dict)

    def updated(self, **values: Any) -> Settings:
        """Return a copy with the given (already parsed) values replaced."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})


def _parse_agent_table(table: Mapping[str, Any]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for key, raw in table.items():
        option = SCHEMA.get(key)
        if option is None:
            raise ConfigError(f"unknown setting [agent] {key}")
        try:
            parsed[key] = option.parse(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad value for [agent] {key}: {exc}") from exc
    return parsed


def load_settings(path: str | None = None) -> Settings:
    """Read the configuration file (or ``$IMIP_AGENT_CONFIG``), if any.

    No file named and none in the environment: built-in defaults.
    """
    path = path or os.environ.get(ENV_CONFIG)
    if not path:
        return Settings()
    import tomllib  # lazy: start-up (only when a configuration file is read)

    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration {path} is not valid TOML: {exc}") from exc
    unknown = set(data) - {"agent", "preferences"}
    if unknown:
        raise ConfigError(f"unknown table(s) in {path}: {', '.join(sorted(unknown))}")
    values = _parse_agent_table(data.get("agent", {}))
    prefs = {str(k): str(v) for k, v in data.get("preferences", {}).items()}
    return Settings(**values, preference_defaults=prefs)


def example_config() -> str:
    """The example configuration file, generated from the schema."""
    defaults = Settings()
    lines = ["# imip-agent configuration (TOML)", "", "[agent]"]
    for f in fields(Settings):
        if f.name not in SCHEMA:
            continue
        value = getattr(defaults, f.name)
        if isinstance(value, timedelta):
            value = f"P{value.days}D"
        lines.append(f"# {SCHEMA[f.name].help}")
        lines.append(f"{f.name} = {value!r}".replace("'", '"'))
    lines += ["", "[preferences]", "# site defaults, e.g.", '# TZID = "Europe/Berlin"']
    return "\n".join(lines) + "\n"
