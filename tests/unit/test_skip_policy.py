"""scripts/test.sh's skip policy: a skip fails unless tests/skip_policy.py allows it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

SAMPLE = '''
import pytest

def test_needs_root():
    pytest.skip("the lab needs root (network namespaces, overlay mounts)")

def test_allowed():
    pytest.skip("already offline")

@pytest.mark.skipif(True, reason="SigmaHQ rules not present at ../shared/sigmahq")
def test_shared_missing():
    pass

def test_passes():
    assert True
'''


def _run(tmp_path: Path, strict: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(SAMPLE, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(TESTS), "DCOPS_TEST_STRICT_SKIPS": strict}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "skip_policy", "-p", "no:cacheprovider", "-q",
         "-p", "no:xdist", "-o", "addopts=", "--rootdir", str(tmp_path), "test_sample.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_strict_run_fails_on_a_skip_without_an_allowed_reason(tmp_path: Path) -> None:
    run = _run(tmp_path, "1")
    assert run.returncode == 1, run.stdout
    assert "1 failed" in run.stdout and "1 error" in run.stdout and "1 skipped" in run.stdout
    assert "skipped, and a skip fails under DCOPS_TEST_STRICT_SKIPS=1" in run.stdout
    assert "the lab needs root" in run.stdout and "SigmaHQ rules not present" in run.stdout
    # the allowed skip passes and is counted with its reason
    assert "1  already offline: " in run.stdout


def test_plain_run_keeps_skips_and_counts_them(tmp_path: Path) -> None:
    run = _run(tmp_path, "0")
    assert run.returncode == 0, run.stdout
    assert "3 skipped" in run.stdout
    assert "2  not allowed (fails under scripts/test.sh)" in run.stdout
