"""The change-window suite of tests/unit/alerts/test_change_windows.py (matching, policies,
trail, incident titles, migration 0005 up and down) on a real PostgreSQL."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_path = Path(__file__).parents[2] / "unit" / "alerts" / "test_change_windows.py"
_spec = importlib.util.spec_from_file_location("dcops_change_windows_suite_pg", _path)
assert _spec is not None and _spec.loader is not None
_suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_suite)

# Store tests and their fixture, collected here against this directory's `db_url` (PostgreSQL);
# the config-file tests need no database and stay in the unit suite.
globals().update({k: v for k, v in vars(_suite).items()
                  if (k.startswith("test_") and "config" not in k and "accounts_of" not in k)
                  or k == "store"})

pytestmark = pytest.mark.integration
