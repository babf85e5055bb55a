"""auditd records from a lab host (issue 6): the baseline's audit rules, loaded by the lab's
audit sidecar, record account, sudoers and sshd changes made over SSH; `dcops collect logs`
tails the host's audit.log with detection on.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from dcops.lab import Lab
from dcops.lab import auditd_sidecar as sidecar
from dcops.pipeline.codec import decode

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
ROLE = REPO / "playbooks/roles/baseline"
DCOPS = str(Path(sys.executable).with_name("dcops"))
RULE_TITLE = "Identity File Or SSH Server Configuration Changed"
# Beside the baseline: commands of logged-in users, for Sigma's process_creation category.
EXEC_RULE = "-a always,exit -F arch=b64 -S execve -F auid>=1000 -F auid!=unset -k exec"

LabFactory = Callable[..., Lab]


def baseline_rules() -> str:
    """The baseline role's rules.d template rendered with the role's defaults."""
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    template = (ROLE / "templates/etc/audit/rules.d/50-dcops.rules.j2").read_text()
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    return env.from_string(template).render(**defaults, ansible_managed="test")


def spooled(spool: Path) -> list[Any]:
    con = sqlite3.connect(spool)
    try:
        return [decode(body) for (body,) in con.execute("SELECT body FROM events ORDER BY seq")]
    finally:
        con.close()


@pytest.fixture
def lab(audit_sidecar_turn: None, lab_factory: LabFactory) -> Lab:
    if sidecar.current() is not None:
        pytest.skip("an audit sidecar already runs on this machine (one per machine)")
    lab = lab_factory(hosts=1, mode="chroot")
    lab.run("lab-app1", "sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive "
            "apt-get install -y -qq auditd >/dev/null && sudo sed -i "
            "'s/^name_format.*/name_format = HOSTNAME/' /etc/audit/auditd.conf", timeout=600)
    return lab


def test_auditd_records_from_a_lab_host(lab: Lab, tmp_path: Path) -> None:
    rules = tmp_path / "audit.rules"
    rules.write_text(baseline_rules() + EXEC_RULE + "\n")
    record = lab.audit_up("lab-app1", rules)
    assert {"-k identity", "-k sudoers", "-k sshd_config", "-k privileged"} <= {
        r[r.index("-k "):] for r in record.rules}
    token = secrets.token_hex(4)
    user = f"aud{token}"
    lab.run("lab-app1", f"sudo useradd -m -s /bin/bash {user}")
    lab.run("lab-app1", f"sudo usermod -c 'Audit test {token}' {user}")
    lab.run("lab-app1", f"echo '{user} ALL=(ALL) /usr/bin/true' | sudo tee "
            f"/etc/sudoers.d/90-{user} >/dev/null && sudo chmod 0440 /etc/sudoers.d/90-{user}")
    lab.run("lab-app1", f"echo '# audit test {token}' | sudo tee -a /etc/ssh/sshd_config "
            ">/dev/null")
    lab.run("lab-app1", f"/usr/bin/printf '%s\\n' marker-{token}")
    lab.audit_down()  # auditd flushes its log on exit; the rules leave the kernel
    log = record.log_path
    assert f"marker-{token}" in log.read_text(errors="replace")

    db, spool = tmp_path / "alerts.db", tmp_path / "spool.db"
    r = subprocess.run(
        [DCOPS, "collect", "logs", str(log), "--host", "lab-app1", "--once", "--detect",
         "--rules", "soc_rules", "--db", f"sqlite:///{db}", "--spool", str(spool)],
        capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
        env=dict(os.environ, COLUMNS="200"))
    assert r.returncode == 0, r.stderr
    events = spooled(spool)

    # SYSCALL, EXECVE and PATH records of the marker command joined into one event by event id
    audit = [e for e in events if e.logsource.service == "auditd"]
    # (the login shell's `bash -c "..."` carries the marker too; other labs' sessions show up
    # as well: execve rules see the whole machine, docs/lab.md)
    marker = [e for e in audit if f"marker-{token}" in str(e.fields.get("process.args"))
              and e.fields.get("exe") == "/usr/bin/printf"]
    assert len(marker) == 1, [e.fields.get("process.command_line") for e in audit][-20:]
    joined = marker[0]
    assert {"SYSCALL", "EXECVE", "PATH"} <= set(joined.fields["type"])
    lines = joined.raw.split("\n")  # not splitlines(): ENRICHED records hold \x1d
    serials = {line.split("msg=audit(", 1)[1].split(")", 1)[0] for line in lines}
    assert len(serials) == 1 and len(lines) >= 3
    assert joined.fields["key"] == "exec" and joined.fields["auid"] == "1000"
    assert joined.fields["host.name"] == "lab-app1"
    assert all(line.startswith("node=lab-app1 ") for line in lines), joined.raw

    # the same execve as Sigma's process_creation category
    creations = [e for e in events if e.logsource.category == "process_creation"
                 and f"marker-{token}" in str(e.fields.get("CommandLine"))]
    assert {e.fields["Image"] for e in creations} == {"/usr/bin/bash", "/usr/bin/printf"}
    printf = next(e for e in creations if e.fields["Image"] == "/usr/bin/printf")
    assert printf.fields["CommandLine"] == f"/usr/bin/printf %s\\n marker-{token}"
    assert printf.fields["User"] == "ansible" and printf.fields["user.audit.id"] == "1000"

    # the baseline's watches: identity (useradd/usermod), sudoers, sshd config, privileged
    keyed = {e.fields.get("key"): e for e in audit if e.fields.get("key")}
    assert {"identity", "sudoers", "sshd_config", "privileged"} <= set(keyed), sorted(keyed)
    names: set[str] = set()
    for e in audit:
        value = e.fields.get("name", [])
        names.update(value if isinstance(value, list) else [value])
    assert f"/etc/sudoers.d/90-{user}" in names
    assert "/etc/ssh/sshd_config" in names and "/etc/passwd" in names

    # the project's auditd Sigma rule raised its alert, on the audit events of each change
    con = sqlite3.connect(db)
    try:
        alerts = con.execute("SELECT id, host FROM alerts WHERE rule_title = ?",
                             (RULE_TITLE,)).fetchall()
        assert alerts and all(host == "lab-app1" for _, host in alerts), alerts
        marks = ",".join("?" for _ in alerts)
        alerted = {eid for (eid,) in con.execute(
            f"SELECT event_id FROM alert_events WHERE alert_id IN ({marks})",
            [a for a, _ in alerts])}
    finally:
        con.close()
    by_id = {e.id: e for e in audit}
    alerted_keys = {by_id[i].fields.get("key") for i in alerted if i in by_id}
    assert {"identity", "sudoers", "sshd_config"} <= alerted_keys, alerted_keys
