"""`ailedger serve`'s /metrics: how far the witnesses' cosigned checkpoint and the last confirmed anchor are behind
the store (a real witness server; the anchor queue's own table), read with prometheus_client's parser."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from ailedger.anchoring.service import AnchorQueue
from ailedger.http.app import ServeConfig, create_app
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.witness import Witness, cosign_checkpoint
from ailedger.tlog.witness_http import make_server
from tests.monitor.conftest import lane_port


def _scrape(c: TestClient) -> dict[str, float]:
    out = {}
    for fam in text_string_to_metric_families(c.get("/metrics").text):
        for s in fam.samples:
            out[s.name] = s.value
    return out


def test_witness_and_anchor_seconds_behind(tmp_path):
    led = Ledger.init(tmp_path / "led", "example.org/behind")
    who = led.identities.create("a")
    led.append_record("note", {"i": 0}, who)
    w = Witness.init(tmp_path / "w", name="witness.test/w")
    w.add_log(led.vkey)
    srv = make_server(w, port=lane_port())
    srv.start_background()
    try:
        app = create_app(led, ServeConfig())
        with TestClient(app) as c:
            assert "ailedger_witnessed_size" not in _scrape(c)  # nothing cosigned yet: absent, not 0
            assert cosign_checkpoint(led, [srv.url], timeout=10, witness_vkeys=[w.vkey]).ok
            m = _scrape(c)
            assert m["ailedger_witnessed_size"] == led.size and m["ailedger_witness_seconds_behind"] == 0
            q = AnchorQueue(led.path)
            now = time.time()
            q.db.execute("INSERT INTO anchors (chain_id, contract, submitter, origin, tree_size, root, checkpoint, "
                         "status, created_at, updated_at, confirmed_at) VALUES (1, '0x0', '0x0', ?, ?, x'00', x'00', "
                         "'confirmed', ?, ?, ?)", (led.origin, led.size, now - 30, now - 30, now - 30))
            q.close()
            assert _scrape(c)["ailedger_anchor_seconds_behind"] == 0
            led.append_record("note", {"i": 1}, who)  # the log grows past both
            m = _scrape(c)
            assert m["ailedger_anchor_seconds_behind"] >= 29
            assert m["ailedger_witness_seconds_behind"] >= 0 and m["ailedger_witnessed_size"] == led.size - 1
            time.sleep(0.3)
            assert _scrape(c)["ailedger_witness_seconds_behind"] >= 0.25  # still behind: the figure grows
    finally:
        srv.shutdown()
        srv.server_close()
        w.close()
        led.close()
