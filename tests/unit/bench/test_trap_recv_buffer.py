"""`dcops collect traps --recv-buffer`: the trap race gives both receivers the same buffer."""

from __future__ import annotations

import socket

from typer.testing import CliRunner

from dcops.cli import app
from dcops.collectors.snmp.traps import bind_udp


def test_recv_buffer_below_minimum_is_refused() -> None:
    r = CliRunner().invoke(app, ["collect", "traps", "--recv-buffer", "1000"])
    assert r.exit_code == 2
    assert "--recv-buffer" in r.output and "65536" in r.output


def test_bind_udp_applies_the_requested_buffer() -> None:
    sock = bind_udp("127.0.0.1", 0, 1 << 20)
    try:  # Linux doubles the value for bookkeeping; SO_RCVBUFFORCE or rmem_max-capped
        got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        assert got >= 1 << 20
    finally:
        sock.close()
