"""Browser tests of the triage console: Debian's chromium driven by Playwright (no downloads)."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from demo_run import free_port

from dcops.alerts import AlertStore, Users
from dcops.alerts.backend import StoreBackend
from dcops.model.event import Detection
from dcops.triage import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
PASSWORDS = {"ana": "analyst-pass-1", "aud": "auditor-pass-1"}


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[str, AlertStore]]:
    """A seeded store served by the console app on a free port: (base URL, store)."""
    import uvicorn

    store = AlertStore(f"sqlite:///{tmp_path / 'alerts.db'}")
    users = Users(store.engine)
    users.add("ana", PASSWORDS["ana"], "analyst", "setup")
    users.add("aud", PASSWORDS["aud"], "auditor", "setup")
    now = datetime.now(UTC)
    store.accept([
        Detection("sigma-ssh-brute", "SSH brute force", "high", now - timedelta(minutes=5),
                  ("ev-1", "ev-2"), key="web01", host="web01", site="bien_hoa", system="lgsp",
                  tags=("attack.t1110",)),
        Detection("sigma-port-scan", "Port scan from district", "low", now, ("ev-3",),
                  key="10.20.0.5", host="fw-lk", site="long_khanh", system="portal"),
    ])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(StoreBackend(store), "e2e-secret"),
                                           host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "console did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", store
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        store.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian chromium (never a downloaded browser)."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail("Debian chromium not installed at /usr/bin/chromium (scripts/apt-packages.txt)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page."""
    ctx = browser.new_context()
    ctx.set_default_timeout(15000)
    pg = ctx.new_page()
    try:
        yield pg
    finally:
        ctx.close()
