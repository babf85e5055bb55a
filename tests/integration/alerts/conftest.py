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
