#!/usr/bin/env python3
"""CPU time of detection on hostile field values of 1, 8 and 64 KiB: dcops against `re`.

Every SigmaHQ Linux and Windows rule is loaded. For each logsource, one event carries the same
hostile value in every field its rules index, so every rule of that logsource runs on it, for
each family of values:

  word_backquote  word characters then one backquote (SigmaHQ's PowerShell token obfuscation
                  regex `\\w+`(?:\\w+|-|.)`...` backtracks on it)
  vietnamese      the same with Vietnamese letters (Unicode word characters)
  literal_run     the logsource's most common literal repeated (a wildcard value `*x*x*y` is a
                  cubic `.*x.*x.*y` for `re`)
  random          random printable characters

and prints the CPU time of `Engine.process` on that one event, twice in the same run: with
dcops' linear matchers (RE2 for `|re`, segment search for wildcards) and with the backtracking
`re` matchers they replaced (the peer). Each case runs in a forked child with a deadline, so a
backtracking case shows as a timeout instead of hanging the run. Exit 1 when a dcops case at
64 KiB costs more than --max-ms or grows super-linearly (per-KiB cost at 64 KiB more than
--max-growth times the cost at 8 KiB).

    .venv/bin/python scripts/bench/detect_adversarial.py
    .venv/bin/python scripts/bench/detect_adversarial.py --os linux --timeout 5
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import re
import string
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

from dcops.detect import Engine, load_rules
from dcops.model.event import Event, LogSource

ROOT = Path(__file__).resolve().parents[2]
_T0 = datetime(2026, 12, 1, tzinfo=UTC)
SIZES = (1024, 8 * 1024, 64 * 1024)
FAMILIES = ("word_backquote", "vietnamese", "literal_run", "random")


def _backtracking() -> None:
    """Put back the matchers of before: `re.search` and a `.*`-joined fullmatch."""
    from dcops.detect import values

    class ReRegex:
        def __init__(self, pattern: str, flags: int = 0) -> None:
            self.py = re.compile(pattern, flags)

        def search(self, text: str) -> bool:
            return self.py.search(text) is not None

    def re_glob(parts: list[str | None], flags: int) -> Callable[[str], bool]:
        rx = re.compile("".join(".*" if p is None else p for p in parts), flags | re.DOTALL)
        return lambda x: rx.fullmatch(x) is not None

    values.Regex = ReRegex  # type: ignore[misc,assignment]
    values.glob = re_glob


def value(family: str, size: int, literal: str) -> str:
    rng = random.Random(size)
    if family == "word_backquote":
        return "0" * (size - 1) + "`"
    if family == "vietnamese":
        return ("ế" * size)[: size - 1] + "`"
    if family == "literal_run":
        lit = literal or "a"
        return (lit * (size // len(lit) + 1))[:size]
    return "".join(rng.choice(string.printable) for _ in range(size))


def _cases(engine: Engine) -> list[tuple[LogSource, list[str], str]]:
    """Per logsource of the rules: its indexed fields and its most common literal."""
    cases: list[tuple[LogSource, list[str], str]] = []
    seen: set[tuple[str, str, str]] = set()
    for r in engine.rules:
        key = (r.product, r.service, r.category)
        if key in seen:
            continue
        seen.add(key)
        ls = LogSource(*key)
        bucket = engine.bucket(ls)
        fields = [f for f, _ in bucket.fields if not f.startswith("\x00")] + ["message"]
        lits = Counter(lit for rr in bucket.rules for _, _, lit in (rr.atoms or ()) if lit)
        cases.append((ls, fields, lits.most_common(1)[0][0] if lits else "a"))
    return cases


def _child(conn: Connection, engine: Engine, cases: list[tuple[LogSource, list[str], str]]
           ) -> None:
    while True:
        job = conn.recv()
        if job is None:
            return
        i, family, size = job
        ls, fields, lit = cases[i]
        v = value(family, size, lit)
        ev = Event(f"h{i}", _T0, "bench", ls, dict.fromkeys(fields, v), v)
        t = time.process_time()
        engine.process([ev])
        conn.send(time.process_time() - t)


def run(engine: Engine, cases: list[tuple[LogSource, list[str], str]], timeout: float
        ) -> dict[tuple[int, str, int], float | None]:
    """CPU seconds per (logsource case, family, size); None: past the deadline. Children are
    forked from this process, so the loaded engine is not loaded again after a timeout."""
    out: dict[tuple[int, str, int], float | None] = {}
    ctx = mp.get_context("fork")
    todo = [(i, f, s) for i in range(len(cases)) for f in FAMILIES for s in SIZES]
    while True:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_child, args=(child, engine, cases), daemon=True)
        proc.start()
        todo = [j for j in todo if j not in out]
        stuck = False
        for job in todo:
            parent.send(job)
            if not parent.poll(timeout):
                out[job] = None  # backtracking: give up on this case, restart the child
                for f in SIZES:  # the larger sizes of the same case can only be slower
                    if f > job[2]:
                        out[(job[0], job[1], f)] = None
                proc.kill()
                proc.join()
                stuck = True
                break
            out[job] = parent.recv()
        if not stuck:
            parent.send(None)
            proc.join()
            return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--os", choices=["linux", "windows", "both"], default="both")
    ap.add_argument("--sigmahq", type=Path, default=ROOT.parent / "shared" / "sigmahq")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per case before giving up")
    ap.add_argument("--max-ms", type=float, default=250.0,
                    help="fail when one 64 KiB event costs dcops more CPU than this")
    ap.add_argument("--max-growth", type=float, default=3.0,
                    help="fail when the per-KiB cost grows more than this from 8 to 64 KiB")
    args = ap.parse_args()
    oses = ["linux", "windows"] if args.os == "both" else [args.os]
    dirs = [str(args.sigmahq / top / o) for o in oses
            for top in ("rules", "rules-threat-hunting") if (args.sigmahq / top / o).is_dir()]
    if not dirs:
        sys.exit(f"no SigmaHQ rules under {args.sigmahq}")
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; rules: {', '.join(dirs)}")
    results = {}
    for mode in ("dcops", "re"):  # dcops first: the peer's matchers replace ours for good
        if mode == "re":
            _backtracking()
        t = time.process_time()
        engine = Engine(load_rules([Path(d) for d in dirs]))
        print(f"{mode}: {len(engine.rules)} rules loaded in {time.process_time() - t:.1f} s CPU")
        results[mode] = run(engine, _cases(engine), args.timeout)
    worst: dict[str, dict[tuple[str, int], float | None]] = {}
    for mode, got in results.items():
        agg: dict[tuple[str, int], float | None] = {}
        for (_, fam, size), cpu in got.items():
            prev = agg.get((fam, size), 0.0)
            agg[(fam, size)] = None if cpu is None or prev is None else max(prev, cpu)
        worst[mode] = agg
    n = len({k[0] for k in results["dcops"]})
    print(f"{n} logsources; worst CPU of one event (every indexed field holding the value), ms:")
    print(f"{'family':<16}{'size':>8}{'dcops':>12}{'re (before)':>14}")
    failed = []
    for fam in FAMILIES:
        for size in SIZES:
            mine = worst["dcops"][(fam, size)]
            peer = worst["re"][(fam, size)]
            def fmt(x: float | None) -> str:
                return f"> {args.timeout * 1000:,.0f}" if x is None else f"{x * 1000:,.1f}"
            print(f"{fam:<16}{size:>8}{fmt(mine):>12}{fmt(peer):>14}")
        small, big = worst["dcops"][(fam, SIZES[1])], worst["dcops"][(fam, SIZES[2])]
        if big is None or big * 1000 > args.max_ms:
            failed.append(f"{fam}: 64 KiB costs {fmt(big)} ms (ceiling {args.max_ms:.0f})")
        elif small and big / 8 > args.max_growth * small and big > 0.005:
            failed.append(f"{fam}: {big / small:.1f}x the cost for 8x the size (super-linear)")
    if failed:
        print("FAIL: " + "; ".join(failed), file=sys.stderr)
        sys.exit(1)
    print("PASS: every family stays linear and under the ceiling with dcops' matchers")



if __name__ == "__main__":
    main()
