"""One dcops wheel per test run for the monitoring_server role (DCOPS_WHEEL).

The role builds the checkout's wheel by default; in a checkout other developers edit while a test
runs, a second converge would then install different code and report a change. Building once and
passing the same wheel to both runs tests idempotence of the role, not of the working tree.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def build_wheel(out_dir: Path) -> Path:
    """Build the checkout's dcops wheel into out_dir (offline, like the role); return its path."""
    uv = shutil.which("uv")
    assert uv, "uv missing: the monitoring_server role builds dcops with it"
    subprocess.run([uv, "build", "--wheel", "--offline", "--quiet", "--out-dir", str(out_dir),
                    str(REPO)], check=True, capture_output=True, text=True, timeout=300)
    wheels = sorted(out_dir.glob("dcops-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]
