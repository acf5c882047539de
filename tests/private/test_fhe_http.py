"""The FHE server over real HTTP on 127.0.0.1 (lane ports 19800-19899): agreement with plaintext, one record per
query, every bad ciphertext refused with a 4xx naming the fault and nothing logged."""

from __future__ import annotations

import http.client
import json
import urllib.request

import numpy as np
import pytest

from ailedger.errors import BadInputError
from ailedger.private import registered_model
from ailedger.private.fhe_http import FheHttpServer, query
from tests.private.test_fhe import _bad_queries

PORT = 19811

CODES = {  # the case of test_fhe._bad_queries -> (HTTP status, error code)
    "other key": (400, "other_key"),
    "other params (header)": (400, "other_params"),
    "other params (ciphertext)": (400, "other_params"),
    "not an envelope": (400, "malformed_ciphertext"),
    "truncated": (400, "malformed_ciphertext"),
    "garbage ciphertext": (400, "malformed_ciphertext"),
    "bad header": (400, "malformed_ciphertext"),
    "oversized": (413, "too_large"),
    "an answer sent as query": (400, "malformed_ciphertext"),
}


@pytest.fixture
def served(ledger, workdir):
    from ailedger.inference import InferenceTrail

    reg = registered_model(ledger, "digits-mlp", workdir / "mlp")
    with InferenceTrail(ledger, reg.name, mode="durable", operator="inference") as trail:
        srv = FheHttpServer(reg, trail, "127.0.0.1", PORT)
        srv.start_background()
        try:
            yield srv, reg
        finally:
            srv.shutdown()
            srv.server_close()


def _records(ledger):
    from ailedger.inference import list_records

    return list_records(ledger, "digits-mlp", None, None, proofs=False)


def _post(url, data):
    req = urllib.request.Request(url, data=data, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (ConnectionResetError, BrokenPipeError):
        return None, b""  # the server refused and closed while the body was still being sent
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (ConnectionResetError, BrokenPipeError)):
            return None, b""
        raise


def test_queries_over_http_agree_with_plaintext_and_log_one_record_each(served, ledger, keys, digits_test):
    srv, reg = served
    assert srv.url == f"http://127.0.0.1:{PORT}"
    Xte, _ = digits_test
    picks = np.random.default_rng(11).choice(len(Xte), 3, replace=False)
    plain = reg.model.logits(Xte[picks])
    receipts = []
    for i, (row, want) in enumerate(zip(picks, plain)):
        res = query(srv.url, keys, Xte[row])
        assert res["class"] == int(want.argmax())
        assert np.abs(np.array(res["logits"]) - want).max() < 0.5
        assert res["model"] == "digits-mlp"
        assert res["key_bytes_uploaded"] == (len(keys.public) if i == 0 else 0)  # the context goes once
        receipts.append(res["receipt"])
    srv.state.trail.flush()  # durable: each answer came once its call was journalled; logged with the next batch
    recs = _records(ledger)
    assert len(recs) == 3 and len(set(receipts)) == 3
    assert {r["receipt"] for r in recs} == set(receipts)  # the receipt each answer named is the record logged
    assert all(r["record"]["meta"]["key"] == keys.id and r["record"]["model_index"] == reg.index for r in recs)
    info = json.loads(urllib.request.urlopen(f"{srv.url}/v1/fhe/info", timeout=10).read())
    assert info["queries"] == 3 and info["model_index"] == reg.index


def test_every_bad_ciphertext_is_refused_over_http_and_nothing_is_logged(served, ledger, keys, other_keys,
                                                                         digits_test):
    srv, _ = served
    Xte, _ = digits_test
    assert _post(f"{srv.url}/v1/fhe/keys", keys.public)[0] == 200
    size = ledger.size
    for what, (data, msg) in _bad_queries(keys, other_keys, Xte[1]).items():
        status, body = _post(f"{srv.url}/v1/fhe/infer", data)
        if status is None:  # a reset is a refusal only for a body over the limit (answered 413 and closed)
            assert CODES[what][0] == 413, (what, "connection reset")
            continue
        err = json.loads(body)
        assert (status, err["code"]) == CODES[what], (what, status, err)
        if status == 400:
            assert msg in err["message"] or "holds no public context" in err["message"], (what, err)
    # an oversized body with no Content-Length (chunked) is cut off at the limit too
    # (the server answers 413 and closes as soon as the limit is passed; when that lands while the client is
    # still sending the rest, the client sees the connection reset instead of reading the answer: both are
    # the refusal, and what matters is checked below: nothing logged, nothing evaluated)
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
    try:
        conn.request("POST", "/v1/fhe/infer", body=iter([b"\x00" * 65536] * 20), encode_chunked=True)
        r = conn.getresponse()
        assert r.status == 413 and json.loads(r.read())["code"] == "too_large"
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        conn.close()
    srv.state.trail.flush()  # anything journalled would be logged now
    assert ledger.size == size and _records(ledger) == []
    assert json.loads(urllib.request.urlopen(f"{srv.url}/v1/fhe/info", timeout=10).read())["queries"] == 0


def test_a_secret_context_is_refused_and_the_client_names_the_refusal(served, keys, other_keys, digits_test):
    from ailedger.private.fhe import FheKeys

    srv, _ = served
    status, body = _post(f"{srv.url}/v1/fhe/keys", keys.secret)
    assert status == 400 and "holding the secret key" in json.loads(body)["message"]
    status, body = _post(f"{srv.url}/v1/fhe/keys", b"not a context")
    assert status == 400 and "not a TenSEAL CKKS context" in json.loads(body)["message"]
    forged = FheKeys(public=b"junk", secret=other_keys.secret)  # the upload of its "public" context fails
    with pytest.raises(BadInputError, match=r"HTTP 400 bad_input"):
        query(srv.url, forged, digits_test[0][0])
    with pytest.raises(BadInputError, match="cannot reach the FHE server"):
        query(f"http://127.0.0.1:{PORT + 1}", keys, digits_test[0][0], timeout=5)


def test_cli_query_and_serve_bad_input_exit_2(served, workdir, keys, tmp_path, digits_test):
    from click.testing import CliRunner

    from ailedger.cli.main import main
    from ailedger.private.fhe import save_keys

    srv, reg = served
    save_keys(keys, tmp_path / "keys")
    (tmp_path / "d.json").write_text(json.dumps([float(v) for v in digits_test[0][5]]))

    def run(*args, code=0):
        r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
        assert r.exit_code == code, (r.exit_code, r.output)
        return r

    r = run("private", "fhe-query", srv.url, tmp_path / "d.json", "--keys", tmp_path / "keys", "--json")
    doc = json.loads(r.output)
    assert doc["class"] == int(reg.model.predict(digits_test[0][5:6])[0]) and doc["receipt"]
    r = run("private", "fhe-query", f"http://127.0.0.1:{PORT + 2}", tmp_path / "d.json", "--keys", tmp_path / "keys",
            "--timeout", "5", code=2)
    assert "cannot reach the FHE server" in r.output
    (tmp_path / "bad.json").write_text(json.dumps([3.0] * 64))
    r = run("private", "fhe-query", srv.url, tmp_path / "bad.json", "--keys", tmp_path / "keys", code=2)
    assert "[0, 1]" in r.output
    r = run("private", "fhe-serve", "--model", "digits-mlp", "--model-dir", workdir / "mlp", "--listen", "nowhere",
            "--ledger", workdir / "ledger", code=2)
    assert "--listen must be HOST:PORT" in r.output
