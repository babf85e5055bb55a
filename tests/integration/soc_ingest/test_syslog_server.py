"""The syslog server receives from util-linux `logger` and a real rsyslog (omfwd UDP, TCP, TLS)."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from soc_rsyslog import feed_until, free_port, rsyslog_module, rsyslogd

pytestmark = pytest.mark.integration

needs_logger = pytest.mark.skipif(
    shutil.which("logger") is None, reason="util-linux logger missing"
)


def _logger(*args: str) -> None:
    subprocess.run(["logger", *args], check=True, timeout=20)


@needs_logger
@pytest.mark.parametrize(
    ("transport", "fmt"),
    [
        ("--udp", "--rfc3164"),
        ("--udp", "--rfc5424"),
        ("--tcp", "--rfc3164"),
        ("--tcp", "--rfc5424"),
        ("--tcp", "--octet-count"),
    ],
)
def test_logger_into_server(syslog_server: Any, transport: str, fmt: str) -> None:
    tag = f"t{uuid.uuid4().hex[:8]}"
    port = syslog_server.ports["udp" if transport == "--udp" else "tcp"]
    extra = [fmt] if fmt != "--octet-count" else ["--rfc5424", "--octet-count"]
    msgs = [f"Failed password for invalid user u{i} from 10.9.0.{i} port 22 ssh2" for i in range(5)]
    for m in msgs:
        _logger(
            transport,
            *extra,
            "--server",
            "127.0.0.1",
            "--port",
            str(port),
            "-t",
            "sshd",
            "-p",
            "auth.warning",
            "--id=4242",
            m,
        )
    fields = syslog_server.wait_for(lambda fs: len(fs) >= 5)
    assert len(fields) == 5, fields
    assert sorted(f["user.name"] for f in fields) == [f"u{i}" for i in range(5)]
    assert all(f["event.outcome"] == "failure" and f["process.pid"] == 4242 for f in fields)
    assert all(
        f["log.syslog.facility.code"] == 4 and f["log.syslog.severity.code"] == 4 for f in fields
    )
    del tag


@needs_logger
def test_logger_multiline_tcp_keeps_each_message(syslog_server: Any) -> None:
    port = str(syslog_server.ports["tcp"])
    proc = subprocess.run(
        [
            "logger",
            "--tcp",
            "--server",
            "127.0.0.1",
            "--port",
            port,
            "-t",
            "app",
            "--rfc5424",
            "--octet-count",
        ],
        input="one\ntwo\nthree\n",
        text=True,
        check=True,
        timeout=20,
    )
    assert proc.returncode == 0
    fields = syslog_server.wait_for(lambda fs: len(fs) >= 3)
    assert sorted(f["message"] for f in fields) == ["one", "three", "two"]


def test_tls_client_with_ca_verification(syslog_server: Any, pki: Any) -> None:
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    with (
        socket.create_connection(("127.0.0.1", syslog_server.ports["tls"])) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as s,
    ):
        for i in range(3):
            msg = (
                f"<86>1 2026-11-22T05:00:00Z web1 sshd 1 - - "
                f"Accepted password for a{i} from 10.0.0.1 port 1 ssh2"
            )
            s.sendall(f"{len(msg.encode())} {msg}".encode())
        s.sendall(
            b"<86>Nov 22 05:00:00 web1 sudo: bob : TTY=pts/0 ; PWD=/ ; USER=root ; "
            b"COMMAND=/bin/ls\n"
        )
        # Orderly TLS close: closing with unread session tickets would reset the connection and
        # discard data the server had not read yet (a client artefact, not a server loss).
        s.unwrap()
    fields = syslog_server.wait_for(lambda fs: len(fs) >= 4)
    assert sorted(str(f.get("user.name")) for f in fields) == ["a0", "a1", "a2", "bob"]


def test_auditd_records_over_syslog_joined(syslog_server: Any) -> None:
    port = syslog_server.ports["tcp"]
    recs = [
        "type=SYSCALL msg=audit(1700000000.5:77): syscall=59 success=yes pid=3 ppid=1 "
        'exe="/usr/bin/passwd" key="identity"',
        'type=EXECVE msg=audit(1700000000.5:77): argc=2 a0="passwd" a1="bob"',
        'type=PATH msg=audit(1700000000.5:77): item=0 name="/etc/shadow" nametype=NORMAL',
        "type=EOE msg=audit(1700000000.5:77): ",
    ]
    with socket.create_connection(("127.0.0.1", port)) as s:
        for r in recs:
            s.sendall(f"<85>Nov 22 05:00:00 db1 audisp-syslog: {r}\n".encode())
    fields = syslog_server.wait_for(lambda fs: len(fs) >= 2)
    audit = [f for f in fields if f.get("type") != "EXECVE"]
    assert len(fields) == 2 and audit[0]["name"] == "/etc/shadow" and audit[0]["host.name"] == "db1"


@pytest.mark.skipif(shutil.which("rsyslogd") is None, reason="rsyslog not installed")
@needs_logger
def test_rsyslog_forwards_over_udp_tcp_and_tls(
    syslog_server: Any, pki: Any, tmp_path: Path
) -> None:
    gtls = rsyslog_module("lmnsd_gtls.so")
    assert gtls is not None, "rsyslog-gnutls is not installed: TLS forwarding cannot be tested"
    inputs = {via: free_port() for via in ("udp", "tcp", "tls")}
    conf = f"""
global(workDirectory="{tmp_path}" defaultNetstreamDriverCAFile="{pki.ca}")
module(load="imudp")
ruleset(name="fwd_udp") {{
  action(type="omfwd" target="127.0.0.1" port="{syslog_server.ports["udp"]}" protocol="udp"
         template="RSYSLOG_SyslogProtocol23Format")
}}
ruleset(name="fwd_tcp") {{
  action(type="omfwd" target="127.0.0.1" port="{syslog_server.ports["tcp"]}" protocol="tcp"
         TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
}}
ruleset(name="fwd_tls") {{
  action(type="omfwd" target="127.0.0.1" port="{syslog_server.ports["tls"]}" protocol="tcp"
         StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name"
         StreamDriverPermittedPeers="localhost")
}}
""" + "".join(
        f'input(type="imudp" address="127.0.0.1" port="{port}" ruleset="fwd_{via}")\n'
        for via, port in inputs.items()
    )

    def arrived(via: str) -> list[dict[str, object]]:
        fields = syslog_server.wait_for(lambda fs: False, timeout=0)
        return [f for f in fields if f"via-{via}" in str(f["message"])]

    with rsyslogd(conf, tmp_path):
        for via, port in inputs.items():
            assert feed_until(port, f"via-{via}", lambda v=via: bool(arrived(v))), (
                f"nothing arrived through rsyslog over {via}"
            )
    for via in inputs:
        got = arrived(via)[0]
        assert got["user.name"] == "root" and got["event.action"] == "ssh_login", got
        assert got["log.syslog.facility.code"] == 1, got  # logger's default user.notice
    # Only the TLS listener saw a handshake, and it accepted it.
    assert syslog_server.server.stats["tls_accepted"] >= 1
    assert syslog_server.server.stats["tls_refused"] == 0


class _SlowSink:
    """A sink slower than the sender: the server must push back, not buffer or drop."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def publish(self, events: Any) -> None:
        time.sleep(0.02)
        self.events += events


def test_tcp_backpressure_loses_nothing() -> None:
    import asyncio

    from dcops.collectors.syslog import SyslogConfig, SyslogServer

    sink = _SlowSink()
    server = SyslogServer(sink, SyslogConfig(udp_port=None, tcp_port=0, queue_size=64, batch=100))
    n = 20_000

    async def scenario() -> None:
        await server.start()
        _, writer = await asyncio.open_connection("127.0.0.1", server.ports["tcp"])
        writer.write(b"".join(b"<13>Nov 22 05:00:00 h app: m%d\n" % i for i in range(n)))
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        for _ in range(2400):  # stopping is bounded in time: let it catch up first
            if len(sink.events) >= n:
                break
            await asyncio.sleep(0.05)
        await server.stop()

    asyncio.run(scenario())
    assert len(sink.events) == n
    assert sorted(int(e.fields["message"][1:]) for e in sink.events) == list(range(n))
    assert server.stats["dropped_udp"] == 0


@needs_logger
def test_unix_datagram_socket_like_dev_log(tmp_path: Path) -> None:
    """A lab host's /dev/log served by the collector: its daemons log without a local rsyslog."""
    import asyncio
    import threading

    from dcops.collectors.syslog import SyslogConfig, SyslogServer

    sock = str(tmp_path / "log")
    sink = _SlowSink()
    server = SyslogServer(
        sink,
        SyslogConfig(udp_port=None, tcp_port=None, unix_sockets={sock: "lab-web1"}, audit_idle=0.2),
    )
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        assert ready.wait(10)
        assert (os.stat(sock).st_mode & 0o777) == 0o666
        _logger(
            "--socket",
            sock,
            "-t",
            "sshd",
            "-i",
            "Failed password for root from 10.77.0.1 port 50000 ssh2",
        )
        _logger("--socket", sock, "-t", "su", "(to root) alice on pts/0")
        deadline = time.monotonic() + 10
        while len(sink.events) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(20)
        loop.call_soon_threadsafe(loop.stop)
        t.join(10)
    assert not os.path.exists(sock)
    by_prog = {e.fields["process.name"]: e.fields for e in sink.events}
    assert by_prog["sshd"]["host.name"] == "lab-web1"
    assert by_prog["sshd"]["event.outcome"] == "failure" and by_prog["sshd"]["user.name"] == "root"
    assert by_prog["su"]["user.target.name"] == "root"
