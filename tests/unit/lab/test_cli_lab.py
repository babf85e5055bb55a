"""The `dcops lab` commands that need no root: status of a lab that is not up, bad names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dcops.cli import app


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCOPS_STATE_DIR", str(tmp_path))


def test_status_of_a_lab_that_is_down() -> None:
    result = CliRunner().invoke(app, ["lab", "status", "--name", "nolab", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"lab": "nolab", "hosts": []}
    table = CliRunner().invoke(app, ["lab", "status", "--name", "nolab"])
    assert "nolab is down" in table.output


def test_bad_lab_name_is_refused() -> None:
    result = CliRunner().invoke(app, ["lab", "status", "--name", "Bad_Name"])
    assert result.exit_code != 0
    assert "lab name 'Bad_Name'" in str(result.exception)
