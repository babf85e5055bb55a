"""The Pulumi tests pass with no network at all: rerun them in a fresh network namespace."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("DCOPS_IAC_OFFLINE") == "1", reason="already offline")
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="needs root and unshare(1) for a private network namespace")
def test_pulumi_tests_pass_without_network() -> None:
    env = {**os.environ, "DCOPS_IAC_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    dev = subprocess.run(["unshare", "--net", "--", "cat", "/proc/self/net/dev"],
                         capture_output=True, text=True, check=True, timeout=30)
    ifaces = [line.split(":")[0].strip() for line in dev.stdout.splitlines()[2:]]
    assert ifaces == ["lo"]  # nothing but a down loopback: no way out
    tests = sorted(str(p) for p in HERE.glob("test_*.py") if p.name != Path(__file__).name)
    # every iac test module runs offline, including the CLI and SVG ones
    assert {Path(t).name for t in tests} >= {"test_plan.py", "test_cli_svg.py",
                                             "test_crossguard.py", "test_stack_files.py"}
    run = subprocess.run(
        ["unshare", "--net", "--", sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-p", "no:warnings", *tests],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=900, check=False)  # ~100 CPU-s
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout
