#!/usr/bin/env python3
"""`dcops audit run` at fleet size: seconds per host over real lab hosts, and the extrapolation.

Issue 16 item 7: 100 hosts in under 60 s on this machine. One lab (`dcops lab up --hosts N`,
chroot mode: an sshd per host in its own network namespace, cheap) is started with the largest
size asked for. For each size an inventory is made from the lab's inventory: the first N hosts,
the generic ones put in the LGSP system so that every host is audited. The real CLI runs
(`dcops audit run --lab`, a child process, PDF included) and the bench prints wall seconds, CPU
seconds of the audit process, the SSH phase's seconds as the audit printed them, seconds per host,
and a least-squares line (fixed + per-host) extrapolated to 100 and 1,000 hosts. The load of
the machine is printed beside the figures. The IaC phase is 0 here: the lab inventory has no
cloud address plan (issue 16 item 6); on the example province the plan is cached by
inventory hash after the first run (`dcops.iac.plancache`).

Usage: .venv/bin/python scripts/bench/audit_scale.py [--sizes 10,30,100] [--rounds 1]
       [--ssh-concurrency 32] [--name bench-audit] [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
GOAL_S = 60.0


def dcops(*args: str, check: bool = True) -> tuple[float, float, str]:
    """Run the real CLI: (wall s, CPU s of the child, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "dcops", *args], check=False, cwd=REPO,
                       capture_output=True, text=True, timeout=1800,
                       env={**os.environ, "COLUMNS": "200"})
    wall = time.monotonic() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if check and r.returncode != 0:
        raise SystemExit(f"dcops {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return wall, cpu, r.stdout


def inventory_of(lab_inventory: Path, hosts: int, out: Path) -> int:
    """inventories/lab with the lab's first `hosts` hosts; generic hosts join the LGSP system."""
    shutil.copytree(REPO / "inventories" / "lab", out)
    data = yaml.safe_load(lab_inventory.read_text(encoding="utf-8"))
    groups = data["all"]["children"]
    kept = 0
    for group in ("primary_servers", "backup_servers"):
        members = groups[group].get("hosts") or {}
        for name in list(members):
            if kept >= hosts:
                del members[name]
            else:
                kept += 1
    alive = {n for g in ("primary_servers", "backup_servers")
             for n in (groups[g].get("hosts") or {})}
    for name, group in groups.items():
        if isinstance(group, dict) and name not in ("primary_servers", "backup_servers") \
                and isinstance(group.get("hosts"), dict):
            group["hosts"] = {h: v for h, v in group["hosts"].items() if h in alive}
    groups["lgsp"]["hosts"].update({h: None for h in sorted(alive) if h.startswith("lab-node")})
    (out / "hosts.yml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return len(alive)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,30,100")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--ssh-concurrency", type=int, default=32)
    ap.add_argument("--name", default="bench-audit")
    ap.add_argument("--keep", action="store_true", help="Leave the lab running.")
    args = ap.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{os.cpu_count()} CPUs")
    wall, _, _ = dcops("lab", "up", "--name", args.name, "--hosts", str(max(sizes)))
    print(f"lab {args.name}: {max(sizes)} chroot hosts up in {wall:.1f} s")
    lab_inventory = Path(os.environ.get("DCOPS_STATE_DIR", Path.home() / ".local/share/dcops")) \
        / "lab" / args.name / "inventory.yml"
    rows: list[tuple[int, list[float], list[float], list[float]]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="dcops-bench-audit-") as tmp:
            for size in sizes:
                inv = Path(tmp) / f"inv{size}"
                n = inventory_of(lab_inventory, size, inv)
                walls, cpus, sshs = [], [], []
                for r in range(args.rounds):
                    out = Path(tmp) / f"out{size}-{r}"
                    w, c, said = dcops("audit", "run", "-i", str(inv), "--lab", args.name,
                                       "--out", str(out), "--ssh-concurrency",
                                       str(args.ssh_concurrency))
                    m = re.search(r"ssh: \d+ bản ghi / records \(([\d.]+) s\)", said)
                    walls.append(w)
                    cpus.append(c)
                    sshs.append(float(m.group(1)) if m else float("nan"))
                    probed = len(re.findall(r"✓ ssh lab-", said))
                    if probed != n:
                        raise SystemExit(f"{size} hosts: the audit probed {probed} of {n}:\n{said}")
                rows.append((n, walls, cpus, sshs))
                print(f"  {n:4} hosts: {statistics.median(walls):6.1f} s wall "
                      f"[{min(walls):.1f}-{max(walls):.1f}], {statistics.median(cpus):5.1f} CPU-s, "
                      f"ssh phase {statistics.median(sshs):5.1f} s, "
                      f"{statistics.median(walls) / n:.2f} s/host", flush=True)
    finally:
        if not args.keep:
            dcops("lab", "down", "--name", args.name, check=False)
    xs = [float(n) for n, *_ in rows]
    for label, ys in (("wall", [statistics.median(w) for _, w, _, _ in rows]),
                      ("CPU", [statistics.median(c) for _, _, c, _ in rows])):
        if len(rows) < 2:
            break
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / \
            sum((x - mx) ** 2 for x in xs)
        fixed = my - slope * mx
        print(f"{label} fit: {fixed:.1f} s fixed + {slope:.3f} s per host; extrapolated: "
              + ", ".join(f"{n} hosts {fixed + slope * n:.1f} s" for n in (100, 1000)))
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    largest = rows[-1]
    ok = largest[0] >= 100 and statistics.median(largest[1]) < GOAL_S
    print(f"goal: 100 hosts in under {GOAL_S:.0f} s: "
          f"{'PASS' if ok else 'FAIL' if largest[0] >= 100 else 'not measured (fewer hosts)'}")
    return 0 if ok or largest[0] < 100 else 1


if __name__ == "__main__":
    raise SystemExit(main())
