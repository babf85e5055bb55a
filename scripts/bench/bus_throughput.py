#!/usr/bin/env python3
"""Capacity of the event path, side by side: SQLite spool vs JetStream 1 node and 3 nodes.

For each engine and each round: publish EVENTS workload events (dcops.lab.workload, the mix the
failure test uses: SSH failures and successes firing the project's correlation rules, plus
noise) in batches, then detect them with real `dcops detect run --once` processes:
- `runner`: one plain runner (cursor `detect`, no worker group);
- `1 worker` / `2 workers`: a worker group of 1 or 2 processes, 2 partitions. On JetStream the
  events are published with `partitions=2` (subjects by host) and each partition reads only its
  subject; on the SQLite spool each partition reads the whole log and keeps its share.
Detection events/s = EVENTS / the slowest process's own time (engine load excluded, its startup
line says how long it ran). Each process's CPU seconds after the engine loaded (its stop line's
`cpu`, every thread) and the events it read are printed per round, with its whole CPU time from
wait4 (imports and rule loading included): CPU microseconds per event show whether the work is
shared (two workers that each read everything would each spend the whole cost).
Medians of the rounds are printed with the load average before and after. JetStream nodes run on
loopback (tests/integration/pipeline/natscluster.py, no root).

Detection writes its alerts to a SQLite alert store per run: with `--noise` 0.99 (the default)
one event in a hundred is an SSH login, so the store is not what is measured.

`--outage SECONDS` also runs store and forward: a StoreAndForward (the collectors' sink on a
nats:// bus) accepts events at `--rate` per second while all 3 nodes are down for SECONDS, then
the nodes restart; it prints how many were buffered, how long the outbox took to drain, and
lost/duplicated counts read back from the stream.

Usage: .venv/bin/python scripts/bench/bus_throughput.py [--events N] [--rounds R]
       [--engines sqlite,js1,js3] [--outage 60 --rate 500]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration" / "pipeline"))

from natscluster import NatsCluster  # noqa: E402

from dcops.lab.workload import event  # noqa: E402
from dcops.pipeline import SqliteSpool  # noqa: E402
from dcops.pipeline.forward import StoreAndForward  # noqa: E402
from dcops.pipeline.jetstream import BusUnavailableError, JetStreamBus  # noqa: E402

RAN = re.compile(r" in (\d+(?:\.\d+)?)s")
CPU = re.compile(r"\(cpu (\d+(?:\.\d+)?)s\)")
READ = re.compile(r"(\d+) events(?: read|,)")
PARTITIONS = 2
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"),
                                                    os.environ.get("PYTHONPATH", "")]))


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def publish(target: str, n: int, batch: int, noise: float) -> float:
    """Events/s of one publisher (the codec, the engine's acknowledgement, its dedup)."""
    bus = SqliteSpool(target) if "://" not in target else JetStreamBus(target)
    try:
        t = time.monotonic()
        for k in range(0, n, batch):
            bus.publish([event(i, noise=noise) for i in range(k, min(k + batch, n))])
        return n / (time.monotonic() - t)
    finally:
        bus.close()


def detect(target: str, state: Path, workers: int,
           group: str | None) -> tuple[float, list[tuple[int, float, float]]]:
    """Seconds the slowest of `workers` detect-run processes ran (each prints its time), and
    (events read, CPU seconds after loading, CPU seconds in all) of each process."""
    db = state / f"alerts-{group or 'runner'}.db"
    cmd = [sys.executable, "-m", "dcops", "detect", "run", "--bus", target, "--once",
           "--db", f"sqlite:///{db}"]
    if group:
        cmd += ["--worker-group", group, "--partitions", str(PARTITIONS), "--lease-ttl", "3"]
    env = dict(ENV, DCOPS_STATE_DIR=str(state))
    procs = [subprocess.Popen(cmd + (["--worker-id", f"w{k}"] if group else []), env=env,
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for k in range(workers)]
    took, work = [], []
    for p in procs:
        assert p.stdout is not None
        out = p.stdout.read().decode(errors="replace")
        _, status, usage = os.wait4(p.pid, 0)  # this child's own CPU time
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            raise SystemExit(f"detect run failed:\n{out[-3000:]}")
        flat = out.replace("\n", " ")
        m = RAN.findall(flat)
        took.append(float(m[-1]) if m else float("nan"))
        r = READ.findall(flat)
        c = CPU.findall(flat)
        work.append((int(r[-1]) if r else 0, float(c[-1]) if c else float("nan"),
                     usage.ru_utime + usage.ru_stime))
    return max(took), work


def engine_round(name: str, target: str, state: Path, n: int, batch: int,
                 noise: float) -> dict[str, float]:
    row = {"publish": publish(target, n, batch, noise)}
    tag = secrets.token_hex(2)
    cpu = []
    for col, workers, group in (("runner", 1, None), ("1 worker", 1, f"one{tag}"),
                                ("2 workers", 2, f"two{tag}")):
        secs, work = detect(target, state, workers, group)
        row[col] = n / secs
        row[f"cpu {col}"] = sum(c for _, c, _ in work) / n * 1e6
        cpu.append(f"{col}: " + " + ".join(f"{r} ev {c:.1f}/{a:.1f} cpu-s" for r, c, a in work))
    print(f"  {name:24} " + "  ".join(f"{k} {v:7.0f}" for k, v in row.items()
                                      if not k.startswith("cpu"))
          + f"   load {load()}\n    read, CPU after loading/in all: " + "; ".join(cpu),
          flush=True)
    return row


def outage(cluster: NatsCluster, url: str, root: Path, seconds: float, rate: float) -> None:
    """Store and forward through a whole-cluster outage of `seconds`."""
    saf = StoreAndForward(SqliteSpool(root / "outbox.db"), lambda: JetStreamBus(url),
                          unavailable=(BusUnavailableError,))
    saf.start()
    total = [0]
    stop = threading.Event()

    def source() -> None:  # a collector accepting `rate` events a second
        i = 0
        while not stop.is_set():
            t = time.monotonic()
            k = max(1, int(rate / 10))
            saf.publish([event(j, seed=99) for j in range(i, i + k)])
            i += k
            total[0] = i
            stop.wait(max(0.0, 0.1 - (time.monotonic() - t)))

    th = threading.Thread(target=source, daemon=True)
    th.start()
    time.sleep(3)
    for node in cluster.nodes:
        cluster.kill(node)
    t_down = time.monotonic()
    time.sleep(seconds)
    peak = saf.pending()
    for node in cluster.nodes:
        cluster._spawn(node)
    for node in cluster.nodes:
        cluster.wait_healthy(node, 120)
    t_up = time.monotonic()
    time.sleep(3)
    stop.set()
    th.join()
    while saf.pending() and time.monotonic() - t_up < 600:
        time.sleep(0.2)
    drained = time.monotonic() - t_up
    saf.close(5)
    reader = JetStreamBus(url)
    seen: Counter[int] = Counter()
    pos = 0
    while got := reader.fetch_after(pos, 2000):
        seen.update(int(e.fields["n"]) for _, e in got)
        pos = got[-1][0]
    reader.close()
    lost = sum(1 for i in range(total[0]) if not seen[i])
    twice = sum(1 for c in seen.values() if c > 1)
    print(f"store and forward: {total[0]} events at {rate:.0f}/s, all nodes killed for "
          f"{seconds:.0f}s (healthy again {t_up - t_down:.0f}s after the kill); {peak} waiting "
          f"in the outbox when they were restarted, drained {drained:.1f}s after healthy; lost "
          f"{lost}, duplicated {twice}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--engines", default="sqlite,js1,js3")
    ap.add_argument("--noise", type=float, default=0.99,
                    help="share of events no rule matches (the rest: SSH logins that fire the "
                    "correlations)")
    ap.add_argument("--outage", type=float, default=0.0, help="seconds of cluster outage")
    ap.add_argument("--rate", type=float, default=500.0, help="events/s during --outage")
    args = ap.parse_args()
    engines = args.engines.split(",")
    print(f"{args.events} events ({args.noise:.0%} noise), {args.rounds} rounds, cpus "
          f"{os.cpu_count()}, "
          f"load {load()}", flush=True)
    rows: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-tp-") as d:
        root = Path(d)
        clusters: dict[str, NatsCluster] = {}
        try:
            for e in engines:
                if e in ("js1", "js3"):
                    c = NatsCluster(root / e, size=1 if e == "js1" else 3)
                    c.start()
                    clusters[e] = c
            for r in range(args.rounds):
                print(f"round {r + 1}", flush=True)
                for e in engines:
                    state = root / f"state-{e}-{r}"
                    state.mkdir()
                    if e == "sqlite":
                        name, target = "sqlite spool", str(state / "spool.db")
                    else:
                        c = clusters[e]
                        reps = 1 if e == "js1" else 3
                        name = f"jetstream {len(c.nodes)} node(s) R{reps} S{PARTITIONS}"
                        target = (f"{c.url}?replicas={reps}&prefix=b{secrets.token_hex(3)}"
                                  f"&partitions={PARTITIONS}")
                    rows.setdefault(name, []).append(
                        engine_round(name, target, state, args.events, args.batch,
                                     args.noise))
            print(f"\nmedian of {args.rounds} rounds, events/s (load after {load()}):")
            cols = ["publish", "runner", "1 worker", "2 workers"]
            print(f"  {'engine':28} " + "".join(f"{c:>12}" for c in cols))
            for name, rs in rows.items():
                print(f"  {name:28} " + "".join(
                    f"{statistics.median(x[c] for x in rs):12.0f}" for c in cols))
            print("CPU microseconds per event after loading, all processes of a column "
                  "together (median):")
            for name, rs in rows.items():
                print(f"  {name:28} " + " " * 12 + "".join(
                    f"{statistics.median(x['cpu ' + c] for x in rs):12.0f}" for c in cols[1:]))
            if args.outage > 0:
                c = clusters.get("js3") or NatsCluster(root / "sf", size=3)
                if "js3" not in clusters:
                    c.start()
                    clusters["sf"] = c
                outage(c, f"{c.url}?replicas=3&prefix=sf{secrets.token_hex(3)}", root,
                       args.outage, args.rate)
        finally:
            for c in clusters.values():
                c.stop()


if __name__ == "__main__":
    main()
