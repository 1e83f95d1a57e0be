"""Session checks: in CI the shared corpora must be there.

``../shared/interop`` (real client files) and ``../shared/peer-itip`` (the
peers' iTIP suites) are read in place by many tests. Locally a missing
folder makes those tests skip, each with a message; in CI (``CI=true``) the
run fails at once, naming what is missing, so a clone without them can
never pass quietly.
"""

from __future__ import annotations

import pytest

from tests.support import IN_CI, INTEROP, PEER_ITIP


def pytest_sessionstart(session: pytest.Session) -> None:
    """Fail the whole run in CI when a shared corpus is missing."""
    missing = [str(path) for path in (INTEROP, PEER_ITIP) if not path.is_dir()]
    if IN_CI and missing:
        pytest.exit(
            f"CI=true but the shared test corpora are missing: {', '.join(missing)} "
            "(../shared beside the checkout, or IMIP_SHARED_DIR)",
            returncode=1,
        )
