"""The polling service: cycles of polls feeding /metrics and the event sink."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from wsgiref.simple_server import WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

from dcops.collectors.snmp.events import StateTracker
from dcops.collectors.snmp.metrics import SnmpMetrics
from dcops.collectors.snmp.poller import DeviceSample, Poller
from dcops.errors import CollectorError
from dcops.model.sinks import EventSink

log = logging.getLogger(__name__)


class MetricsServer:
    """/metrics over HTTP in a background thread; a busy port is a clear error."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        try:
            self.httpd: WSGIServer = make_server(host, port, make_wsgi_app(registry),
                                                 ThreadingWSGIServer, handler_class=_SilentHandler)
        except OSError as exc:
            raise CollectorError(f"cannot listen on {host}:{port} for /metrics: {exc.strerror} "
                                 "(another process listens there: choose another address)") from exc
        self.port = self.httpd.server_port
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                        name="snmp-metrics")
        self._thread.start()

    def close(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()


class PollService:
    """Runs poll cycles: metrics are rebuilt and state changes published after each."""

    def __init__(self, poller: Poller, metrics: SnmpMetrics, sink: EventSink | None = None,
                 on_cycle: Callable[[list[DeviceSample], float], None] | None = None) -> None:
        self.poller = poller
        self.metrics = metrics
        self.sink = sink
        self.tracker = StateTracker()
        self.on_cycle = on_cycle

    async def cycle(self) -> list[DeviceSample]:
        """One poll of every device."""
        t0 = time.perf_counter()
        samples = await self.poller.poll_all()
        took = time.perf_counter() - t0
        self.metrics.update(samples, took)
        events = self.tracker.observe(samples)
        if events and self.sink is not None:
            await asyncio.to_thread(self.sink.publish, events)
        if self.on_cycle is not None:
            self.on_cycle(samples, took)
        return samples

    async def run(self, interval: float, stop: asyncio.Event | None = None) -> None:
        """Poll every `interval` seconds (cycles never overlap) until `stop` is set."""
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            start = loop.time()
            await self.cycle()
            delay = max(0.0, interval - (loop.time() - start))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
