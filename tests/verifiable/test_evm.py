"""The EZKL Solidity verifier of a bound circuit: compiled with solc 0.8.20 (npm), deployed on an in-process
EthereumTesterProvider and on anvil, a registry mapping it to its model.zk entry, gas reported."""

from __future__ import annotations

import copy
import json

import pytest

from ailedger.errors import ProofError

pytest.importorskip("web3")


@pytest.fixture(scope="module")
def exported(zk_env, tmp_path_factory):
    from ailedger.tlog.ledger import Ledger
    from ailedger.verifiable.evm import export_verifier, solc_js_dir

    if not (solc_js_dir() / "soljson.js").exists():
        pytest.skip("npm solc@0.8.20 missing: npm ci --prefix tools/zk-solc")
    out = tmp_path_factory.mktemp("verifier")
    with Ledger.open(zk_env["ledger"]) as led:
        res = export_verifier(led, "iris", out)
    return out, res


def test_tester_chain_verifies_and_rejects(zk_env, proven, exported):
    from ailedger.tlog.ledger import Ledger
    from ailedger.verifiable.evm import deploy_verifier, registered_entry, verify_on_chain, web3_for

    out, res = exported
    assert res["runtime_bytes"] < 24576  # EIP-170
    w3 = web3_for("tester")
    with Ledger.open(zk_env["ledger"]) as led:
        d = deploy_verifier(led, w3, "iris", out)
        idx, _ = registered_entry(led, w3, d["registry"], d["verifier"])
    assert idx == zk_env["setup"]["index"] == proven["setup"]
    ok = verify_on_chain(w3, d["verifier"], proven["proof"])
    assert ok["ok"] and 200_000 < ok["gas"] < 2_000_000
    bad = copy.deepcopy(proven["proof"])
    bad["instances"][0][-1] = bad["instances"][0][0]  # another output than the one proven
    with pytest.raises(ProofError, match="rejected"):
        verify_on_chain(w3, d["verifier"], bad)


@pytest.mark.anvil
def test_anvil_cli(zk_env, proven, exported, run):
    from ailedger.errors import NotFoundError
    from tests.devchain import AnvilNode, find_anvil

    try:
        find_anvil()
    except NotFoundError:
        pytest.skip("anvil not installed (npm ci --prefix tools/anvil)")
    out, _ = exported
    with AnvilNode() as node:  # a free port: README.md uses 18210
        r = run("model", "zk-verifier", "iris", "-o", out, "--rpc", node.url, "--ledger", zk_env["ledger"], "--json")
        assert r.exit_code == 0, r.output
        d = json.loads(r.output)
        r = run("inference", "verify-zk", zk_env["root"] / "proof.json", "--rpc", node.url, "--verifier",
                d["verifier"], "--registry", d["registry"], "--ledger", zk_env["ledger"], "--json")
        assert r.exit_code == 0, r.output
        assert json.loads(r.output)["on_chain"]["gas"] > 200_000
        # a verifier the registry does not know
        r = run("inference", "verify-zk", zk_env["root"] / "proof.json", "--rpc", node.url, "--verifier",
                d["registry"], "--registry", d["registry"], "--ledger", zk_env["ledger"])
        assert r.exit_code == 2 and "is not in the registry" in r.output
