"""`ailedger anchor` end to end on a real anvil node, as subprocesses."""

from __future__ import annotations

import json

import pytest
from clirun import run  # tests/cli/clirun.py
from tests.devchain import ANVIL_KEYS, AnvilNode, find_anvil

from ailedger.tlog.ledger import Ledger

pytestmark = pytest.mark.anvil

ORIGIN = "test.example/cli-anchored"


@pytest.fixture
def anvil():
    try:
        find_anvil()
    except Exception:  # noqa: BLE001
        pytest.skip("anvil binary missing: run `npm ci --prefix tools/anvil`")
    with AnvilNode() as node:
        yield node


@pytest.mark.slow
def test_deploy_anchor_evidence_verify(anvil, tmp_path, monkeypatch):
    lg = Ledger.init(tmp_path / "ledger", origin=ORIGIN)
    lg.log.append_data([f"r{i}".encode() for i in range(20)])
    proof = tmp_path / "e3.tlog-proof"
    proof.write_bytes(lg.prove(3))  # a proof against the size-20 checkpoint
    lg.log.append_data([f"s{i}".encode() for i in range(5)])
    vkey = lg.vkey
    lg.close()
    keyfile = tmp_path / "eth.key"
    keyfile.write_text(ANVIL_KEYS[2])
    env_led = ["--ledger", str(tmp_path / "ledger")]
    dep = json.loads(run("anchor", "deploy", "--rpc", anvil.url, "--key", str(keyfile), *env_led, "--json").stdout)
    rec = json.loads(run("anchor", "--rpc", anvil.url, "--key", str(keyfile), *env_led, "--json").stdout)
    assert rec["tree_size"] == 25 and rec["contract"] == dep["contract"] and rec["status"] == "confirmed"
    st = json.loads(run("anchor", "status", *env_led, "--json").stdout)
    assert [(r["tree_size"], r["status"]) for r in st] == [(25, "confirmed")]
    # without the sidecar, the size-20 checkpoint of the proof is not directly anchored
    bad = run("anchor", "verify", str(proof), "--rpc", anvil.url, "--contract", dep["contract"], check=False)
    assert bad.returncode != 0 and "NOT anchored" in bad.stdout
    run("anchor", "evidence", str(proof), *env_led)
    ok = run("anchor", "verify", str(proof), "--rpc", anvil.url, "--contract", dep["contract"], "--vkey", vkey,
             "--json")
    res = json.loads(ok.stdout)
    assert res["anchored"] and res["how"] == "consistency" and res["anchored_size"] == 25
    assert res["block_number"] == rec["block_number"] and res["block_time"] == rec["block_time"]
    # the same evidence embedded in the proof's extra line instead of a sidecar
    emb = tmp_path / "e3-embedded.tlog-proof"
    run("anchor", "evidence", str(proof), "--embed", "-o", str(emb), *env_led)
    res2 = json.loads(run("anchor", "verify", str(emb), "--rpc", anvil.url, "--contract", dep["contract"],
                          "--json").stdout)
    assert res2["anchored"] and res2["how"] == "consistency"


def test_service_mode_with_entries(anvil, tmp_path, monkeypatch):
    lg = Ledger.init(tmp_path / "ledger", origin=ORIGIN)
    lg.log.append_data([b"a", b"b"])
    lg.close()
    monkeypatch.setenv("AILEDGER_ANCHOR_KEY", ANVIL_KEYS[0])
    monkeypatch.setenv("AILEDGER_RPC", anvil.url)
    led = ["--ledger", str(tmp_path / "ledger")]
    run("anchor", "deploy", *led)
    out = run("anchor", "--entries", "1", "--max-seconds", "3", *led, "--json", timeout=60)
    assert [r["tree_size"] for r in json.loads(out.stdout)["receipts"]] == [2]
