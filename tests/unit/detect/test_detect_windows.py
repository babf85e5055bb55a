"""Real SigmaHQ Windows rules (read from ../shared/sigmahq, never copied) fire on Windows events
normalised from Wazuh alerts.json, winlogbeat and NXLog, umbrella categories included."""

# ruff: noqa: E501 - SigmaHQ rule paths and registry values are longer than a line

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from dcops.collectors.wazuh import WazuhAlertNormaliser
from dcops.collectors.windows_export import WindowsExportNormaliser
from dcops.detect import Engine, load_rules
from dcops.model.event import Event, LogSource

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collectors"))
import windows_samples as ws

ROOT = Path(__file__).resolve().parents[3]
_BESIDE = ROOT.parent / "shared"
SHARED = Path(os.environ.get("DCOPS_SHARED_DIR") or next(
    (p for p in (_BESIDE, Path("/work/shared")) if p.is_dir()), _BESIDE))  # fmt: skip
WIN = SHARED / "sigmahq" / "rules" / "windows"

RULES = {  # id -> file under rules/windows
    "fe63010f-8823-4864-a96b-a7b4a0f7b929": "process_creation/proc_creation_win_findstr_lsass.yml",
    "c248c896-e412-4279-8c15-1c558067b6fa": "process_creation/proc_creation_win_whoami_all_execution.yml",
    "baca5663-583c-45f9-b5dc-ea96a22ce542": "registry/registry_event/registry_event_stickykey_like_backdoor.yml",
    "a982fc9c-6333-4ffb-a51d-addb04e8b529": "registry/registry_set/registry_set_defender_exclusions.yml",
    "d4f4e0be-cf12-439f-9e25-4e2cdcf7df5a": "registry/registry_add/registry_add_persistence_disk_cleanup_handler_entry.yml",
    "c265cf08-3f99-46c1-8d59-328247057d57": "builtin/security/win_security_user_added_to_local_administrators.yml",
    "d59d7842-9a21-4bc6-ba98-64bfe0091355": "powershell/powershell_script/posh_ps_invoke_dnsexfiltration.yml",
    "065cceea-77ec-4030-9052-fc0affea7110": "dns_query/dns_query_win_anonymfiles_com.yml",
    "b28e58e4-2a72-4fae-bdee-0fbe904db642": "builtin/windefend/win_defender_real_time_protection_disabled.yml",
    "6331d09b-4785-4c13-980f-f96661356249": "powershell/powershell_classic/posh_pc_downgrade_attack.yml",
}  # fmt: skip
WAZUH_HIGH = "64365c4c-a2d0-4818-bf2f-657379aff4b2"  # soc_rules: Wazuh alert of level >= 12
FINDSTR, WHOAMI, STICKY, DEF_EXCL, CLEANUP, ADMINS, DNSEXFIL, ANONFILES, RTP_OFF, PS_V2 = RULES


@pytest.fixture(scope="module")
def engine() -> Engine:
    files = [WIN / f for f in RULES.values()]
    rs = load_rules([*files, ROOT / "soc_rules" / "wazuh" / "wazuh_high_level_alert.yml"])
    assert rs.rejected == [] and len(rs.rules) == len(RULES) + 1
    return Engine(rs)


def _fired(engine: Engine, ev: Event) -> set[str]:
    return {d.rule_id for d in engine.process([ev])}


def _wazuh(doc: dict[str, Any]) -> Event:
    [ev] = WazuhAlertNormaliser().line(ws.line(doc), id_parts=("alerts.json", 0))
    return ev


def _export(doc: dict[str, Any]) -> Event:
    [ev] = WindowsExportNormaliser().line(ws.line(doc), id_parts=("export.json", 0))
    return ev


def test_wazuh_windows_alerts_fire_sigmahq_rules(engine: Engine) -> None:
    assert _fired(engine, _wazuh(ws.WAZUH_SYSMON_1)) == {FINDSTR}
    assert _fired(engine, _wazuh(ws.WAZUH_SECURITY_4688)) == {WHOAMI}  # 4688 as process_creation
    assert _fired(engine, _wazuh(ws.WAZUH_SECURITY_4732)) == {ADMINS, WAZUH_HIGH}
    assert _fired(engine, _wazuh(ws.WAZUH_PS_4104)) == {DNSEXFIL}
    assert _fired(engine, _wazuh(ws.WAZUH_DEFENDER_5001)) == {RTP_OFF, WAZUH_HIGH}


def test_umbrella_registry_event_rule_sees_registry_set(engine: Engine) -> None:
    assert _fired(engine, _wazuh(ws.WAZUH_SYSMON_13)) == {STICKY}
    # a registry_set rule does not see a deletion, even of the key it watches
    assert _fired(engine, _wazuh(ws.WAZUH_SYSMON_12_DELETE)) == set()
    excl = dict(ws.WAZUH_SYSMON_13, id="1763950351.77")
    excl["data"] = {"win": {**ws.WAZUH_SYSMON_13["data"]["win"], "eventdata": {
        **ws.WAZUH_SYSMON_13["data"]["win"]["eventdata"],
        "targetObject": ws.doubled(
            "HKLM\\SOFTWARE\\Microsoft\\Windows Defender\\Exclusions\\Paths\\C:\\Temp")}}}
    assert _fired(engine, _wazuh(excl)) == {DEF_EXCL}


def test_exports_fire_the_same_rules(engine: Engine) -> None:
    assert _fired(engine, _export(ws.WINLOGBEAT_SYSMON_22)) == {ANONFILES}
    assert _fired(engine, _export(ws.NXLOG_SYSMON_12)) == {CLEANUP}  # EventType: CreateKey
    assert _fired(engine, _export(ws.NXLOG_SECURITY_4732)) == {ADMINS}
    assert _fired(engine, _export(ws.WINLOGBEAT_PS_400)) == {PS_V2}  # params joined as Data
    wazuh_api_shape = {"win": ws.WAZUH_SYSMON_1["data"]["win"]}  # a `win` object on its own
    assert _fired(engine, _export(wazuh_api_shape)) == {FINDSTR}


def test_windows_rules_stay_off_other_products(engine: Engine) -> None:
    fields = {"Image": "/usr/bin/findstr.exe", "CommandLine": "findstr /i lsass"}
    linux = Event("l1", ws_time(), "test", LogSource("linux", "", "process_creation"), fields)
    assert _fired(engine, linux) == set()
    benign = dict(ws.WAZUH_SYSMON_1, id="1763950351.78")
    benign["data"] = {"win": {**ws.WAZUH_SYSMON_1["data"]["win"], "eventdata": {
        **ws.WAZUH_SYSMON_1["data"]["win"]["eventdata"], "commandLine": "findstr /i hoso *.txt"}}}
    assert _fired(engine, _wazuh(benign)) == set()


def ws_time() -> Any:
    return _wazuh(ws.WAZUH_SYSMON_1).timestamp
