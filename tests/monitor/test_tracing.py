"""OpenTelemetry: with a tracer provider configured, `ailedger serve`'s app records one span per committed write
group (entries, outcome), read back from the SDK's in-memory exporter; without one, no hook is installed."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.testclient import TestClient

from ailedger.http.app import ServeConfig, create_app
from ailedger.server.tracing import tracer
from ailedger.tlog.ledger import Ledger
from tests.http.helpers import Key


def test_write_path_spans(tmp_path, monkeypatch):
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    monkeypatch.setattr(trace, "get_tracer", lambda name, *a, **k: provider.get_tracer(name))
    led = Ledger.init(tmp_path / "led", "example.org/traced")
    try:
        app = create_app(led, ServeConfig(open_registration=True, metrics=False))
        assert led.committer.on_group is not None
        k = Key("writer")
        with TestClient(app) as c:
            assert c.post("/v1/identities", json=k.registration()).status_code == 201
            r = c.post("/v1/entries/batch", json={"entries": [k.entry("note", {"i": i}) for i in range(7)]})
            assert r.status_code == 201
        spans = [s for s in exporter.get_finished_spans() if s.name == "ailedger.commit_group"]
        assert sum(s.attributes["ailedger.entries"] for s in spans) == 8
        assert all(s.attributes["ailedger.outcome"] == "ok" and s.end_time >= s.start_time for s in spans)
    finally:
        led.close()


def test_no_tracer_without_configuration(monkeypatch):
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    assert tracer("serve") is None  # the default (proxy) provider: tracing is off, no hook, no cost
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin-or-something")
    assert tracer("serve") is None
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    assert tracer("serve") is not None
