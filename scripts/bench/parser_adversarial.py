#!/usr/bin/env python3
"""CPU time of every parser entry point on hostile lines of 1, 8 and 64 KiB (issue 13, item 1).

For every entry point (the Normaliser behind each syslog header, parse_syslog, find_bsd_time,
parse_netfilter, the Linux and Cisco program parsers, parse_record, the Wazuh alert reader,
split_frames) and every family of `dcops.collectors.parsers.adversarial`, it prints the CPU time
of one call and the µs per KiB, and fails (exit 1) when a case costs more than the ceiling per
KiB, when a 64 KiB line costs more than --max-ms (the acceptance: well under 50 ms), or when the
cost per KiB at 64 KiB is more than --max-growth times the cost per KiB at 1 KiB (super-linear).
Each (entry point, family) runs in a forked child with a deadline, so a backtracking parser
shows up as a timeout instead of hanging the run.

    .venv/bin/python scripts/bench/parser_adversarial.py
    .venv/bin/python scripts/bench/parser_adversarial.py --only netfilter --family in_ --timeout 5
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from dcops.collectors.parsers.adversarial import FAMILIES, entry_points, line

SIZES = (1024, 8 * 1024, 64 * 1024)
# issue 13's check: lines with `IN=` and 10k spaces, 64 KiB random lines, well under 50 ms each
ACCEPTANCE = ("in_10k_spaces", "random_printable", "random_bytes")
ENTRY_POINTS = entry_points()


def cpu_per_call(fn: Callable[[str], Any], line: str) -> float:
    """Seconds of CPU for one call: the best of 3 rounds of enough calls to last ~5 ms."""
    gc.collect()
    gc.disable()
    try:
        t = time.process_time()
        fn(line)
        first = time.process_time() - t
        reps = max(1, min(200, int(0.005 / max(first, 1e-7))))
        best = first
        for _ in range(3):
            t = time.process_time()
            for _ in range(reps):
                fn(line)
            best = min(best, (time.process_time() - t) / reps)
        return best
    finally:
        gc.enable()


def _child(entry: str, family: str, sizes: tuple[int, ...], conn: Connection) -> None:
    head, fn = ENTRY_POINTS[entry]
    for size in sizes:
        conn.send((size, cpu_per_call(fn, line(family, head, size))))
    conn.close()


def run_case(
    entry: str, family: str, sizes: tuple[int, ...], timeout: float
) -> dict[int, float | str]:
    """CPU seconds per call by size, or why that size has none ("timeout", "crashed")."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(entry, family, sizes, child), daemon=True)
    proc.start()
    child.close()
    got: dict[int, float | str] = dict.fromkeys(sizes, "timeout")
    deadline = time.monotonic() + timeout
    for _ in sizes:
        left = deadline - time.monotonic()
        if left <= 0 or not parent.poll(left):
            break
        try:
            size, secs = parent.recv()
        except EOFError:  # the child died: the parser raised or the process crashed
            for size in sizes:
                if not isinstance(got[size], float):
                    got[size] = "crashed"
            break
        got[size] = secs
    if proc.is_alive():
        proc.kill()
    proc.join()
    return got


def judge(got: dict[int, float | str], args: argparse.Namespace) -> tuple[str, list[str]]:
    """The printed cells of one case and what is wrong with it."""
    cells, problems = [], []
    for size in SIZES:
        secs, kb = got[size], size // 1024
        if not isinstance(secs, float):
            cells.append(f"{kb:>3}k  {secs}")
            problems.append(
                f"{kb} KiB {secs}" + (f" (> {args.timeout:.0f} s)" if secs == "timeout" else "")
            )
            continue
        per_kb = secs * 1e6 / kb
        cells.append(f"{kb:>3}k {secs * 1e3:9.3f} ms {per_kb:9.1f} µs/KiB")
        if per_kb > args.ceiling_us_per_kb:
            problems.append(f"{kb} KiB: {per_kb:.0f} µs/KiB > {args.ceiling_us_per_kb}")
    big, small = got[SIZES[-1]], got[SIZES[0]]
    if isinstance(big, float) and big * 1e3 > args.max_ms:
        problems.append(f"64 KiB: {big * 1e3:.1f} ms > {args.max_ms} ms")
    if isinstance(big, float) and isinstance(small, float):
        growth = (big / 64) / max(small, 1e-9)
        cells.append(f"growth {growth:5.2f}")
        if growth > args.max_growth:
            problems.append(f"µs/KiB grows {growth:.1f}x from 1 to 64 KiB")
    return " | ".join(cells), problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--only", default="", help="entry points whose name contains this text")
    ap.add_argument("--family", default="", help="families whose name contains this text")
    ap.add_argument(
        "--timeout",
        type=float,
        default=20.0,
        help="seconds for all sizes of one (entry point, family) before it fails",
    )
    ap.add_argument(
        "--ceiling-us-per-kb",
        type=float,
        default=2000.0,
        help="fail when a case costs more CPU µs per KiB than this",
    )
    ap.add_argument(
        "--max-ms",
        type=float,
        default=50.0,
        help="fail when one 64 KiB line costs more CPU milliseconds than this",
    )
    ap.add_argument(
        "--max-growth",
        type=float,
        default=4.0,
        help="fail when µs/KiB at 64 KiB exceeds this many times µs/KiB at 1 KiB",
    )
    ap.add_argument("--all", action="store_true", help="print every case, not only the worst")
    args = ap.parse_args(argv)

    entries = [e for e in ENTRY_POINTS if args.only in e]
    families = [f for f in FAMILIES if args.family in f]
    failures: list[str] = []
    rows: list[tuple[float, str]] = []
    started = time.monotonic()
    for entry in entries:
        for family in families:
            got = run_case(entry, family, SIZES, args.timeout)
            cells, problems = judge(got, args)
            row = f"{entry:24} {family:24} {cells}"
            big = got[SIZES[-1]]
            rows.append((big if isinstance(big, float) else float("inf"), row))
            if problems:
                failures.append(f"{entry} / {family}: " + "; ".join(problems))
            if args.all:
                print(row, flush=True)
    if not args.all:
        print("the 25 costliest cases at 64 KiB (CPU per call):")
        for _, row in sorted(rows, reverse=True)[:25]:
            print(row)
    accepted = [(secs, row) for secs, row in rows if row.split()[1] in ACCEPTANCE]
    if accepted:
        worst, row = max(accepted)
        print(
            f"acceptance ({', '.join(ACCEPTANCE)}): the costliest 64 KiB line took "
            f"{worst * 1e3:.1f} ms of CPU ({' / '.join(row.split()[:2])})"
        )
    print(
        f"{len(rows)} cases ({len(entries)} entry points x {len(families)} families) in "
        f"{time.monotonic() - started:.0f} s"
    )
    if failures:
        print(f"FAIL: {len(failures)} cases", file=sys.stderr)
        for f in failures:
            print("  " + f, file=sys.stderr)
        return 1
    print("OK: every case linear and under the ceilings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
