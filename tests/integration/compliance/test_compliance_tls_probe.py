"""The TLS section of the host probes against a real openssl s_server, in a private network
namespace (no port is taken on the machine): protocols, leaf expiry and chain validity against
the trust store the probe sees (SSL_CERT_FILE stands for the host's /etc/ssl/certs)."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dcops.compliance.collect.hostscript import SECTIONS
from dcops.compliance.collect.pkiparse import tls

pytestmark = pytest.mark.integration


def _probe(tmp_path: Path, trust: Path | None) -> dict[str, object]:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare for a private network namespace")
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-subj", "/CN=portal.lab", "-days", "10"], check=True, capture_output=True)
    (tmp_path / "probe.sh").write_text(SECTIONS["tls"], encoding="utf-8")
    env = f"SSL_CERT_FILE={trust} " if trust else ""
    inner = (f"ip link set lo up; openssl s_server -quiet -accept 9443 -cert {cert} -key {key} "
             f">/dev/null 2>&1 & sleep 1; {env}sh {tmp_path / 'probe.sh'}; kill $!")
    out = subprocess.run(["unshare", "--net", "sh", "-c", inner], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    facts: dict[str, object] = {}
    tls(out, lambda name, value, excerpt: facts.update({name: value, f"{name}~": excerpt}),
        datetime.now(UTC))
    return facts


def test_self_signed_endpoint_is_untrusted(tmp_path: Path) -> None:
    facts = _probe(tmp_path, None)
    assert facts["tls.endpoints"] == 1 and facts["tls.legacy_protocols"] == []
    assert facts["tls.min_days_left"] == 9
    assert facts["tls.untrusted_chains"] == ["9443: self-signed certificate"]


def test_endpoint_trusted_by_the_store_passes(tmp_path: Path) -> None:
    facts = _probe(tmp_path, tmp_path / "c.pem")
    assert facts["tls.untrusted_chains"] == []
    assert "9443: 0 (ok)" in str(facts["tls.untrusted_chains~"])
