"""Alert service configuration (YAML): SLA per severity, dedup window, Alertmanager, console.

Every key is optional; missing keys take the defaults below. See docs/triage.md for the file format.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from dcops.alerts.throttle import ThrottlePolicy
from dcops.alerts.timeutil import parse_duration
from dcops.errors import ConfigError

SEVERITIES = ("critical", "high", "medium", "low", "informational")

DEFAULT_SLA: dict[str, tuple[str, str]] = {
    "critical": ("15m", "4h"),
    "high": ("30m", "8h"),
    "medium": ("2h", "24h"),
    "low": ("8h", "72h"),
    "informational": ("24h", "168h"),
}


@dataclass(frozen=True, slots=True)
class SlaTarget:
    """Time to acknowledge and time to resolve for one severity."""

    ack: timedelta
    resolve: timedelta


CHANGE_POLICIES = ("resolve", "group", "ignore_window")


@dataclass(frozen=True, slots=True)
class ChangesConfig:
    """How alerts that match an open change window are handled (``changes:`` in the YAML).

    ``resolve``: stored, linked to the window, then resolved by ``change:<id>`` with a note;
    ``group``: stored open in the window's own incident ("Expected change <ticket>");
    ``ignore_window``: the rule is never matched against windows (critical rules).
    Rules are matched by rule id or title, glob patterns allowed, first match wins.
    """

    default: str = "resolve"
    rules: tuple[tuple[str, str], ...] = ()
    grace: timedelta = timedelta(minutes=10)  # after a window closes (late logs, detections)
    default_duration: timedelta = timedelta(hours=2)
    max_duration: timedelta = timedelta(hours=12)

    def policy(self, rule_id: str, rule_title: str = "") -> str:
        """The policy of a rule: its first matching pattern's, else the default."""
        from fnmatch import fnmatchcase

        for pattern, policy in self.rules:
            if fnmatchcase(rule_id, pattern) or (rule_title and fnmatchcase(rule_title, pattern)):
                return policy
        return self.default


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    """Everything the alert store, the bridge and the console read from configuration."""

    sla: dict[str, SlaTarget] = field(default_factory=lambda: {
        s: SlaTarget(parse_duration(a), parse_duration(r)) for s, (a, r) in DEFAULT_SLA.items()})
    dedup_window: timedelta = timedelta(hours=1)
    system_levels: dict[str, int] = field(default_factory=dict)
    alertmanager_url: str = ""
    silence_duration: timedelta = timedelta(hours=4)
    webhook_token: str = ""
    session_secret: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    login: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    prometheus_url: str = ""  # noc.prometheus_url: the NOC view's Prometheus
    changes: ChangesConfig = field(default_factory=ChangesConfig)
    source: str = ""  # the file it came from, for messages


def _duration(value: Any, file: str, key: str) -> timedelta:
    try:
        return parse_duration(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"expected a duration like 15m, 4h or 90s, got {value!r}",
                          file=file, key=key) from exc


def _login_policy(data: Any, file: str) -> ThrottlePolicy:
    """console.login: max_failures[_per_address], backoff, max_backoff, lock, max_lock."""
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping", file=file, key="console.login")
    base, values = ThrottlePolicy(), dict[str, Any]()
    for key, value in data.items():
        if key in ("max_failures", "max_failures_per_address"):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"expected a whole number >= 1, got {value!r}", file=file,
                                  key=f"console.login.{key}")
            values[key] = value
        elif key in ("backoff", "max_backoff", "lock", "max_lock"):
            values[key] = _duration(value, file, f"console.login.{key}")
        else:
            raise ConfigError(f"unknown key {key!r}", file=file, key=f"console.login.{key}")
    return replace(base, **values)


def _noc_prometheus_url(data: Any, file: str) -> str:
    """noc.prometheus_url (checked as a URL by dcops serve, which names the key)."""
    if not isinstance(data, dict) or not isinstance(data.get("prometheus_url", ""), str):
        raise ConfigError("expected a mapping with prometheus_url: URL", file=file, key="noc")
    return str(data.get("prometheus_url", ""))


def _policy(value: Any, file: str, key: str) -> str:
    if value not in CHANGE_POLICIES:
        raise ConfigError(f"expected one of {', '.join(CHANGE_POLICIES)}, got {value!r}",
                          file=file, key=key)
    return str(value)


def _changes(data: Any, file: str) -> ChangesConfig:
    """changes: default, rules {pattern: policy}, grace, default_duration, max_duration."""
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping", file=file, key="changes")
    base, values = ChangesConfig(), dict[str, Any]()
    for key, value in data.items():
        if key == "default":
            values["default"] = _policy(value, file, "changes.default")
        elif key == "rules":
            if not isinstance(value, dict):
                raise ConfigError("expected a mapping of rule id, title or glob to a policy",
                                  file=file, key="changes.rules")
            values["rules"] = tuple((str(k), _policy(v, file, f"changes.rules.{k}"))
                                    for k, v in value.items())
        elif key in ("grace", "default_duration", "max_duration"):
            values[key] = _duration(value, file, f"changes.{key}")
            if values[key] < timedelta(0) or (key != "grace" and not values[key]):
                raise ConfigError(f"expected a positive duration, got {value!r}", file=file,
                                  key=f"changes.{key}")
        else:
            raise ConfigError(f"unknown key {key!r} (expected default, rules, grace, "
                              f"default_duration, max_duration)", file=file, key=f"changes.{key}")
    cfg = replace(base, **values)
    if cfg.default_duration > cfg.max_duration:
        raise ConfigError("default_duration is longer than max_duration", file=file,
                          key="changes.default_duration")
    return cfg


def load_config(path: Path | None) -> AlertsConfig:
    """Read the YAML file; a missing path (None) gives the defaults."""
    if path is None or not path.exists():
        if path is not None and path.name != "alerts.yaml":
            raise ConfigError("configuration file not found", file=str(path))
        return AlertsConfig()
    file = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"invalid YAML: {exc}", file=file,
                          line=mark.line + 1 if mark else None) from exc
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping at the top level", file=file)
    base = AlertsConfig()
    sla = dict(base.sla)
    for sev, target in (data.get("sla") or {}).items():
        if sev not in SEVERITIES:
            raise ConfigError(f"unknown severity {sev!r}, expected one of {', '.join(SEVERITIES)}",
                              file=file, key=f"sla.{sev}")
        if not isinstance(target, dict):
            raise ConfigError("expected a mapping with ack and resolve", file=file,
                              key=f"sla.{sev}")
        sla[sev] = SlaTarget(
            _duration(target.get("ack", DEFAULT_SLA[sev][0]), file, f"sla.{sev}.ack"),
            _duration(target.get("resolve", DEFAULT_SLA[sev][1]), file, f"sla.{sev}.resolve"))
    am = data.get("alertmanager") or {}
    console = data.get("console") or {}
    levels = data.get("system_levels") or {}
    if not all(isinstance(v, int) for v in levels.values()):
        raise ConfigError("expected an integer level per system", file=file, key="system_levels")
    return AlertsConfig(
        sla=sla,
        dedup_window=_duration(data.get("dedup_window", "1h"), file, "dedup_window"),
        system_levels={str(k): int(v) for k, v in levels.items()},
        alertmanager_url=str(am.get("url", "")),
        silence_duration=_duration(am.get("silence_duration", "4h"), file,
                                   "alertmanager.silence_duration"),
        webhook_token=str(am.get("webhook_token", "")),
        session_secret=str(console.get("session_secret", "")),
        tls_cert=str(console.get("tls_cert", "")),
        tls_key=str(console.get("tls_key", "")),
        login=_login_policy(console.get("login") or {}, file),
        prometheus_url=_noc_prometheus_url(data.get("noc") or {}, file),
        changes=_changes(data.get("changes") or {}, file),
        source=file,
    )
