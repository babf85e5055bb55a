"""A real PostgreSQL 15 for the store suite, started by the tests (initdb + pg_ctl, free port)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


def _pg_bin() -> Path:
    for version in ("17", "16", "15"):
        p = Path(f"/usr/lib/postgresql/{version}/bin")
        if (p / "initdb").exists():
            return p
    pytest.fail("PostgreSQL server binaries not found: install the Debian package postgresql")


def free_port() -> int:
    """An ephemeral TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Start PostgreSQL in a temporary directory; yield the server URL prefix (no database)."""
    bindir = _pg_bin()
    base = Path(tempfile.mkdtemp(prefix="dcops-pg-"))
    data = base / "data"
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run([*as_postgres, str(bindir / "initdb"), "-D", str(data), "-A", "trust",
                    "-U", "dcops", "-E", "UTF8", "--no-sync"],
                   check=True, capture_output=True)
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts,
                    "-l", str(base / "log"), "-w", "-t", "60", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://dcops@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "-w", "stop"], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def db_url(postgres_server: str) -> str:
    """A fresh database for each test."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    dsn = postgres_server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{postgres_server}/{name}"


class ConsoleServer:
    """The `dcops serve` application (same create_app) under uvicorn in a thread."""

    def __init__(self, app: object, port: int) -> None:
        import threading

        import uvicorn

        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,  # type: ignore[arg-type]
                                                    log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ConsoleServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("console server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


AM_CONFIG = """
route:
  receiver: dcops
  group_by: [alertname, instance]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: dcops
    webhook_configs:
      - url: {url}/api/v1/alertmanager/webhook
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {token}
"""


@pytest.fixture
def alertmanager_factory(tmp_path: Path) -> Iterator[object]:
    """Start Debian's prometheus-alertmanager posting to a given console URL; stop it after."""
    import time

    import httpx

    procs: list[subprocess.Popen[bytes]] = []
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.fail("alertmanager not found: install the Debian package prometheus-alertmanager")

    def start(console_url: str, token: str) -> str:
        port = free_port()
        cfg = tmp_path / "alertmanager.yml"
        cfg.write_text(AM_CONFIG.format(url=console_url, token=token))
        log = (tmp_path / "alertmanager.log").open("wb")
        proc = subprocess.Popen([binary, f"--config.file={cfg}",
                                 f"--storage.path={tmp_path / 'am-data'}",
                                 f"--web.listen-address=127.0.0.1:{port}",
                                 "--cluster.listen-address=", "--log.level=debug"],
                                stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        log_text = (tmp_path / "alertmanager.log").read_text()
        raise RuntimeError(f"alertmanager did not start: {log_text}")

    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@pytest.fixture
def console_factory() -> Iterator[object]:
    """Serve a console app on a free port: `start(app) -> url`; stopped after the test."""
    servers: list[ConsoleServer] = []

    def start(app: object, port: int | None = None) -> str:
        srv = ConsoleServer(app, port or free_port())
        srv.__enter__()
        servers.append(srv)
        return srv.url

    yield start
    for s in servers:
        s.__exit__()


@pytest.fixture
def port() -> int:
    """A free TCP port on 127.0.0.1."""
    return free_port()
