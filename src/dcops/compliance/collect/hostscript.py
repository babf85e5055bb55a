"""The read-only shell probes run on every host; each section's output is kept as evidence."""

from __future__ import annotations

import re

MARK = "@@DCOPS@@"
TLS_PORTS = (443, 8443, 636, 6514, 9443)

SECTIONS: dict[str, str] = {
    "sshd": "sshd -T 2>&1",
    "pam_password": "cat /etc/pam.d/common-password 2>&1",
    "pam_auth": "cat /etc/pam.d/common-auth 2>&1",
    # every service's stack: the active pam_unix lines of all of /etc/pam.d (nullok)
    "pam_unix": "grep -HnE '^[[:space:]]*[^#[:space:]].*pam_unix\\.so' /etc/pam.d/* 2>&1",
    "pwquality": "cat /etc/security/pwquality.conf /etc/security/pwquality.conf.d/*.conf "
                 "2>/dev/null",
    "faillock": "cat /etc/security/faillock.conf 2>&1",
    "login_defs": "grep -E '^[[:space:]]*(PASS_MAX_DAYS|PASS_MIN_DAYS|UMASK)' /etc/login.defs",
    "useradd": "useradd -D 2>&1",
    "passwd": "getent passwd",
    "shadow": "cut -d: -f1,2 /etc/shadow 2>&1 | sed -E 's/:(.{0,3}).*/:\\1/'",
    # user:first 3 characters of the password field:lastchg:max:inactive (never the hash)
    "inactive": "awk -F: '{print $1\":\"substr($2,1,3)\":\"$3\":\"$5\":\"$7}' /etc/shadow 2>&1",
    "auditd": "(pgrep -x auditd >/dev/null && echo running || echo stopped); "
              "auditctl -s 2>&1",
    # loaded rules decide; the configured files are kept to show what is not loaded
    "audit_rules": "(auditctl -l 2>&1; echo \"--- auditctl rc $?\"; echo '--- configured'; "
                   "cat /etc/audit/rules.d/*.rules /etc/audit/audit.rules 2>/dev/null) | head -400",
    "chrony": "(pgrep -x chronyd >/dev/null && echo running || echo stopped); "
              "chronyc -n tracking 2>&1",
    "nft": "nft -j list ruleset 2>&1",
    # with the owning process, and the kernel's ephemeral range (ports it picks for clients)
    "ports": "ss -H -tulnp 2>&1; echo \"--- ephemeral $(cat /proc/sys/net/ipv4/ip_local_port_range"
             " 2>/dev/null)\"",
    "updates": "apt-get -s -o Debug::NoLocking=1 upgrade 2>/dev/null | grep '^Inst' ; "
               "echo '--- periodic'; apt-config dump 2>/dev/null | grep -i 'APT::Periodic'",
    "journald": "cat /etc/systemd/journald.conf /etc/systemd/journald.conf.d/*.conf 2>/dev/null"
                " | grep -v '^#'",
    "rsyslog": "(pgrep -x rsyslogd >/dev/null && echo running || echo stopped); "
               "cat /etc/rsyslog.conf /etc/rsyslog.d/*.conf 2>/dev/null | grep -v '^#'",
    "logrotate": "cat /etc/logrotate.d/rsyslog 2>/dev/null",
    # the database, and the daily check: an active systemd timer or a cron.daily script
    "aide": "command -v aide; ls /var/lib/aide/ 2>/dev/null; echo '--- scheduled'; "
            "systemctl list-timers --no-legend 2>/dev/null | grep -i aide; "
            "ls /etc/cron.daily 2>/dev/null | grep -i aide; true",
    "clamav": "command -v clamscan freshclam clamd; "
              "for f in /var/lib/clamav/daily.cvd /var/lib/clamav/daily.cld; do "
              "[ -e $f ] && echo \"db $f $(stat -c %Y $f)\"; done; echo \"now $(date +%s)\"",
    # values in force, every variant: all, default and each interface
    "sysctl": "sysctl -a 2>/dev/null | grep -E '^(net\\.ipv4\\.conf\\.[^ ]+\\.(accept_redirects|"
              "send_redirects|accept_source_route)|net\\.ipv4\\.(tcp_syncookies|ip_forward)|"
              "kernel\\.randomize_va_space) = '",
    "sudo": "grep -rhE '^[[:space:]]*Defaults' /etc/sudoers /etc/sudoers.d/ 2>/dev/null",
    "restic": "[ -x /usr/local/sbin/dcops-restic ] && timeout 60 /usr/local/sbin/dcops-restic "
              "snapshots --json --latest 1 2>&1; true",
    "pki": "for f in /etc/ssl/dcops/host.crt /etc/ssl/dcops/chain.pem "
           "/etc/ssl/dcops/issuing-ca.crl; do [ -r $f ] && { echo \"== $f\"; cat $f; }; done; true",
    "tls": "for p in " + " ".join(map(str, TLS_PORTS)) + "; do "
           "ss -H -tln \"sport = :$p\" | grep -q . || continue; echo \"== port $p\"; "
           "for v in tls1 tls1_1; do "
           "if echo | timeout 5 openssl s_client -connect 127.0.0.1:$p -$v "
           "-cipher DEFAULT@SECLEVEL=0 >/dev/null 2>&1; then echo \"accepts $v\"; fi; done; "
           # the chain as served, and its verification against the host's trust store
           "echo | timeout 5 openssl s_client -connect 127.0.0.1:$p -showcerts 2>/dev/null "
           "| sed -n '/BEGIN CERT/,/END CERT/p;s/^ *\\(Verify return code: .*\\)/\\1/p' "
           "| uniq; done; true",
}


def script() -> str:
    """One POSIX shell script running every section; output framed by markers with the rc."""
    parts = []
    for name, command in SECTIONS.items():
        parts.append(f"echo '{MARK} {name}'; ( {command} ); echo \"{MARK} rc $?\"")
    return "\n".join(parts) + "\n"


_SECTION = re.compile(rf"^{MARK} (\S+)\n(.*?)^{MARK} rc (\d+)$", re.S | re.M)


def split(output: str) -> dict[str, tuple[str, int]]:
    """Section name -> (output, rc) from the script's combined output."""
    return {m.group(1): (m.group(2), int(m.group(3))) for m in _SECTION.finditer(output)}
