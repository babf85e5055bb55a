"""Alert store tests run on SQLite here; tests/integration/alerts reruns them on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite store file."""
    return f"sqlite:///{tmp_path / 'alerts.db'}"
