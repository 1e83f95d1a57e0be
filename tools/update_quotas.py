#!/usr/bin/env python3
"""update_quotas.py: the original's nightly quota job, as two imip-admin runs.

    tools/update_quotas.py [store options]

Runs ``imip-admin quota expire`` (gives back the quota of past
reservations), then ``imip-admin make-freebusy --all`` (moves the free/busy
window forward and regenerates quota records), passing the store options
to both. The second runs even if the first fails; the exit code is the
first non-zero one. ``imip-admin`` is found as by make_freebusy.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_freebusy import imip_admin


def main(options: list[str]) -> int:
    """Run both jobs; return the first failure's exit code, else 0 (75 with
    one line when imip-admin cannot be found)."""
    try:
        codes = [
            subprocess.run([imip_admin(), "quota", "expire", *options], check=False).returncode,
            subprocess.run(
                [imip_admin(), "make-freebusy", "--all", *options], check=False
            ).returncode,
        ]
    except OSError as exc:
        print(f"4.3.0 cannot run imip-admin: {exc.strerror} (set IMIP_ADMIN or PATH)")
        return 75
    return next((code for code in codes if code), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
