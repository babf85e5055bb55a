"""`dcops detect scan --workers N`: N detection processes, correlation state partitioned by key.

Routing rule (documented in docs/detection.md):

- Without correlations every event can go anywhere: batches of lines go to the workers in turn
  and the parent does not even parse them.
- With correlations, an event goes to worker `crc32(key) % N`, where the key is the event's
  values of the *routing fields*: the group-by fields that every loaded correlation groups by,
  without an alias (an alias reads a different field per base rule, so its value is not known
  before a rule matched). Two events of one correlation group have the same values in all of
  that correlation's group-by fields, so the same key, so the same worker: each worker holds
  whole groups and raises exactly the detections one process would (single-event rules run
  wherever the event landed).
- When the correlations share no such field, every event goes to worker 0 (correct, not
  parallel; a warning says so).

Each worker keeps the order of its events; the detections of different workers interleave.
`max_groups` bounds the groups of each worker.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import threading
import zlib
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.process import BaseProcess
from typing import Any

from dcops.detect.correlate import CompiledCorrelation
from dcops.detect.engine import Engine
from dcops.detect.jsonio import detection_line, event_from_line
from dcops.errors import DetectionError

log = logging.getLogger("dcops.detect")
_BATCH = 1000  # lines per message to a worker
_QUEUE_DEPTH = 8  # batches queued per worker before the reader waits (bounded memory)
Line = tuple[int, bytes]  # line number, the JSON line


def routing_fields(correlations: Sequence[CompiledCorrelation]) -> tuple[str, ...] | None:
    """The fields whose values route events; None when there is no correlation (any worker)."""
    if not correlations:
        return None
    common: set[str] | None = None
    for c in correlations:
        plain = {g for g in c.group_by if g not in c.aliases}
        common = plain if common is None else common & plain
    return tuple(sorted(common or ()))


def route(fields: dict[str, Any], names: tuple[str, ...], workers: int) -> int:
    """The worker of an event: crc32 of its routing values, rendered as the correlation key is."""
    if not names:
        return 0
    parts = []
    for n in names:
        v = fields.get(n)
        parts.append("" if v is None else str(v))  # as CorrelationState.key renders it
    return zlib.crc32("\x1f".join(parts).encode("utf-8", "surrogatepass")) % workers


def _worker(engine: Engine, where: str, inbox: Any, outbox: Any) -> None:
    """Run batches of lines through the engine; send back detection lines (or the error)."""
    try:
        while True:
            batch: list[Line] | None = inbox.get()
            if batch is None:
                break
            events = [event_from_line(line, f"{where}:{n}") for n, line in batch]
            out = engine.process(events)
            if out:
                outbox.put(b"".join(detection_line(d) + b"\n" for d in out))
        outbox.put(None)
    except Exception as exc:  # any failure reaches the parent with its message
        outbox.put(DetectionError(str(exc)) if not isinstance(exc, DetectionError) else exc)


def scan_parallel(
    engine: Engine,
    lines: Iterable[bytes],
    write: Callable[[bytes], object],
    workers: int,
    where: str = "-",
    batch: int = _BATCH,
) -> int:
    """Detect over JSON lines with `workers` processes; write detection lines; return events.

    The engine is built once here and inherited by the forked workers (no rule reload).
    """
    if workers < 1:
        raise DetectionError(f"--workers: expected 1 or more, got {workers}")
    names = routing_fields(engine.ruleset.correlations)
    if names == ():
        log.warning(
            "the correlations share no plain group-by field: every event goes to worker 0"
        )
    ctx = mp.get_context("fork")
    inboxes = [ctx.Queue(_QUEUE_DEPTH) for _ in range(workers)]
    outbox = ctx.Queue()
    procs: list[BaseProcess] = [
        ctx.Process(target=_worker, args=(engine, where, inboxes[i], outbox), daemon=True)
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    failure: list[BaseException] = []

    def drain() -> None:
        done = 0
        try:
            while done < workers:
                item = outbox.get()
                if item is None:
                    done += 1
                elif isinstance(item, BaseException):
                    failure.append(item)
                    return
                else:
                    write(item)
        except Exception as exc:  # the output failed (closed pipe): stop the run with it
            failure.append(exc)

    writer = threading.Thread(target=drain, daemon=True)
    writer.start()
    ok = False
    try:
        n = _feed(lines, inboxes, names, where, failure, batch)
        for box in inboxes:
            _put(box, None, failure)
        writer.join()
        if failure:
            raise failure[0]
        ok = True
    finally:
        for p in procs:
            if ok:
                p.join()
            elif p.is_alive():
                p.terminate()
                p.join()
    return n


def _put(box: Any, item: Any, failure: list[BaseException]) -> None:
    """Put with backpressure, giving up when a worker failed (its queue may never drain)."""
    while True:
        if failure:
            raise failure[0]
        try:
            box.put(item, timeout=0.5)
            return
        except queue.Full:
            continue


def _feed(
    lines: Iterable[bytes],
    inboxes: list[Any],
    names: tuple[str, ...] | None,
    where: str,
    failure: list[BaseException],
    batch: int,
) -> int:
    workers = len(inboxes)
    pending: list[list[Line]] = [[] for _ in range(workers)]
    turn = 0
    n = 0
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        n += 1
        if names is None:  # no correlation: batches in turn, parsed by the workers
            w = turn
        else:
            # the fields exactly as the worker's Event will have them
            w = route(event_from_line(line, f"{where}:{no}").fields, names, workers)
        pending[w].append((no, line))
        if len(pending[w]) >= batch:
            _put(inboxes[w], pending[w], failure)
            pending[w] = []
            turn = (turn + 1) % workers
    for w, rest in enumerate(pending):
        if rest:
            _put(inboxes[w], rest, failure)
    return n
