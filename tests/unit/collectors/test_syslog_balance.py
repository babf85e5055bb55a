"""TCP workers sharing one listening socket: connections go to the least loaded worker, and a
worker that does not take its turn never makes a sender wait for long."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from dcops.collectors import syslog_balance
from dcops.collectors.health import IntakeMetrics
from dcops.collectors.syslog import SyslogConfig, SyslogServer


class _Sink:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def publish(self, events: Any) -> None:
        self.events.extend(events)


def _listener() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


def _worker(sock: socket.socket, loads: list[int], index: int, sink: _Sink) -> SyslogServer:
    """A worker's server on its own copy of the shared socket (as after fork)."""
    cfg = SyslogConfig(udp_port=None, tcp_port=None, shared_tcp=sock.dup(),
                       tcp_loads=loads, worker=index)
    return SyslogServer(sink, cfg, IntakeMetrics())  # type: ignore[arg-type]


async def _until(cond: Any, limit: float = 5.0) -> None:
    deadline = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_connections_are_spread_evenly_and_messages_stored() -> None:
    async def run() -> None:
        sock, loads = _listener(), [0, 0]
        sinks = [_Sink(), _Sink()]
        servers = [_worker(sock, loads, i, sinks[i]) for i in range(2)]
        port = sock.getsockname()[1]
        sock.close()
        for s in servers:
            await s.start()
        clients = []
        for i in range(8):  # one at a time, as senders come: each goes to the emptier worker
            r, w = await asyncio.open_connection("127.0.0.1", port)
            clients.append((r, w))
            await _until(lambda i=i: sum(loads) == i + 1)
        assert loads == [4, 4]
        assert [s.open_by["syslog_tcp"] for s in servers] == [4, 4]
        for i, (_, w) in enumerate(clients):
            w.write(b"<38>Nov 22 05:00:01 web1 sshd[1]: Failed password for x from 10.0.0.%d "
                    b"port 22 ssh2\n" % i)
            await w.drain()
        await _until(lambda: sum(len(k.events) for k in sinks) == 8)
        assert [len(k.events) for k in sinks] == [4, 4]
        for _, w in clients[:3]:  # three of worker 0's or 1's senders leave ...
            w.close()
        await _until(lambda: sum(loads) == 5)
        for s in servers:
            await s.stop()
        for _, w in clients[3:]:
            w.close()

    asyncio.run(run())


def test_a_worker_that_does_not_accept_leaves_no_sender_waiting(monkeypatch: Any) -> None:
    """Worker 1 (gone, its slot says 0) is the least loaded; worker 0 takes the connection
    after the handover time instead of leaving it in the queue."""
    monkeypatch.setattr(syslog_balance, "HANDOVER", 0.2)

    async def run() -> None:
        sock, loads = _listener(), [0, 0]
        sink = _Sink()
        server = _worker(sock, loads, 0, sink)
        port = sock.getsockname()[1]
        sock.close()
        await server.start()
        listener = server.shared_tcp
        assert listener is not None
        _, w1 = await asyncio.open_connection("127.0.0.1", port)
        await _until(lambda: loads[0] == 1)  # a tie: worker 0 takes the first one at once
        t0 = time.monotonic()
        _, w2 = await asyncio.open_connection("127.0.0.1", port)
        await _until(lambda: loads[0] == 2)
        waited = time.monotonic() - t0
        assert listener.deferred > 0  # it did leave it to worker 1 for a while ...
        assert waited < 2.0  # ... and then took it
        w2.write(b"<38>Nov 22 05:00:01 web1 sshd[1]: hello\n")
        await w2.drain()
        await _until(lambda: len(sink.events) == 1)
        await server.stop()
        w1.close()
        w2.close()

    asyncio.run(run())
