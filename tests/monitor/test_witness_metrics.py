"""GET /metrics of a real witness server (C2SP tlog-witness): cosigned size and seconds behind per log, errors by
code, read back with prometheus_client's parser."""

from __future__ import annotations

import urllib.error
import urllib.request

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ailedger.tlog.ledger import Ledger
from ailedger.tlog.witness import Witness, cosign_checkpoint
from ailedger.tlog.witness_http import make_server
from tests.monitor.conftest import lane_port


def test_witness_metrics(tmp_path):
    led = Ledger.init(tmp_path / "ledger", origin="test.example/witnessed")
    led.log.append_data([b"a", b"b", b"c"])
    w = Witness.init(tmp_path / "w", name="witness.test/w")
    w.add_log(led.vkey)
    srv = make_server(w, port=lane_port())
    srv.start_background()
    try:
        res = cosign_checkpoint(led, [srv.url], timeout=10, witness_vkeys=[w.vkey])
        assert res.ok
        req = urllib.request.Request(srv.url + "/add-checkpoint", data=b"old 0\n\nnot a checkpoint\n", method="POST")
        try:
            urllib.request.urlopen(req, timeout=10)
            raise AssertionError("a bad checkpoint was taken")
        except urllib.error.HTTPError as e:
            bad_status = e.code
        samples = {}
        for fam in text_string_to_metric_families(httpx.get(srv.url + "/metrics", timeout=5).text):
            for s in fam.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        lab = (("origin", "test.example/witnessed"), ("service", "witness"))
        assert samples[("ailedger_witness_cosigned_size", lab)] == 3
        assert 0 <= samples[("ailedger_witness_seconds_behind", lab)] < 60
        errs = {k[1]: v for k, v in samples.items() if k[0] == "ailedger_errors_total"}
        assert any(dict(labels)["status"] == str(bad_status) and v == 1 for labels, v in errs.items())
        assert samples[("ailedger_request_seconds_count", (("route", "add-checkpoint"), ("service", "witness")))] == 1
    finally:
        srv.shutdown()
        srv.server_close()
        w.close()
        led.close()
