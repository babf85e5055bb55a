"""`--workers N`: the same detections as one process, correlation groups kept whole per worker."""

from __future__ import annotations

import multiprocessing
import os
import random
import re
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from detect_helpers import rule
from typer.testing import CliRunner

from dcops.cli import app
from dcops.detect import Engine
from dcops.detect.jsonio import BadLines, detection_line, event_from_line
from dcops.detect.parallel import Router, routing_fields, scan_parallel
from dcops.errors import DetectionError

SSHD = "product: linux\n  service: sshd"
FAIL = rule("  sel:\n    event.outcome: failure\n  condition: sel", logsource=SSHD,
            rid="22222222-2222-4222-8222-222222222222", name="fail")
OK = rule("  sel:\n    event.outcome: success\n  condition: sel", logsource=SSHD,
          rid="33333333-3333-4333-8333-333333333333", name="ok")
ROOT = rule("  sel:\n    user.name: root\n  condition: sel", logsource=SSHD,
            rid="55555555-5555-4555-8555-555555555555", name="root")


def corr(rid: str, body: str) -> str:
    return f"title: Corr {rid[:4]}\nid: {rid}\nstatus: test\ncorrelation:\n{body}\nlevel: high\n"


COUNT = corr("44444444-4444-4444-8444-444444444444",
             "  type: event_count\n  rules: [fail]\n  group-by: [source.ip, host.name]\n"
             "  timespan: 60s\n  condition:\n    gte: 3")
ORDERED = corr("66666666-6666-4666-8666-666666666666",
               "  type: temporal_ordered\n  rules: [fail, ok]\n  group-by: [source.ip]\n"
               "  timespan: 120s\n  generate: true")
USERS = corr("77777777-7777-4777-8777-777777777777",
             "  type: value_count\n  rules: [fail]\n  group-by: [source.ip]\n  timespan: 300s\n"
             "  condition:\n    field: user.name\n    gte: 3")


def stream(n: int, seed: int = 7) -> list[bytes]:
    """SSH events from 24 sources over two hosts: bursts of failures, successes, root logins."""
    rng = random.Random(seed)
    t0 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    out = []
    for i in range(n):
        ts = (t0 + timedelta(seconds=i * 2)).isoformat()
        fields = {
            "event.outcome": rng.choice(["failure", "failure", "failure", "success", "other"]),
            "source.ip": f"10.21.{rng.randint(0, 1)}.{rng.randint(1, 12)}",
            "host.name": rng.choice(["lgsp-app-01", "lgsp-app-02"]),
            "user.name": rng.choice(["root", "admin", "canbo01", "canbo02", "backup"]),
        }
        obj = {"id": f"e{i}", "timestamp": ts, "logsource": {"product": "linux",
                                                              "service": "sshd"},
               "fields": fields}
        out.append(orjson.dumps(obj) + b"\n")
    return out


def one_process(engine: Engine, lines: list[bytes]) -> list[bytes]:
    events = [event_from_line(x) for x in lines]
    return [detection_line(d) + b"\n" for d in engine.process(events)]


def engine_from_docs(rules: Path) -> Engine:
    return Engine.from_dirs([rules])


def parallel(engine: Engine, lines: list[bytes], workers: int, batch: int = 100) -> list[bytes]:
    got: list[bytes] = []
    n = scan_parallel(engine, iter(lines), got.append, workers, "mem", batch=batch)
    assert n == len(lines)
    return b"".join(got).splitlines(keepends=True)


def test_two_workers_raise_the_same_detections(engine_from: Callable[..., Engine]) -> None:
    docs = (FAIL, OK, ROOT, COUNT, ORDERED, USERS)
    lines = stream(4000)
    alone = one_process(engine_from(*docs), lines)
    two = parallel(engine_from(*docs), lines, 2)
    kinds = {orjson.loads(x)["rule_title"] for x in alone}
    assert {"Corr 4444", "Corr 6666", "Corr 7777", "Test rule"} <= kinds  # all of them fired
    assert len(alone) > 100
    assert sorted(two) == sorted(alone)  # whole lines: ids, event ids, counts, groups


def test_the_stream_really_spreads_over_both_workers(engine_from: Callable[..., Engine]) -> None:
    eng = engine_from(FAIL, OK, COUNT, ORDERED, USERS)
    assert routing_fields(eng.ruleset.correlations) == [
        ("source.ip", "host.name"), ("source.ip",), ("source.ip",)]
    router = Router(eng, 2)
    hits = {w for x in stream(200) for w in router.targets(event_from_line(x))}
    assert hits == {0, 1}


BY_USER = corr("99999999-9999-4999-8999-999999999999",
               "  type: event_count\n  rules: [fail]\n  group-by: [user.name]\n"
               "  timespan: 30s\n  condition:\n    gte: 4")


def test_correlations_sharing_no_field_still_spread(engine_from: Callable[..., Engine]) -> None:
    # one correlation groups by source and host, the other by user: no field in common, so no
    # single key could route both; each correlation is routed by its own fields
    docs = (FAIL, OK, ROOT, COUNT, BY_USER)
    lines = stream(4000)
    alone = one_process(engine_from(*docs), lines)
    kinds = Counter(orjson.loads(x)["rule_title"] for x in alone)
    assert kinds["Corr 4444"] > 10 and kinds["Corr 9999"] > 10 and kinds["Test rule"] > 10
    for workers in (2, 3):
        assert sorted(parallel(engine_from(*docs), lines, workers)) == sorted(alone)


def test_without_correlations_batches_go_round(engine_from: Callable[..., Engine]) -> None:
    lines = stream(3000)
    alone = one_process(engine_from(FAIL, ROOT), lines)
    assert routing_fields(engine_from(FAIL, ROOT).ruleset.correlations) == []
    assert sorted(parallel(engine_from(FAIL, ROOT), lines, 3, batch=64)) == sorted(alone)


def test_an_alias_is_no_routing_field(engine_from: Callable[..., Engine]) -> None:
    aliased = corr("88888888-8888-4888-8888-888888888888",
                   "  type: temporal\n  rules: [fail, ok]\n  group-by: [src, host.name]\n"
                   "  timespan: 60s\n  aliases:\n    src:\n      fail: source.ip\n"
                   "      ok: source.ip")
    eng = engine_from(FAIL, OK, aliased, COUNT)
    assert routing_fields(eng.ruleset.correlations) == [("host.name",), ("source.ip", "host.name")]
    lines = stream(2000)
    assert sorted(parallel(eng, lines, 2)) == sorted(
        one_process(engine_from(FAIL, OK, aliased, COUNT), lines))


def test_a_bad_line_is_counted_and_the_rest_scanned(engine_from: Callable[..., Engine]) -> None:
    good = stream(300)
    lines = [*good[:10], b"{not json\n", *good[10:200], b"[1, 2]\n", *good[200:]]
    for docs in ((FAIL,), (FAIL, COUNT)):  # parsed by a worker / by the router
        bad = BadLines()
        got: list[bytes] = []
        n = scan_parallel(engine_from(*docs), iter(lines), got.append, 2, "mem", batch=50,
                          bad=bad)
        assert (n, bad.count) == (300, 2)
        assert bad.first.startswith("mem:11: not a JSON object")
        assert sorted(b"".join(got).splitlines(keepends=True)) == sorted(
            one_process(engine_from(*docs), good))
        with pytest.raises(DetectionError, match=r"2 malformed line\(s\) skipped.*mem:11"):
            bad.check()
        with pytest.raises(DetectionError, match=r"^2 malformed line\(s\).*first: mem:11"):
            parallel(engine_from(*docs), lines, 2)  # without a tally: fails at the end


@pytest.mark.parametrize("workers", ["1", "2"])
def test_cli_scans_past_bad_lines_and_fails_at_the_end(tmp_path: Path, workers: str) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yml").write_text("\n---\n".join((FAIL, COUNT)), encoding="utf-8")
    good = stream(400)
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join([*good[:5], b"{bad\n", b'"a string"\n',
                                 b'{"timestamp": "yesterday", "fields": {}}\n',
                                 b'{"timestamp": 1e300, "fields": {}}\n',
                                 b'{"logsource": {"product": ["linux"]}, "fields": {}}\n',
                                 b'{"logsource": {"service": {"a": 1}}, "fields": {}}\n',
                                 b'{"logsource": "linux", "fields": {}}\n',
                                 b'{"timestamp": [1], "fields": {}}\n', *good[5:]]))
    res = CliRunner().invoke(app, ["detect", "scan", str(events), "-r", str(rules),
                                   "--workers", workers, "--batch", "64"])
    assert res.exit_code == 1 and isinstance(res.exception, DetectionError)
    assert sorted(res.stdout_bytes.splitlines(keepends=True)) == sorted(
        one_process(engine_from_docs(rules), good))
    assert f"{events}:6: not a JSON object" in res.stderr
    assert f"{events}:7: expected a JSON object per line" in res.stderr
    assert f"{events}:8: timestamp 'yesterday': expected ISO 8601 text or POSIX" in res.stderr
    assert f"{events}:9: timestamp '1e+300': expected ISO 8601" in res.stderr
    # a logsource part that is not text once stopped the scan (unhashable in the rule index)
    assert f"{events}:10: logsource.product: expected text, got a list" in res.stderr
    assert f"{events}:11: logsource.service: expected text, got an object" in res.stderr
    assert f"{events}:12: logsource: expected an object, got text" in res.stderr
    assert f"{events}:13: timestamp: expected ISO 8601 text or POSIX seconds, got a list" in (
        res.stderr)
    assert str(res.exception).startswith(f"8 malformed line(s) skipped, expected one JSON object "
                                         f"per line (first: {events}:6:")


def test_workers_below_one_is_refused(engine_from: Callable[..., Engine]) -> None:
    with pytest.raises(DetectionError, match="--workers: expected 1 or more, got 0"):
        scan_parallel(engine_from(FAIL), iter([]), print, 0)


def test_cli_two_workers_match_one(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yml").write_text("\n---\n".join((FAIL, OK, COUNT, ORDERED)), encoding="utf-8")
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(stream(1500)))
    runner = CliRunner()
    outs = []
    for w in ("1", "2"):
        res = runner.invoke(app, ["detect", "scan", str(events), "-r", str(rules), "--workers", w])
        assert res.exit_code == 0, res.output
        outs.append(sorted(res.stdout_bytes.splitlines()))
    assert outs[0] and outs[0] == outs[1]


def test_a_killed_worker_stops_the_run(engine_from: Callable[..., Engine]) -> None:
    def lines() -> Iterator[bytes]:
        yield from stream(50)
        kids = [p for p in multiprocessing.active_children() if p.is_alive()]
        assert kids
        os.kill(kids[0].pid or 0, signal.SIGKILL)
        kids[0].join()
        yield from stream(50_000)

    eng = engine_from(FAIL, COUNT)
    got: list[BaseException] = []

    def run() -> None:
        try:
            scan_parallel(eng, lines(), lambda b: None, 2, "mem", batch=10)
        except BaseException as exc:  # handed to the test thread
            got.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "the run hung after its worker was killed"
    assert len(got) == 1 and isinstance(got[0], DetectionError), got
    assert re.search(r"detection worker .* died \(exit code -9\)", str(got[0]))


def test_chunks_keep_line_numbers_across_blank_lines(engine_from: Callable[..., Engine]) -> None:
    # no correlation: the parent sends chunks of raw input; numbers count blank lines too
    lines = [*stream(25), b"\n", b"   \n", *stream(5), b"{bad\n", *stream(3)]
    bad = BadLines()
    assert scan_parallel(engine_from(FAIL, ROOT), iter(lines), [].append, 2, "mem", batch=10,
                         bad=bad) == 33
    assert (bad.count, bad.first.split(": ")[0]) == (1, "mem:33")
    good = [*stream(25), b"\n", *stream(30)]
    got: list[bytes] = []
    assert scan_parallel(engine_from(FAIL, ROOT), iter(good), got.append, 2, "m", batch=7) == 55
    assert sorted(b"".join(got).splitlines(keepends=True)) == sorted(
        one_process(engine_from(FAIL, ROOT), [x for x in good if x.strip()]))


@pytest.mark.parametrize("docs", ["plain", "correlated"])
def test_a_pause_sends_the_batches_held_and_keeps_line_numbers(
        engine_from: Callable[..., Engine], docs: str) -> None:
    """`detect scan -` on a live pipe: a pause (None) sends what is held though no batch is
    full; the detections of the lines before it come back before any line after it is read."""
    rules = (FAIL, ROOT) if docs == "plain" else (FAIL, OK, COUNT, ORDERED)
    engine = engine_from(*rules)
    lines = stream(30)
    got: list[bytes] = []
    seen_at_pause: list[int] = []

    def feed() -> Iterator[bytes | None]:
        yield from lines[:13]
        yield None  # the input paused: 13 lines held, batch is 1,000
        deadline = datetime.now(UTC) + timedelta(seconds=30)
        want = len(one_process(engine_from(*rules), lines[:13]))
        while len(b"".join(got).splitlines()) < want and datetime.now(UTC) < deadline:
            threading.Event().wait(0.05)
        seen_at_pause.append(len(b"".join(got).splitlines()))
        yield None  # a second pause with nothing held sends nothing
        yield from lines[13:20]
        yield b"{bad\n"
        yield from lines[20:]

    bad = BadLines()
    n = scan_parallel(engine, feed(), got.append, 2, "mem", batch=1000, bad=bad)
    assert n == 30 and (bad.count, bad.first.split(": ")[0]) == (1, "mem:21")
    assert seen_at_pause == [len(one_process(engine_from(*rules), lines[:13]))]
    assert seen_at_pause[0] > 0
    assert sorted(b"".join(got).splitlines(keepends=True)) == sorted(
        one_process(engine_from(*rules), lines))


def test_a_logsource_nested_deeper_than_the_stack_or_too_wide_is_read_or_refused() -> None:
    part = '{"product": "linux", "service": "a", "category": "b", "also": ['
    deep = part * 505 + '{"product": "linux"}' + "]}" * 505  # 1,011 JSON levels
    ev = event_from_line(f'{{"logsource": {deep}, "fields": {{}}}}'.encode(), "x:1")
    assert [a.to_list() for a in ev.logsource.also] == [["linux", "a", "b"]]  # one level read
    wide = ",".join(['{"product": "windows"}'] * 17)
    with pytest.raises(DetectionError, match=r"x:2: logsource.also: at most 16 logsources, got 17"):
        event_from_line(f'{{"logsource": {{"product": "linux", "service": "", "category": "", '
                        f'"also": [{wide}]}}}}'.encode(), "x:2")
    with pytest.raises(DetectionError, match=r"x:3: logsource.also: expected objects, got text"):
        event_from_line(b'{"logsource": {"product": "linux", "service": "", "category": "", '
                        b'"also": ["windows"]}}', "x:3")


def test_also_is_read_whatever_parts_the_logsource_leaves_out() -> None:
    # a logsource written by hand leaves out the parts it has no value for; its `also` used
    # to be read only when all three parts were there (four keys)
    ev = event_from_line(b'{"logsource": {"product": "windows", "service": "security", '
                         b'"also": [{"product": "windows", "category": "process_creation"}]}, '
                         b'"fields": {}}', "x:1")
    assert ev.logsource.to_list()[:3] == ["windows", "security", ""]
    assert [a.to_list() for a in ev.logsource.also] == [["windows", "", "process_creation"]]
    plain = event_from_line(b'{"logsource": {"product": "windows", "also": []}, "fields": {}}')
    assert (plain.logsource.product, plain.logsource.also) == ("windows", ())
