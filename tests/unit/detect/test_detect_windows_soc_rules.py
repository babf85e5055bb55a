"""soc_rules/windows through the Wazuh path: every hit and miss sample of the Windows rules written
to an alerts.json file, tailed by the Wazuh collector into the spool, read back and run through
the engine with every soc_rules rule; each sample must fire its rule (hit) or not (miss)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from dcops.cli.detect import sample_decoders
from dcops.collectors.logfile import FileTailer
from dcops.collectors.wazuh import WazuhAlertNormaliser
from dcops.detect import Engine, load_rules
from dcops.detect.samples import run_rule_samples
from dcops.errors import DetectionError
from dcops.pipeline import SqliteSpool

SOC_RULES = Path(__file__).resolve().parents[3] / "soc_rules"
WINDOWS = SOC_RULES / "windows"
START = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)

BRUTE = "RDP Brute Force From One Source"
AFTER = "RDP Logon Success After Failures From The Same Source"
WAZUH_HIGH = "High Level Wazuh Alert"


def _title(rule_file: Path) -> str:
    return str(yaml.safe_load(rule_file.read_text(encoding="utf-8"))["title"])


def _cases() -> list[tuple[Path, str, str, list[dict[str, Any]]]]:
    """(rule file, hit|miss, case name, events) of every Windows sample case."""
    out = []
    for rule in sorted(WINDOWS.glob("**/*.yml")):
        doc = yaml.safe_load(rule.with_name(rule.stem + ".samples.yaml").read_text("utf-8"))
        for expect in ("hit", "miss"):
            for c in doc[expect]:
                single = {k: v for k, v in c.items() if k != "name"}  # the one-event shorthand
                out.append((rule, expect, c["name"], c.get("events") or [single]))
    return out


def _alerts_json(path: Path) -> dict[str, int]:
    """Write every case into one alerts.json, each case an hour after the previous (so no
    correlation window spans two cases); return the Wazuh alert id -> case index."""
    case_of: dict[str, int] = {}
    lines = []
    for n, (_rule, _expect, _name, events) in enumerate(_cases()):
        slot = START + timedelta(hours=n)
        for i, e in enumerate(events):
            offset = (
                datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")) - START
                if "timestamp" in e
                else timedelta(seconds=i)
            )
            ts = slot + offset
            alert_id = f"{int(ts.timestamp())}.{n * 100 + i}"
            case_of[alert_id] = n
            stamp = ts.isoformat(timespec="milliseconds")
            alert = {"timestamp": stamp, "id": alert_id, **e["wazuh"]}
            lines.append(json.dumps(alert, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return case_of


def test_windows_samples_fire_through_the_wazuh_collector(tmp_path: Path) -> None:
    log, spool = tmp_path / "alerts.json", SqliteSpool(tmp_path / "spool.db")
    case_of = _alerts_json(log)
    tailer = FileTailer(log, spool, spool, source="wazuh", normaliser=WazuhAlertNormaliser())
    assert tailer.poll() == len(case_of)
    events = [e for _, e in spool.fetch("test", 10_000)]
    assert len(events) == len(case_of)
    assert all(e.parsed and e.logsource.product == "windows" for e in events)

    rs = load_rules([SOC_RULES])
    assert rs.rejected == []
    by_id = {e.id: case_of[e.fields["id"]] for e in events}
    fired: dict[int, set[str]] = {}  # detections (alerts) per case
    for d in Engine(rs).process(events):
        for n in {by_id[i] for i in d.event_ids}:
            fired.setdefault(n, set()).add(d.rule_title)
    matched: dict[int, set[str]] = {}  # plain rules matched, building blocks included
    quiet = Engine(rs)
    for e in events:
        matched.setdefault(by_id[e.id], set()).update(r.title for r in quiet.matching_rules(e))

    cases = _cases()
    wrong = []
    for n, (rule, expect, name, _events) in enumerate(cases):
        got = fired.get(n, set()) | matched.get(n, set())
        if (_title(rule) in got) != (expect == "hit"):
            wrong.append(f"{rule.name} {expect} {name!r}: fired {sorted(got)}")
    assert wrong == []
    assert sum(e == "hit" for _, e, _, _ in cases) >= 25
    assert sum(e == "miss" for _, e, _, _ in cases) >= 30

    def of(name: str) -> set[str]:
        return next(fired.get(n, set()) for n, c in enumerate(cases) if c[2] == name)

    # which rules fire, exactly, on some cases of the province's day
    assert of("burst of failures then an RDP session from the same address") == {BRUTE, AFTER}
    assert of("a 4625 burst without success") == {BRUTE}
    assert of("nine failures only") == set()
    assert of("mimikatz sekurlsa opens lsass with 0x1010") == {
        "LSASS Memory Read By An Unexpected Process", WAZUH_HIGH}  # fmt: skip
    assert of("rundll32 comsvcs.dll MiniDump") == {"LSASS Dump From The Command Line"}
    assert of("Word opens a PDF in Edge") == set()
    assert of("schtasks /query") == set()
    assert of("procdump of the IIS worker (benign crash dump)") == set()
    assert of("Defender scans lsass") == set()


def test_every_windows_rule_has_wazuh_shaped_samples_only() -> None:
    """The Windows samples are Wazuh alerts, never hand-normalised `fields`."""
    for rule, _expect, name, events in _cases():
        assert all(set(e) <= {"wazuh", "timestamp"} for e in events), f"{rule.name}: {name}"
        for e in events:
            win = e["wazuh"]["data"]["win"]
            assert {"eventID", "channel", "providerName"} <= set(win["system"]), name
            assert all(k[0].islower() for k in win["eventdata"]), f"{name}: camelCase as Wazuh"


def _rule_with_samples(tmp_path: Path, sample: dict[str, Any]) -> Path:
    src = WINDOWS / "persistence" / "schtasks_create.yml"
    rule = tmp_path / src.name
    rule.write_text(src.read_text("utf-8"), encoding="utf-8")
    (tmp_path / "schtasks_create.samples.yaml").write_text(yaml.safe_dump(sample), "utf-8")
    return rule


WIN_EVENT = {"data": {"win": {
    "system": {"eventID": "1", "channel": "Microsoft-Windows-Sysmon/Operational"},
    "eventdata": {"image": "C:\\\\Windows\\\\System32\\\\schtasks.exe",
                  "commandLine": "schtasks /create /tn x /tr y"}}}}  # fmt: skip


def test_wazuh_sample_goes_through_the_collector(tmp_path: Path) -> None:
    rule = _rule_with_samples(tmp_path, {
        "hit": [{"name": "doubled backslashes read back", "wazuh": WIN_EVENT}],
        "miss": [{"name": "the same as hand-written fields, not normalised",
                  "fields": {"image": "C:\\Windows\\System32\\schtasks.exe",
                             "commandLine": "schtasks /create /tn x /tr y"}}],
    })  # fmt: skip
    results = run_rule_samples(rule, decoders=sample_decoders())
    assert [(r.name, r.ok) for r in results] == [
        ("doubled backslashes read back", True),
        ("the same as hand-written fields, not normalised", True),
    ]


@pytest.mark.parametrize(
    ("case", "decoders", "message"),
    [
        ({"wazuh": WIN_EVENT}, None, "unknown event shape 'wazuh' (known: none passed in)"),
        ({"winlogbeat": {}}, "cli", "unknown event shape 'winlogbeat' (known: wazuh)"),
        ({"wazuh": WIN_EVENT, "fields": {"a": 1}}, "cli", "give the event as 'fields' or as one"),
        ({"wazuh": ["not", "a", "mapping"]}, "cli", "'wazuh' must be a mapping"),
    ],
)
def test_bad_sample_shapes_name_the_case(
    tmp_path: Path, case: dict[str, Any], decoders: str | None, message: str
) -> None:
    rule = _rule_with_samples(tmp_path, {"hit": [{"name": "x", **case}], "miss": []})
    with pytest.raises(DetectionError) as exc:
        run_rule_samples(rule, decoders=sample_decoders() if decoders else None)
    assert message in str(exc.value)
    assert "schtasks_create.samples.yaml:hit[0] event 0" in str(exc.value)
