"""Windows events from Wazuh, winlogbeat and NXLog normalised to SigmaHQ's Windows taxonomy."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from windows_samples import (
    NXLOG_SECURITY_4732,
    NXLOG_SYSMON_12,
    WAZUH_DEFENDER_5001,
    WAZUH_PS_4104,
    WAZUH_SECURITY_4688,
    WAZUH_SECURITY_4732,
    WAZUH_SYSMON_1,
    WAZUH_SYSMON_12_DELETE,
    WAZUH_SYSMON_13,
    WINLOGBEAT6_4624,
    WINLOGBEAT_PS_400,
    WINLOGBEAT_SYSMON_22,
    doubled,
    line,
)

from dcops.collectors.logfile import FileTailer
from dcops.collectors.parsers.windows import logsource_of, service_of, windows_event
from dcops.collectors.wazuh import WazuhAlertNormaliser
from dcops.collectors.windows_export import WindowsExportNormaliser
from dcops.model.event import Event, LogSource
from dcops.pipeline import SqliteSpool
from dcops.pipeline.codec import decode, encode

ALERTS = LogSource("wazuh", "alerts")


def _wazuh(doc: dict[str, object]) -> Event:
    [ev] = WazuhAlertNormaliser().line(line(doc), id_parts=("alerts.json", 0))
    return ev


def _export(doc: dict[str, object]) -> Event:
    [ev] = WindowsExportNormaliser().line(line(doc), id_parts=("export.json", 0))
    return ev


def test_wazuh_sysmon_process_creation() -> None:
    ev = _wazuh(WAZUH_SYSMON_1)
    assert ev.logsource == LogSource("windows", "sysmon", "process_creation", (ALERTS,))
    f = ev.fields
    assert f["Image"] == "C:\\Windows\\System32\\findstr.exe"
    assert f["CommandLine"] == "findstr  /i lsass"
    assert f["ParentImage"] == "C:\\Windows\\System32\\cmd.exe"
    assert (f["OriginalFileName"], f["User"], f["IntegrityLevel"]) == (
        "FINDSTR.EXE", "DONGNAI\\nguyenvana", "Medium")  # fmt: skip
    assert (f["EventID"], f["Channel"], f["Provider_Name"]) == (
        1, "Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon")  # fmt: skip
    assert f["Computer"] == "UB-KETOAN-PC07.dongnai.gov.vn"
    assert f["host.name"] == "ub-ketoan-pc07"  # the Wazuh agent, as for every Wazuh alert
    assert f["rule.level"] == 4  # the Wazuh alert's own fields are kept as Wazuh wrote them
    assert f["data.win.eventdata.image"] == "C:\\\\Windows\\\\System32\\\\findstr.exe"


def test_wazuh_doubled_backslashes_read_back() -> None:
    unc = dict(WAZUH_SYSMON_1, id="1763950351.99")
    unc["data"] = {"win": doubled({"system": {"channel": "Security", "eventID": "5145"},
                                   "eventdata": {"shareName": "\\\\*\\ADMIN$"}})}
    [ev] = WazuhAlertNormaliser().line(line(unc), id_parts=("alerts.json", 0))
    assert ev.fields["ShareName"] == "\\\\*\\ADMIN$"  # \\*\ADMIN$ as Windows logged it
    [kept] = WazuhAlertNormaliser(undouble_backslashes=False).line(
        line(WAZUH_SYSMON_1), id_parts=("alerts.json", 0))  # fmt: skip
    assert kept.fields["Image"] == "C:\\\\Windows\\\\System32\\\\findstr.exe"


def test_registry_events_carry_their_umbrella_category() -> None:
    ev = _wazuh(WAZUH_SYSMON_13)
    assert ev.logsource.category == "registry_set"
    assert ("windows", "sysmon", "registry_event") in ev.logsource.views()
    assert ("wazuh", "alerts", "") in ev.logsource.views()
    assert ev.fields["TargetObject"].endswith("\\sethc.exe\\Debugger")
    assert ev.fields["EventType"] == "SetValue"
    deleted = _wazuh(WAZUH_SYSMON_12_DELETE)
    assert deleted.logsource.category == "registry_delete"
    assert ("windows", "sysmon", "registry_event") in deleted.logsource.views()
    added = _export(NXLOG_SYSMON_12)
    assert added.logsource == LogSource("windows", "sysmon", "registry_add")


def test_security_channel_and_4688_as_process_creation() -> None:
    ev = _wazuh(WAZUH_SECURITY_4732)
    assert ev.logsource == LogSource("windows", "security", "", (ALERTS,))
    assert (ev.fields["EventID"], ev.fields["TargetSid"]) == (4732, "S-1-5-32-544")
    assert ev.fields["SubjectUserName"] == "admin.it"
    proc = _wazuh(WAZUH_SECURITY_4688)
    assert proc.logsource.category == "process_creation"
    f = proc.fields
    assert (f["Image"], f["ParentImage"], f["User"]) == (
        "C:\\Windows\\System32\\whoami.exe", "C:\\Windows\\System32\\cmd.exe",
        "DONGNAI\\nguyenvana")  # fmt: skip
    assert f["NewProcessName"] == f["Image"]  # Security's own names stay for security rules
    assert f["IntegrityLevel"] == "Medium"  # from MandatoryLabel S-1-16-8192


def test_powershell_and_defender_services_names_with_spaces() -> None:
    ps = _wazuh(WAZUH_PS_4104)
    assert ps.logsource == LogSource("windows", "powershell", "ps_script", (ALERTS,))
    assert ps.fields["ScriptBlockText"].startswith("Invoke-DNSExfiltrator")
    d = _wazuh(WAZUH_DEFENDER_5001)
    assert d.logsource == LogSource("windows", "windefend", "", (ALERTS,))
    assert d.fields["Product Name"] == d.fields["ProductName"] == "Microsoft Defender Antivirus"


def test_channel_to_service_comes_from_pysigma() -> None:
    assert service_of("Windows PowerShell") == ("powershell-classic",)
    assert service_of("microsoft-windows-sysmon/operational") == ("sysmon",)
    assert service_of("PowerShellCore/Operational") == ("powershell",)
    assert service_of("Microsoft-Windows-LDAP-Client/Debug") == ("ldap", "ldap_debug")
    ls = logsource_of({"Channel": "Microsoft-Windows-LDAP-Client/Debug", "EventID": 30})
    assert ls.also == (LogSource("windows", "ldap_debug"),)  # rules on the legacy name too
    assert logsource_of({"Channel": "Windows PowerShell", "EventID": 400}).category == (
        "ps_classic_start")  # fmt: skip
    assert logsource_of({"Channel": "Some-Vendor/Operational", "EventID": 1}) == LogSource(
        "windows")  # fmt: skip


def test_winlogbeat_ecs_and_legacy() -> None:
    ev = _export(WINLOGBEAT_SYSMON_22)
    assert ev.logsource == LogSource("windows", "sysmon", "dns_query")
    assert (ev.fields["QueryName"], ev.fields["EventID"]) == ("dl.anonfiles.com", 22)
    assert ev.fields["host.name"] == "ub-vanthu-pc02"
    assert ev.timestamp.tzinfo is not None and ev.timestamp.minute == 20
    ps = _export(WINLOGBEAT_PS_400)
    assert ps.logsource == LogSource("windows", "powershell-classic", "ps_classic_start")
    assert ps.fields["Data"].startswith("Available\nNone\n") and "EngineVersion=2.0" in ps.fields[
        "Data"]  # fmt: skip
    old = _export(WINLOGBEAT6_4624)
    assert old.logsource == LogSource("windows", "security")
    assert (old.fields["EventID"], old.fields["LogonType"]) == (4624, "10")
    assert old.fields["host.name"] == "DC01.dongnai.gov.vn"


def test_nxlog_shape() -> None:
    ev = _export(NXLOG_SECURITY_4732)
    assert ev.logsource == LogSource("windows", "security")
    f = ev.fields
    assert (f["EventID"], f["Computer"], f["Provider_Name"]) == (
        4732, "DC01.dongnai.gov.vn", "Microsoft-Windows-Security-Auditing")  # fmt: skip
    assert "EventType" not in f and f["nxlog.EventType"] == "AUDIT_SUCCESS"
    assert f["message"].startswith("A member was added")
    reg = _export(NXLOG_SYSMON_12)
    assert reg.fields["EventType"] == "CreateKey"  # Sysmon's, kept under its own name
    assert reg.fields["TargetObject"].endswith("\\VolumeCaches\\LgspTmp")


def test_not_windows_or_broken_is_kept_raw() -> None:
    n = WindowsExportNormaliser()
    [a] = n.line('{"hello": "world"}', id_parts=("f", 1))
    [b] = n.line("{broken", id_parts=("f", 2))
    assert not a.parsed and not b.parsed and a.raw == '{"hello": "world"}'
    assert (n.stats["unknown_shape"], n.stats["malformed"]) == (1, 1)
    assert windows_event({"EventID": 1}) is None  # no channel or provider: not a Windows event


def test_same_export_event_same_id_and_spool_roundtrip(tmp_path: Path) -> None:
    log, spool = tmp_path / "winlogbeat.json", SqliteSpool(tmp_path / "s.db")
    log.write_text(line(WINLOGBEAT_SYSMON_22) + "\n" + line(NXLOG_SYSMON_12) + "\n")
    t = FileTailer(log, spool, spool, normaliser=WindowsExportNormaliser(naive_tz=UTC))
    assert t.poll() == 2
    evs = [e for _, e in spool.fetch("c", 10)]
    assert [e.logsource.category for e in evs] == ["dns_query", "registry_add"]
    again = _export(WINLOGBEAT_SYSMON_22)
    assert again.id == evs[0].id  # Computer + Channel + EventRecordID name the event


def test_codec_keeps_every_logsource() -> None:
    ev = _wazuh(WAZUH_SYSMON_13)
    assert _wazuh(WAZUH_SYSMON_13).logsource is ev.logsource  # interned: engine looks up by id
    assert _export(NXLOG_SECURITY_4732).logsource is _export(WINLOGBEAT6_4624).logsource
    back = decode(encode(ev))
    assert back.logsource == ev.logsource and back.logsource.also == (ALERTS,)
    assert LogSource.from_list(["linux", "", "process_creation"]) == LogSource(
        "linux", "", "process_creation")  # fmt: skip


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4)
    | st.dictionaries(st.text(max_size=12), kids, max_size=4),
    max_leaves=30,
)
_KEYS = st.sampled_from(["EventID", "Channel", "SourceName", "EventType", "Data", "eventID",
                         "channel", "eventdata", "system", "winlog", "event_data", "win", "data",
                         "event_id", "log_name", "MandatoryLabel", "product Name", ""])


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_KEYS, _JSON | st.dictionaries(_KEYS, _JSON, max_size=6), max_size=8))
def test_hostile_shapes_never_raise(doc: dict[str, Any]) -> None:
    """Any JSON object in a Windows-ish shape: an event or a raw line, never an exception."""
    for wrapped in (doc, {"data": {"win": doc}}, {"winlog": doc}, {"win": doc}):
        got = windows_event(wrapped)
        if got is not None:
            ls, fields = got
            assert ls.product == "windows" and isinstance(fields, dict)
    [ev] = WazuhAlertNormaliser().line(line({"data": {"win": doc}}), id_parts=("f", 0))
    [ev2] = WindowsExportNormaliser().line(line(doc), id_parts=("f", 0))
    assert decode(encode(ev)).logsource == ev.logsource
    assert decode(encode(ev2)).id == ev2.id
