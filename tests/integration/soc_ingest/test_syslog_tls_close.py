"""A TLS forwarder that sends a burst and hangs up while the spool is slow loses nothing.

While a connection waits for the writer, asyncio's TLS layer keeps reading ahead and decrypting;
when the peer then closes, its flush handed a BufferedProtocol one buffer (16 KiB) and dropped
the rest, so the last messages before a hang-up were lost. The burst here is ~400 KiB, many
times the read-ahead, and each store takes 50 ms, so the close always finds decrypted data
waiting.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from test_syslog_limits import running

from dcops.collectors.syslog import server_tls_context
from dcops.model.event import Event
from dcops.pipeline import SqliteSpool

pytestmark = pytest.mark.integration

N = 4000


class SlowSpool:
    """The real spool, 50 ms slower per store (a busy disk)."""

    def __init__(self, path: Path) -> None:
        self.spool = SqliteSpool(path)

    def publish(self, events: Sequence[Event]) -> None:
        time.sleep(0.05)
        self.spool.publish(events)

    def dead_letter(self, source: str, raw: bytes, reason: str, event_id: str = "") -> None:
        self.spool.dead_letter(source, raw, reason, event_id)


def _burst_then_close(port: int, ca: Path, how: str) -> None:
    ctx = ssl.create_default_context(cafile=str(ca))
    raw = socket.create_connection(("127.0.0.1", port))
    tls = ctx.wrap_socket(raw, server_hostname="localhost")
    body = b"".join(b"<13>Nov 22 05:00:00 web1 app: burst %05d %s\n" % (i, b"x" * 60)
                    for i in range(N))
    tls.sendall(body)
    if how == "close_notify":
        tls.unwrap().close()  # TLS close_notify, then FIN
        return
    # FIN without close_notify (a forwarder killed between records, or a lazy TLS stack). What
    # the server sent (TLS 1.3 session tickets) is read first: closing a socket with unread data
    # sends RST, and the server's kernel would then discard what it had not yet read.
    tls.shutdown(socket.SHUT_WR)
    tls.settimeout(60)
    while tls.recv(65536):
        pass
    tls.close()


@pytest.mark.parametrize("how", ["close_notify", "fin"])
def test_tls_burst_then_hang_up_is_stored_whole(tmp_path: Path, pki: Any, how: str) -> None:
    sink = SlowSpool(tmp_path / "spool.db")
    tls = server_tls_context(pki.cert, pki.key)
    try:
        with running(sink, udp_port=None, tcp_port=None, tls_port=0, tls=tls) as server:
            _burst_then_close(server.ports["tls"], pki.ca, how)
            deadline = time.monotonic() + 60
            got: set[str] = set()
            other: list[str] = []
            while time.monotonic() < deadline and len(got) < N:
                time.sleep(0.2)
                raws = [str(e.raw) for _, e in sink.spool.fetch("t", 10 * N)]
                got = {r.split("burst ")[1][:5] for r in raws if "burst " in r}
                other = [r[:80] for r in raws if "burst " not in r]
    finally:
        sink.spool.close()
    missing = sorted({f"{i:05d}" for i in range(N)} - got)
    assert not other, other
    assert not missing, f"{len(missing)} of {N} lost, first {missing[:5]}, last {missing[-5:]}"
