"""Verdicts from what is in force: each mutation of recorded probe output flips exactly its control.

hardened.txt and bare.txt carry the pam_unix, sysctl -a and nft sections recorded on a lab host
(systemd mode) before and after playbooks/baseline.yml; auditd-running.txt the `auditctl -l` of
the lab's audit sidecar. Each test breaks one thing the way a host breaks it and checks that
the control says not met, with a finding that says what was read and what was not.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dcops.compliance import Assessor, Evidence, Finding, Profile, load_catalogue
from dcops.compliance.collect.hostparse import parse_host
from dcops.compliance.collect.hostscript import SECTIONS, split
from dcops.compliance.findings import Observation
from dcops.model import SiteModel

NOW = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)
DATA = Path(__file__).parent / "data"


def _section(output: str, name: str, body: str, rc: int = 0) -> str:
    """`output` with section `name` replaced by `body`."""
    new = f"@@DCOPS@@ {name}\n{body}@@DCOPS@@ rc {rc}\n"
    out, n = re.subn(rf"^@@DCOPS@@ {name}\n.*?^@@DCOPS@@ rc \d+\n", lambda _m: new, output,
                     count=1, flags=re.S | re.M)
    assert n == 1, name
    return out


def _findings(model: SiteModel, output: str) -> dict[str, Finding]:
    ev = Evidence()
    for host in model.hosts:
        sections = split(output)
        records = {n: ev.record("ssh", host, host, SECTIONS[n], o, rc=rc, name=n)
                   for n, (o, rc) in sections.items()}
        parse_host(ev, host, records, sections, NOW)
    report = Assessor(model, load_catalogue(), ev, Profile(), "tt12", NOW).assess("lgsp")
    return {f.control: f for f in report.findings}


def _changed(a: dict[str, Finding], b: dict[str, Finding]) -> dict[str, tuple[str, str]]:
    return {c: (a[c].verdict.value, b[c].verdict.value) for c in a
            if a[c].verdict != b[c].verdict}


def _obs(finding: Finding, fact: str) -> Observation:
    return next(o for c in finding.checks if c.fact == fact for o in c.observations)


@pytest.fixture
def running(hardened_output: str) -> str:
    """The hardened host with auditd running and the baseline's rules loaded (sidecar capture)."""
    recorded = split((DATA / "auditd-running.txt").read_text(encoding="utf-8"))
    out = hardened_output
    for name in ("auditd", "audit_rules"):
        out = _section(out, name, *recorded[name])
    return out


@pytest.fixture
def base(model: SiteModel, running: str) -> dict[str, Finding]:
    return _findings(model, running)


def test_a_converged_host_meets_every_runtime_control(base: dict[str, Finding]) -> None:
    for control in ("SRV-03", "SRV-10", "SRV-17", "NET-04"):
        assert base[control].verdict.value == "met", (control, base[control].reason)


# --- SRV-10: loaded rules, not rules.d -----------------------------------------------------------
def _loaded(running: str, loaded: str, rc: int) -> str:
    """The same host whose `auditctl -l` printed `loaded` (rules.d files unchanged)."""
    body = split(running)["audit_rules"][0]
    configured = body[body.index("--- configured\n"):]
    return _section(running, "audit_rules", f"{loaded}--- auditctl rc {rc}\n{configured}")


@pytest.mark.parametrize(("loaded", "rc", "said"), [
    ("No rules\n", 0, "auditctl -l (rc 0): No rules; no rule loaded"),
    ("Error - audit support not in kernel\nCannot open netlink audit socket\n", 1,
     "auditctl -l (rc 1): Error - audit support not in kernel"),
    ("sh: 13: auditctl: not found\n", 127, "auditctl: not found"),
    # watched for reads only: a change to the account files is not recorded
    ("-w /etc/passwd -p r -k identity\n-w /etc/shadow -p r -k identity\n"
     "-w /etc/group -p r -k identity\n", 0, "3 rules loaded"),
])
def test_srv10_judges_loaded_rules_not_rules_d(model: SiteModel, running: str,
                                               base: dict[str, Finding], loaded: str, rc: int,
                                               said: str) -> None:
    after = _findings(model, _loaded(running, loaded, rc))
    assert _changed(base, after) == {"SRV-10": ("met", "not_met")}
    obs = _obs(after["SRV-10"], "auditd.identity_watched")
    assert obs.result == "fail" and obs.observed is False
    assert said in obs.excerpt
    assert "not loaded (wa): /etc/passwd, /etc/shadow, /etc/group" in obs.excerpt
    # the configured rules are shown and explicitly not used for the verdict
    assert "not judged: /etc/audit/rules.d configures 3/3 identity watches" in obs.excerpt
    assert obs.command == SECTIONS["audit_rules"] and "auditctl -l" in obs.command


def test_srv10_rules_loaded_states_what_it_read(base: dict[str, Finding]) -> None:
    obs = _obs(base["SRV-10"], "auditd.identity_watched")
    assert obs.excerpt.startswith("judged: auditctl -l: 24 rules loaded\n"
                                  "-w /etc/passwd -p wa -k identity")


def test_srv10_recorded_before_the_rc_line_still_needs_loaded_rules(
        model: SiteModel, running: str) -> None:
    """Output without the rc line (older probe): only the part above `--- configured` counts."""
    body = split(running)["audit_rules"][0]
    configured = body[body.index("--- configured\n"):]
    after = _findings(model, _section(running, "audit_rules", configured))
    assert after["SRV-10"].verdict.value == "not_met"


# --- SRV-03: nullok in the effective PAM stack ---------------------------------------------------
@pytest.mark.parametrize(("before", "after", "where"), [
    ("pam_unix.so try_first_pass", "pam_unix.so nullok try_first_pass", "common-auth:18"),
    # a service with its own pam_unix line (not the common stack)
    ("/etc/pam.d/runuser:5:session\t\trequired\tpam_unix.so",
     "/etc/pam.d/runuser:5:session\t\trequired\tpam_unix.so\n"
     "/etc/pam.d/login:9:auth\trequired\tpam_unix.so nullok_secure", "login:9"),
])
def test_nullok_turns_only_srv03_to_not_met(model: SiteModel, running: str,
                                            base: dict[str, Finding], before: str, after: str,
                                            where: str) -> None:
    assert before in running
    findings = _findings(model, running.replace(before, after))
    assert _changed(base, findings) == {"SRV-03": ("met", "not_met")}
    obs = _obs(findings["SRV-03"], "pam.nullok")
    assert obs.result == "fail" and obs.observed == [where]
    assert f"/etc/pam.d/{where}:" in obs.excerpt and "not read: /etc/pam.conf" in obs.excerpt


def test_srv03_says_which_service_files_it_read(base: dict[str, Finding]) -> None:
    obs = _obs(base["SRV-03"], "pam.nullok")
    assert obs.result == "pass" and obs.record.endswith(":pam_unix")
    assert obs.excerpt.startswith("no nullok on 6 active pam_unix lines of common-account, "
                                  "common-auth, common-password")


def test_bare_host_has_nullok_in_common_auth(model: SiteModel, bare_output: str) -> None:
    obs = _obs(_findings(model, bare_output)["SRV-03"], "pam.nullok")
    assert obs.observed == ["common-auth:17"]


# --- SRV-17: all, default and every interface ----------------------------------------------------
@pytest.mark.parametrize(("line", "fact", "offender"), [
    ("net.ipv4.conf.default.accept_source_route", "accept_source_route", "default=1"),
    ("net.ipv4.conf.eth0.accept_source_route", "accept_source_route", "eth0=1"),
    ("net.ipv4.conf.lo.send_redirects", "send_redirects", "lo=1"),
    ("net.ipv4.conf.eth0.accept_redirects", "accept_redirects", "eth0=1"),
    ("net.ipv4.conf.all.accept_redirects", "accept_redirects", "all=1"),
])
def test_one_sysctl_variant_turns_only_srv17_to_not_met(
        model: SiteModel, running: str, base: dict[str, Finding], line: str, fact: str,
        offender: str) -> None:
    assert f"{line} = 0\n" in running
    findings = _findings(model, running.replace(f"{line} = 0\n", f"{line} = 1\n"))
    assert _changed(base, findings) == {"SRV-17": ("met", "not_met")}
    obs = _obs(findings["SRV-17"], f"sysctl.net.ipv4.conf.*.{fact}")
    assert obs.result == "fail" and obs.observed == [offender]
    assert obs.excerpt.startswith("read (sysctl -a, in force): all=")
    assert "interfaces: eth0, lo" in obs.excerpt and "not read: sysctl.d files" in obs.excerpt


def test_bare_host_default_source_route_is_reported(model: SiteModel, bare_output: str) -> None:
    srv17 = _findings(model, bare_output)["SRV-17"]
    obs = _obs(srv17, "sysctl.net.ipv4.conf.*.accept_source_route")
    assert obs.result == "fail" and obs.observed == ["default=1", "eth0=1", "lo=1"]  # all=0


def test_sysctl_unreadable_is_missing_evidence_not_met(model: SiteModel, running: str) -> None:
    findings = _findings(model, _section(running, "sysctl", "", rc=1))
    obs = _obs(findings["SRV-17"], "sysctl.net.ipv4.conf.*.accept_source_route")
    assert obs.result == "missing" and findings["SRV-17"].verdict.value == "manual"


# --- NET-04: input judged, output reported -------------------------------------------------------
def _ruleset(running: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = json.loads(split(running)["nft"][0])["nftables"]
    return items


def _with_ruleset(running: str, items: list[dict[str, object]]) -> str:
    return _section(running, "nft", json.dumps({"nftables": items}) + "\n")


def test_net04_reports_the_output_hook_without_judging_it(base: dict[str, Finding]) -> None:
    net04 = base["NET-04"]
    judged = _obs(net04, "firewall.input_policy")
    assert judged.result == "pass" and judged.observed == "drop"
    assert judged.excerpt.splitlines()[:2] == [
        "judged (input hook): inet dcops_filter input policy drop",
        "not judged (output hook): inet dcops_filter output policy accept"]
    assert "not read: iptables-legacy" in judged.excerpt
    reported = _obs(net04, "firewall.output_policy")
    assert reported.result == "n/a" and reported.observed == "accept"
    assert reported.detail == "reported, not judged"
    check = next(c for c in net04.checks if c.fact == "firewall.output_policy")
    assert check.expected == "reported, not judged" and "not judged" in check.text_en


def test_net04_ipv4_only_drop_is_not_met(model: SiteModel, running: str,
                                         base: dict[str, Finding]) -> None:
    items = _ruleset(running)
    for item in items:
        for kind in ("table", "chain", "rule"):
            if kind in item:
                item[kind]["family"] = "ip"  # type: ignore[index]
    findings = _findings(model, _with_ruleset(running, items))
    assert _changed(base, findings) == {"NET-04": ("met", "not_met")}
    assert _obs(findings["NET-04"], "firewall.input_policy").observed == "drop (IPv4 only)"


def test_net04_accept_everything_rule_is_not_met(model: SiteModel, running: str,
                                                 base: dict[str, Finding]) -> None:
    items = [*_ruleset(running), {"rule": {"family": "inet", "table": "dcops_filter",
                                           "chain": "input", "handle": 99,
                                           "expr": [{"counter": {"packets": 0, "bytes": 0}},
                                                    {"accept": None}]}}]
    findings = _findings(model, _with_ruleset(running, items))
    assert _changed(base, findings) == {"NET-04": ("met", "not_met")}
    obs = _obs(findings["NET-04"], "firewall.input_policy")
    assert obs.observed == "accept" and "(accepts every packet)" in obs.excerpt


def test_net04_another_tables_accept_chain_does_not_undo_a_drop(
        model: SiteModel, running: str, base: dict[str, Finding]) -> None:
    """fail2ban's inet f2b-table hooks input with policy accept: packets still meet our drop."""
    items = [*_ruleset(running),
             {"table": {"family": "inet", "name": "f2b-table", "handle": 9}},
             {"chain": {"family": "inet", "table": "f2b-table", "name": "f2b-chain",
                        "handle": 1, "type": "filter", "hook": "input", "prio": -1,
                        "policy": "accept"}}]
    findings = _findings(model, _with_ruleset(running, items))
    assert _changed(base, findings) == {}
    assert "inet f2b-table f2b-chain policy accept" in _obs(
        findings["NET-04"], "firewall.input_policy").excerpt


def test_net04_input_policy_accept_is_not_met(model: SiteModel, running: str,
                                              base: dict[str, Finding]) -> None:
    nft = split(running)["nft"][0]
    after = running.replace(nft, nft.replace('"hook": "input", "prio": 0, "policy": "drop"',
                                             '"hook": "input", "prio": 0, "policy": "accept"'))
    findings = _findings(model, after)
    assert _changed(base, findings) == {"NET-04": ("met", "not_met")}
