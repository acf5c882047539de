"""GET /_ailedger/metrics of a real inference gateway in front of a real model server: calls, recorded calls,
latency, errors by code, read back with prometheus_client's parser."""

from __future__ import annotations

import http.client

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ailedger.inference.gateway import Gateway, GatewayKeys
from tests.inference.conftest import ledger, ledger_dir, ledger_template, model_server  # noqa: F401 - fixtures
from tests.inference.test_gateway import Running, post

pytest.importorskip("aiohttp")


def _scrape(port: int) -> dict:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/_ailedger/metrics")
    text = c.getresponse().read().decode()
    c.close()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_gateway_metrics(ledger, model_server):  # noqa: F811 - the fixtures imported above
    keys = GatewayKeys(ledger.path)
    k = keys.new_key("carol")["key"]
    keys.close()
    run = Running(Gateway(ledger, model_server, "iris"))
    try:
        for i in range(2):
            st, _h, body = post(run.port, "/predict", {"features": [[6.0, 2.2, 5.0, 1.5 + i / 10]]}, key=k)
            assert st == 200, body
        st, _h, _b = post(run.port, "/predict", {"features": [[1, 2, 3, 4]]}, key="not-a-key")
        assert st == 401
        m = _scrape(run.port)
        svc = (("service", "gateway"),)
        assert m[("ailedger_gateway_requests_total", svc)] == 3
        assert m[("ailedger_gateway_recorded_total", svc)] == 2
        assert m[("ailedger_request_seconds_count", (("route", "call"), ("service", "gateway")))] == 3
        errs = [(dict(lab), v) for (n, lab), v in m.items() if n == "ailedger_errors_total"]
        assert [(e["status"], v) for e, v in errs] == [("401", 1.0)] and errs[0][0]["code"] != ""
    finally:
        run.stop()
