"""Issue 18 points 1 and 2, reproduced over the real HTTP API (`ailedger serve`), the real CLI and the SDK:
a self-registered stranger can neither revoke, reinstate nor take over someone's model, nor found the
ledger's DAO and suspend models through it.  Refused at ingest with 403 ``not_authorised`` (nothing stored);
and if such entries reach the log another way (written straight into the store), every reader ignores them."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import httpx
import pytest

from ailedger.encoding.canonical import canonical_json
from ailedger.encoding.records import build_entry
from ailedger.governance.state import guardian_statement, leaf_hash_hex
from ailedger.inference import is_model_revoked
from ailedger.provenance import register_model, verify_model
from ailedger.tlog.ledger import Ledger, entry_terms
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.stores import LeafRow
from tests.http.helpers import Key, Server, now_str
from tests.provenance.conftest import write_safetensors

CLI = [sys.executable, "-c", "from ailedger.cli.main import main; main()"]


def cli(*args, code=0):
    p = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == code, (args, p.stdout, p.stderr)
    return p


@pytest.fixture
def setup(tmp_path):
    d = tmp_path / "ledger"
    m = tmp_path / "model"
    m.mkdir()
    write_safetensors(m / "model.safetensors", {"w": ("F32", (8, 8), os.urandom(256))})
    with Ledger.init(d, origin="test.example/authority") as led:
        alice, _ = led.new_identity("alice")
        led.new_identity("admin")
        register_model(led, m, "m", alice)
    s = Server(d)
    mallory = Key("mallory")
    assert httpx.post(s.url + "/v1/identities", json=mallory.registration()).status_code == 201
    yield d, m, s, mallory
    s.stop()


def size(s):
    return httpx.get(s.url + "/healthz").json()["size"]


def signed(d, who, type_, body):
    """An entry signed by a key kept in the ledger folder (the owner's), as a client would post it."""
    with Ledger.open(d, read_only=True) as led:
        ident = led.identities.load(who)
    return build_entry(type_, body, ident.did, now_str(), ident.sign).to_dict()


def write_raw(d, entry):
    """Put a signed entry straight into the store, as another writer or an older log would."""
    from ailedger.encoding.records import parse_entry

    e = parse_entry(entry)
    with Ledger.open(d) as led:
        led.log.append([LeafRow(e.leaf_bytes, leaf_hash(e.leaf_bytes), entry_terms(e))])


def status(s, name="m"):
    r = httpx.get(s.url + f"/v1/models/{name}")
    assert r.status_code == 200, r.text
    return r.json()


def test_stranger_cannot_revoke_reinstate_or_take_over_a_model(setup):
    d, m, s, mallory = setup
    c = httpx.Client(base_url=s.url)
    n = size(s)
    r = c.post("/v1/entries", json=mallory.entry("model.revoke", {"name": "m", "reason": "stranger"}))
    assert r.status_code == 403 and r.json()["code"] == "not_authorised", r.text
    assert "only the owner of model m" in r.json()["message"]
    r = c.post("/v1/entries", json=mallory.entry("model.register", {"name": "m", "manifest": {"root": "00" * 32}}))
    assert r.status_code == 403 and r.json()["code"] == "not_authorised"
    # a batch carrying one such entry is refused whole, with 403
    r = c.post("/v1/entries/batch", json={"entries": [mallory.entry("note", {"i": 1}),
                                                      mallory.entry("model.suspend", {"model": "m"})]})
    assert r.status_code == 403 and r.json()["code"] == "not_authorised"
    assert r.json()["errors"][0]["entry"] == 1
    assert size(s) == n
    with Ledger.open(d) as led:
        assert is_model_revoked(led, "m") is None
        assert verify_model(led, m)["ok"]
    assert status(s)["state"] == "active" and status(s)["usable"]

    # the owner revokes its own model: everyone sees it, on the owner's word
    assert c.post("/v1/entries", json=signed(d, "alice", "model.revoke", {"name": "m", "reason": "bad"})).status_code == 201
    st = status(s)
    assert st["state"] == "revoked" and st["authority"] == "owner" and st["reason"] == "bad"
    with Ledger.open(d) as led:
        assert "revoked by owner" in is_model_revoked(led, "m")
    p = cli("model", "verify", str(m), "--ledger", str(d), code=1)
    assert "revoked by owner" in p.stderr
    # a stranger cannot lift it
    r = c.post("/v1/entries", json=mallory.entry("model.reinstate", {"name": "m"}))
    assert r.status_code == 403 and r.json()["code"] == "not_authorised"
    r = c.post("/v1/entries", json=mallory.entry("model.unrevoke", {"name": "m"}))
    assert r.status_code == 403
    assert status(s)["state"] == "revoked"
    # ... not even written straight into the store
    write_raw(d, mallory.entry("model.reinstate", {"name": "m"}))
    st = status(s)
    assert st["state"] == "revoked" and len(st["ignored"]) == 1
    # the owner can
    assert c.post("/v1/entries", json=signed(d, "alice", "model.reinstate", {"name": "m"})).status_code == 201
    assert status(s)["state"] == "active"
    cli("model", "verify", str(m), "--ledger", str(d))

    # entries written straight into the store by a stranger: a revoke and a registration of the name
    write_raw(d, mallory.entry("model.revoke", {"name": "m", "reason": "raw"}))
    write_raw(d, mallory.entry("model.register", {"name": "m", "manifest": {"root": "11" * 32}}))
    st = status(s)
    assert st["state"] == "active" and st["owner"] != mallory.did
    with Ledger.open(d) as led:
        assert is_model_revoked(led, "m") is None
        from ailedger.provenance import find_model

        _, e = find_model(led, "m")
        assert e.signer != mallory.did
    page = httpx.get(s.url + "/model/m")  # the explorer shows the owner's registration and its status
    assert page.status_code == 200 and "Status: <strong>active</strong>" in page.text
    assert mallory.did not in page.text.split("<h2>Record</h2>")[0]
    last = httpx.get(s.url + "/v1/search", params={"type": "model.register", "signer": mallory.did}).json()
    ignored = httpx.get(s.url + f"/model/%23{last['results'][-1]['index']}")
    assert ignored.status_code == 200 and "This registration has no effect" in ignored.text


def test_stranger_cannot_found_the_dao_and_suspend_models(setup):
    d, m, s, mallory = setup
    c = httpx.Client(base_url=s.url)
    n = size(s)
    init = mallory.entry("gov.init", {"name": "evil", "allocations": {mallory.did: 1000},
                                      "params": {"guardians": [mallory.did], "guardian_threshold": 1}})
    r = c.post("/v1/entries", json=init)
    assert r.status_code == 403 and r.json()["code"] == "not_authorised", r.text
    assert "only the log operator" in r.json()["message"]
    dao = leaf_hash_hex(canonical_json(init))
    sig = base64.b64encode(mallory.key.sign(guardian_statement(dao, "m", "x", "n1"))).decode()
    susp = mallory.entry("gov.guardian.suspend", {"model": "m", "reason": "x", "nonce": "n1",
                                                  "cosigs": [{"signer": mallory.did, "sig": sig}]})
    r = c.post("/v1/entries", json=susp)
    assert r.status_code == 403 and r.json()["code"] == "not_authorised"
    assert size(s) == n
    p = cli("model", "verify", str(m), "--ledger", str(d), "--json")
    assert json.loads(p.stdout)["ok"]

    # the same entries written straight into the store (an older log, another writer): ignored
    write_raw(d, init)
    write_raw(d, susp)
    p = cli("model", "verify", str(m), "--ledger", str(d), "--json")
    assert json.loads(p.stdout)["ok"]
    assert status(s)["state"] == "active"
    rep = json.loads(cli("gov", "replay", "--ledger", str(d), "--json").stdout)
    assert len(rep["rejected_entries"]) == 2 and rep["name"] == ""
    # the operator names its founder and the DAO is founded, the stranger's init notwithstanding
    cli("gov", "founders", "admin", "--ledger", str(d))
    cli("gov", "init", "--name", "real", "--as", "admin", "--alloc", "admin=10", "--ledger", str(d))
    assert json.loads(cli("gov", "status", "--ledger", str(d), "--json").stdout)["name"] == "real"
    # the operator's log.genesis cannot be forged by a stranger either
    r = c.post("/v1/entries", json=mallory.entry("log.genesis", {"founders": [mallory.did]}))
    assert r.status_code == 403 and r.json()["code"] == "not_authorised"
