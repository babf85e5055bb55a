"""The polling service: cycles of polls feeding /metrics and the event sink."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

from prometheus_client import CollectorRegistry, generate_latest, make_wsgi_app
from prometheus_client.exposition import (
    CONTENT_TYPE_PLAIN_0_0_4,
    ThreadingWSGIServer,
    _SilentHandler,
)

from dcops.collectors.snmp.events import StateTracker
from dcops.collectors.snmp.metrics import SnmpMetrics
from dcops.collectors.snmp.poller import DeviceSample, Poller
from dcops.errors import CollectorError
from dcops.model.sinks import EventSink

log = logging.getLogger(__name__)


def text_app(registry: CollectorRegistry,
             texts: Sequence[Callable[[], bytes]]) -> Callable[..., Any]:
    """A WSGI app serving the registry and ready-made exposition texts, in text format 0.0.4.

    A poller that writes its exposition once per cycle (SnmpMetrics.text()) is served as is
    instead of being re-formatted sample by sample on every scrape; gzip when the scraper asks.
    """

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/favicon.ico":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        body = generate_latest(registry) + b"".join(t() for t in texts)
        headers = [("Content-Type", CONTENT_TYPE_PLAIN_0_0_4)]
        if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
            body = gzip.compress(body, compresslevel=1)
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [body]

    return app


class MetricsServer:
    """/metrics over HTTP in a background thread; a busy port is a clear error.

    `texts`: exposition texts served after the registry's (each a callable returning bytes).
    """

    def __init__(self, registry: CollectorRegistry, host: str, port: int,
                 texts: Sequence[Callable[[], bytes]] = ()) -> None:
        app = text_app(registry, texts) if texts else make_wsgi_app(registry)
        try:
            self.httpd: WSGIServer = make_server(host, port, app,
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
