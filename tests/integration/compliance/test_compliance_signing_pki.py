"""A report signed with a certificate the project's own PKI roles issue, verified against its root.

pki_ca's issuing task files (root, intermediate, CRL, publish) and pki_cert's certificate.yml run
with ansible-playbook against this machine (connection local), every path in a temporary
directory, as tests/integration/soc_ingest/test_syslog_project_pki.py does; the signer is the
host certificate pki_cert issues (digitalSignature, serverAuth/clientAuth), the only kind of
certificate the roles make today.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dcops.cli import app
from dcops.cli.failures import run
from dcops.compliance import Evidence

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder holding ca/, controller/ (root-ca.crt, issuing-ca.crt) and signer/."""
    if os.geteuid() != 0:
        pytest.skip("the PKI roles install files owned by root")
    d = tmp_path_factory.mktemp("project-pki")
    (d / "inventory.yml").write_text(textwrap.dedent(f"""
        all:
          hosts:
            localhost:
              ansible_connection: local
              pki_cert_cert_dir: {d}/signer
              pki_cert_key_path: {d}/signer/host.key
              pki_cert_common_name: auditor.sokhcn.example
          vars:
            ansible_python_interpreter: {sys.executable}
            pki_ca_dir: {d}/ca
            pki_ca_publish_dir: {d}/public
            pki_ca_controller_dir: {d}/controller
            pki_cert_controller_dir: {d}/controller
            pki_cert_ca_host: localhost
            pki_cert_ca_dir: {d}/ca
        """))
    (d / "pki.yml").write_text(textwrap.dedent("""
        - name: The province's CA and one certificate (issuing task files of pki_ca, pki_cert)
          hosts: localhost
          gather_facts: false
          tasks:
            - {name: Root CA, ansible.builtin.import_role: {name: pki_ca, tasks_from: root.yml}}
            - name: Issuing CA
              ansible.builtin.import_role: {name: pki_ca, tasks_from: intermediate.yml}
            - {name: CRL, ansible.builtin.import_role: {name: pki_ca, tasks_from: crl.yml}}
            - name: Publish
              ansible.builtin.import_role: {name: pki_ca, tasks_from: publish.yml}
            - name: Key and certificate
              ansible.builtin.import_role: {name: pki_cert, tasks_from: certificate.yml}
        """))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_ROLES_PATH=str(REPO / "playbooks" / "roles"),
               ANSIBLE_COLLECTIONS_PATH=str(REPO / "collections"))
    r = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(d / "inventory.yml"),
                        str(d / "pki.yml")], capture_output=True, text=True, env=env, cwd=REPO,
                       timeout=900, check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    return d


def test_report_signed_by_the_project_pki_verifies_against_its_root(
        pki: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ev = Evidence()
    ev.record("ssh", "lab-app1", "root@10.77.0.11:22", "sshd -T", "permitrootlogin no\n", rc=0,
              name="sshd", host_key="ssh-ed25519 SHA256:abc")
    recorded = tmp_path / "recorded.json"
    recorded.write_text(json.dumps(ev.to_dict()), encoding="utf-8")
    out = tmp_path / "out"
    assert run(app, ["audit", "run", "-i", str(REPO / "inventories" / "lab"), "--from-evidence",
                     str(recorded), "--out", str(out), "--sign-key",
                     str(pki / "signer" / "host.key"), "--sign-cert",
                     str(pki / "signer" / "host.crt"), "--sign-chain",
                     str(pki / "controller" / "issuing-ca.crt")]) == 0
    capsys.readouterr()
    pdf = str(out / "report.pdf")
    assert run(app, ["audit", "verify", pdf, "--ca",
                     str(pki / "controller" / "root-ca.crt")]) == 0
    assert "đạt / verified" in capsys.readouterr().out
    # a root of another PKI is no anchor for it
    other = tmp_path / "other-root.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(tmp_path / "o.key"),
                    "-out", str(other), "-subj", "/CN=Other Root", "-days", "10"],
                   check=True, capture_output=True)
    assert run(app, ["audit", "verify", pdf, "--ca", str(other)]) == 1
    assert "FAIL Chuỗi chứng thư" in capsys.readouterr().out
