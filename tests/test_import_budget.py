"""The agent's start-up imports only what a message needs (issue 15 item 1).

About nine tenths of a pipe run were imports. A resource answering an
invitation (the common case, sending with sendmail, logging to a file) runs
in a fresh interpreter here, and the modules loaded by the end of the run
are held to the budget below: a module that grows the set past its
package's line fails this test with the names, and the heavy modules that
only some runs need (SMTP with ssl, syslog's handlers, entry-point
metadata, ctypes, OpenSSL's hashlib, tomllib, email.policy) must not be
loaded at all. Raise a line only for a module every such run needs, and say why in the
commit.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.support import ROOT

#: The most modules a resource's run may load, by top-level package; every
#: other package together is "other" (the standard library's small ones).
BUDGET = {
    "imiptools": 72,  # 62 when set; 70 once the scheduling engine was split into
    # model, registry, engine and builtin and runs returned outcomes (smaller
    # modules, the same code); 74 with OpenPGP (mail/keyring.py, mail/openpgp.py:
    # every message is checked for RFC 3156, every reply may be signed; python-gnupg
    # itself is loaded only when the site has a keyring); 71 once the recurrence
    # set, the budget's watchdog, VAVAILABILITY and initialise were left to the
    # runs that need them (and digests.py came, to keep OpenSSL out); 72 with
    # stores/bucketindex.py (the file store reads every free/busy bucket through it);
    # 71 once the alternatives were left to a counter-offer; 72 with deferred.py
    # (every dataclass made at its first instance: 35 of 69 are never made in this run)
    "imip_agent": 5,  # 3 before the parsers moved to options.py and parsing.py
    "icalendar": 84,  # 80 with icalendar 7.3
    "email": 15,  # 21 before email.policy (its header registry and parser) was left to
    # the replies that need it (mail/compose.py folds a plain reply's headers itself)
    "dateutil": 8,
    "importlib": 16,  # 14: the import system and importlib.resources (zoneinfo's tzdata)
    "encodings": 5,
    "other": 150,  # 153 when set; 143 once hashlib, secrets, hmac, tomllib and difflib went
}
#: Loaded only by the runs that need them, never for this one.
NEVER = (
    "smtplib",  # and ssl: only the SMTP sender (--smtp, the smtp setting)
    "ssl",
    "logging.handlers",  # only syslog
    "importlib.metadata",  # only a backend or scheduling function not built in
    "ctypes",  # only when a recurrence budget's alarm fires
    "hashlib",  # and _hashlib, secrets, hmac: OpenSSL's libcrypto, 3.5 MiB resident;
    "_hashlib",  # imiptools/digests.py hashes and draws tokens without them
    "secrets",
    "hmac",
    "email.policy",  # and the header registry and its parser (0.7 MiB): every message
    "email.headerregistry",  # is read with compat32, and mail/compose.py folds a plain
    "email._header_value_parser",  # reply's headers itself (the policy only for a long
    "email.contentmanager",  # or non-ASCII one, or a reply with attachments)
    "tomllib",  # only when a configuration file is read (this run names none)
    "difflib",  # only to suggest a command for a mistyped one
    "shutil",  # and bz2, lzma: argparse asks it the terminal's width (imip_agent/parsing.py)
    "psycopg2",  # only the postgresql backend (imiptools/site.py loads it when a site names it)
    "psycopg",  # the driver the backend does not use (it costs a pipe run five times psycopg2)
    "flask",  # only imip-manager, the web interface (imip_agent/manager)
    "werkzeug",
    "jinja2",
    "waitress",
)

RUN = """
import io, json, sys
sys.stdin = io.TextIOWrapper(io.BytesIO(sys.stdin.buffer.read()))
from imip_agent import resource
code = resource.run(sys.argv[1:])
print(json.dumps({"code": int(code), "modules": sorted(sys.modules)}))
"""


def loaded_by_a_resource_run(tmp_path: Path) -> tuple[int, list[str]]:
    store = [f"-{o}" + f"{tmp_path / n}" for o, n in (("S", "s"), ("p", "p"), ("j", "j"))]
    argv = [
        sys.executable,
        "-c",
        RUN,
        *store,
        f"-P{tmp_path / 'pub'}",
        "--now=2030-01-01T12:00:00Z",
        "--original-recipient=room@example.com",
        "--sender=alice@example.com",
        f"--sendmail={tmp_path / 'sendmail'}",
        f"--log={tmp_path / 'log'}",
    ]
    for name in ("s", "p"):  # the site, as imip-admin init makes it
        (tmp_path / name).mkdir()
    sendmail = tmp_path / "sendmail"
    sendmail.write_text(f"#!/bin/sh\ncat >{tmp_path / 'sent'}\n")
    sendmail.chmod(0o755)
    message = (ROOT / "examples" / "01-alice-books.eml").read_bytes()
    done = subprocess.run(argv, input=message, capture_output=True, timeout=120, check=True)
    result = json.loads(done.stdout.decode().splitlines()[-1])
    assert (tmp_path / "sent").exists(), "the room answered"
    return result["code"], result["modules"]


def test_a_resource_run_stays_within_the_import_budget(tmp_path: Path) -> None:
    code, modules = loaded_by_a_resource_run(tmp_path)
    assert code == 0
    packages = Counter(_package(name) for name in modules)
    over = {
        package: sorted(m for m in modules if _package(m) == package)
        for package, count in packages.items()
        if count > BUDGET[package]
    }
    assert not over, {p: (packages[p], BUDGET[p], names) for p, names in over.items()}
    loaded = [name for name in NEVER if name in modules]
    assert not loaded, f"loaded by a run that does not need them: {loaded}"


def _package(module: str) -> str:
    """The line of :data:`BUDGET` that ``module`` counts against."""
    top = module.split(".")[0]
    return top if top in BUDGET else "other"
