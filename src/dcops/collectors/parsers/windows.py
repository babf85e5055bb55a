"""Windows events (Wazuh `data.win`, winlogbeat/ECS, NXLog JSON) in SigmaHQ's Windows taxonomy.

The channel gives the service through pySigma's own channel table (`windows_logsource_mapping`,
read backwards); Sysmon, Security, PowerShell EventIDs give the category as SigmaHQ's taxonomy
and pySigma's Sysmon pipeline define them; event data keeps the names SigmaHQ rules use (`Image`,
`CommandLine`, `TargetObject`, …). Names with spaces ("Threat Name") are kept and also given
without spaces ("ThreatName"); Wazuh's lower-cased first letter (`commandLine`) is raised again.
"""

from __future__ import annotations

from typing import Any

from sigma.pipelines.common import windows_logsource_mapping

from dcops.model.event import LogSource

_SERVICES: dict[str, list[str]] = {}  # lowercase channel -> services (first: the current name)
for _svc, _chan in windows_logsource_mapping.items():
    for _c in [_chan] if isinstance(_chan, str) else _chan:
        _SERVICES.setdefault(_c.lower(), []).append(_svc)
for _names in _SERVICES.values():  # legacy aliases (ldap_debug, microsoft-servicebus-client) last
    _names.sort(key=lambda s: s in ("ldap_debug", "microsoft-servicebus-client"))

# Sysmon EventID -> Sigma category (pySigma's sysmon_generic_logsource_eventid_mapping, inverse;
# 12 is registry_add or registry_delete by its EventType)
SYSMON_CATEGORIES: dict[int, str] = {
    1: "process_creation", 2: "file_change", 3: "network_connection", 4: "sysmon_status",
    5: "process_termination", 6: "driver_load", 7: "image_load", 8: "create_remote_thread",
    9: "raw_access_thread", 10: "process_access", 11: "file_event", 12: "registry_add",
    13: "registry_set", 14: "registry_rename", 15: "create_stream_hash", 16: "sysmon_status",
    17: "pipe_created", 18: "pipe_created", 19: "wmi_event", 20: "wmi_event", 21: "wmi_event",
    22: "dns_query", 23: "file_delete", 24: "clipboard_capture", 25: "process_tampering",
    26: "file_delete", 27: "file_block_executable", 28: "file_block_shredding",
    29: "file_executable_detected", 255: "sysmon_error",
}  # fmt: skip
_SERVICE_CATEGORIES: dict[str, dict[int, str]] = {
    "sysmon": SYSMON_CATEGORIES,
    "security": {4688: "process_creation"},
    "powershell": {4103: "ps_module", 4104: "ps_script"},
    "powershell-classic": {
        400: "ps_classic_start",
        600: "ps_classic_provider_start",
        800: "ps_classic_script",
    },
}
# Security 4688 carries the process under other names than Sysmon's; SigmaHQ's process_creation
# rules read Sysmon's, so both are kept.
_SECURITY_4688 = {"NewProcessName": "Image", "ParentProcessName": "ParentImage"}
_INTEGRITY = {  # 4688's MandatoryLabel -> Sysmon's IntegrityLevel
    "S-1-16-0": "Untrusted",
    "S-1-16-4096": "Low",
    "S-1-16-8192": "Medium",
    "S-1-16-8448": "MediumPlus",
    "S-1-16-12288": "High",
    "S-1-16-16384": "System",
}
_SYSTEM_NAMES = {  # Wazuh's data.win.system names -> Sigma's
    "eventID": "EventID",
    "channel": "Channel",
    "providerName": "Provider_Name",
    "computer": "Computer",
    "eventRecordID": "EventRecordID",
    "level": "Level",
    "task": "Task",
    "keywords": "Keywords",
}
_NXLOG_LEVELS = {"AUDIT_SUCCESS", "AUDIT_FAILURE", "INFO", "WARNING", "ERROR", "CRITICAL"}
_NXLOG_META = {  # NXLog's own names for the System part -> Sigma's (the rest is event data)
    "EventID": "EventID",
    "Channel": "Channel",
    "SourceName": "Provider_Name",
    "Hostname": "Computer",
    "RecordNumber": "EventRecordID",
}
_NXLOG_DROP = {"EventReceivedTime", "SourceModuleName", "SourceModuleType", "EventTime"}


def service_of(channel: str) -> tuple[str, ...]:
    """Sigma services of a Windows event channel (empty when SigmaHQ names none)."""
    return tuple(_SERVICES.get(channel.lower(), ()))


def _int(v: Any) -> Any:
    if isinstance(v, str) and v.strip().isdigit():
        return int(v)
    return v


def logsource_of(fields: dict[str, Any]) -> LogSource:
    """The Sigma logsource of a Windows event from its Sigma fields (Channel, EventID)."""
    channel = fields.get("Channel")
    services = service_of(channel) if isinstance(channel, str) else ()
    service = services[0] if services else ""
    eid = fields.get("EventID")
    category = _SERVICE_CATEGORIES.get(service, {}).get(eid, "") if isinstance(eid, int) else ""
    if category == "registry_add" and str(fields.get("EventType", "")).startswith("Delete"):
        category = "registry_delete"  # Sysmon 12 with EventType DeleteKey / DeleteValue
    key = (services, category)  # both from fixed tables: a bounded cache
    ls = _INTERNED.get(key)
    if ls is None:
        also = tuple(LogSource("windows", s, category) for s in services[1:])
        ls = _INTERNED.setdefault(key, LogSource("windows", service, category, also))
    return ls


# one LogSource object per (channel, category): the engine finds its rules by identity
_INTERNED: dict[tuple[tuple[str, ...], str], LogSource] = {}


def _put(out: dict[str, Any], name: str, value: Any) -> None:
    """One event-data value under its Sigma name (and without spaces, if it has any)."""
    out[name] = value
    if " " in name:
        out.setdefault(name.replace(" ", ""), value)


def _data(out: dict[str, Any], data: Any, *, wazuh: bool = False) -> None:
    if not isinstance(data, dict):
        return
    for k, v in data.items():
        if not isinstance(k, str) or not k or isinstance(v, dict):
            continue
        name = k[0].upper() + k[1:] if wazuh else k
        if isinstance(v, list) and name == "Data":  # unnamed classic <Data> items: one text
            _put(out, name, "\n".join(str(x) for x in v))
        else:
            _put(out, name, v)


def _finish(out: dict[str, Any]) -> tuple[LogSource, dict[str, Any]]:
    out["EventID"] = _int(out.get("EventID"))
    if out.get("Channel") == "Security" and out["EventID"] == 4688:
        for src, dst in _SECURITY_4688.items():
            if src in out:
                out.setdefault(dst, out[src])
        label = out.get("MandatoryLabel")
        if isinstance(label, str) and label.upper() in _INTEGRITY:
            out.setdefault("IntegrityLevel", _INTEGRITY[label.upper()])
        user, dom = out.get("SubjectUserName"), out.get("SubjectDomainName")
        if user:
            out.setdefault("User", f"{dom}\\{user}" if dom else user)
    if out.get("Computer") and "host.name" not in out:
        out["host.name"] = out["Computer"]
    return logsource_of(out), out


def from_wazuh(win: dict[str, Any], *, undouble: bool = True) -> tuple[LogSource, dict[str, Any]]:
    """Wazuh's eventchannel `data.win` object (system + eventdata) as Sigma fields.

    Wazuh 4.x writes every backslash of an eventchannel value twice (`C:\\\\Windows`, wazuh
    issue 4509), so a rule's `\\Windows Defender\\Exclusions` would never match; with `undouble`
    each pair is read back as one (a UNC path's leading pair arrives as four and stays two).
    """
    out: dict[str, Any] = {}
    system = win.get("system")
    if isinstance(system, dict):
        for k, v in system.items():
            if isinstance(k, str) and k in _SYSTEM_NAMES:
                out[_SYSTEM_NAMES[k]] = v
        if isinstance(system.get("message"), str):
            out["message"] = system["message"].strip('"')
    _data(out, win.get("eventdata"), wazuh=True)
    if undouble:
        for k, v in out.items():
            if isinstance(v, str) and "\\\\" in v:
                out[k] = v.replace("\\\\", "\\")
    return _finish(out)


def from_winlogbeat(doc: dict[str, Any]) -> tuple[LogSource, dict[str, Any]]:
    """A winlogbeat/ECS document (`winlog.*`, or winlogbeat 6's top-level names)."""
    wl = doc.get("winlog")
    w: dict[str, Any] = wl if isinstance(wl, dict) else doc
    out: dict[str, Any] = {}
    _data(out, w.get("event_data"))
    _data(out, w.get("user_data"))
    if "Data" not in out and "param1" in out:  # classic events' unnamed <Data> items: one text
        out["Data"] = "\n".join(str(out[f"param{i}"]) for i in range(1, 64) if f"param{i}" in out)
    for src, dst in (
        ("event_id", "EventID"),
        ("channel", "Channel"),
        ("log_name", "Channel"),
        ("provider_name", "Provider_Name"),
        ("source_name", "Provider_Name"),
        ("computer_name", "Computer"),
        ("record_id", "EventRecordID"),
    ):
        if w.get(src) is not None:
            out[dst] = w[src]
    event = doc.get("event")
    if out.get("EventID") is None and isinstance(event, dict):
        out["EventID"] = event.get("code")
    host = doc.get("host")
    if isinstance(host, dict) and isinstance(host.get("name"), str):
        out["host.name"] = host["name"]
    if isinstance(doc.get("message"), str):
        out["message"] = doc["message"]
    return _finish(out)


def from_nxlog(doc: dict[str, Any]) -> tuple[LogSource, dict[str, Any]]:
    """NXLog's im_msvistalog JSON: System names and event data side by side at the top."""
    out: dict[str, Any] = {}
    for k, v in doc.items():
        if not isinstance(k, str) or k in _NXLOG_DROP or isinstance(v, dict):
            continue
        if k in _NXLOG_META:
            out[_NXLOG_META[k]] = v
        elif k == "EventType" and isinstance(v, str) and v in _NXLOG_LEVELS:
            out["nxlog.EventType"] = v  # NXLog's level, not Sysmon's registry EventType
        elif k == "Message":
            out["message"] = v
        else:
            _put(out, k, v)
    return _finish(out)


def windows_event(doc: dict[str, Any]) -> tuple[LogSource, dict[str, Any]] | None:
    """The Sigma logsource and fields of a Windows event in any known shape, else None."""
    data = doc.get("data")
    win = data.get("win") if isinstance(data, dict) else doc.get("win")
    if isinstance(win, dict):
        return from_wazuh(win)
    if isinstance(doc.get("winlog"), dict) or isinstance(doc.get("event_data"), dict):
        return from_winlogbeat(doc)
    if "EventID" in doc and ("Channel" in doc or "SourceName" in doc):
        return from_nxlog(doc)
    return None
