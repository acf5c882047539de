"""Read path over HTTP: tlog-tiles, entries, proofs, search, OpenAPI, JSON errors."""

import base64

import httpx
import pytest

from ailedger.tlog.checkpoint import open_checkpoint
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.merkle import leaf_hash, root_from_leaf_hashes, verify_consistency, verify_inclusion
from ailedger.tlog.note import parse_vkey
from ailedger.tlog.proofbundle import verify_proof_bundle
from ailedger.tlog.tiles import split_entry_bundle
from tests.http.helpers import Key, Server

N = 600


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    d = tmp_path_factory.mktemp("read") / "ledger"
    Ledger.init(d, origin="test.example/read").close()
    s = Server(d)
    k = Key("carol")
    c = httpx.Client(base_url=s.url, timeout=30)
    assert c.post("/v1/identities", json=k.registration()).status_code == 201
    entries = [k.entry("model.register" if i % 100 == 0 else "x.event",
                       {"i": i, "subjects": [f"sha256:{i % 7:064x}"]}) for i in range(N - 1)]
    r = c.post("/v1/entries/batch", json={"entries": entries})
    assert r.status_code == 201
    vkey = (d / "log.vkey").read_text().strip()
    yield s, c, k, parse_vkey(vkey)
    s.stop()


def test_checkpoint_and_tiles(filled):
    _s, c, _k, verifier = filled
    r = c.get("/checkpoint")
    assert r.status_code == 200 and "max-age=1" in r.headers["cache-control"]
    cp = open_checkpoint(r.content, verifier)
    assert cp.size == N
    full = c.get("/tile/0/000")
    assert full.status_code == 200 and len(full.content) == 256 * 32
    assert "immutable" in full.headers["cache-control"] and full.headers["access-control-allow-origin"] == "*"
    again = c.get("/tile/0/000")  # second time from the in-memory fast path: same bytes and headers
    assert again.content == full.content and again.headers["cache-control"] == full.headers["cache-control"]
    assert again.headers["access-control-allow-origin"] == "*"
    part = c.get(f"/tile/0/002.p/{N - 512}")
    assert part.status_code == 200 and len(part.content) == (N - 512) * 32
    assert "immutable" not in part.headers["cache-control"]
    lvl1 = c.get("/tile/1/000.p/2")
    assert lvl1.status_code == 200
    # rebuild the root from tiles: level-0 hashes of all leaves
    leaves = full.content + c.get("/tile/0/001").content + part.content
    hashes = [leaves[i:i + 32] for i in range(0, len(leaves), 32)]
    assert root_from_leaf_hashes(hashes) == cp.root
    # level-1 tile entries are the roots of the full level-0 tiles
    assert lvl1.content[:32] == root_from_leaf_hashes(hashes[:256])
    bundle = c.get("/tile/entries/001")
    assert "immutable" in bundle.headers["cache-control"]
    ents = split_entry_bundle(bundle.content)
    assert len(ents) == 256 and leaf_hash(ents[0]) == hashes[256]
    assert c.get(f"/tile/entries/002.p/{N - 512}").status_code == 200
    # a narrower partial width no checkpoint needed (the batch went from 1 to N entries at once) is not
    # served, as on the static mirror (C2SP tlog-tiles); nor is a width beyond the tree
    assert c.get("/tile/entries/002.p/50").status_code == 404
    assert c.get("/tile/entries/002.p/100").status_code == 404
    # beyond the tree
    for p in ["/tile/0/003", "/tile/0/002", f"/tile/0/002.p/{N - 511}", "/tile/1/000", "/tile/entries/003",
              "/tile/3/000.p/1"]:
        r = c.get(p)
        assert r.status_code == 404 and r.json()["code"] == "not_found", p


def test_entries_and_proofs(filled):
    _s, c, k, verifier = filled
    r = c.get("/v1/entries/5")
    assert r.status_code == 200 and r.json()["entry"]["signer"] == k.did
    raw = c.get("/v1/entries/5/raw").content
    assert leaf_hash(raw).hex() == r.json()["leaf_hash"]
    bundle = c.get("/v1/entries/5/proof").content
    verify_proof_bundle(bundle, verifier, entry=raw)
    inc = c.get("/v1/entries/5/inclusion", params={"tree_size": 300}).json()
    verify_inclusion(5, 300, bytes.fromhex(inc["leaf_hash"]), [bytes.fromhex(h) for h in inc["proof"]],
                     bytes.fromhex(inc["root"]))
    con = c.get("/v1/consistency", params={"old": 300, "new": N}).json()
    verify_consistency(300, N, bytes.fromhex(con["old_root"]), bytes.fromhex(con["new_root"]),
                       [bytes.fromhex(h) for h in con["proof"]])
    assert con["new_root"] == base64.b64decode(c.get("/checkpoint").text.split("\n")[2]).hex()
    for p, code in [("/v1/entries/999999", 404), ("/v1/entries/9223372036854775807/proof", 404),
                    ("/v1/entries/5/inclusion?tree_size=3", 400), ("/v1/entries/5/inclusion?tree_size=x", 400),
                    ("/v1/consistency?old=10&new=5", 400), ("/v1/consistency", 400),
                    ("/v1/consistency?old=1&new=999999", 400), ("/nope", 404),
                    ("/v1/entries/5/inclusion?tree_size=%C2%B2", 400), ("/v1/search?type=x&limit=%D9%A3", 400)]:
        r = c.get(p)
        assert r.status_code == code and set(r.json()) >= {"code", "message"}, p
    r = c.delete("/v1/entries/5")
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed" and "GET" in r.headers["allow"]


def test_search(filled):
    _s, c, k, _ = filled
    r = c.get("/v1/search", params={"subject": f"sha256:{3:064x}", "limit": 1000}).json()
    want = [i + 1 for i in range(N - 1) if i % 7 == 3]
    assert [x["index"] for x in r["results"]] == want
    r = c.get("/v1/search", params={"type": "model.register", "signer": k.did}).json()
    assert [x["index"] for x in r["results"]] == [1, 101, 201, 301, 401, 501]
    r = c.get("/v1/search", params={"type": "model.register", "limit": 2, "after": 102}).json()
    assert [x["index"] for x in r["results"]] == [201, 301] and r["next_after"] == 302
    assert c.get("/v1/search").status_code == 400
    assert c.get("/v1/search", params={"bogus": 1, "type": "x"}).status_code == 400
    assert c.get("/v1/search", params={"type": "nothing.here"}).json()["results"] == []


def test_openapi_and_log_info(filled):
    _s, c, _k, _ = filled
    spec = c.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/tile/{level}/{index}" in spec["paths"]
    info = c.get("/v1/log").json()
    assert info["size"] == N and info["policy"]["time_window_seconds"] == 600
