"""The bulk-webhook equivalence suite of tests/unit/alerts/test_alerts_bulk.py, on PostgreSQL."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_path = Path(__file__).parents[2] / "unit" / "alerts" / "test_alerts_bulk.py"
_spec = importlib.util.spec_from_file_location("dcops_alerts_bulk_suite_pg", _path)
assert _spec is not None and _spec.loader is not None
_suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_suite)

# Tests and fixtures of the suite, collected here against this directory's `db_url` (PostgreSQL).
globals().update({k: v for k, v in vars(_suite).items() if k.startswith("test_") or k == "pair"})

pytestmark = pytest.mark.integration
