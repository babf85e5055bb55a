"""`dcops detect scan --workers N`: N detection processes, correlation state partitioned by key.

Routing rule (documented in docs/detection.md):

- Without correlations every event can go anywhere: batches of lines go to the workers in turn
  and the parent does not even parse them.
- With correlations, each correlation's groups are spread by its *routing fields*: its group-by
  fields without an alias (an alias reads a different field per base rule, so its value is not
  known before a rule matched). The parent parses each event, looks up (once per logsource) the
  correlations its logsource's rules can feed, and sends the event, for each such correlation,
  to worker `crc32(routing values) % N`, which feeds that correlation only. Two events of one
  group agree on all its group-by fields, so that worker holds the whole group and raises what
  one process would. A correlation without a plain group-by field keeps all its groups on
  worker 0.
- The single-event detections of an event are raised by one worker only: the worker of its
  first correlation, or the next in turn when it feeds none. An event whose correlations map to
  different workers is matched by each of them (the price of partitioning).

Each worker keeps the order of its events; the detections of different workers interleave.
`max_groups` bounds the groups of each worker.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import threading
import zlib
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.process import BaseProcess
from typing import Any

from dcops.detect.correlate import CompiledCorrelation
from dcops.detect.engine import Engine
from dcops.detect.jsonio import BadLines, detection_line, event_from_line, events_from_lines
from dcops.errors import DetectionError
from dcops.model.event import Event, LogSource

_BATCH = 1000  # lines per message to a worker
_QUEUE_DEPTH = 8  # batches queued per worker before the reader waits (bounded memory)
# line number, JSON line, raise its single-event detections here, correlations it feeds here
Item = tuple[int, bytes, bool, frozenset[int]]
_NONE: frozenset[int] = frozenset()


def routing_fields(correlations: Sequence[CompiledCorrelation]) -> list[tuple[str, ...]]:
    """Each correlation's routing fields: its group-by names that carry no alias."""
    return [tuple(g for g in c.group_by if g not in c.aliases) for c in correlations]


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
    """Run batches of lines through the engine; send back detection lines (or the error).

    A malformed line of a chunk goes back as a `_Bad` message and the chunk's other lines go on.
    """
    try:
        while True:
            batch: list[Item] | tuple[int, bytes] | None = inbox.get()
            if batch is None:
                break
            if isinstance(batch, tuple):  # no correlation: a chunk of the input as it was
                start, blob = batch
                bad: list[str] = []
                out = engine.process(
                    events_from_lines(enumerate(blob.split(b"\n"), start), where, bad.append)
                )
                if bad:
                    outbox.put(_Bad(bad))
            else:  # routed: the parent parsed these lines already
                out = engine.process_routed(
                    [(event_from_line(line, f"{where}:{n}"), single, feeds)
                     for n, line, single, feeds in batch]
                )
            if out:
                outbox.put(b"".join(detection_line(d) + b"\n" for d in out))
        outbox.put(None)
    except Exception as exc:  # any failure reaches the parent with its message
        outbox.put(DetectionError(str(exc)) if not isinstance(exc, DetectionError) else exc)


class _Bad(list[str]):
    """Messages of malformed lines a worker skipped (worker -> parent)."""


def scan_parallel(
    engine: Engine,
    lines: Iterable[bytes | None],
    write: Callable[[bytes], object],
    workers: int,
    where: str = "-",
    batch: int = _BATCH,
    bad: BadLines | None = None,
) -> int:
    """Detect over JSON lines with `workers` processes; write detection lines; return events.

    The engine is built once here and inherited by the forked workers (no rule reload).
    Malformed lines are counted in `bad` and skipped (without `bad`, the first one raises).
    A `None` among the lines (the input paused: detect.stream.IDLE) sends the batches held so
    far without waiting for them to fill.
    """
    tally = bad if bad is not None else BadLines()
    before = tally.count
    if workers < 1:
        raise DetectionError(f"--workers: expected 1 or more, got {workers}")
    router = Router(engine, workers) if engine.correlations else None
    ctx = mp.get_context("fork")
    inboxes = [ctx.Queue(_QUEUE_DEPTH) for _ in range(workers)]
    outbox = ctx.Queue(_QUEUE_DEPTH * workers)  # bounded: a slow reader slows the workers
    procs: list[BaseProcess] = [
        ctx.Process(target=_worker, args=(engine, where, inboxes[i], outbox), daemon=True)
        for i in range(workers)
    ]
    for p in procs:
        p.start()
    failure: list[BaseException] = []

    writer = threading.Thread(
        target=_drain, args=(outbox, procs, write, tally, failure), daemon=True
    )
    writer.start()
    ok = False
    try:
        n = _feed(lines, inboxes, router, where, failure, batch, tally)
        for box in inboxes:
            _put(box, None, failure)
        writer.join()
        if failure:
            raise failure[0]
        ok = True
        if router is None:  # the chunks' malformed lines were counted by the workers
            n -= tally.count - before
        if bad is None:
            tally.check()
    finally:
        for p in procs:
            if ok:
                p.join()
            elif p.is_alive():
                p.terminate()
                p.join()
    return n


def _drain(
    outbox: Any,
    procs: list[BaseProcess],
    write: Callable[[bytes], object],
    tally: BadLines,
    failure: list[BaseException],
) -> None:
    """Write the workers' detection lines, count their malformed lines, catch their failures."""
    workers = len(procs)
    done = 0
    try:
        while done < workers:
            try:
                item = outbox.get(timeout=1.0)
            except queue.Empty:  # a worker killed from outside sends nothing: notice it
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    failure.append(DetectionError(
                        f"detection worker {dead[0].name} died (exit code {dead[0].exitcode})"
                    ))
                    return
                continue
            if item is None:
                done += 1
            elif isinstance(item, _Bad):
                for message in item:
                    tally.add(message)
            elif isinstance(item, BaseException):
                failure.append(item)
                return
            else:
                write(item)
    except Exception as exc:  # the output failed (closed pipe): stop the run with it
        failure.append(exc)


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


class Router:
    """Which workers get an event, and what each does with it (parent side)."""

    def __init__(self, engine: Engine, workers: int) -> None:
        self.engine = engine
        self.workers = workers
        self.fields = routing_fields([st.corr for st in engine.correlations])
        self._fed: dict[int, tuple[LogSource, tuple[int, ...]]] = {}

    def fed(self, ls: LogSource) -> tuple[int, ...]:
        """The correlations (indexes) that the rules of this logsource can feed."""
        got = self._fed.get(id(ls))
        if got is None or got[0] is not ls:
            rids = {r.id for r in self.engine.bucket(ls).rules}
            idx = tuple(
                i for i, st in enumerate(self.engine.correlations)
                if rids.intersection(st.corr.rule_ids)
            )
            if len(self._fed) >= 4096:  # logsources not interned: start afresh
                self._fed.clear()
            got = (ls, idx)
            self._fed[id(ls)] = got
        return got[1]

    def targets(self, ev: Event) -> dict[int, set[int]]:
        """worker -> the correlations this event feeds there (empty: it feeds none)."""
        dest: dict[int, set[int]] = {}
        for i in self.fed(ev.logsource):
            dest.setdefault(route(ev.fields, self.fields[i], self.workers), set()).add(i)
        return dest


def _feed(
    lines: Iterable[bytes | None],
    inboxes: list[Any],
    router: Router | None,
    where: str,
    failure: list[BaseException],
    batch: int,
    bad: BadLines,
) -> int:
    """Send the lines to the workers; return the events sent (malformed lines are not events)."""
    if router is None:
        return _feed_chunks(lines, inboxes, failure, batch)
    workers = len(inboxes)
    pending: list[list[Item]] = [[] for _ in range(workers)]
    turn = 0
    n = 0
    no = 0
    for line in lines:
        if line is None:  # the input paused: what is held goes now
            _send_held(pending, inboxes, failure)
            continue
        no += 1
        if not line.strip():
            continue
        # the fields exactly as the worker's Event will have them
        try:
            ev = event_from_line(line, f"{where}:{no}")
        except DetectionError as exc:
            bad.add(str(exc))
            continue
        n += 1
        for w in _place(router.targets(ev), (no, line), pending, turn):
            if len(pending[w]) >= batch:
                _put(inboxes[w], pending[w], failure)
                pending[w] = []
                if w == turn:
                    turn = (turn + 1) % workers
    for w, rest in enumerate(pending):
        if rest:
            _put(inboxes[w], rest, failure)
    return n


def _place(dest: dict[int, set[int]], numbered: tuple[int, bytes], pending: list[list[Item]],
           turn: int) -> list[int]:
    """Queue one line for the workers its correlations live on; return those workers."""
    no, line = numbered
    if not dest:  # feeds no correlation: the next worker in turn
        pending[turn].append((no, line, True, _NONE))
        return [turn]
    first = True
    for w, feeds in dest.items():
        pending[w].append((no, line, first, frozenset(feeds)))
        first = False
    return list(dest)


def _send_held(pending: list[list[Item]], inboxes: list[Any],
               failure: list[BaseException]) -> None:
    """Send every worker's held lines now (the input paused)."""
    for w, held in enumerate(pending):
        if held:
            _put(inboxes[w], held, failure)
            pending[w] = []


def _feed_chunks(
    lines: Iterable[bytes | None], inboxes: list[Any], failure: list[BaseException], batch: int
) -> int:
    """No correlation: runs of `batch` events go to the workers in turn as one bytes chunk each
    (first line number, the lines joined), cheaper to pass than a list of lines. A pause (None)
    sends the run held so far."""
    workers = len(inboxes)
    chunk: list[bytes] = []
    start = 1
    turn = 0
    n = 0
    in_chunk = 0
    no = 0
    for line in lines:
        if line is None:
            if in_chunk:
                _put(inboxes[turn], (start, b"".join(chunk)), failure)
                chunk, start, in_chunk = [], no + 1, 0
                turn = (turn + 1) % workers
            continue
        no += 1
        chunk.append(line if line.endswith(b"\n") else line + b"\n")
        if not line.strip():
            continue
        n += 1
        in_chunk += 1
        if in_chunk >= batch:
            _put(inboxes[turn], (start, b"".join(chunk)), failure)
            chunk, start, in_chunk = [], no + 1, 0
            turn = (turn + 1) % workers
    if chunk:
        _put(inboxes[turn], (start, b"".join(chunk)), failure)
    return n
