"""The installed `dcops serve` behind a proxy, fed by a real Alertmanager running the house
monitoring/alertmanager/alertmanager.yml: the bearer token comes from a secrets file on both
sides (dcops --webhook-token-file, Alertmanager credentials_file); a request without it, or with
a body past the limit, is refused; cookies are Secure; X-Forwarded-For counts from the proxy."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import select

from dcops.alerts import AlertStore, default_url, schema

pytestmark = pytest.mark.integration
DCOPS = str(Path(sys.executable).parent / "dcops")
HOUSE = Path(__file__).parents[3] / "monitoring" / "alertmanager" / "alertmanager.yml"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer: {log.read_text()[-2000:]}")


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        p.terminate()
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def test_house_alertmanager_config_sends_the_token(tmp_path: Path, port: int,
                                                   procs: list[subprocess.Popen[bytes]]) -> None:
    binary = shutil.which("prometheus-alertmanager")
    assert binary, "prometheus-alertmanager not installed (make setup)"
    token = secrets.token_urlsafe(32)
    token_file = tmp_path / "dcops-webhook-token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o640)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DCOPS_")}
    env["DCOPS_STATE_DIR"] = str(tmp_path)
    log = tmp_path / "serve.log"
    procs.append(subprocess.Popen(
        [DCOPS, "serve", "--host", "127.0.0.1", "--port", str(port), "--behind-proxy",
         "--proxy-address", "127.0.0.1", "--webhook-token-file", str(token_file)],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT))
    console = f"http://127.0.0.1:{port}"
    _wait(f"{console}/healthz", procs[-1], log)
    assert "bearer token required; behind the proxy at 127.0.0.1" in log.read_text()

    # the house file, only its receiver URL and secrets-file path changed
    house = yaml.safe_load(HOUSE.read_text())
    for recv in house["receivers"]:
        for wh in recv["webhook_configs"]:
            assert wh["http_config"]["authorization"]["credentials_file"]
            wh["url"] = f"{console}/api/v1/alertmanager/webhook"
            wh["http_config"]["authorization"]["credentials_file"] = str(token_file)
    (tmp_path / "am.yml").write_text(yaml.safe_dump(house))
    am_port = free_port()
    am_log = tmp_path / "am.log"
    procs.append(subprocess.Popen(
        [binary, f"--config.file={tmp_path / 'am.yml'}", f"--storage.path={tmp_path / 'am'}",
         f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
        stdout=am_log.open("wb"), stderr=subprocess.STDOUT))
    am = f"http://127.0.0.1:{am_port}"
    _wait(f"{am}/-/ready", procs[-1], am_log)

    hook = f"{console}/api/v1/alertmanager/webhook"
    firing = {"version": "4", "status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": "Forged", "severity": "critical"},
         "annotations": {}, "startsAt": "2026-11-22T03:00:00Z", "fingerprint": "x"}]}
    assert httpx.post(hook, json=firing, timeout=10).status_code == 401
    assert httpx.post(hook, json=firing, timeout=10,
                      headers={"Authorization": "Bearer wrong"}).status_code == 401
    big = httpx.post(hook, content=b"x" * (2 * 1024 * 1024), timeout=30,
                     headers={"Authorization": f"Bearer {token}"})
    assert big.status_code == 413

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 65536

    assert httpx.post(hook, content=chunks(), timeout=30,
                      headers={"Authorization": f"Bearer {token}"}).status_code == 413

    # a real alert through the house routes (critical in the primary DC: group_wait 10s)
    r = httpx.post(f"{am}/api/v2/alerts", timeout=10, json=[{
        "labels": {"alertname": "DeviceUnreachable", "severity": "critical",
                   "site": "primary-dc", "device": "core-sw1"},
        "annotations": {"summary": "core-sw1 unreachable"}}])
    assert r.status_code == 200
    deadline = time.monotonic() + 90
    rows: list[str] = []
    while time.monotonic() < deadline and not rows:
        store = AlertStore(default_url(tmp_path))
        try:
            rows = [a.rule_id for a in store.query()]
        finally:
            store.close()
        time.sleep(1)
    assert rows == ["alertmanager:DeviceUnreachable"], am_log.read_text()[-3000:]

    # behind the proxy: Secure cookies, and the client the proxy names
    login = httpx.get(f"{console}/login", timeout=10)
    assert "secure" in login.headers["set-cookie"].lower()
    csrf = login.text.split('name="csrf_token" value="')[1].split('"')[0]
    cookie = f"dcops_session={login.cookies['dcops_session']}"  # Secure: sent as the proxy would
    r = httpx.post(f"{console}/login", timeout=30,
                   data={"username": "nobody", "password": "wrong-password", "csrf_token": csrf},
                   headers={"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https",
                            "Cookie": cookie})
    assert r.status_code == 401
    store = AlertStore(default_url(tmp_path))
    try:
        with store.engine.connect() as conn:
            keys = {k for (k,) in conn.execute(select(schema.login_throttle.c.key))}
    finally:
        store.close()
    assert keys == {"user:nobody", "addr:198.51.100.7"}
