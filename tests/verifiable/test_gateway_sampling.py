"""Sampled proving from the real gateway over HTTP: each call is logged with the bound circuit's commitments; after
a checkpoint the calls its root selects are proven; a call the upstream served with another model cannot be."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ailedger.inference.gateway import Gateway, GatewayKeys
from tests.inference.test_gateway import Running, post


class Upstream:
    """A real model server on 127.0.0.1: the registered iris MLP, or (``swap``) a cheaper stand-in model."""

    def __init__(self, good, cheap):
        self.swap = False
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                clf = cheap if outer.swap else good
                scores = clf.predict_proba(req["features"]).tolist()
                doc = {"labels": [int(v) for v in clf.predict(req["features"])], "scores": scores}
                if self.path == "/labels-only":  # an answer without the scores the gateway is told to read
                    del doc["scores"]
                body = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def u(root: bytes, rid: str) -> float:
    """The call's sampling draw in [0, 1) (the rule docs/zk.md states)."""
    return int.from_bytes(hashlib.sha256(b"ailedger-zk-sample/v1" + root + rid.encode()).digest(), "big") / 2**256


@pytest.fixture
def gw_ledger(zk_env, tmp_path):
    """A copy of the session's ledger (its circuit files included): this test's calls stay out of the others'."""
    shutil.copytree(zk_env["ledger"], tmp_path / "ledger")
    return tmp_path / "ledger"


def test_gateway_calls_are_sampled_proven_and_a_swap_is_found(zk_env, gw_ledger, tmp_path, run):
    from sklearn.tree import DecisionTreeClassifier

    from ailedger.inference.codec import parse_record
    from ailedger.inference.payloads import inference_dir
    from ailedger.inference.receipts import disclose
    from ailedger.inference.store import RecordStore
    from ailedger.tlog.ledger import Ledger
    from ailedger.verifiable.gatewayzk import GatewayCommitter

    clf, xs = zk_env["clf"], zk_env["x"]
    cheap = DecisionTreeClassifier(max_depth=1, random_state=0).fit(xs, zk_env["y"])  # knows two classes of three
    differs = [i for i in range(len(xs)) if cheap.predict(xs[i:i + 1])[0] != clf.predict(xs[i:i + 1])[0]]
    assert differs
    up = Upstream(clf, cheap)
    led = Ledger.open(gw_ledger)
    keys = GatewayKeys(led.path)
    key = keys.new_key("carol")["key"]
    keys.close()
    hook = GatewayCommitter(led, "iris", "iris", input_field="features", output_field="scores")
    gw = Running(Gateway(led, up.url, "iris", mode="durable", call_hook=hook))
    try:
        honest = []
        for i in range(5):
            st, h, body = post(gw.port, "/predict", {"features": [xs[i].tolist()]}, key=key)
            assert st == 200, body
            honest.append(h["AIledger-Receipt"])
        up.swap = True
        st, h, body = post(gw.port, "/predict", {"features": [xs[differs[0]].tolist()]}, key=key)
        assert st == 200, body
        swapped = h["AIledger-Receipt"]
        up.swap = False
        # an answer the circuit's output cannot be held to: refused, nothing recorded
        before = gw.gw.stats["recorded"]
        st, _h, body = post(gw.port, "/labels-only", {"features": [xs[0].tolist()]}, key=key)
        assert st == 400 and b"no field 'scores'" in body, body
        assert gw.gw.stats["recorded"] == before
    finally:
        gw.stop()
        up.close()
    # each record carries the circuit's commitments; the input stays in the payload store
    rs = RecordStore(inference_dir(led.path))
    try:
        recs = {rid: parse_record(bytes(d)) for rid, _b, _p, _t, d, _ix in rs.query("iris", None, None)}
    finally:
        rs.close()
    for rid in [*honest, swapped]:
        zk = recs[rid]["meta"]["zk"]
        assert zk["setup"] == zk_env["setup"]["index"] and zk["in"] and zk["out"] and zk["output_field"] == "scores"
    assert json.loads(disclose(led, honest[0])["input"]) == {"features": [xs[0].tolist()]}
    root, size = led.log.root_at(led.size), led.size
    led.close()

    # the checkpoint after the calls picks which to prove: a rate that selects exactly one honest call
    draws = sorted(u(root, r) for r in honest)
    rate = (draws[0] + draws[1]) / 2
    picked = next(r for r in honest if u(root, r) == draws[0])
    out = tmp_path / "proofs"
    r = run("inference", "zk-prove-sampled", "--model", "iris", "--rate", rate, "--at", size, "--demand", swapped,
            "-o", out, "--ledger", gw_ledger, "--json")
    assert r.exit_code == 1, r.output
    res = json.loads(r.output.strip().splitlines()[0])
    assert [p["receipt"] for p in res["proven"]] == [picked]
    assert len(res["findings"]) == 1 and res["findings"][0].startswith(f"call {swapped} cannot be proven")
    assert "was not served by it" in res["findings"][0]
    # the proof is the ordinary bundle: verify-zk checks it against the log
    r = run("inference", "verify-zk", out / f"{picked}.zkproof.json", "--ledger", gw_ledger, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["receipt"] == picked
    # the audit: the selected call is proven, the demanded swapped one is a finding (nothing logged for it)
    r = run("inference", "zk-sample", "--model", "iris", "--rate", rate, "--at", size, "--demand", swapped,
            "--ledger", gw_ledger, "--json")
    assert r.exit_code == 1
    res = json.loads(r.output.strip().splitlines()[0])
    assert res["findings"] == [f"call {swapped} was demanded and has no logged proof"]
    # proving again is idempotent: nothing left to prove among the selected calls; the swapped call is a finding
    # again when the checkpoint happens to select it too (its draw is below the rate: the receipt ids are random)
    r = run("inference", "zk-prove-sampled", "--model", "iris", "--rate", rate, "--at", size, "--ledger", gw_ledger,
            "--json")
    assert r.exit_code == (1 if u(root, swapped) < rate else 0), r.output
    assert json.loads(r.output.strip().splitlines()[0])["proven"] == []


def test_serve_time_check_refuses_a_swapped_answer(zk_env, gw_ledger):
    from sklearn.tree import DecisionTreeClassifier

    from ailedger.tlog.ledger import Ledger
    from ailedger.verifiable.gatewayzk import GatewayCommitter

    clf, xs = zk_env["clf"], zk_env["x"]
    cheap = DecisionTreeClassifier(max_depth=1, random_state=0).fit(xs, zk_env["y"])
    i = next(i for i in range(len(xs)) if cheap.predict(xs[i:i + 1])[0] != clf.predict(xs[i:i + 1])[0])
    up = Upstream(clf, cheap)
    led = Ledger.open(gw_ledger)
    keys = GatewayKeys(led.path)
    key = keys.new_key("carol")["key"]
    keys.close()
    hook = GatewayCommitter(led, "iris", "iris", input_field="features", output_field="labels", check_served=True)
    gw = Running(Gateway(led, up.url, "iris", mode="durable", call_hook=hook))
    try:
        st, _h, body = post(gw.port, "/predict", {"features": [xs[i].tolist()]}, key=key)
        assert st == 200, body
        up.swap = True
        st, _h, body = post(gw.port, "/predict", {"features": [xs[i].tolist()]}, key=key)
        assert st == 503 and b"the bound circuit gives" in body
        assert gw.gw.stats["recorded"] == 1
    finally:
        gw.stop()
        up.close()
        led.close()


@pytest.mark.parametrize("args, msg", [
    (["--zk-setup", "iris"], "--zk-setup needs --zk-output"),
    (["--zk-output", "labels"], "--zk-output and --zk-check need --zk-setup"),
    (["--zk-setup", "other", "--zk-output", "labels"], "no circuit is bound to model 'other'"),
    (["--zk-setup", "#0", "--zk-output", "labels"], "not a model.zk"),
])
def test_gateway_zk_options_bad_input(zk_env, run, args, msg):
    r = run("gateway", "serve", "--upstream", "http://127.0.0.1:19301", "--model", "iris", "--port", "19302", *args,
            "--ledger", zk_env["ledger"])
    assert r.exit_code == 2 and msg in r.output, r.output


def test_zk_setup_of_another_model_is_refused(zk_env):
    from ailedger.errors import BadInputError
    from ailedger.tlog.ledger import Ledger
    from ailedger.verifiable.gatewayzk import GatewayCommitter

    with Ledger.open(zk_env["ledger"]) as led, pytest.raises(BadInputError, match="not to other"):
        GatewayCommitter(led, zk_env["setup"]["index"], "other", input_field="features", output_field="labels")
