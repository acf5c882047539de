"""End to end: a scikit-learn model served on 127.0.0.1, the ``ailedger gateway`` in front of it
(real subprocesses), and the ``ailedger inference`` commands on what it logged."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clirun import run, spawn

INF = Path(__file__).resolve().parents[1] / "inference"
from tests.inference.model_server import make_ledger_with_model

MARKERS = [b"MARKER-note-Zebra-4471", b"MARKER-user-Quokka-9", b"setosa", b"versicolor", b"virginica"]


def _req(port, path, body=None, key=None, raw=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"Content-Type": "application/json", **(headers or {})}
    if key:
        h["Authorization"] = f"Bearer {key}"
    c.request("POST", path, body=raw if raw is not None else json.dumps(body), headers=h)
    r = c.getresponse()
    data = r.read()
    out = (r.status, r.headers, data)  # an HTTPMessage: header names are case-insensitive
    c.close()
    return out


def _grep(root: Path, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.fixture
def setup(tmp_path):
    led = make_ledger_with_model(tmp_path)
    led.close()
    env = {**os.environ, "AILEDGER_LEDGER": str(tmp_path / "ledger")}
    ms = subprocess.Popen([sys.executable, str(INF / "model_server.py"), str(tmp_path / "model")],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    upstream = f"http://127.0.0.1:{int(ms.stdout.readline().split()[1])}"
    yield tmp_path, env, upstream
    ms.terminate()
    ms.wait(10)


def _serve(env, upstream, model="iris"):
    gw = spawn("gateway", "serve", "--upstream", upstream, "--model", model, "--port", "0", "--json", env=env)
    line = gw.stdout.readline()
    if not line or "listening" not in json.loads(line):
        gw.wait(30)
        return gw, None, gw.stderr.read()
    return gw, int(json.loads(line)["listening"].rsplit(":", 1)[1]), ""


def test_gateway_end_to_end(setup):
    tmp, env, upstream = setup
    alice = json.loads(run("gateway", "key", "new", "--as", "alice", "--json", env=env).stdout)["key"]
    bob = run("gateway", "key", "new", "--as", "bob", "--rate", "1/s", "--daily", "3", env=env).stdout.strip()
    assert alice.startswith("ailk_") and bob.startswith("ailk_")
    # an unknown model: a clear error, nothing served
    gw0, port0, err = _serve(env, upstream, model="no-such-model")
    assert port0 is None and gw0.returncode == 2 and "no registered model" in err

    gw, port, _ = _serve(env, upstream)
    receipts = []
    try:
        # missing / unknown keys
        st, h, _ = _req(port, "/predict", {"features": [[5.1, 3.5, 1.4, 0.2]]})
        assert st == 401 and "Bearer" in h.get("WWW-Authenticate", "") and "AIledger-Receipt" not in h
        assert _req(port, "/predict", {"features": [[5.1, 3.5, 1.4, 0.2]]}, key="ailk_wrong")[0] == 401
        # generic JSON and OpenAI chat shapes, through a real classifier
        st, h, body = _req(port, "/predict", {"features": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]],
                                              "note": MARKERS[0].decode()}, key=alice)
        assert st == 200 and json.loads(body)["labels"] == ["setosa", "virginica"]
        receipts.append(h["AIledger-Receipt"])
        st, h, body = _req(port, "/v1/chat/completions",
                           {"model": "iris", "user": MARKERS[1].decode(),
                            "messages": [{"role": "user", "content": "5.9,3.0,4.2,1.5"}]},
                           key=alice, headers={"AIledger-Subject": "patient-7"})
        assert st == 200 and json.loads(body)["choices"][0]["message"]["content"] == "versicolor"
        receipts.append(h["AIledger-Receipt"])
        # bad input, upstream failures and malformed answers: clear errors, no receipt
        for path, raw, want in [("/predict", b"{not json", 400), ("/broken/predict", None, 502),
                                ("/broken/v1/chat/completions", None, 502), ("/fail/predict", None, 502)]:
            st, h, body = _req(port, path, {"features": [[1, 2, 3, 4]]}, key=alice, raw=raw)
            assert st == want, (path, body)
            assert "AIledger-Receipt" not in h and json.loads(body)["error"]["message"]
        st, h, _ = _req(port, "/v1/chat/completions", {"stream": True, "messages": []}, key=alice)
        assert st == 400
        # budgets: bob may call once a second and three times a day
        assert _req(port, "/predict", {"features": [[5, 3, 1, 0]]}, key=bob)[0] == 200
        st, h, body = _req(port, "/predict", {"features": [[5, 3, 1, 0]]}, key=bob)
        assert st == 429 and int(h["Retry-After"]) >= 1 and "rate" in json.loads(body)["error"]["message"]
        for _ in range(2):
            time.sleep(1.05)
            st, h, _ = _req(port, "/predict", {"features": [[5, 3, 1, 0]]}, key=bob)
            assert st == 200
            receipts.append(h["AIledger-Receipt"])
        time.sleep(1.05)
        st, h, body = _req(port, "/predict", {"features": [[5, 3, 1, 0]]}, key=bob)
        assert st == 429 and "daily" in json.loads(body)["error"]["message"] and int(h["Retry-After"]) > 1
        # the kill switch: guardians suspend the model; the gateway refuses within a second
        from ailedger.governance import service as gov
        from ailedger.tlog.ledger import Ledger

        with Ledger.open(tmp / "ledger") as led:
            admin, g1 = led.identities.create("admin"), led.identities.create("g1")
            gov.name_founders(led, [admin.did])   # the operator names the DAO's founder (log.genesis)
            gov.init_dao(led, admin, "dao", params={"guardians": [g1.did], "guardian_threshold": 1},
                         allocations={admin.did: 10})
            gov.guardian_suspend(led, g1, "iris", "unsafe", "n1", [gov.guardian_cosign(led, g1, "iris", "unsafe", "n1")])
        deadline = time.time() + 10
        while True:
            st, h, body = _req(port, "/predict", {"features": [[5, 3, 1, 0]]}, key=alice)
            if st == 403 or time.time() > deadline:
                break
            receipts.append(h["AIledger-Receipt"])
            time.sleep(0.2)
        assert st == 403 and "revoked" in json.loads(body)["error"]["code"] and "AIledger-Receipt" not in h
    finally:
        gw.send_signal(signal.SIGTERM)
        gw.wait(30)
    assert gw.returncode == 0, gw.stderr.read()

    # every answered call, and only those, has a record
    shown = json.loads(run("inference", "show", "--model", "iris", "--json", env=env).stdout)
    bob_first = 1
    assert shown["count"] == len(receipts) + bob_first
    ids = [it["receipt"] for it in shown["records"]]
    assert set(receipts) <= set(ids)
    callers = {it["receipt"]: it["record"]["caller"] for it in shown["records"]}
    assert callers[receipts[0]] == "alice" and callers[receipts[2]] == "bob"
    # no payload text anywhere in the ledger's files
    for m in MARKERS:
        assert _grep(tmp / "ledger", m) == [], m
    # receipt -> proof -> offline verification; one disclosure
    rp, dp = tmp / "r.json", tmp / "d.json"
    run("inference", "receipt", receipts[1], "--out", str(rp), env=env)
    run("inference", "disclose", receipts[1], "--out", str(dp), env=env)
    vk = tmp / "log.vkey"
    vk.write_text(run("vkey", env=env).stdout)
    ok = json.loads(run("inference", "verify", str(rp), "--disclosure", str(dp), "--vkey", str(vk), "--json",
                        env=env).stdout)
    assert ok["disclosure"] == "matches" and json.loads(json.loads(dp.read_text())["input"])["user"] == MARKERS[1].decode()
    doc = json.loads(rp.read_text())
    doc["record"] = doc["record"].replace('"caller":"alice"', '"caller":"mallory"')
    rp.write_text(json.dumps(doc))
    assert run("inference", "verify", str(rp), "--vkey", str(vk), env=env, check=False).returncode == 1
    # erasure of the subject of the chat call; the rest stays
    rep = json.loads(run("inference", "erase", "--subject", "patient-7", "--json", env=env).stdout)
    assert rep["records"] == 1 and rep["receipts"] == [receipts[1]]
    p = run("inference", "disclose", receipts[1], env=env, check=False)
    assert p.returncode == 2 and "error:" in p.stderr
    assert run("inference", "disclose", receipts[0], env=env).returncode == 0
    run("inference", "report", "--model", "iris", "--out", str(tmp / "report.html"), env=env)
    assert b"data:image/png;base64," in (tmp / "report.html").read_bytes()
    run("inference", "report", "--model", "iris", "--out", str(tmp / "report.pdf"), env=env)
    assert (tmp / "report.pdf").read_bytes().startswith(b"%PDF")
