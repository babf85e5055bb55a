"""Time the lab: up/down of N hosts per mode, and Fabric ThreadingGroup against SerialGroup.

Usage: .venv/bin/python scripts/lab/bench.py [--hosts 3] [--modes chroot,systemd]
Needs root and a built image (`dcops lab image`). Prints one line per figure.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from dcops.cli.common import configure_lab
from dcops.lab import Lab


def timed(label: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    """Run fn(*args, **kwargs) and print how long it took."""
    start = time.perf_counter()
    fn(*args, **kwargs)
    took = time.perf_counter() - start
    print(f"{label:<52} {took:7.2f} s")
    return took


def main() -> None:
    """Bring a bench lab up and down in each mode and time the steps."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--modes", default="chroot,systemd")
    args = parser.parse_args()
    configure_lab()  # where `dcops lab` keeps labs and the image cache
    for mode in args.modes.split(","):
        lab = Lab(f"bench{mode[:3]}")
        try:
            timed(f"up {args.hosts} hosts ({mode})", lab.up, args.hosts, mode)
            timed(f"up again, idempotent ({mode})", lab.up, args.hosts, mode)
            for threading in (True, False):
                group = lab.fabric_group(threading=threading)
                kind = "ThreadingGroup" if threading else "SerialGroup"
                try:
                    timed(f"Fabric {kind}: uname on {args.hosts} hosts ({mode})",
                          group.run, "uname -r", hide=True, in_stream=False)
                finally:
                    group.close()
        finally:
            timed(f"down ({mode})", lab.down)


if __name__ == "__main__":
    main()
