"""Parsers of the host probes, on output recorded from a bare and a hardened host."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from dcops.compliance.collect.hostparse import parse_host
from dcops.compliance.collect.hostscript import SECTIONS, script, split
from dcops.compliance.evidence import Evidence


def _evidence(output: str) -> Evidence:
    ev = Evidence()
    sections = split(output)
    records = {n: ev.record("ssh", "h1", "10.0.0.1", SECTIONS[n], out, rc=rc, name=n)
               for n, (out, rc) in sections.items()}
    parse_host(ev, "h1", records, sections, datetime(2026, 11, 22, tzinfo=UTC))
    return ev


def _facts(output: str) -> dict[str, object]:
    return {k: f.value for k, f in _evidence(output).facts["h1"].items()}


# Fact -> the probe section whose output shows it (the report's source/command column).
FACT_SECTION = {
    "auditd.running": "auditd", "auditd.identity_watched": "audit_rules",
    "pam.pwquality": "pam_password", "pam.faillock": "pam_auth",
    "pam.faillock_deny": "faillock", "logging.forwarding": "rsyslog",
    "logging.retention_days": "logrotate", "fim.installed": "aide",
    "malware.installed": "clamav", "malware.signature_age_days": "clamav",
    "accounts.pass_max_days": "login_defs", "accounts.useradd_inactive_days": "useradd",
    "accounts.empty_password": "shadow", "accounts.uid0_extra": "passwd",
    "accounts.inactive_days_max": "inactive", "pam.minlen": "pwquality",
    "pam.nullok": "pam_unix", "firewall.input_policy": "nft", "firewall.output_policy": "nft",
    "sysctl.net.ipv4.conf.*.accept_source_route": "sysctl",
}


def test_each_fact_links_to_the_record_of_its_own_section(hardened_output: str) -> None:
    ev = _evidence(hardened_output)
    for fact, section in FACT_SECTION.items():
        got = ev.facts["h1"][fact]
        record = ev.records[got.record]
        assert record.id == f"ssh:h1:{section}", (fact, record.id)
        assert record.command == SECTIONS[section], fact
        # runtime facts summarise what was read and judged (JSON, sysctl -a), or open with it
        # and then quote the record's lines (auditctl -l)
        summary = ("no ", "minlen default", "judged (", "output hook", "read (")
        if got.excerpt and not got.excerpt.startswith(summary):
            lines = got.excerpt.strip().splitlines()
            first = (lines[1] if lines[0].startswith("judged: ") else lines[0]).strip()
            assert first in record.output, (fact, first)


def test_inline_options_link_to_the_pam_line(hardened_output: str) -> None:
    out = hardened_output.replace("pam_faillock.so preauth", "pam_faillock.so preauth deny=4")
    out = out.replace("pam_pwquality.so retry=3", "pam_pwquality.so retry=3 minlen=16")
    out = out.replace("rotate 13", "rotate 4")  # 28 days: journald's 90 days decide
    ev = _evidence(out)
    deny, minlen = ev.facts["h1"]["pam.faillock_deny"], ev.facts["h1"]["pam.minlen"]
    assert deny.value == 4 and deny.record == "ssh:h1:pam_auth" and "deny=4" in deny.excerpt
    assert minlen.value == 16 and minlen.record == "ssh:h1:pam_password"
    retention = ev.facts["h1"]["logging.retention_days"]
    assert retention.value == 90 and retention.record == "ssh:h1:journald"
    assert "MaxRetentionSec=90day" in retention.excerpt


def test_inactive_existing_accounts(bare_output: str, hardened_output: str) -> None:
    ev = _evidence(bare_output)
    fact = ev.facts["h1"]["accounts.inactive_days_max"]
    assert fact.value == 99999
    assert "debian: password never expires" in fact.excerpt and "toor:" in fact.excerpt
    assert _facts(hardened_output)["accounts.inactive_days_max"] == 0  # every password locked
    out = bare_output.replace("debian:$y$:20228:99999:", "debian:$y$:20228:90:30")
    out = out.replace("root:$y$:20228:99999:", "root:!$y:20228:99999:")
    out = out.replace("toor::20228:99999:", "toor:*:20228:99999:")
    assert _facts(out)["accounts.inactive_days_max"] == 30


def test_script_frames_every_section() -> None:
    text = script()
    assert all(f"@@DCOPS@@ {name}" in text for name in SECTIONS)


def test_bare_host(bare_output: str) -> None:
    f = _facts(bare_output)
    assert f["sshd.passwordauthentication"] == "yes"
    assert f["sshd.weak_algorithms"] == ["aes256-cbc", "diffie-hellman-group14-sha1", "hmac-sha1"]
    assert f["accounts.uid0_extra"] == ["toor"]
    assert f["accounts.empty_password"] == ["toor"]
    assert f["accounts.default_accounts"] == ["debian"]
    assert f["auditd.running"] is False
    assert f["pam.pwquality"] is False
    assert f["firewall.input_policy"] == "none"
    assert (f["fim.installed"], f["fim.database"], f["fim.scheduled"]) == (False, False, False)
    assert f["ports.listening"] == ["tcp/22", "tcp/8081"]
    assert f["updates.security_pending"] == 1
    assert f["logging.retention_days"] == 0
    assert "time.offset_s" not in f  # chronyc missing: no evidence rather than a guess


def test_hardened_host(hardened_output: str) -> None:
    f = _facts(hardened_output)
    assert f["sshd.permitrootlogin"] == "no"
    assert f["sshd.idle_timeout_s"] == 300
    assert f["sshd.weak_algorithms"] == []
    assert (f["pam.minlen"], f["pam.minclass"], f["pam.faillock_deny"]) == (14, 4, 5)
    assert f["auditd.identity_watched"] is True
    assert f["time.offset_s"] == 0.000012 and f["time.synced"] is True
    assert f["firewall.input_policy"] == "drop"
    assert (f["fim.installed"], f["fim.database"], f["fim.scheduled"]) == (True, True, True)
    stopped = hardened_output.replace("Fri 2026-12-04 00:15:00 UTC 17h left", "")
    stopped = re.sub(r"^.*dcops-aide-check\.timer.*\n", "", stopped, flags=re.M)
    assert _facts(stopped)["fim.scheduled"] is False  # timer stopped: the check is not scheduled
    assert f["logging.retention_days"] == 91
    assert f["logging.forwarding"] is True
    assert f["malware.signature_age_days"] == 0.12
    assert f["sudo.logfile"] == "/var/log/sudo.log"


def _pem(days_left: int) -> str:
    from datetime import timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portal")])
    now = datetime(2026, 11, 22, tzinfo=UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - timedelta(days=30))
            .not_valid_after(now + timedelta(days=days_left, hours=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_tls_endpoints_legacy_protocols_and_expiry(bare_output: str) -> None:
    tls = (f"== port 443\naccepts tls1\n{_pem(10)}Verify return code: 18 (self-signed "
           f"certificate)\n== port 8443\n{_pem(200)}Verify return code: 0 (ok)\n")
    out = bare_output.replace("@@DCOPS@@ tls\n", f"@@DCOPS@@ tls\n{tls}")
    ev = _evidence(out)
    f = {k: v.value for k, v in ev.facts["h1"].items()}
    assert f["tls.endpoints"] == 2
    assert f["tls.legacy_protocols"] == ["443:tls1"]
    assert f["tls.min_days_left"] == 10
    assert f["tls.untrusted_chains"] == ["443: self-signed certificate"]
    assert "8443: 0 (ok)" in ev.facts["h1"]["tls.untrusted_chains"].excerpt


def test_host_side_restic_snapshot_age(bare_output: str) -> None:
    snap = '[{"time":"2026-11-21T23:00:00.123456789Z","short_id":"ab12cd34"}]'
    out = bare_output.replace("@@DCOPS@@ pki\n", f"@@DCOPS@@ restic\n{snap}\n@@DCOPS@@ rc 0\n"
                              "@@DCOPS@@ pki\n")
    f = _facts(out)
    assert f["backup.last_snapshot_age_h"] == 1.0 and f["backup.encrypted"] is True


def test_host_certificate_chain_and_crl(bare_output: str) -> None:
    from datetime import timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime(2026, 11, 22, tzinfo=UTC)
    pem = serialization.Encoding.PEM

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("CA")).issuer_name(name("CA"))
          .public_key(ca_key.public_key()).serial_number(1).not_valid_before(now - timedelta(1))
          .not_valid_after(now + timedelta(3650)).sign(ca_key, hashes.SHA256()))
    host = (x509.CertificateBuilder().subject_name(name("h1")).issuer_name(name("CA"))
            .public_key(key.public_key()).serial_number(2).not_valid_before(now - timedelta(1))
            .not_valid_after(now + timedelta(days=100, hours=1)).sign(ca_key, hashes.SHA256()))
    crl = (x509.CertificateRevocationListBuilder().issuer_name(name("CA"))
           .last_update(now - timedelta(hours=1)).next_update(now + timedelta(hours=23))
           .sign(ca_key, hashes.SHA256()))
    files = (f"== /etc/ssl/dcops/host.crt\n{host.public_bytes(pem).decode()}"
             f"== /etc/ssl/dcops/chain.pem\n{ca.public_bytes(pem).decode()}"
             f"== /etc/ssl/dcops/issuing-ca.crl\n{crl.public_bytes(pem).decode()}")
    f = _facts(bare_output.replace("@@DCOPS@@ pki\n", f"@@DCOPS@@ pki\n{files}"))
    assert f["pki.host_cert_days_left"] == 100
    assert f["pki.chain_ok"] is True
    assert f["pki.crl_hours_left"] == 23.0
