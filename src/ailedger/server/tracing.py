"""OpenTelemetry tracing of the write path, when an exporter is configured (opentelemetry-sdk, optional).

Configured by the standard variables: ``OTEL_TRACES_EXPORTER=console`` or ``otlp`` (the OTLP/HTTP exporter,
``opentelemetry-exporter-otlp-proto-http``, to ``OTEL_EXPORTER_OTLP_ENDPOINT``), ``OTEL_SERVICE_NAME``; or by a
tracer provider the process already set (``opentelemetry-instrument``, or an embedding application).  One span
per committed write group (``ailedger.commit_group``: entries, items, outcome), made from the committer's
``on_group`` report with its real start and end times: no work per entry, none at all when tracing is off."""

from __future__ import annotations

import importlib
import logging
import os
import time
from typing import Any

__all__ = ["GroupTracer", "tracer"]

log = logging.getLogger("ailedger.tracing")


def tracer(service: str) -> Any | None:
    """A tracer when tracing is configured, else None (also when opentelemetry is not installed)."""
    exporter_name = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    try:
        from opentelemetry import trace
    except ImportError:
        if exporter_name and exporter_name != "none":
            log.warning("OTEL_TRACES_EXPORTER is set but opentelemetry is not installed: no traces")
        return None
    if exporter_name and exporter_name != "none":
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

            exporter: SpanExporter
            if exporter_name == "console":
                exporter = ConsoleSpanExporter()
            elif exporter_name == "otlp":
                otlp = importlib.import_module("opentelemetry.exporter.otlp.proto.http.trace_exporter")
                exporter = otlp.OTLPSpanExporter()
            else:
                log.warning("OTEL_TRACES_EXPORTER=%s is not one of console, otlp: no traces", exporter_name)
                return None
        except ImportError as exc:
            log.warning("tracing needs %s (pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http): "
                        "no traces", exc.name)
            return None
        provider = TracerProvider(resource=Resource.create(
            {"service.name": os.environ.get("OTEL_SERVICE_NAME", f"ailedger-{service}")}))
        provider.add_span_processor(BatchSpanProcessor(exporter))
        return provider.get_tracer("ailedger")
    if type(trace.get_tracer_provider()).__name__ in ("ProxyTracerProvider", "NoOpTracerProvider"):
        return None  # nobody configured tracing
    return trace.get_tracer("ailedger")


class GroupTracer:
    """The committer's ``on_group`` hook that records one span per committed group."""

    def __init__(self, tracer: Any, service: str) -> None:
        self.tracer, self.service = tracer, service

    def __call__(self, items: int, weight: int, seconds: float, failed: bool) -> None:
        from opentelemetry.trace import Status, StatusCode

        end = time.time_ns()
        span = self.tracer.start_span("ailedger.commit_group", start_time=end - int(seconds * 1e9), attributes={
            "ailedger.service": self.service, "ailedger.entries": weight, "ailedger.requests": items,
            "ailedger.outcome": "failed" if failed else "ok"})
        if failed:
            span.set_status(Status(StatusCode.ERROR, "the group was not committed"))
        span.end(end_time=end)
