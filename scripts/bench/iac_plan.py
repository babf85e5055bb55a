#!/usr/bin/env python3
"""`dcops iac plan` at commune scale: seconds and resources per province, against the 15 s goal.

Issue 17 item 5: the plan of a 95-commune province in under 15 s on this machine. For each
province the inventory is written by `dcops inventory scaffold` (every commune of the official
list with its router and VPN peer, both DCs, the example systems), then `dcops iac plan` runs as a
user runs it (the real CLI in a child process): each stack with `--json --no-svg`, and the default
command (both stacks planned for the topology SVG, the SVG written). Several rounds, median and
spread; the machine's load is printed beside the figures. The example province
(`inventories/production`) is timed too, for comparison.

Usage: .venv/bin/python scripts/bench/iac_plan.py [--provinces "Lai Châu,Đồng Nai,Hồ Chí Minh"]
       [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GOAL_S = 15.0


def dcops(*args: str, state: Path) -> tuple[float, str]:
    """Run the real CLI; (seconds, stdout). A failure stops the bench with its output."""
    env = {**os.environ, "DCOPS_STATE_DIR": str(state)}
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "dcops", *args], check=False, cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=600)
    took = time.monotonic() - t
    if r.returncode != 0:
        raise SystemExit(f"dcops {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return took, r.stdout


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} [{min(values):.2f}-{max(values):.2f}]"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--provinces", default="Lai Châu,Đồng Nai,Hồ Chí Minh")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rows: list[tuple[str, str, int, list[float]]] = []
    with tempfile.TemporaryDirectory(prefix="dcops-bench-plan-") as tmp:
        base = Path(tmp)
        inventories: list[tuple[str, Path]] = [("production (example)",
                                                REPO / "inventories" / "production")]
        for name in (p.strip() for p in args.provinces.split(",") if p.strip()):
            out = base / f"inv{len(inventories)}"
            _, said = dcops("inventory", "scaffold", "--province", name, "--out", str(out),
                            state=base / "state")
            inventories.append((said.split(": ", 1)[1].split(",", 1)[0] if ": " in said
                                else name, out))
        for label, inv in inventories:
            for stack in ("primary", "backup"):
                times, resources = [], 0
                for _ in range(args.rounds):
                    took, out_json = dcops("iac", "plan", "-i", str(inv), "--stack", stack,
                                           "--json", "--no-svg", state=base / "state")
                    times.append(took)
                    listed = json.loads(out_json)["resources"]
                    resources = len(listed) if isinstance(listed, list) else int(listed)
                rows.append((label, f"{stack}, --no-svg", resources, times))
            times = [dcops("iac", "plan", "-i", str(inv), "--svg", str(base / "t.svg"),
                           state=base / "state")[0] for _ in range(args.rounds)]
            rows.append((label, "default (both stacks, SVG)", 0, times))
    load = os.getloadavg()
    print(f"\ndcops iac plan, the real CLI, {args.rounds} rounds each; load average "
          f"{load[0]:.1f} on {os.cpu_count()} cores; goal < {GOAL_S:.0f} s (issue 17 item 5)")
    print(f"{'province':34}{'command':30}{'resources':>10}  {'median s [min-max]':>22}  goal")
    worst = 0.0
    for label, what, resources, times in rows:
        med = statistics.median(times)
        worst = max(worst, med)
        print(f"{label:34}{what:30}{resources or '':>10}  {spread(times):>22}  "
              f"{'pass' if med < GOAL_S else 'FAIL'}")
    print(f"\nslowest median {worst:.2f} s (goal < {GOAL_S:.0f} s): "
          f"{'pass' if worst < GOAL_S else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
