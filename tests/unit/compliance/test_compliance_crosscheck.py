"""Cross-checks with other scanners: the mapping's validation, the comparison on a recorded
oscap run, the Wazuh SCA path through the fake manager, the CLI and the report section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dcops.cli import app
from dcops.compliance import Evidence, load_catalogue
from dcops.compliance.crosscheck.compare import compare_one, load_document, summary
from dcops.compliance.crosscheck.mapping import MAPPING_FILE, load_mapping
from dcops.compliance.crosscheck.scan import HostScan, parse_xccdf, wazuh_scan
from dcops.compliance.findings import Observation
from dcops.compliance.manifest import check, load
from dcops.errors import ComplianceError, ConfigError

ROOT = Path(__file__).resolve().parents[3]
DATA = Path(__file__).parent / "data"
RECORDED = DATA / "crosscheck" / "oscap-bare-bookworm.xml"
CATALOGUE = load_catalogue()
MAPPING = load_mapping(CATALOGUE)
PREFIX = MAPPING.openscap_prefix


# --- mapping -----------------------------------------------------------------------------------
def test_shipped_mapping_is_valid_and_reviewed() -> None:
    ssg, wazuh = MAPPING.of("openscap"), MAPPING.of("wazuh")
    assert len(ssg) == 19 and set(wazuh) == {"33143", "33146", "33147", "33152"}
    assert all(r.reviewed for r in [*ssg.values(), *wazuh.values()])
    assert ssg["sshd_disable_root_login"].probe_root_reads == "/etc/ssh/sshd_config"
    assert ssg["accounts_password_pam_minlen"].explain is not None


def _mapping_with(tmp_path: Path, old: str, new: str) -> Path:
    text = MAPPING_FILE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "mapping.yml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def _line_of(path: Path, fragment: str) -> int:
    return next(i for i, line in enumerate(path.read_text("utf-8").splitlines(), 1)
                if fragment in line)


@pytest.mark.parametrize(("old", "new", "at", "message"), [
    ("control: SRV-06", "control: SRV-99", "control: SRV-99", "unknown control 'SRV-99'"),
    ("fact: sshd.permitrootlogin", "fact: sshd.bogus", "fact: sshd.bogus",
     "control SRV-06 checks no fact 'sshd.bogus'; expected one of sshd.permitrootlogin"),
    ("        stricter: higher\n", "        stricter: sideways\n", "stricter: sideways",
     "explain.stricter 'sideways'"),
    ("      probe_root_reads: /etc/ssh/sshd_config\n    sshd_disable_empty",
     "      colour: red\n    sshd_disable_empty", "sshd_disable_root_login:",
     "unknown key(s) colour"),
    ('"33146":', '"root-login":', '"root-login":', "expected the SCA check's number"),
])
def test_bad_mapping_names_file_and_line(tmp_path: Path, old: str, new: str, at: str,
                                         message: str) -> None:
    path = _mapping_with(tmp_path, old, new)
    with pytest.raises(ConfigError) as err:
        load_mapping(CATALOGUE, path)
    assert f"{path}:{_line_of(path, at)}: " in str(err.value)
    assert message in str(err.value)


def test_missing_review_note_is_an_error(tmp_path: Path) -> None:
    path = _mapping_with(tmp_path, '      reviewed: "2026-12-03: both read net.ipv4.tcp_syncookies'
                         ' = 1"\n', "")
    with pytest.raises(ConfigError, match=r"mapping\.yml:\d+: missing reviewed"):
        load_mapping(CATALOGUE, path)


# --- the recorded oscap run --------------------------------------------------------------------
def test_recorded_results_parse() -> None:
    results, values = parse_xccdf(RECORDED, PREFIX)
    assert set(results) == set(MAPPING.of("openscap"))
    assert results["sshd_disable_root_login"] == "fail"
    assert results["service_auditd_enabled"] == "notapplicable"
    assert values["var_password_pam_minlen"] == "15"


def _obs(result: str, observed: object, host: str = "lab-app1") -> Observation:
    return Observation(host, result, observed, "", "lab-app1:sshd", "ssh @ ansible@10.77.0.11",
                       "sshd -T 2>&1")


def _recorded(mode: str = "probe-root") -> HostScan:
    results, values = parse_xccdf(RECORDED, PREFIX)
    return HostScan("openscap", "lab-app1", results, mode, values)


def test_agreement_on_the_recorded_run() -> None:
    rule = MAPPING.of("openscap")["sshd_disable_root_login"]
    row = compare_one(rule, _recorded(), _obs("fail", "without-password"))
    assert (row.verdict, row.reason) == ("agree", "both fail")
    assert row.dcops_observed == "without-password" and row.scanner_result == "fail"


def test_stricter_threshold_is_an_explained_disagreement() -> None:
    rule = MAPPING.of("openscap")["accounts_password_pam_minlen"]
    row = compare_one(rule, _recorded(), _obs("pass", 12))  # TT12 asks 8..12, BP-028 high 15
    assert row.verdict == "disagree" and row.explained
    assert "var_password_pam_minlen=15" in row.reason and "the host has 12" in row.reason
    # the same disagreement without the stated reason (the host meets 15) stays unexplained
    row = compare_one(rule, _recorded(), _obs("pass", 16))
    assert row.verdict == "disagree" and not row.explained
    assert row.reason.startswith("unexplained: dcops pass (observed 16), scanner fail")


def test_probe_root_pass_against_a_failing_runtime_reading_is_the_scanners_blind_spot() -> None:
    rule = MAPPING.of("openscap")["sshd_set_max_auth_tries"]
    results, values = parse_xccdf(RECORDED, PREFIX)
    results["sshd_set_max_auth_tries"] = "pass"  # what oscap answered on an unhardened lab host
    scan = HostScan("openscap", "lab-app1", results, "probe-root", values)
    row = compare_one(rule, scan, _obs("fail", 6))
    assert row.verdict == "scanner_blind_spot"
    assert row.reason.startswith("scanner blind spot: probe-root mode reads config files "
                                 "(/etc/ssh/sshd_config), not the running daemon")
    assert "sshd -T" in row.reason
    # run natively (oscap-ssh on the host) the same answer is an unexplained disagreement
    native = HostScan("openscap", "lab-app1", results, "imported", values)
    assert compare_one(rule, native, _obs("fail", 6)).verdict == "disagree"
    assert summary([row])["openscap"]["agree"] == 0


def test_probe_root_fail_on_a_package_the_host_has_is_the_scanners_blind_spot() -> None:
    """oscap in probe-root mode failed package_aide_installed on a host with aide installed."""
    rule = MAPPING.of("openscap")["package_aide_installed"]
    results, values = parse_xccdf(RECORDED, PREFIX)
    results["package_aide_installed"] = "fail"
    scan = HostScan("openscap", "lab-app1", results, "probe-root", values)
    row = compare_one(rule, scan, _obs("pass", True))
    assert row.verdict == "scanner_blind_spot"
    assert row.reason.startswith("scanner blind spot: in probe-root mode the scanner does not "
                                 "see the host's installed packages")
    # both failing still agree; run natively the same answer is an unexplained disagreement
    assert compare_one(rule, scan, _obs("fail", False)).verdict == "agree"
    native = HostScan("openscap", "lab-app1", results, "imported", values)
    assert compare_one(rule, native, _obs("pass", True)).verdict == "disagree"


@pytest.mark.parametrize(("rule", "obs", "why"), [
    ("service_auditd_enabled", _obs("fail", False), "the scanner did not decide: notapplicable"),
    ("sshd_disable_root_login", None, "no dcops observation of sshd.permitrootlogin on lab-app1"),
    ("sshd_disable_root_login", Observation("lab-app1", "missing", None, "no evidence"),
     "no dcops observation of sshd.permitrootlogin on lab-app1 (no evidence)"),
])
def test_not_comparable_says_why(rule: str, obs: Observation | None, why: str) -> None:
    row = compare_one(MAPPING.of("openscap")[rule], _recorded(), obs)
    assert row.verdict == "not_comparable"
    assert row.reason.startswith(why)


def test_a_rule_missing_from_the_results_is_not_comparable() -> None:
    scan = HostScan("openscap", "lab-app1", {}, "probe-root")
    row = compare_one(MAPPING.of("openscap")["package_aide_installed"], scan, _obs("fail", False))
    assert (row.verdict, row.scanner_result) == ("not_comparable", "absent")


def test_not_an_xccdf_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "r.xml"
    bad.write_text("<html/>", encoding="utf-8")
    with pytest.raises(ComplianceError, match=r"no XCCDF 1\.2 TestResult"):
        parse_xccdf(bad, PREFIX)


def test_wazuh_checks_map_to_the_same_rows() -> None:
    checks = [{"id": 33143, "title": "Ensure SSH MaxAuthTries is set to 4 or less.",
               "result": "failed"},
              {"id": 33146, "title": "Ensure SSH root login is disabled.", "result": "passed"},
              {"id": 33147, "title": "Ensure SSH PermitEmptyPasswords is disabled.",
               "result": "not applicable"}]
    scan = wazuh_scan("lab-app1", {"id": "001", "name": "lab-app1"},
                      {"policy_id": "cis_debian12", "name": "CIS"}, checks)
    rules = MAPPING.of("wazuh")
    tries = compare_one(rules["33143"], scan, _obs("pass", 5))  # TT12's 5, CIS's 4
    assert tries.verdict == "disagree" and tries.explained
    assert "a fixed threshold of 4" in tries.reason
    assert compare_one(rules["33146"], scan, _obs("pass", "no")).verdict == "agree"
    empty = compare_one(rules["33147"], scan, _obs("pass", "no"))
    assert (empty.verdict, empty.scanner_result) == ("not_comparable", "notapplicable")


# --- CLI and report ----------------------------------------------------------------------------
def _bare_evidence(tmp_path: Path) -> Path:
    from dcops.compliance.collect.hostparse import parse_host
    from dcops.compliance.collect.hostscript import SECTIONS, split

    ev = Evidence()
    for host in ("lab-app1", "lab-db1"):
        sections = split((DATA / "bare.txt").read_text(encoding="utf-8"))
        records = {n: ev.record("ssh", host, host, SECTIONS[n], o, rc=rc, name=n)
                   for n, (o, rc) in sections.items()}
        parse_host(ev, host, records, sections)
    path = tmp_path / "evidence.json"
    path.write_text(json.dumps(ev.to_dict()), encoding="utf-8")
    return path


def test_cli_crosscheck_then_report(tmp_path: Path) -> None:
    recorded, out = _bare_evidence(tmp_path), tmp_path / "out"
    inv = str(ROOT / "inventories" / "lab")
    result = CliRunner().invoke(app, [
        "audit", "crosscheck", "-i", inv, "--from-evidence", str(recorded), "--out", str(out),
        "--hosts", "lab-app1", "--scanner", "openscap", "--no-iac",
        "--oscap-results", f"lab-app1={RECORDED}"])
    assert result.exit_code == 0, result.output
    doc = load_document((out / "crosscheck.json").read_text("utf-8"), "crosscheck.json")
    rows = {r["rule"]: r for r in doc["rows"]}
    assert len(rows) == 19 and {r["host"] for r in doc["rows"]} == {"lab-app1"}
    assert rows["sshd_disable_root_login"]["verdict"] == "agree"
    assert rows["sshd_disable_root_login"]["dcops_observed"] == "without-password"
    assert rows["service_auditd_enabled"]["verdict"] == "not_comparable"
    # bare.txt was recorded on a lab host with a planted passwordless `toor` (UID 0) account and
    # nullok; the oscap run read the clean base rootfs: those are real, unexplained differences
    assert rows["accounts_no_uid_except_zero"]["verdict"] == "disagree"
    assert rows["accounts_no_uid_except_zero"]["reason"] == (
        "unexplained: dcops fail (observed ['toor']), scanner pass")
    counts = doc["summary"]["openscap"]
    assert (counts["rows"], counts["agree"], counts["disagree"], counts["unexplained"],
            counts["not_comparable"]) == (19, 12, 5, 5, 2), counts
    assert doc["scans"][0]["mode"] == "imported" and len(doc["scans"][0]["results_sha256"]) == 64
    assert "Cross-check with other scanners" in result.output
    # the report of the same evidence picks crosscheck.json up and hashes it
    result = CliRunner().invoke(app, ["audit", "run", "-i", inv, "--from-evidence",
                                      str(out / "evidence.json"), "--out", str(out),
                                      "--no-pdf", "--no-iac", "--system", "lgsp"])
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Đối chiếu với công cụ khác" in html and "Cross-check with other scanners" in html
    assert "sshd_disable_root_login" in html and "different evidence set" not in html
    manifest = load((out / "manifest.json").read_text("utf-8"), "manifest.json")
    assert manifest["crosscheck"]["file"] == "crosscheck.json"
    assert check(manifest, out) == []
    (out / "crosscheck.json").write_text(json.dumps(doc), encoding="utf-8")  # altered
    assert [m.item for m in check(manifest, out)] == ["crosscheck.json"]


def test_real_hosts_without_results_are_refused_with_the_way_to_do_it(tmp_path: Path) -> None:
    """The example province is not a lab: oscap is not run on its hosts from here."""
    empty = tmp_path / "evidence.json"
    empty.write_text(json.dumps(Evidence().to_dict()), encoding="utf-8")
    result = CliRunner().invoke(app, [
        "audit", "crosscheck", "-i", str(ROOT / "inventories" / "production"),
        "--from-evidence", str(empty), "--out", str(tmp_path / "out"), "--hosts", "lgsp-app1",
        "--no-iac", "--scanner", "openscap"])
    assert result.exit_code != 0
    assert isinstance(result.exception, ComplianceError), result.output
    message = str(result.exception)
    assert message.startswith("oscap on lgsp-app1: dcops runs oscap itself only on lab hosts")
    assert "oscap-ssh" in message and "--oscap-results HOST=FILE" in message


def test_report_refuses_a_file_that_is_not_a_crosscheck(tmp_path: Path) -> None:
    with pytest.raises(ComplianceError, match=r"bogus\.json: format 'x', expected "
                                              r"dcops-crosscheck/1"):
        load_document('{"format": "x"}', "bogus.json")
    doc = {"format": "dcops-crosscheck/1", "rows": [{"verdict": "maybe"}], "summary": {},
           "scans": [], "mapping": {}, "evidence_sha256": ""}
    with pytest.raises(ComplianceError, match=r"rows\[0\]: missing"):
        load_document(json.dumps(doc), "c.json")


def test_cli_reads_wazuh_sca_from_the_manager_api(tmp_path: Path) -> None:
    """The fake manager (tests/fakes, Wazuh 4.x SCA endpoints over real HTTP) with the published
    cis_debian12 check ids; lab-db1 has no agent: a note, not a silent gap."""
    from fakes.wazuh_fake import FakeWazuhServer, _check, demo_state

    state = demo_state([("lab-app1", "10.77.0.11")])
    state.checks[("001", "cis_debian12")] = [
        _check(33143, "Ensure SSH MaxAuthTries is set to 4 or less.", "failed", "5.2.6"),
        _check(33146, "Ensure SSH root login is disabled.", "failed", "5.2.9"),
        _check(33147, "Ensure SSH PermitEmptyPasswords is disabled.", "passed", "5.2.10")]
    password = tmp_path / "pw"
    password.write_text("wazuh\n", encoding="utf-8")
    out = tmp_path / "out"
    with FakeWazuhServer(state) as fake:
        result = CliRunner().invoke(app, [
            "audit", "crosscheck", "-i", str(ROOT / "inventories" / "lab"), "--from-evidence",
            str(_bare_evidence(tmp_path)), "--out", str(out), "--hosts", "lab-app1",
            "--hosts", "lab-db1", "--scanner", "wazuh", "--no-iac", "--wazuh-url", fake.url,
            "--wazuh-password-file", str(password)])
    assert result.exit_code == 0, result.output
    doc = load_document((out / "crosscheck.json").read_text("utf-8"), "crosscheck.json")
    rows = {r["rule"]: r for r in doc["rows"]}
    assert set(rows) == {"33143", "33146", "33147", "33152"}
    assert (rows["33152"]["verdict"], rows["33152"]["scanner_result"]) == (
        "not_comparable", "absent")  # the manager has no result for it
    assert rows["33146"]["title"] == "Ensure SSH root login is disabled."
    assert (rows["33146"]["dcops_observed"], rows["33146"]["verdict"]) == (
        "without-password", "agree")
    assert rows["33143"]["verdict"] == "agree"  # maxauthtries 6 fails both
    assert (rows["33147"]["dcops_result"], rows["33147"]["verdict"]) == ("pass", "agree")
    assert doc["scans"][0]["policy_id"] == "cis_debian12" and doc["scans"][0]["mode"] == "agent"
    assert doc["notes"] == [f"wazuh: no agent named lab-db1 on {fake.url}"]


def test_report_says_when_the_crosscheck_used_other_evidence(tmp_path: Path) -> None:
    from dcops.compliance.collect.hostparse import parse_host
    from dcops.compliance.collect.hostscript import SECTIONS, split

    out, inv = tmp_path / "out", str(ROOT / "inventories" / "lab")
    result = CliRunner().invoke(app, [
        "audit", "crosscheck", "-i", inv, "--from-evidence", str(_bare_evidence(tmp_path)),
        "--out", str(out), "--hosts", "lab-app1", "--scanner", "openscap", "--no-iac",
        "--oscap-results", f"lab-app1={RECORDED}"])
    assert result.exit_code == 0, result.output
    ev = Evidence()  # a later collection: the hardened host
    sections = split((DATA / "hardened.txt").read_text(encoding="utf-8"))
    records = {n: ev.record("ssh", "lab-app1", "lab-app1", SECTIONS[n], o, rc=rc, name=n)
               for n, (o, rc) in sections.items()}
    parse_host(ev, "lab-app1", records, sections)
    other = tmp_path / "later.json"
    other.write_text(json.dumps(ev.to_dict()), encoding="utf-8")
    result = CliRunner().invoke(app, ["audit", "run", "-i", inv, "--from-evidence", str(other),
                                      "--out", str(out), "--no-pdf", "--no-iac"])
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Cross-check with other scanners" in html and "different evidence set" in html


def test_unknown_host_is_named(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [
        "audit", "crosscheck", "-i", str(ROOT / "inventories" / "lab"), "--from-evidence",
        str(_bare_evidence(tmp_path)), "--out", str(tmp_path / "out"), "--hosts", "nohost",
        "--no-iac", "--scanner", "openscap"])
    assert result.exit_code == 2
    assert "nohost: not in the inventory" in result.output


def test_a_finished_reports_evidence_is_not_replaced(tmp_path: Path) -> None:
    """Cross-checking into the folder of a finished report would replace the evidence.json its
    manifest hashes; it is refused unless the cross-check reads that very evidence, which then
    stays byte for byte."""
    out, inv = tmp_path / "out", str(ROOT / "inventories" / "lab")
    result = CliRunner().invoke(app, ["audit", "run", "-i", inv, "--from-evidence",
                                      str(_bare_evidence(tmp_path)), "--out", str(out),
                                      "--no-pdf", "--no-iac", "--system", "lgsp"])
    assert result.exit_code == 0, result.output
    before = (out / "evidence.json").read_bytes()
    args = ["audit", "crosscheck", "-i", inv, "--out", str(out), "--hosts", "lab-app1",
            "--scanner", "openscap", "--no-iac", "--oscap-results", f"lab-app1={RECORDED}"]
    refused = CliRunner().invoke(app, [*args, "--from-evidence", str(_bare_evidence(tmp_path))])
    assert refused.exit_code == 2
    said = " ".join(refused.output.replace("│", " ").split())
    assert "holds a finished report whose manifest hashes its evidence.json" in said
    assert (out / "evidence.json").read_bytes() == before
    kept = CliRunner().invoke(app, [*args, "--from-evidence", str(out / "evidence.json")])
    assert kept.exit_code == 0, kept.output
    assert (out / "evidence.json").read_bytes() == before
    manifest = load((out / "manifest.json").read_text("utf-8"), "manifest.json")
    assert check(manifest, out) == []
