"""Plain TCP shared by the worker processes, new connections going to the least loaded one.

With SO_REUSEPORT the kernel hashes each connection to one worker's socket: eight senders
split 6/2 or 7/1 as often as 4/4, and the busiest worker then sets the pace of the whole
collector (measured: one worker at 5.4 CPU-s while the other had 1.8 for the same flood). Here
the workers share one listening socket, inherited at fork, and each accepts only while it holds
no more connections than the least loaded worker (a shared array of open counts, each worker
writing its own slot); the others leave the connection to it. Should it not take a waiting
connection within `HANDOVER` seconds (a worker stuck or gone), anyone takes it: balance is a
preference, never a reason for a sender to wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import socket
from collections.abc import Callable, MutableSequence
from typing import TYPE_CHECKING

from dcops.collectors.syslog_accept import accept_one
from dcops.collectors.syslog_net import StreamConn

if TYPE_CHECKING:
    from dcops.collectors.syslog import SyslogServer

log = logging.getLogger(__name__)
RECHECK = 0.02  # seconds between looks at the loads while this worker holds more than another
HANDOVER = 0.1  # seconds a waiting connection is left to the least loaded worker at most


def _waiting(sock: socket.socket) -> bool:
    """A connection waits in the listening socket's queue."""
    poll = select.poll()  # (not select(): no limit on the descriptor's number)
    with contextlib.suppress(OSError, ValueError):
        poll.register(sock, select.POLLIN)
        return bool(poll.poll(0))
    return False


class SharedListener:
    """Accepts on a listening socket every worker holds; `loads[index]` is this worker's."""

    def __init__(self, server: SyslogServer, sock: socket.socket,
                 loads: MutableSequence[int], index: int,
                 conn: Callable[[SyslogServer, str], StreamConn] = StreamConn,
                 source: str = "syslog_tcp") -> None:
        self.server, self.sock, self.loads, self.index = server, sock, loads, index
        self.conn, self.source = conn, source
        self.deferred = 0  # connections left to a less loaded worker (a counter, for tests)
        self._opening = 0  # accepted, connection_made not run yet
        self._task: asyncio.Task[None] | None = None
        self._setups: set[asyncio.Task[None]] = set()
        sock.setblocking(False)

    @property
    def port(self) -> int:
        """The shared port."""
        return int(self.sock.getsockname()[1])

    def start(self) -> None:
        """Start accepting (on the running loop)."""
        self.sync()
        self._task = asyncio.get_running_loop().create_task(self._accept())

    def sync(self) -> None:
        """Publish this worker's load: open connections plus those being set up."""
        self.loads[self.index] = self.server.open_by[self.source] + self._opening

    def _mine_to_take(self) -> bool:
        return self.loads[self.index] <= min(self.loads)

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        waited = 0.0
        while True:
            if not self._mine_to_take():
                await asyncio.sleep(RECHECK)
                if not _waiting(self.sock):
                    waited = 0.0
                    continue
                waited += RECHECK
                if waited < HANDOVER:
                    self.deferred += 1
                    continue  # the least loaded worker's to take, for a moment
            peer = await accept_one(self.server, self.sock, "TCP")
            if peer is None:
                continue
            waited = 0.0
            self._opening += 1
            self.sync()
            task = loop.create_task(self._open(peer))
            self._setups.add(task)
            task.add_done_callback(self._setups.discard)

    async def _open(self, peer: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(lambda: self.conn(self.server, self.source), peer)
        except OSError as exc:  # gone before its transport was set up
            log.debug("syslog TCP: connection lost at accept: %s", exc)
            with contextlib.suppress(OSError):
                peer.close()
        finally:
            self._opening -= 1
            self.sync()

    async def close(self) -> None:
        """Stop accepting (this worker's copy of the socket; the others keep theirs)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._setups):  # (a connection being set up is closed by asyncio)
            task.cancel()
        if self._setups:
            await asyncio.gather(*self._setups, return_exceptions=True)
        self.sock.close()
