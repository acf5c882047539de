"""The Gateway service in-process (its own event loop thread) against a real model server subprocess."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading

import pytest

from ailedger.errors import BadInputError, NotFoundError
from ailedger.inference import receipt_proof, verify_receipt_proof
from ailedger.inference.gateway import Budgets, Gateway, GatewayKeys, KeyInfo, parse_rate

from .conftest import grep_tree


class Running:
    def __init__(self, gw: Gateway):
        self.gw = gw
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(gw.start("127.0.0.1", 0))
            started.set()
            self.loop.run_forever()

        self.t = threading.Thread(target=run, daemon=True)
        self.t.start()
        assert started.wait(60)
        self.port = gw.port

    def stop(self):
        asyncio.run_coroutine_threadsafe(self.gw.stop(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.t.join(30)


def post(port, path, body, key=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"Content-Type": "application/json", **(headers or {})}
    if key:
        h["Authorization"] = f"Bearer {key}"
    c.request("POST", path, body=json.dumps(body), headers=h)
    r = c.getresponse()
    out = r.status, r.headers, r.read()  # an HTTPMessage: header names are case-insensitive
    c.close()
    return out


def _journalled(ledger, rid):
    """The receipt ids in the (live) journals of the ledger's durable trails."""
    from ailedger.inference.journal import read_segment

    out = set()
    for d in (ledger.path / "inference" / "journal").iterdir():
        for p in sorted(d.glob("*.wal")):
            out |= {r.rid for r in read_segment(p, int(p.stem), cut=False)[0]}
    return rid in out


def test_durable_gateway_receipts_resolve_once_logged(ledger, model_server):
    """Durable: the answer comes once the call's record is in the journal on disk (encrypted payload); its
    receipt resolves once the writer has logged its batch (flush_interval; Receipt.proof() waits for it)."""
    keys = GatewayKeys(ledger.path)
    k = keys.new_key("carol")["key"]
    keys.close()
    run = Running(Gateway(ledger, model_server, "iris", mode="durable", flush_interval=30))
    rids = []
    try:
        size = ledger.store.size()
        for i in range(3):
            st, h, body = post(run.port, "/predict", {"features": [[6.0, 2.2, 5.0, 1.5 + i / 10]],
                                                      "note": "Secret-Walrus-Note"}, key=k,
                               headers={"AIledger-Subject": "walrus"})
            assert st == 200, body
            rid = h["AIledger-Receipt"]
            rids.append(rid)
            # in the journal on disk before the answer; not in the log yet (the writer logs every 30 s here)
            assert _journalled(ledger, rid)
            with pytest.raises(NotFoundError, match="not logged yet"):
                receipt_proof(ledger, rid)
        assert ledger.store.size() == size
        # nothing in clear on disk, the journal included
        assert grep_tree(ledger.path, b"Secret-Walrus-Note") == []
        doc = run.gw.trail.receipt(rids[0]).proof(timeout=60)  # waits for the batch
        assert verify_receipt_proof(doc, ledger.verifier)["record"]["caller"] == "carol"
        for rid in rids[1:]:
            assert verify_receipt_proof(receipt_proof(ledger, rid), ledger.verifier)["record"]["id"] == rid
        assert run.gw.stats["recorded"] == 3
    finally:
        run.stop()
    assert not (ledger.path / "inference" / "journal").exists() or not any(
        (ledger.path / "inference" / "journal").iterdir())
    assert grep_tree(ledger.path, b"Secret-Walrus-Note") == []


def test_key_revocation_and_budget_units(ledger):
    keys = GatewayKeys(ledger.path)
    info = keys.new_key("dave", rate=2.0, daily=5)
    assert keys.lookup(info["key"]).identity == "dave"
    assert keys.lookup("ailk_nope") is None
    assert keys.revoke(info["key_id"]) == 1
    assert keys.lookup(info["key"]) is None
    assert all(info["key"] not in json.dumps(r) for r in keys.list())
    b = Budgets(keys)
    ki = KeyInfo("erin", 2.0, 3, "x")
    got = [b.take(ki) for _ in range(3)]
    assert [g[0] for g in got] == [True, True, False] and 0 < got[2][1] <= 0.5 and got[2][2] == "rate"
    b.buckets.clear()
    assert b.take(ki)[0] is True  # third of the day
    b.buckets.clear()
    ok, retry, which = b.take(ki)
    assert not ok and which == "daily quota" and retry > 0
    b.flush()
    assert keys.load_usage(b.day)["erin"] == 3
    keys.close()
    assert parse_rate("120/m") == 2.0 and parse_rate("5") == 5.0
    for bad in ("fast", "0/s", "3/week"):
        with pytest.raises(BadInputError):
            parse_rate(bad)
    with pytest.raises(BadInputError):
        Gateway(ledger, "ftp://x", "iris")


def test_gateway_honours_the_owners_revocation_not_a_strangers(ledger, model_server):
    """Issue 18 point 1: a stranger's model.revoke (here written straight into the store, as if an older
    writer had taken it) leaves the model served; the owner's own revoke and reinstate are honoured."""
    from ailedger.tlog.ledger import entry_terms
    from ailedger.tlog.merkle import leaf_hash
    from ailedger.tlog.stores import LeafRow

    keys = GatewayKeys(ledger.path)
    k = keys.new_key("carol")["key"]
    keys.close()
    stranger, _ = ledger.new_identity("stranger")
    e = ledger.make_entry("model.revoke", {"name": "iris", "reason": "says who"}, stranger)
    ledger.log.append([LeafRow(e.leaf_bytes, leaf_hash(e.leaf_bytes), entry_terms(e))])
    run = Running(Gateway(ledger, model_server, "iris"))
    try:
        assert run.gw.revoked is None
        st, _, _ = post(run.port, "/predict", {"features": [[5, 3, 1, 0]]}, key=k)
        assert st == 200
        publisher = ledger.identities.load("publisher")
        ledger.append_record("model.revoke", {"name": "iris", "reason": "recalled"}, publisher)
        run.gw.revoked = None
        import time

        deadline = time.time() + 10
        while time.time() < deadline:
            st, _, body = post(run.port, "/predict", {"features": [[5, 3, 1, 0]]}, key=k)
            if st == 403:
                break
            time.sleep(0.2)
        assert st == 403 and json.loads(body)["error"]["code"] == "model_revoked"
        assert "revoked by owner" in json.loads(body)["error"]["message"]
        ledger.append_record("model.reinstate", {"name": "iris"}, publisher)
        deadline = time.time() + 10
        while time.time() < deadline:
            st, _, _ = post(run.port, "/predict", {"features": [[5, 3, 1, 0]]}, key=k)
            if st == 200:
                break
            time.sleep(0.2)
        assert st == 200
    finally:
        run.stop()
