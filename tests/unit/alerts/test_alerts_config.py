"""The alerts YAML configuration: defaults, overrides, errors that name the key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from dcops.alerts import load_config
from dcops.alerts.sla import fmt_seconds
from dcops.alerts.timeutil import parse
from dcops.errors import ConfigError


def test_defaults_without_file(tmp_path: Path) -> None:
    cfg = load_config(tmp_path / "alerts.yaml")
    assert cfg.sla["critical"].ack == timedelta(minutes=15)
    assert cfg.dedup_window == timedelta(hours=1)


def test_overrides(tmp_path: Path) -> None:
    p = tmp_path / "a.yaml"
    p.write_text("sla:\n  critical: {ack: 5m, resolve: 1h}\ndedup_window: 10m\n"
                 "alertmanager:\n  url: http://127.0.0.1:9093\n  webhook_token: tok\n"
                 "system_levels: {lgsp: 3}\n")
    cfg = load_config(p)
    assert cfg.sla["critical"].ack == timedelta(minutes=5)
    assert cfg.sla["high"].ack == timedelta(minutes=30)
    assert cfg.dedup_window == timedelta(minutes=10)
    assert (cfg.alertmanager_url, cfg.webhook_token) == ("http://127.0.0.1:9093", "tok")
    assert cfg.system_levels == {"lgsp": 3}


@pytest.mark.parametrize(("body", "key"), [
    ("sla:\n  urgent: {ack: 1m}\n", "sla.urgent"),
    ("sla:\n  high: {ack: soon}\n", "sla.high.ack"),
    ("dedup_window: forever\n", "dedup_window"),
])
def test_errors_name_the_key(tmp_path: Path, body: str, key: str) -> None:
    p = tmp_path / "a.yaml"
    p.write_text(body)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as exc:
        load_config(p)
    assert str(p) in str(exc.value)


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "other.yaml")


def test_alertmanager_nanosecond_timestamps_and_format() -> None:
    assert parse("2026-11-22T03:00:00.123456789Z").microsecond == 123456
    assert fmt_seconds(3900) == "1h05m" and fmt_seconds(None) == "-"
