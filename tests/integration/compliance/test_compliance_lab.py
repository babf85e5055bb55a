"""Assess real lab hosts: expected failures before the baseline, passes after, and mutations that
turn exactly the matching controls to not met, with the evidence that shows why.

The lab runs in systemd mode (the baseline manages services). Lab hosts are containers, so the
baseline deliberately leaves the kernel audit and the clock alone (inventories/lab roles.yml):
SRV-10 (auditd running) and SRV-11 (clock synchronised) stay not met in the lab, and that is
asserted too, like the control no role covers yet (SRV-14 malware protection).
"""

from __future__ import annotations

import datetime as dt
import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from compliance_lab import (
    INVENTORY,
    apply_baseline,
    assess,
    changed,
    ensure_baseline,
    run_on,
    run_playbooks,
    verdicts,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dcops.compliance.collect.backup import Repository
from dcops.lab import Lab

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOSTS = ("lab-app1", "lab-db1")
# Controls the baseline playbook fixes (not met before, met after), control by control.
BASELINE_FIXES = ("DAT-06", "NET-04", "SRV-01", "SRV-02", "SRV-03", "SRV-04", "SRV-05", "SRV-06",
                  "SRV-08", "SRV-09", "SRV-12", "SRV-13", "SRV-15", "SRV-17", "SRV-18")
# Not the baseline's concern (other roles or documents), or impossible in a container lab.
OUTSIDE_BASELINE = {"SRV-10": "auditd is not started in lab containers (kernel audit is shared): "
                              "auditctl -l answers 'audit support not in kernel', no rule loaded",
                    "SRV-11": "chronyd runs but the lab has no reachable NTP source (not synced)",
                    "SRV-14": "no malware-protection role yet"}


@pytest.fixture(scope="module")
def lab(module_lab_factory: Callable[..., Lab]) -> Lab:
    """Three hosts in systemd mode under a compliance lab name (cmpXXXXXX)."""
    return module_lab_factory(name=f"cmp{secrets.token_hex(3)}", hosts=3, mode="systemd")


def test_baseline_turns_expected_failures_into_passes(lab: Lab) -> None:
    before = assess(lab)
    print(f"\nevidence of 2 assessed + 1 other lab host collected in {before.seconds:.1f} s")
    assert before.seconds < 30
    failing = {c: before.findings[c].verdict.value for c in BASELINE_FIXES}
    assert set(failing.values()) == {"not_met"}, failing
    apply_baseline(lab)
    after = assess(lab)
    for control in BASELINE_FIXES:
        finding = after.findings[control]
        assert finding.verdict.value == "met", f"{control}: {finding.reason}"
    for control, why in OUTSIDE_BASELINE.items():
        assert after.findings[control].verdict.value == "not_met", why
    srv10 = next(o for c in after.findings["SRV-10"].checks for o in c.observations
                 if c.fact == "auditd.identity_watched")
    assert "audit support not in kernel" in srv10.excerpt  # rules.d has them: not judged
    assert "rules.d configures 3/3 identity watches" in srv10.excerpt
    srv06 = after.findings["SRV-06"].checks[0].observations[0]
    assert srv06.observed == "no" and "permitrootlogin no" in srv06.excerpt
    assert srv06.source.startswith("ssh @ ansible@10.77.0.") and srv06.time


# The host controls the baseline and the roles of site.yml that run on every server cover: the
# SRV group, the host firewall (NET-04) and file integrity (DAT-06). OUTSIDE_BASELINE says why
# the others are not met.
HOST_CONTROLS = ("DAT-06", "NET-04", *(f"SRV-{n:02d}" for n in range(1, 20)))


def test_converged_host_meets_every_automatic_host_control(lab: Lab) -> None:
    """baseline.yml, snmp.yml and node_exporter.yml (the roles site.yml gives every server):
    met on every host control except the stated ones; SRV-16 allows exactly the ports the roles
    declare and names where each came from; an undeclared listener flips only SRV-16."""
    ensure_baseline(lab)
    run_playbooks(lab, "snmp.yml", "node_exporter.yml")
    after = assess(lab)
    level_na = {c for c in HOST_CONTROLS if after.findings[c].verdict.value == "not_applicable"}
    assert level_na == {"SRV-19"}  # levels 4 and 5 only; lgsp is level 3
    for control in sorted(set(HOST_CONTROLS) - level_na):
        finding = after.findings[control]
        want = "not_met" if control in OUTSIDE_BASELINE else "met"
        assert finding.verdict.value == want, f"{control}: {finding.reason}"
    for obs in after.findings["SRV-16"].checks[0].observations:
        assert obs.observed == ["tcp/22", "tcp/9100", "udp/161", "udp/ephemeral:snmpd"], obs
        assert "tcp/9100 (role node_exporter (playbooks/node_exporter.yml" in obs.detail
        assert "udp/ephemeral:snmpd (role snmp_agent" in obs.detail
    srv04 = [o for c in after.findings["SRV-04"].checks
             if c.fact == "accounts.useradd_inactive_days" for o in c.observations]
    assert {o.observed for o in srv04} == {45}
    run_on(lab, "lab-app1", "systemd-run --unit dcops-rogue python3 -m http.server 4444 && "
                            "for i in $(seq 50); do ss -Htln 'sport = :4444' | grep -q . && "
                            "break; sleep 0.1; done")
    try:
        rogue = assess(lab)
    finally:
        run_on(lab, "lab-app1", "systemctl stop dcops-rogue")
    assert changed(after, rogue) == {"SRV-16": ("met", "partly_met")}
    obs = next(o for o in rogue.findings["SRV-16"].checks[0].observations
               if o.subject == "lab-app1")
    assert obs.detail.startswith("not in baseline: tcp/4444"), obs.detail


def _session_spans(evidence: dict[str, Any]) -> dict[str, tuple[dt.datetime, dt.datetime]]:
    import re

    spans = {}
    for rec in evidence["records"]:
        if rec["collector"] == "ssh" and rec["id"].endswith(":session"):
            m = re.match(r"started (\S+) finished (\S+)", rec["output"])
            assert m, rec
            spans[rec["target"]] = (dt.datetime.fromisoformat(m.group(1)),
                                    dt.datetime.fromisoformat(m.group(2)))
    return spans


def test_cli_run_writes_the_three_reports(lab: Lab, tmp_path: Path) -> None:
    import json
    import time

    from typer.testing import CliRunner

    from dcops.cli import app

    ensure_baseline(lab)
    started, cpu_started = time.monotonic(), time.process_time()
    result = CliRunner().invoke(app, ["audit", "run", "-i", str(INVENTORY), "--ssh-config",
                                      str(lab.ssh_config_path), "--out", str(tmp_path)])
    wall, cpu = time.monotonic() - started, time.process_time() - cpu_started
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "findings.json").read_text(encoding="utf-8"))
    lgsp = next(s for s in doc["systems"] if s["system"] == "lgsp")
    verdict = {f["control"]: f["verdict"] for f in lgsp["findings"]}
    assert verdict["SRV-06"] == "met" and verdict["SRV-10"] == "not_met"
    assert (tmp_path / "report.pdf").stat().st_size > 10_000
    assert any("ssh: " in n for n in lgsp["notes"])
    # The whole run (inventory, IaC plan, SSH evidence of 3 hosts, assessment, HTML and PDF)
    # well under a minute, and the hosts' SSH sessions ran at the same time.
    spans = _session_spans(json.loads((tmp_path / "evidence.json").read_text("utf-8")))
    assert set(spans) == {h.name for h in lab.hosts}
    latest_start = max(b for b, _ in spans.values())
    earliest_end = min(e for _, e in spans.values())
    serial = sum((e - b).total_seconds() for b, e in spans.values())
    ssh_wall = (max(e for _, e in spans.values()) - min(b for b, _ in spans.values()))
    print(f"\ndcops audit run on {len(spans)} lab hosts: {wall:.1f} s ({cpu:.1f} s CPU); "
          f"SSH sessions "
          f"{', '.join(f'{(e - b).total_seconds():.2f}' for b, e in spans.values())} s, "
          f"together {ssh_wall.total_seconds():.2f} s (serial would be {serial:.2f} s)")
    # Wall and CPU time are printed, not asserted: both depend on what else the machine runs
    # (19 s CPU in a CI run beside other tests, ~10 s idle). Speed is for scripts/bench/.
    assert latest_start < earliest_end, f"SSH sessions did not overlap: {spans}"
    assert ssh_wall.total_seconds() < 0.75 * serial


def test_password_ssh_turns_only_srv07_to_not_met(lab: Lab) -> None:
    ensure_baseline(lab)
    base = assess(lab)
    try:
        for host in HOSTS:
            run_on(lab, host, "sed -i 's/^PasswordAuthentication no/PasswordAuthentication yes/I'"
                              " /etc/ssh/sshd_config && sshd -t")
        after = assess(lab)
    finally:
        for host in HOSTS:
            run_on(lab, host, "sed -i 's/^PasswordAuthentication yes/PasswordAuthentication no/I'"
                              " /etc/ssh/sshd_config")
    assert changed(base, after) == {"SRV-07": ("met", "not_met")}
    obs = after.findings["SRV-07"].checks[0].observations
    assert {o.observed for o in obs} == {"yes"}
    assert all("passwordauthentication yes" in o.excerpt for o in obs)


def test_nullok_and_default_source_route_each_flip_only_their_control(lab: Lab) -> None:
    ensure_baseline(lab)
    base = assess(lab)
    assert {c: base.findings[c].verdict.value for c in ("SRV-03", "SRV-17")} == {
        "SRV-03": "met", "SRV-17": "met"}
    nullok = "sed -i 's/pam_unix.so try_first_pass/pam_unix.so nullok try_first_pass/' " \
             "/etc/pam.d/common-auth && grep -q nullok /etc/pam.d/common-auth"
    try:
        for host in HOSTS:
            run_on(lab, host, nullok)
        after = assess(lab)
    finally:
        for host in HOSTS:
            run_on(lab, host, "sed -i 's/pam_unix.so nullok /pam_unix.so /' "
                              "/etc/pam.d/common-auth")
    assert changed(base, after) == {"SRV-03": ("met", "not_met")}
    obs = [o for c in after.findings["SRV-03"].checks if c.fact == "pam.nullok"
           for o in c.observations]
    assert all(o.observed and o.observed[0].startswith("common-auth:") for o in obs), obs
    try:
        for host in HOSTS:
            run_on(lab, host, "sysctl -q -w net.ipv4.conf.default.accept_source_route=1")
        after = assess(lab)
    finally:
        for host in HOSTS:
            run_on(lab, host, "sysctl -q -w net.ipv4.conf.default.accept_source_route=0")
    assert changed(base, after) == {"SRV-17": ("met", "not_met")}
    obs = [o for c in after.findings["SRV-17"].checks
           if c.fact == "sysctl.net.ipv4.conf.*.accept_source_route" for o in c.observations]
    assert {tuple(o.observed) for o in obs} == {("default=1",)}
    assert all("all=0 default=1" in o.excerpt for o in obs)


def _cert(subject: str, issuer_key: ec.EllipticCurvePrivateKey, key: ec.EllipticCurvePrivateKey,
          issuer: str, days: tuple[int, int], ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now + dt.timedelta(days=days[0]))
            .not_valid_after(now + dt.timedelta(days=days[1]))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA256()))


def _install(lab: Lab, host: str, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        subprocess.run(["ssh", "-F", str(lab.ssh_config_path), host,
                        f"sudo -n sh -c 'mkdir -p /etc/ssl/dcops && cat > {path}'"],
                       input=data, check=True, timeout=60)


def test_expired_certificate_turns_only_app03_to_not_met(lab: Lab) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("dcops lab CA", ca_key, ca_key, "dcops lab CA", (-10, 3650), True)
    pem = serialization.Encoding.PEM
    for host in HOSTS:
        key = ec.generate_private_key(ec.SECP256R1())
        good = _cert(host, ca_key, key, "dcops lab CA", (-1, 397), False)
        _install(lab, host, {"/etc/ssl/dcops/host.crt": good.public_bytes(pem),
                             "/etc/ssl/dcops/chain.pem": ca.public_bytes(pem)})
    base = assess(lab)
    assert base.findings["APP-03"].verdict.value == "met", base.findings["APP-03"].reason
    try:
        for host in HOSTS:
            key = ec.generate_private_key(ec.SECP256R1())
            old = _cert(host, ca_key, key, "dcops lab CA", (-400, -3), False)
            _install(lab, host, {"/etc/ssl/dcops/host.crt": old.public_bytes(pem)})
        after = assess(lab)
    finally:
        for host in HOSTS:
            run_on(lab, host, "rm -f /etc/ssl/dcops/host.crt /etc/ssl/dcops/chain.pem")
    assert changed(base, after) == {"APP-03": ("met", "not_met")}
    days = after.findings["APP-03"].checks[0].observations
    assert all(o.observed < 0 and "notAfter=" in o.excerpt for o in days)


def _restic(repo: Path, password: Path, *args: str) -> str:
    return subprocess.run(["restic", "-r", str(repo), "--password-file", str(password),
                           "--no-cache", *args], check=True, capture_output=True, text=True,
                          timeout=120).stdout


def test_stale_backup_turns_only_dat01_to_not_met(lab: Lab, tmp_path: Path) -> None:
    password = tmp_path / "pass"
    password.write_text("lab-only-restic-password\n", encoding="utf-8")
    data = tmp_path / "data"
    data.mkdir()
    (data / "f.txt").write_text("payload\n", encoding="utf-8")
    repos, fresh = [], {}
    three_days_ago = (dt.datetime.now() - dt.timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S")
    for host in HOSTS:
        repo = tmp_path / f"repo-{host}"
        _restic(repo, password, "init")
        _restic(repo, password, "backup", "--time", three_days_ago, "--host", host, str(data))
        out = _restic(repo, password, "backup", "--json", "--host", host, str(data))
        fresh[host] = next(line for line in out.splitlines() if '"snapshot_id"' in line)
        repos.append(Repository(host, str(repo), str(password)))
    base = assess(lab, repos, None)
    assert base.findings["DAT-01"].verdict.value == "met", base.findings["DAT-01"].reason
    assert base.findings["DAT-02"].verdict.value == "met"
    import json

    for host in HOSTS:
        snap = json.loads(fresh[host])["snapshot_id"]
        _restic(tmp_path / f"repo-{host}", password, "forget", snap)
    after = assess(lab, repos, None)
    assert changed(base, after) == {"DAT-01": ("met", "not_met")}
    for obs in after.findings["DAT-01"].checks[0].observations:
        assert obs.observed > 70 and "snapshot" in obs.excerpt
    assert verdicts(after)["DAT-05"] == "met"


# --- OpenSCAP cross-check (the product's `dcops audit crosscheck`) ------------------------------
SSG_CACHE = Path.home() / ".cache" / "dcops" / "ssg"  # trixie's ssg-debian, fetched once
SSHD_RULES = ("sshd_disable_root_login", "sshd_set_idle_timeout", "sshd_set_max_auth_tries")


def _crosscheck(lab: Lab, out: Path) -> dict[str, Any]:
    import json

    from typer.testing import CliRunner

    from dcops.cli import app

    result = CliRunner().invoke(app, [
        "audit", "crosscheck", "-i", str(INVENTORY), "--lab", lab.name, "--hosts", "lab-app1",
        "--scanner", "openscap", "--no-iac", "--ssg-cache", str(SSG_CACHE), "--out", str(out)])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    print(result.output)
    doc: dict[str, Any] = json.loads((out / "crosscheck.json").read_text(encoding="utf-8"))
    return doc


def test_openscap_cross_check(lab: Lab, tmp_path: Path) -> None:
    """OpenSCAP (SSG Debian 12, ANSSI BP-028 high) and dcops on a baselined host agree, or
    disagree for a stated reason (stricter thresholds); then the report carries the table."""
    from typer.testing import CliRunner

    from dcops.cli import app
    from dcops.compliance.manifest import check, load

    ensure_baseline(lab)  # the same state whether this test runs alone or after the others
    doc = _crosscheck(lab, tmp_path)
    counts = doc["summary"]["openscap"]
    rows = {r["rule"]: r for r in doc["rows"]}
    compared = counts["agree"] + counts["disagree"] + counts["scanner_blind_spot"]
    assert counts["unexplained"] == 0, [r for r in doc["rows"] if r["verdict"] == "disagree"
                                        and not r["explained"]]
    assert compared >= 12, doc["rows"]
    # at most the three stated threshold differences; the only blind spot on a baselined host is
    # the AIDE package when the scanning machine has none (mapping.yml, probe_root_misses)
    spots = {r["rule"] for r in doc["rows"] if r["verdict"] == "scanner_blind_spot"}
    assert spots <= {"package_aide_installed"}, spots
    assert counts["agree"] + len(spots) >= compared - 3
    assert all(rows[r]["verdict"] == "agree" for r in SSHD_RULES), [rows[r] for r in SSHD_RULES]
    content = doc["scanners"]["openscap"]["content"]
    assert content["version"].startswith("0.1.") and len(content["deb_sha256"]) == 64
    assert content["deb_sha256"] == content["index_sha256"]
    assert doc["scans"][0]["mode"] == "probe-root"
    # the report of the same evidence carries the table; the manifest hashes crosscheck.json
    result = CliRunner().invoke(app, ["audit", "run", "-i", str(INVENTORY), "--from-evidence",
                                      str(tmp_path / "evidence.json"), "--out", str(tmp_path),
                                      "--no-pdf", "--no-iac", "--system", "lgsp"])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Cross-check with other scanners" in html and "sshd_set_max_auth_tries" in html
    manifest = load((tmp_path / "manifest.json").read_text("utf-8"), "manifest.json")
    assert "crosscheck" in manifest and check(manifest, tmp_path) == []


def test_openscap_probe_root_blind_spot_is_flagged(lab: Lab, tmp_path: Path) -> None:
    """Settings sshd takes first (lines at the top of sshd_config) undo the baseline's: sshd -T
    reports them; oscap in probe-root mode still passes all three rules (measured 2026-12-03,
    SSG 0.1.76): each row is the scanner's blind spot, not agreement."""
    ensure_baseline(lab)
    run_on(lab, "lab-app1", "cp /etc/ssh/sshd_config /root/sshd_config.saved && "
                            "sed -i '1i PermitRootLogin yes\\nMaxAuthTries 10\\n"
                            "ClientAliveInterval 0' /etc/ssh/sshd_config && sshd -t")
    try:
        doc = _crosscheck(lab, tmp_path)
    finally:
        run_on(lab, "lab-app1", "cp /root/sshd_config.saved /etc/ssh/sshd_config && sshd -t")
    rows = {r["rule"]: r for r in doc["rows"]}
    for rule in SSHD_RULES:
        row = rows[rule]
        print(f"  {rule}: dcops {row['dcops_result']} ({row['dcops_observed']!r}), oscap "
              f"{row['scanner_result']}: {row['verdict']}: {row['reason']}")
        assert (row["dcops_result"], row["scanner_result"]) == ("fail", "pass"), row
        assert row["verdict"] == "scanner_blind_spot", row
        assert row["reason"].startswith("scanner blind spot: probe-root mode reads config files")
    counts = doc["summary"]["openscap"]
    spots = {r["rule"] for r in doc["rows"] if r["verdict"] == "scanner_blind_spot"}
    assert spots - {"package_aide_installed"} == set(SSHD_RULES), spots  # aide: see mapping.yml
    assert counts["unexplained"] == 0, counts
