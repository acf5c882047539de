"""The fast front for POST /v1/entries (http.app._FastWrite): a single canonical entry is answered without
Starlette's routing, with the same answers and the same guards as the routed handler; everything else is
handed to the routed handler unchanged."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from ailedger.encoding.canonical import canonical_json
from ailedger.http.app import Api, ServeConfig, create_app
from ailedger.tlog.ledger import Ledger
from tests.http.helpers import Key

HDR = {"content-type": "application/json"}


@pytest.fixture
def led(tmp_path):
    d = tmp_path / "ledger"
    Ledger.init(d, origin="test.example/fast").close()
    with Ledger.open(d) as led:
        yield led


def _client(led, **cfg):
    return TestClient(create_app(led, ServeConfig(open_registration=True, **cfg)))


def _routed_calls(monkeypatch):
    """Count the requests that reach the routed handler (Api.post_entry)."""
    seen = []
    orig = Api.post_entry

    async def counting(self, request):
        seen.append(request.url.path)
        return await orig(self, request)

    monkeypatch.setattr(Api, "post_entry", counting)
    return seen


def test_canonical_single_entry_takes_the_fast_front_with_the_routed_answers(led, monkeypatch):
    routed = _routed_calls(monkeypatch)
    alice = Key("alice")
    c = _client(led)
    # a registration needs the routed handler (a credential unless registration is open)
    r = c.post("/v1/entries", content=canonical_json(alice.registration()), headers=HDR)
    assert r.status_code == 201 and routed == ["/v1/entries"]
    e = alice.entry("note", {"text": "hi", "subjects": ["sha256:" + "ab" * 32]})
    r = c.post("/v1/entries", content=canonical_json(e), headers=HDR)
    assert r.status_code == 201 and len(routed) == 1, r.text
    first = r.json()
    assert set(first) == {"index", "leaf_hash", "duplicate"} and first["duplicate"] is False
    assert r.headers["content-type"] == "application/json"
    assert led.entry_bytes(first["index"]) == canonical_json(e)
    # the same entry again: 200 duplicate with its index, as the routed handler answers
    r = c.post("/v1/entries", content=canonical_json(e), headers=HDR)
    assert r.status_code == 200 and r.json() == {**first, "duplicate": True} and len(routed) == 1
    # not canonical (spaces): the routed handler, same result shape
    e2 = alice.entry("note", {"text": "two", "subjects": ["sha256:" + "cd" * 32]})
    r = c.post("/v1/entries", content=json.dumps(e2).encode(), headers=HDR)
    assert r.status_code == 201 and len(routed) == 2 and set(r.json()) == {"index", "leaf_hash", "duplicate"}


def test_fast_front_errors_match_the_routed_handler(led, monkeypatch):
    alice, mallory = Key("alice"), Key("mallory")
    c = _client(led)
    assert c.post("/v1/identities", content=canonical_json(alice.registration()), headers=HDR).status_code == 201
    size = led.store.size()
    bad_sig = alice.entry("note", {"text": "x", "subjects": ["sha256:" + "ef" * 32]})
    bad_sig["sig"] = alice.entry("note", {"text": "y", "subjects": ["sha256:" + "ef" * 32]})["sig"]  # another's
    stale = alice.entry("note", {"text": "old", "subjects": ["sha256:" + "01" * 32]}, time_offset=-7200)
    unknown = mallory.entry("note", {"text": "who", "subjects": ["sha256:" + "02" * 32]})
    answers = {}
    for name, e in (("bad_sig", bad_sig), ("stale", stale), ("unknown", unknown)):
        fast = c.post("/v1/entries", content=canonical_json(e), headers=HDR)
        routed = c.post("/v1/entries", content=json.dumps(e).encode(), headers=HDR)  # not canonical: routed
        assert fast.status_code == routed.status_code and fast.status_code in (400, 403), (name, fast.text)
        assert fast.json()["code"] == routed.json()["code"], name
        answers[name] = fast.json()["code"]
    assert answers["stale"] == "stale_time" and answers["unknown"] == "unknown_identity"
    assert answers["bad_sig"] == "bad_signature"  # a well-formed entry whose signature does not match
    assert led.store.size() == size  # nothing was stored


def test_fast_front_keeps_the_shared_guards(led):
    alice = Key("alice")
    e = alice.entry("note", {"text": "x", "subjects": ["sha256:" + "ab" * 32]})
    body = canonical_json(e)
    # no write slots: 503 with Retry-After, as the Guard answers, nothing stored
    c = _client(led, max_writes=0)
    r = c.post("/v1/entries", content=body, headers=HDR)
    assert r.status_code == 503 and r.headers["retry-after"] == "1" and r.json()["code"] == "overloaded"
    # a body over max_body: 413 before anything is parsed
    c = _client(led, max_body=100)
    r = c.post("/v1/entries", content=body, headers=HDR)
    assert r.status_code == 413 and r.json()["code"] == "too_large"
    # bytes of bodies in flight over max_buffered: 503
    c = _client(led, max_buffered=10)
    r = c.post("/v1/entries", content=body, headers=HDR)
    assert r.status_code == 503 and r.json()["code"] == "overloaded"
    assert led.store.size() == 0


def test_concurrent_singles_checked_together_fail_alone(led):
    """Requests read in the same turn of the event loop are checked in one call: a bad one among them fails
    alone (its own 403), every other is appended once and answered with its own index."""
    import threading

    import httpx

    from ailedger.server.asgi import Server

    cfg = ServeConfig(open_registration=True)
    srv = Server(create_app(led, cfg), deadlines=cfg.deadlines())
    srv.start_background()
    try:
        keys = [Key(f"w{k}") for k in range(4)]
        for k in keys:
            assert httpx.post(srv.url + "/v1/identities", content=canonical_json(k.registration()),
                              headers=HDR).status_code == 201
        bodies = [canonical_json(keys[i % 4].entry("note", {"i": i, "subjects": [f"sha256:{i:064x}"]}))
                  for i in range(200)]
        bad = json.loads(bodies[77])
        bad["sig"] = json.loads(bodies[78])["sig"]
        bodies[77] = canonical_json(bad)
        answers: dict[int, tuple[int, dict]] = {}

        def writer(w: int) -> None:
            with httpx.Client(base_url=srv.url, timeout=30) as c:
                for i in range(w, 200, 20):
                    r = c.post("/v1/entries", content=bodies[i], headers=HDR)
                    answers[i] = (r.status_code, r.json())

        ts = [threading.Thread(target=writer, args=(w,)) for w in range(20)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    finally:
        srv.shutdown()
    assert answers[77][0] == 403 and answers[77][1]["code"] == "bad_signature"
    good = {i: a for i, a in answers.items() if i != 77}
    assert all(st == 201 for st, _ in good.values()), {i: a for i, a in good.items() if a[0] != 201}
    idx = [a["index"] for _, a in good.values()]
    assert len(set(idx)) == 199 and led.store.size() == 4 + 199
    for i, (_, a) in good.items():
        assert led.entry_bytes(a["index"]) == bodies[i]
    assert led.committer.stats["largest_group"] > 1  # the writers did share groups
