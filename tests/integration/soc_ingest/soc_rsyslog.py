"""A real rsyslogd for the syslog tests: find its modules portably, run it, feed it with logger."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sysconfig
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A loopback port free right now (UDP by default)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rsyslog_module(name: str) -> Path | None:
    """Where this machine's rsyslog keeps a module (`lmnsd_gtls.so`), whatever the architecture.

    Debian puts modules in /usr/lib/<multiarch>/rsyslog, other distributions in /usr/lib64/rsyslog
    or /usr/lib/rsyslog: ask the interpreter for the multiarch triplet, then look at the others.
    """
    dirs: list[Path] = []
    multiarch = sysconfig.get_config_var("MULTIARCH")
    if multiarch:
        dirs.append(Path("/usr/lib") / multiarch / "rsyslog")
    dirs += sorted(Path("/usr/lib").glob("*/rsyslog"))
    dirs += [Path("/usr/lib64/rsyslog"), Path("/usr/lib/rsyslog")]
    for d in dirs:
        if (d / name).is_file():
            return d / name
    return None


@contextmanager
def rsyslogd(conf_text: str, workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """rsyslogd -n with this configuration, stopped (SIGTERM, then SIGKILL) afterwards."""
    conf = workdir / "rsyslog.conf"
    conf.write_text(conf_text)
    check = subprocess.run(
        ["rsyslogd", "-N1", "-f", str(conf)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, f"rsyslog rejects its test configuration: {check.stderr}"
    proc = subprocess.Popen(
        ["rsyslogd", "-n", "-f", str(conf), "-i", str(workdir / "rsyslog.pid")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def feed_until(port: int, marker: str, seen: Callable[[], bool], timeout: float = 30) -> bool:
    """Send sshd failures tagged `marker` to rsyslog's imudp port until `seen()` (slow start)."""
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        n += 1
        subprocess.run(
            [
                "logger",
                "--udp",
                "--server",
                "127.0.0.1",
                "--port",
                str(port),
                "-t",
                "sshd",
                f"Failed password for root from 10.8.0.{n % 250} port 22 ssh2 {marker}",
            ],
            check=True,
            timeout=20,
        )
        end = time.monotonic() + 1
        while time.monotonic() < end:
            if seen():
                return True
            time.sleep(0.1)
    return False
