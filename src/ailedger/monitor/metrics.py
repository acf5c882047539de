"""Prometheus metrics of a monitor (prometheus_client), on their own registry.

Counters and gauges only change once per round (never per entry), so following costs nothing extra."""

from __future__ import annotations

import time
from typing import Any

__all__ = ["MonitorMetrics"]


class MonitorMetrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.entries = Counter("ailedger_monitor_entries", "Entries read and checked", registry=r)
        self.matches = Counter("ailedger_monitor_matches", "Entries that matched a watch", registry=r)
        self.bytes = Counter("ailedger_monitor_fetched_bytes", "Bytes of tiles and checkpoints fetched", registry=r)
        self.errors = Counter("ailedger_monitor_errors", "Rounds that failed, by error code", ["code"], registry=r)
        self.size = Gauge("ailedger_monitor_tree_size", "Size of the last accepted checkpoint", registry=r)
        self.last = Gauge("ailedger_monitor_last_success_timestamp_seconds",
                          "When a round last succeeded (unix time)", registry=r)
        self.behind = Gauge("ailedger_monitor_checkpoint_seconds_behind",
                            "Seconds since the monitor last accepted the log's checkpoint", registry=r)
        self.behind.set_function(lambda: time.time() - self._last if self._last else float("nan"))
        self.round_seconds = Histogram("ailedger_monitor_round_seconds", "Seconds per round", registry=r)
        self._last = 0.0

    def round(self, entries: int, matches: int, nbytes: int, size: int, seconds: float) -> None:
        self.entries.inc(entries)
        self.matches.inc(matches)
        self.bytes.inc(nbytes)
        self.size.set(size)
        self._last = time.time()
        self.last.set(self._last)
        self.round_seconds.observe(seconds)

    def error(self, code: str) -> None:
        self.errors.labels(code=code).inc()

    def serve(self, host: str, port: int) -> Any:
        """Serve /metrics in a daemon thread; returns the server (``.shutdown()`` stops it)."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return server
