"""Per-file health of the tailers: rotations and other file incidents, bytes not yet read.

The intake families (dcops.collectors.health.IntakeMetrics, source `logfile` or `wazuh`) say what
was received, stored and dropped; these say what happened to the files themselves.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dcops.collectors.logfile import FileTailer

# renamed, replaced (atomic mv over it), symlink (swapped to a new target), deleted, copytruncate,
# copy_read (lines after the last read taken from copytruncate's copy), normaliser_error (a line
# dead-lettered), io_error (the file could not be read; retried every poll)
FILE_EVENT_KINDS = ("renamed", "replaced", "symlink", "deleted", "copytruncate", "copy_read",
                    "normaliser_error", "io_error")


class TailerMetrics(Collector):
    """dcops_logfile_file_events_total{source,file,kind}, dcops_logfile_unread_bytes{source,file}
    and dcops_logfile_nul_runs_total{source,file} (NUL runs skipped at line starts)."""

    def __init__(self, tailers: Sequence[FileTailer]) -> None:
        self.tailers = list(tailers)

    def collect(self) -> Iterator[Metric]:
        """prometheus_client Collector protocol."""
        ev = CounterMetricFamily("dcops_logfile_file_events",
                                 "File incidents seen by the tailer, by kind",
                                 labels=["source", "file", "kind"])
        nul = CounterMetricFamily("dcops_logfile_nul_runs",
                                  "Runs of NUL bytes skipped at line starts (a crash's hole)",
                                  labels=["source", "file"])
        unread = GaugeMetricFamily("dcops_logfile_unread_bytes",
                                   "Bytes of the current file after the saved position",
                                   labels=["source", "file"])
        for t in self.tailers:
            f = str(t.path)
            for kind in FILE_EVENT_KINDS:
                ev.add_metric([t.source, f, kind], t.events.get(kind, 0))
            nul.add_metric([t.source, f], t.nul_runs)
            unread.add_metric([t.source, f], t.unread_bytes)
        yield from (ev, nul, unread)
