"""A real Alertmanager posts firing, then resolved alerts to the queue; console silences reach it
(from an analyst, and from an engineer, who may silence NOC alerts but not triage or silence SOC).

The console runs the same application `dcops serve` runs, on a free port (uvicorn in a thread).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from dcops.alerts import AlertmanagerSilencer, AlertsConfig, AlertStore, Users
from dcops.alerts.backend import StoreBackend
from dcops.alerts.credentials import Tokens
from dcops.cli import app as app_cli
from dcops.model.event import Detection
from dcops.triage import create_app

pytestmark = pytest.mark.integration
TOKEN = "webhook-test-token"


def wait_for(what: str, check: Callable[[], Any], timeout: float = 40) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def post_alert(am: str, name: str, instance: str, resolved: bool = False) -> None:
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "labels": {"alertname": name, "instance": instance, "severity": "critical",
                   "site": "bien_hoa"},
        "annotations": {"summary": f"{name} on {instance}"},
        "startsAt": (now - timedelta(minutes=1)).isoformat(),
    }
    if resolved:
        body["endsAt"] = (now - timedelta(seconds=1)).isoformat()
    r = httpx.post(f"{am}/api/v2/alerts", json=[body], timeout=5)
    assert r.status_code == 200, r.text


def test_alertmanager_firing_resolved_and_silence(tmp_path: Path, port: int,
                                                  alertmanager_factory: Any,
                                                  console_factory: Any) -> None:
    store = AlertStore(f"sqlite:///{tmp_path / 'alerts.db'}", AlertsConfig(webhook_token=TOKEN))
    Users(store.engine).add("ana", "ana-password", "analyst", "setup")
    app = create_app(StoreBackend(store), "secret", webhook_token=TOKEN)
    try:
        console_url = console_factory(app, port)
        am = alertmanager_factory(console_url, TOKEN)
        store.silencer = AlertmanagerSilencer(am)

        post_alert(am, "SnmpDeviceDown", "core-sw1")
        post_alert(am, "LinkFlapping", "wan-r2")
        fired = wait_for("both firing alerts in the queue",
                         lambda: len(store.query()) == 2 and store.query())
        by_name = {a.labels["alertname"]: a for a in fired}
        down = by_name["SnmpDeviceDown"]
        assert (down.source, down.status, down.host, down.severity) == (
            "alertmanager", "new", "core-sw1", "critical")

        post_alert(am, "SnmpDeviceDown", "core-sw1", resolved=True)
        wait_for("resolved in the queue",
                 lambda: (a := store.get(down.id)) is not None and a.status == "resolved")
        assert store.audit_records(f"alert:{down.id}")[-1].actor == "alertmanager"

        flap = by_name["LinkFlapping"]
        with httpx.Client(base_url=console_url, follow_redirects=False) as c:
            token = re.search(r'name="csrf_token" value="([^"]+)"',
                              c.get("/login").text).group(1)  # type: ignore[union-attr]
            r = c.post("/login", data={"username": "ana", "password": "ana-password",
                                       "csrf_token": token})
            assert r.status_code == 303
            token = re.search(r'name="csrf_token" value="([^"]+)"',
                              c.get(f"/alerts/{flap.id}").text).group(1)  # type: ignore[union-attr]
            r = c.post(f"/alerts/{flap.id}/silence",
                       data={"comment": "carrier maintenance", "csrf_token": token})
            assert r.status_code == 303, r.text
            [sil] = store.silences(flap.id)
            am_sils = httpx.get(f"{am}/api/v2/silences", timeout=5).json()
            mine = [s for s in am_sils if s["id"] == sil.am_silence_id]
            assert mine, am_sils
            assert mine[0]["status"]["state"] == "active"
            assert mine[0]["createdBy"] == "ana"
            assert {"name": "alertname", "value": "LinkFlapping", "isRegex": False,
                    "isEqual": True} in mine[0]["matchers"]

            # resolving the alert in triage expires its silence in Alertmanager
            r = c.post(f"/alerts/{flap.id}/transition",
                       data={"to": "resolved", "csrf_token": token})
            assert r.status_code == 303
        state = httpx.get(f"{am}/api/v2/silence/{sil.am_silence_id}", timeout=5).json()
        assert state["status"]["state"] == "expired"
        assert store.verify_audit().ok
    finally:
        store.close()


def csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


def test_engineer_silences_noc_alert_only(tmp_path: Path, port: int, alertmanager_factory: Any,
                                          console_factory: Any) -> None:
    store = AlertStore(f"sqlite:///{tmp_path / 'alerts.db'}", AlertsConfig(webhook_token=TOKEN))
    Users(store.engine).add("eng", "eng-password", "engineer", "setup")
    store.accept([Detection("r1", "SSH brute force", "high", datetime.now(UTC), ("e1",),
                            key="web01", host="web01")])
    [soc] = store.query()
    app = create_app(StoreBackend(store), "secret", webhook_token=TOKEN)
    try:
        console_url = console_factory(app, port)
        am = alertmanager_factory(console_url, TOKEN)
        store.silencer = AlertmanagerSilencer(am)
        post_alert(am, "SnmpInterfaceDown", "dist-sw3")
        noc = wait_for("the NOC alert in the queue",
                       lambda: [a for a in store.query() if a.source == "alertmanager"])[0]

        with httpx.Client(base_url=console_url, follow_redirects=False) as c:
            r = c.post("/login", data={"username": "eng", "password": "eng-password",
                                       "csrf_token": csrf(c.get("/login").text)})
            assert r.status_code == 303
            page = c.get(f"/alerts/{noc.id}").text
            assert 'id="silence-box"' in page and 'id="actions"' not in page
            token = csrf(page)
            r = c.post(f"/alerts/{noc.id}/silence",
                       data={"comment": "planned switch replacement", "csrf_token": token})
            assert r.status_code == 303, r.text
            [sil] = store.silences(noc.id)
            am_sils = {s["id"]: s for s in httpx.get(f"{am}/api/v2/silences", timeout=5).json()}
            assert am_sils[sil.am_silence_id]["status"]["state"] == "active"
            assert am_sils[sil.am_silence_id]["createdBy"] == "eng"
            assert am_sils[sil.am_silence_id]["comment"] == "planned switch replacement"

            # read and silence only: the lifecycle stays with the analysts
            for path, data in ((f"/alerts/{noc.id}/transition", {"to": "acknowledged"}),
                               (f"/alerts/{noc.id}/transition", {"to": "resolved"}),
                               (f"/alerts/{noc.id}/assign", {"assignee": "eng"})):
                assert c.post(path, data={**data, "csrf_token": token}).status_code == 403
            r = c.post(f"/alerts/{soc.id}/silence", data={"comment": "x", "csrf_token": token})
            assert r.status_code == 409
        current = store.get(noc.id)
        assert current is not None and current.status == "new"
        assert store.silences(soc.id) == []
        assert len(httpx.get(f"{am}/api/v2/silences", timeout=5).json()) == 1

        # the same from the CLI as eng (an API token), printing the alert and silence as JSON
        eng_token = tmp_path / "eng.token"
        eng_token.write_text(Tokens(store.engine).issue("eng", "setup"))
        eng_token.chmod(0o600)
        r = CliRunner().invoke(app_cli, [
            "alerts", "--token-file", str(eng_token), "silence", str(noc.id), "--comment",
            "extend", "--duration", "30m", "--json", "--db",
            f"sqlite:///{tmp_path / 'alerts.db'}", "--alertmanager-url", am],
            env={"DCOPS_TRAIL_KEY_FILE": str(tmp_path / "trail.key")})  # the store's key
        assert r.exit_code == 0, r.output
        out = json.loads(r.stdout)
        assert out["alert"]["id"] == noc.id and out["silence"]["created_by"] == "eng"
        am_sils = {s["id"]: s for s in httpx.get(f"{am}/api/v2/silences", timeout=5).json()}
        assert am_sils[out["silence"]["am_silence_id"]]["comment"] == "extend"
        history = [(h.actor, h.action) for h in store.audit_records(f"alert:{noc.id}")]
        assert ("eng", "alert.silence") in history
        assert store.verify_audit().ok
    finally:
        store.close()
