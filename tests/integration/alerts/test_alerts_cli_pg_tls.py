"""The installed `dcops` on a real PostgreSQL (verify-audit after tampering) and serving TLS."""

from __future__ import annotations

import datetime as dt
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import text

from dcops.alerts import AlertStore, Users
from dcops.alerts.credentials import Tokens
from dcops.alerts.trail import TrailConfig
from dcops.model.event import Detection

pytestmark = pytest.mark.integration
DCOPS = str(Path(sys.executable).parent / "dcops")


def dcops(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DCOPS, *args], check=False, capture_output=True, text=True, env=env,
                          timeout=60)


def test_verify_audit_on_postgres_names_altered_record(db_url: str, tmp_path: Path) -> None:
    token = tmp_path / "aud.token"  # a shared store: the CLI acts as a console user (auditor)
    env = {**os.environ, "DCOPS_STATE_DIR": str(tmp_path), "DCOPS_DB_URL": db_url,
           "DCOPS_TOKEN_FILE": str(token)}
    trail = TrailConfig(key_file=tmp_path / "trail.key")  # the CLI's default key file
    store = AlertStore(db_url, trail=trail)
    Users(store.engine).add("aud", "aud-password", "auditor", "setup")
    token.write_text(Tokens(store.engine).issue("aud", "setup"))
    token.chmod(0o600)
    store.accept([Detection("r1", "SSH brute force", "high", dt.datetime.now(dt.UTC), ("e1",),
                            key="web01", host="web01")])
    store.acknowledge(1, "ana")
    store.add_note(1, "ana", "blocked")
    store.resolve(1, "ana")
    store.close()
    ok = dcops("alerts", "verify-audit", env=env)
    assert ok.returncode == 0, ok.stderr
    assert "6 records verified" in ok.stdout  # user.add, token.issue, then the alert's four
    store = AlertStore(db_url, trail=trail)
    with store.engine.begin() as conn:  # a superuser past the append-only trigger
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 5"))
    store.close()
    bad = dcops("alerts", "verify-audit", env=env)
    assert bad.returncode == 1
    assert "first bad record #5" in bad.stderr


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dcops-console-test")])
    now = dt.datetime.now(dt.UTC)
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "console.crt", tmp_path / "console.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_serve_over_tls_with_secure_cookie(tmp_path: Path, port: int) -> None:
    cert, key = _self_signed(tmp_path)
    trust = ssl.create_default_context(cafile=str(cert))
    env = {**os.environ, "DCOPS_STATE_DIR": str(tmp_path)}
    env.pop("DCOPS_DB_URL", None)
    proc = subprocess.Popen([DCOPS, "serve", "--port", str(port), "--tls-cert", str(cert),
                             "--tls-key", str(key)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        url = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"{url}/healthz", verify=trust, timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None, "serve did not start"
                time.sleep(0.2)
        assert r.status_code == 200
        login = httpx.get(f"{url}/login", verify=trust, timeout=5)
        cookie = login.headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/healthz", timeout=2)  # not trusted without the PKI certificate
    finally:
        proc.terminate()
        proc.wait(timeout=15)
