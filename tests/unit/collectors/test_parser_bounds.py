"""Hostile input meets bounds, not growth: the message cap, the auditd joiner and the ParentImage
memory, the Wazuh alert reader; and a message's text is stored once."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from dcops.collectors.health import ORIGINAL_SIZE_FIELD, TRUNCATED_FIELD, clip
from dcops.collectors.parsers import Normaliser
from dcops.collectors.parsers.auditd import parse_record
from dcops.collectors.wazuh import WazuhAlertNormaliser
from dcops.model.event import Event
from dcops.pipeline.codec import decode, encode

NOW = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)


def feed(n: Normaliser, lines: list[str]) -> list[Event]:
    return [e for i, ln in enumerate(lines) for e in n.line(ln, id_parts=(i,), received=NOW)]


def test_a_long_line_is_cut_before_parsing_marked_and_counted() -> None:
    n = Normaliser("t", max_message_chars=1000)
    line = "Nov 22 04:44:50 web1 sshd[1]: Invalid user é" + "x" * 5000 + " from 10.0.0.1 port 2"
    (e,) = feed(n, [line])
    assert len(e.raw) == 1000 and line.startswith(e.raw)
    assert e.fields[TRUNCATED_FIELD] is True
    assert e.fields[ORIGINAL_SIZE_FIELD] == len(line.encode())  # bytes, é is two
    assert e.fields["process.name"] == "sshd" and "source.ip" not in e.fields  # the cut part
    assert n.stats["truncated"] == 1
    (short,) = feed(n, ["Nov 22 04:44:50 web1 sshd[1]: fine"])
    assert TRUNCATED_FIELD not in short.fields and n.stats["truncated"] == 1


def test_the_default_cap_is_64_kib_and_a_transport_cut_is_not_cut_again() -> None:
    data = bytes(range(256)) * 400  # 100 kB, mostly invalid UTF-8
    wire, was_cut = clip(data, 64 * 1024)
    text = wire.decode("utf-8", "replace")  # what the syslog and file readers hand over
    n = Normaliser("t")
    (e,) = feed(n, [text])
    assert was_cut and e.raw == text.rstrip("\r\n") and n.stats["truncated"] == 0
    (big,) = feed(n, ["y" * 100_000])
    assert len(big.raw) == 65536 and big.fields[ORIGINAL_SIZE_FIELD] == 100_000


def test_the_text_of_a_message_is_stored_once() -> None:
    n = Normaliser("t")
    body = "z" * 60_000
    (plain,) = feed(n, [body])  # no syslog header: MSG and raw are the same text
    assert "message" not in plain.fields and plain.raw == body
    assert len(encode(plain)) < len(body) + 1024
    assert decode(encode(plain)).raw == body
    (framed,) = feed(n, ["<13>Nov 22 04:44:50 h1 app: " + body])
    assert framed.fields["message"] == body and len(encode(framed)) < 2 * len(body) + 1024


def test_an_audit_record_cut_at_the_cap_marks_its_event() -> None:
    n = Normaliser("t", default_host="h", max_message_chars=200)
    rec = 'type=PATH msg=audit(1700000000.1:7): item=0 name="' + "/x" * 500 + '"'
    out = feed(n, [rec, "type=EOE msg=audit(1700000000.1:7): "])
    (e,) = out
    assert e.fields[TRUNCATED_FIELD] is True and e.fields[ORIGINAL_SIZE_FIELD] == len(rec)
    assert "message" not in e.fields and len(e.raw.split("\n")[0]) == 200


def test_audit_events_are_held_one_at_a_time_and_emitted_in_parts_past_the_bound() -> None:
    n = Normaliser("t", default_host="h", max_audit_records=128)
    serial = "1700000000.1:9"
    paths = [f'type=PATH msg=audit({serial}): item={i} name="/f{i}"' for i in range(300)]
    out = feed(n, paths) + n.flush()
    assert [len(e.raw.split("\n")) for e in out] == [128, 128, 44]
    assert len({e.id for e in out}) == 3 and n.stats["audit_split"] == 2
    assert sum(len(e.fields["name"]) for e in out) == 300  # nothing dropped
    # interleaved ids and stray EOE records leave nothing behind
    for i in range(1000):
        feed(n, [f"type=SYSCALL msg=audit(1.{i}:{i}): pid={i}", f"type=EOE msg=audit(2.{i}:{i}): "])
        assert len(n.pending_serials) <= 1
    n.flush()
    assert not n.pending and not vars(n).get("_audit_ctx")


def test_fields_beyond_the_bound_of_a_record_are_counted_not_kept() -> None:
    rec = parse_record("type=SYSCALL msg=audit(1.2:3): " + " ".join(f"k{i}=v" for i in range(5000)))
    assert rec is not None and len(rec.fields) == 1024 and rec.dropped_fields == 3976
    assert rec.fields["k0"] == "v" and "k1024" not in rec.fields
    n = Normaliser("t", default_host="h")
    feed(n, ["type=SYSCALL msg=audit(1.2:3): " + " ".join(f"k{i}=v" for i in range(1100))])
    assert n.stats["audit_fields_dropped"] == 76


def execve(i: int, exe: str) -> list[str]:
    return [
        f'type=SYSCALL msg=audit(5.{i}:{i}): syscall=59 ppid=1 pid={i} exe="{exe}"',
        f'type=EXECVE msg=audit(5.{i}:{i}): argc=1 a0="x"',
        f"type=EOE msg=audit(5.{i}:{i}): ",
    ]


def test_the_parent_image_memory_is_bounded_in_entries_and_size() -> None:
    n = Normaliser("t", default_host="h", max_parent_images=100)
    for i in range(1, 400):
        feed(n, execve(i, f"/bin/p{i}"))
    assert len(n._images) == 100 and n.stats["parent_images_evicted"] == 299
    feed(n, execve(1000, "/" + "a" * 100_000))  # longer than PATH_MAX: not remembered
    assert n.stats["parent_images_refused"] == 1 and len(n._images) == 100


def alert(**extra: object) -> str:
    doc = {
        "timestamp": "2026-11-22T05:00:00.000+0700",
        "rule": {"level": 10, "description": "sshd: brute force"},
        "agent": {"id": "001", "name": "web1"},
        "id": "1763762400.1",
        "full_log": "Nov 22 05:00:00 web1 sshd[1]: Failed password for root",
    }
    return json.dumps(doc | extra)


def wazuh(*lines: str, cap: int = 65536) -> tuple[WazuhAlertNormaliser, list[Event]]:
    w = WazuhAlertNormaliser(max_message_chars=cap)
    return w, [e for i, ln in enumerate(lines) for e in w.line(ln, id_parts=(i,), received=NOW)]


def test_wazuh_full_log_is_carried_once_as_message() -> None:
    _, (e,) = wazuh(alert())
    assert e.fields["message"].startswith("Nov 22") and "full_log" not in e.fields
    assert e.fields["rule.level"] == 10 and e.fields["host.name"] == "web1"


def test_wazuh_malformed_cut_and_deep_lines_are_counted_never_fatal() -> None:
    deep_ok = '{"id": "2", "x": ' + "[" * 500 + "]" * 500 + "}"
    too_deep = '{"id": "3", "x": ' + "[" * 20_000 + "]" * 20_000 + "}"  # past json's recursion
    w, out = wazuh("{not json", "[1, 2]", '"text"', too_deep, alert(pad="p" * 70_000), deep_ok)
    assert [e.parsed for e in out] == [False, False, False, False, False, True]
    assert w.stats["malformed"] == 5 and w.stats["truncated"] == 1
    assert all("message" not in e.fields for e in out[:5])  # the text is `raw`, once
    assert out[4].fields[TRUNCATED_FIELD] is True and out[4].fields[ORIGINAL_SIZE_FIELD] > 70_000
    x = out[5].fields["x"]
    assert isinstance(x, str) and x.startswith("[[[") and w.stats["deep_values"] == 1
    assert len(encode(out[5])) < 8192


def test_wazuh_flattening_is_bounded_in_depth_and_fields() -> None:
    nested: dict[str, object] = {"leaf": 1}
    for _ in range(40):
        nested = {"n": nested}
    many = {f"k{i}": i for i in range(3000)}
    w, (deep, wide) = wazuh(alert(d=nested), alert(data=many, agent="not an object"))
    (name,) = [k for k in deep.fields if k.startswith("d.")]
    assert name.count(".") == 15 and json.loads(deep.fields[name])["n"]["n"]
    assert len(wide.fields) <= 1024 + 8 and w.stats["fields_dropped"] > 1900
    assert wide.fields["host.name"] == "" and wide.parsed


def test_an_audit_time_no_clock_has_keeps_the_line_as_it_came() -> None:
    """msg=audit(2^64...) raised OverflowError and cost the line (dead-lettered as a parser
    failure); now it is no audit record and the line is stored as an unparsed event."""
    line = ("type=SYSCALL msg=audit(18446744073709551616.1:18446744073709551616): arch=c000003e "
            "syscall=59 success=yes exe=\"/usr/bin/id\"")
    assert parse_record(line) is None
    norm = Normaliser("syslog")
    events = norm.line(line, id_parts=("10.0.0.9", 1), received=datetime(2026, 11, 22, tzinfo=UTC))
    assert len(events) == 1 and events[0].raw == line
    assert encode(events[0])  # it can be stored
