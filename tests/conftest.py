"""Session checks and shared fixtures.

In CI the shared corpora must be there:
``../shared/interop`` (real client files) and ``../shared/peer-itip`` (the
peers' iTIP suites) are read in place by many tests. Locally a missing
folder makes those tests skip, each with a message; in CI (``CI=true``) the
run fails at once, naming what is missing, so a clone without them can
never pass quietly.

``pg_database`` and ``pg_dsn``: a PostgreSQL database for the session, made
empty for each test (see :mod:`tests.pg`). The modules in
:data:`BOTH_BACKENDS` run every test that uses an ``agent`` fixture twice,
with the file backend and with the postgresql backend (the ``backend``
fixture; :func:`site_agent` makes the agent); a test marked ``files``
looks at the file backend's files and runs with it only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg import emptied, fresh_database, require_server, write_config
from tests.support import IN_CI, INTEROP, PEER_ITIP, Agent

#: Test modules whose ``agent`` tests run against every backend.
BOTH_BACKENDS = {
    "tests.scenarios.test_resource",
    "tests.scenarios.test_quota",
    "tests.scenarios.test_quota_concurrency",
    "tests.admin.test_jobs",
    "tests.admin.test_quota_jobs",
    "tests.admin.test_outbox",
}
BACKENDS = ["file", "postgresql"]


#: What tests reported with ``record_property("figures", TEXT)`` (the
#: three-host test's), printed at the end of the run: reports reach this
#: process from xdist's workers too, and it prints under ``-q``.
FIGURES: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        FIGURES.extend(str(value) for name, value in report.user_properties if name == "figures")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.write_sep("-", "figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Fail the whole run in CI when a shared corpus is missing."""
    missing = [str(path) for path in (INTEROP, PEER_ITIP) if not path.is_dir()]
    if IN_CI and missing:
        pytest.exit(
            f"CI=true but the shared test corpora are missing: {', '.join(missing)} "
            "(../shared beside the checkout, or IMIP_SHARED_DIR)",
            returncode=1,
        )


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database with the schema for this test session
    (dropped at its end); skips without a server (fails in CI)."""
    require_server()
    with fresh_database() as dsn:
        yield dsn


@pytest.fixture
def pg_dsn(pg_database: str) -> str:
    """The session's database, emptied for this test."""
    return emptied(pg_database)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Both backends for the ``agent`` of the modules in BOTH_BACKENDS."""
    if "agent" not in metafunc.fixturenames or metafunc.module.__name__ not in BOTH_BACKENDS:
        return
    files_only = metafunc.definition.get_closest_marker("files") is not None
    metafunc.parametrize("backend", ["file"] if files_only else BACKENDS, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The backend of the test's site (``file`` unless parametrised)."""
    return str(getattr(request, "param", "file"))


def site_agent(request: pytest.FixtureRequest, root: Path, backend: str, **options: str) -> Agent:
    """An agent over a fresh site of ``backend`` (a database emptied for
    the test, or directories under ``root``)."""
    if backend == "postgresql":
        dsn = request.getfixturevalue("pg_dsn")
        return Agent(root, config=write_config(root / "backend.toml", dsn), **options)
    return Agent(root, **options)
