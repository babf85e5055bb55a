"""Assess real lab hosts: expected failures before the baseline, passes after, and mutations that
turn exactly the matching controls to not met, with the evidence that shows why.

The lab runs in systemd mode (the baseline manages services). Lab hosts are containers, so the
baseline deliberately leaves the kernel audit and the clock alone (inventories/lab roles.yml):
SRV-10 (auditd running) stays not met in the lab, and that is asserted too.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from compliance_lab import INVENTORY, ROOT, assess, changed, run_on, verdicts
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dcops.compliance.collect.backup import Repository
from dcops.lab import Lab

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOSTS = ("lab-app1", "lab-db1")
# Controls the baseline playbook fixes (not met before, met after), control by control.
BASELINE_FIXES = ("NET-04", "SRV-01", "SRV-02", "SRV-06", "SRV-08", "SRV-09", "SRV-12", "SRV-13",
                  "SRV-15", "SRV-17", "SRV-18")
# Not the baseline's concern (other roles or documents), or impossible in a container lab.
OUTSIDE_BASELINE = {"SRV-10": "auditd is not started in lab containers (kernel audit is shared)",
                    "SRV-11": "chronyd runs but the lab has no reachable NTP source (not synced)",
                    "SRV-04": "the baseline sets no useradd INACTIVE default",
                    "SRV-05": "the baseline sets no PASS_MAX_DAYS",
                    "SRV-14": "no malware-protection role yet", "DAT-06": "no AIDE role yet"}


@pytest.fixture(scope="module")
def lab(module_lab_factory: Callable[..., Lab]) -> Lab:
    """Three hosts in systemd mode under a compliance lab name (cmpXXXXXX)."""
    return module_lab_factory(name=f"cmp{secrets.token_hex(3)}", hosts=3, mode="systemd")


def test_baseline_turns_expected_failures_into_passes(lab: Lab) -> None:
    before = assess(lab)
    print(f"\nevidence of 2 assessed + 1 other lab host collected in {before.seconds:.1f} s")
    assert before.seconds < 60
    failing = {c: before.findings[c].verdict.value for c in BASELINE_FIXES}
    assert set(failing.values()) == {"not_met"}, failing
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(INVENTORY), "-i",
         str(lab.inventory_path), "--limit", ",".join(h.name for h in lab.hosts),
         str(ROOT / "playbooks" / "baseline.yml")],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "ANSIBLE_STDOUT_CALLBACK": "default"})
    assert proc.returncode == 0, proc.stdout[-3000:]
    after = assess(lab)
    for control in BASELINE_FIXES:
        finding = after.findings[control]
        assert finding.verdict.value == "met", f"{control}: {finding.reason}"
    for control, why in OUTSIDE_BASELINE.items():
        assert after.findings[control].verdict.value == "not_met", why
    srv06 = after.findings["SRV-06"].checks[0].observations[0]
    assert srv06.observed == "no" and "permitrootlogin no" in srv06.excerpt
    assert srv06.source.startswith("ssh @ ansible@10.77.0.") and srv06.time


def test_cli_run_writes_the_three_reports(lab: Lab, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dcops.cli import app

    result = CliRunner().invoke(app, ["audit", "run", "-i", str(INVENTORY), "--ssh-config",
                                      str(lab.ssh_config_path), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    import json

    doc = json.loads((tmp_path / "findings.json").read_text(encoding="utf-8"))
    lgsp = next(s for s in doc["systems"] if s["system"] == "lgsp")
    verdict = {f["control"]: f["verdict"] for f in lgsp["findings"]}
    assert verdict["SRV-06"] == "met" and verdict["SRV-10"] == "not_met"
    assert (tmp_path / "report.pdf").stat().st_size > 10_000
    assert any("ssh: " in n for n in lgsp["notes"])


def test_password_ssh_turns_only_srv07_to_not_met(lab: Lab) -> None:
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


# --- OpenSCAP cross-check ------------------------------------------------------------------------
# SSG rule -> (dcops control, fact) deciding the same thing on the same host.
SSG_RULES = {
    "sshd_disable_root_login": ("SRV-06", "sshd.permitrootlogin"),
    "sshd_disable_empty_passwords": ("SRV-07", "sshd.permitemptypasswords"),
    "sshd_set_idle_timeout": ("SRV-08", "sshd.idle_timeout_s"),
    "sshd_set_max_auth_tries": ("SRV-09", "sshd.maxauthtries"),
    "accounts_password_pam_minlen": ("SRV-01", "pam.minlen"),
    "accounts_password_pam_minclass": ("SRV-01", "pam.minclass"),
    "accounts_passwords_pam_faillock_deny": ("SRV-02", "pam.faillock_deny"),
    "no_empty_passwords_etc_shadow": ("SRV-03", "accounts.empty_password"),
    "accounts_no_uid_except_zero": ("SRV-03", "accounts.uid0_extra"),
    "sysctl_net_ipv4_conf_all_accept_redirects": (
        "SRV-17", "sysctl.net.ipv4.conf.all.accept_redirects"),
    "sysctl_net_ipv4_conf_all_send_redirects": (
        "SRV-17", "sysctl.net.ipv4.conf.all.send_redirects"),
    "sysctl_net_ipv4_tcp_syncookies": ("SRV-17", "sysctl.net.ipv4.tcp_syncookies"),
    "sysctl_net_ipv4_conf_all_accept_source_route": (
        "SRV-17", "sysctl.net.ipv4.conf.all.accept_source_route"),
    "service_auditd_enabled": ("SRV-10", "auditd.running"),
    "audit_rules_usergroup_modification_passwd": ("SRV-10", "auditd.identity_watched"),
    "package_aide_installed": ("DAT-06", "fim.installed"),
}
# Known, explained disagreements (rule -> why); anything else fails the test.
EXPLAINED = {
    "accounts_password_pam_minlen": "ANSSI BP-028 high refines var_password_pam_minlen to 15; "
    "the host has 12 (baseline) and TT12 level 3 asks 8: thresholds differ, readings agree",
    "accounts_password_pam_minclass": "ANSSI BP-028 high asks 4 classes; the host has 3, the "
    "TT12 figure is 3",
    "accounts_passwords_pam_faillock_deny": "ANSSI BP-028 high asks deny <= 3; the host has 5, "
    "TT12 level 3 allows 5",
    "sysctl_net_ipv4_tcp_syncookies": "SSG also requires the value in the persistent sysctl "
    "files; dcops reads the running value",
    "sysctl_net_ipv4_conf_all_accept_redirects": "SSG also checks the persistent sysctl files",
    "sysctl_net_ipv4_conf_all_send_redirects": "SSG also checks the persistent sysctl files",
    "sysctl_net_ipv4_conf_all_accept_source_route": "SSG also checks the persistent files",
}


def _oscap(lab: Lab, host: str, tmp: Path) -> dict[str, str]:
    import re
    import shutil

    from compliance_ssg import fetch_ssg

    if shutil.which("oscap") is None:
        pytest.skip("oscap not installed (openscap-scanner)")
    try:
        ds = fetch_ssg(Path.home() / ".cache" / "dcops" / "ssg")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, StopIteration) as exc:
        pytest.skip(f"cannot fetch trixie's ssg-debian through the apt mirror: {exc}")
    # Lab hosts are containers without a kernel package: drop SSG's "system_with_kernel" gate so
    # the configuration rules are evaluated rather than reported not applicable.
    text = ds.read_text(encoding="utf-8").replace(
        '<xccdf-1.2:platform idref="#system_with_kernel"/>', "")
    patched = tmp / "ssg-debian12-ds.xml"
    patched.write_text(text, encoding="utf-8")
    state = lab.state()
    assert state is not None
    root = f"/proc/{state.hosts[host].leader}/root"
    rules = [a for r in SSG_RULES for a in ("--rule", f"xccdf_org.ssgproject.content_rule_{r}")]
    results = tmp / f"oscap-{host}.xml"
    subprocess.run(["oscap", "xccdf", "eval", "--profile",
                    "xccdf_org.ssgproject.content_profile_anssi_bp28_high", *rules,
                    "--results", str(results), str(patched)],
                   env={**os.environ, "OSCAP_PROBE_ROOT": root}, capture_output=True,
                   timeout=300, check=False)
    found = re.findall(r'<(?:\w+:)?rule-result[^>]*idref="xccdf_org\.ssgproject\.content_rule_'
                       r'(\w+)".*?<(?:\w+:)?result>(\w+)</', results.read_text(encoding="utf-8"),
                       re.S)
    return {rule: result for rule, result in found if rule in SSG_RULES}


def test_openscap_cross_check(lab: Lab, tmp_path: Path) -> None:
    host = "lab-app1"
    ours = assess(lab)
    theirs = _oscap(lab, host, tmp_path)
    compared, agree, explained = 0, 0, []
    for rule, (control, fact) in SSG_RULES.items():
        result = theirs.get(rule)
        if result not in ("pass", "fail"):
            print(f"  {rule}: oscap {result} (not compared)")
            continue
        obs = [o for c in ours.findings[control].checks if c.fact == fact
               for o in c.observations if o.subject == host]
        assert obs, f"dcops has no observation of {fact} on {host}"
        mine = obs[0].result
        compared += 1
        if (mine == "pass") == (result == "pass"):
            agree += 1
            continue
        assert rule in EXPLAINED, f"unexplained disagreement on {rule}: dcops {mine} " \
            f"(observed {obs[0].observed!r}), oscap {result}"
        explained.append(f"{rule}: dcops {mine}, oscap {result}: {EXPLAINED[rule]}")
    print(f"\nOpenSCAP agreement on {host}: {agree}/{compared} rules")
    for line in explained:
        print("  disagreement explained:", line)
    assert compared >= 8
    assert agree >= compared // 2
