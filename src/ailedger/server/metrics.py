"""Prometheus metrics shared by every ailedger server (serve, the gateway, the witness): a registry per
service, errors by code, and the ``/metrics`` answer in the Prometheus text format (prometheus_client).

Nothing here runs per entry: counters move once per request that fails or once per committed group, and
gauges (tree size, how far a checkpoint is behind) are computed when /metrics is scraped."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from typing import Any

__all__ = ["ServiceMetrics", "available"]

# commit groups hold 1..20000 entries; latencies from 100 us to 10 s
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


def available() -> bool:
    return importlib.util.find_spec("prometheus_client") is not None


class ServiceMetrics:
    """One service's registry: ``ailedger_errors_total{service,code}`` plus what the service adds.

    ``gauge_fn(name, help, fn)`` adds a gauge read at scrape time (``fn`` returns a float or None: absent)."""

    def __init__(self, service: str) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.service = service
        self.registry = CollectorRegistry()
        r = self.registry
        self.errors = Counter("ailedger_errors", "Requests answered with an error, by error code and HTTP status",
                              ["service", "code", "status"], registry=r)
        self.appends = Counter("ailedger_appends", "Entries appended to the log (new, not duplicates)",
                               ["service"], registry=r)
        self.groups = Counter("ailedger_commit_groups", "Committed write groups (one durable transaction each)",
                              ["service", "outcome"], registry=r)
        self.batch = Histogram("ailedger_commit_group_entries", "Entries per committed write group",
                               ["service"], buckets=BATCH_BUCKETS, registry=r)
        self.latency = Histogram("ailedger_commit_seconds", "Seconds to make one write group durable",
                                 ["service"], buckets=LATENCY_BUCKETS, registry=r)
        self.requests = Histogram("ailedger_request_seconds", "Seconds to answer a request, by route",
                                  ["service", "route"], buckets=LATENCY_BUCKETS, registry=r)
        # the children the write path touches, looked up once (labels() costs more than inc())
        self._ok, self._failed = self.groups.labels(service, "ok"), self.groups.labels(service, "failed")
        self._appends, self._batch = self.appends.labels(service), self.batch.labels(service)
        self._latency = self.latency.labels(service)
        self._gauges: list[tuple[str, str, Callable[[], float | None]]] = []
        self._counters: list[tuple[str, str, Callable[[], float | None]]] = []
        self._families: list[tuple[str, str, str, Callable[[], list[tuple[str, float]]]]] = []
        self.logs: dict[str, tuple[int, float]] = {}  # per log origin: (tree size last seen, when), for gauges
        r.register(_Scraped(self))

    def error(self, code: str, status: int) -> None:
        self.errors.labels(self.service, code, str(status)).inc()

    def group(self, items: int, weight: int, seconds: float, failed: bool) -> None:
        """A write group was committed (the committer's ``on_group`` hook: once per group)."""
        if failed:
            self._failed.inc()
        else:
            self._ok.inc()
            self._appends.inc(weight)
            self._batch.observe(weight)
        self._latency.observe(seconds)

    def gauge_fn(self, name: str, help: str, fn: Callable[[], float | None]) -> None:
        self._gauges.append((name, help, fn))

    def counter_fn(self, name: str, help: str, fn: Callable[[], float | None]) -> None:
        """A counter kept elsewhere (a service's own stats), read at scrape time; ``name`` without _total."""
        self._counters.append((name, help, fn))

    def family_fn(self, name: str, help: str, label: str, fn: Callable[[], list[tuple[str, float]]]) -> None:
        """A gauge with one more label (e.g. per log origin), read at scrape time: ``fn`` gives (value of
        the label, figure) pairs."""
        self._families.append((name, help, label, fn))

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _Scraped:
    """The gauges computed when /metrics is read (a failing one is left out, never fails the scrape)."""

    def __init__(self, m: ServiceMetrics) -> None:
        self.m = m

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        for name, help, fn in self.m._gauges:
            try:
                v = fn()
            except Exception:  # noqa: BLE001, S112 - a scrape never fails because one figure cannot be read
                continue
            if v is None:
                continue
            g = GaugeMetricFamily(name, help, labels=["service"])
            g.add_metric([self.m.service], float(v))
            yield g
        from prometheus_client.core import CounterMetricFamily

        for name, help, fn in self.m._counters:
            try:
                v = fn()
            except Exception:  # noqa: BLE001, S112 - as above
                continue
            if v is None:
                continue
            c = CounterMetricFamily(name, help, labels=["service"])
            c.add_metric([self.m.service], float(v))
            yield c
        for name, help, label, ffn in self.m._families:
            try:
                pairs = ffn()
            except Exception:  # noqa: BLE001, S112 - as above
                continue
            g = GaugeMetricFamily(name, help, labels=["service", label])
            for lv, v in pairs:
                g.add_metric([self.m.service, lv], float(v))
            yield g


class Behind:
    """Seconds a follower (a checkpoint, a witness, an anchor) has been behind the log: 0 while it covers the
    log, else the time since it was first seen behind (scrape granularity)."""

    def __init__(self) -> None:
        self.since: float | None = None

    def __call__(self, behind: bool) -> float:
        if not behind:
            self.since = None
            return 0.0
        now = time.time()
        if self.since is None:
            self.since = now
        return now - self.since
