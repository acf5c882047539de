"""End to end on a real anvil (the pinned binary, port in this lane's range): deploy, an agent acting through the
guard with its actions logged, a transaction without a logged decision caught by the audit (exit 1), the
scripted attack scenario scored by the detector, findings logged, and bad input refused (exit 2)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.devchain import ANVIL_KEYS, AnvilNode, find_anvil

pytestmark = pytest.mark.anvil

PORT = 18950


@pytest.fixture(scope="module")
def node():
    try:
        find_anvil()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(str(exc))
    with AnvilNode(PORT) as n:
        yield n


def test_agent_on_anvil_end_to_end(node, tmp_path):
    from eth_account import Account
    from web3 import Web3

    from ailedger.cli.main import main
    from ailedger.defi.actions import calldata
    from ailedger.defi.chain import market_from, send
    from ailedger.tlog.ledger import Ledger

    lg = Ledger.init(tmp_path / "ledger", origin="test.example/defi")
    alice = lg.identities.create("alice")
    lg.append_record("model.register", {"name": "trader", "manifest": {"root": "cd" * 32}}, alice)
    lg.close()
    agent = Account.from_key(ANVIL_KEYS[2])
    env = {"AILEDGER_LEDGER": str(tmp_path / "ledger"), "AILEDGER_RPC": node.url, "AILEDGER_DAO_KEY": ANVIL_KEYS[0],
           "AILEDGER_KILL_KEY": ANVIL_KEYS[1], "AILEDGER_AGENT_KEY": ANVIL_KEYS[2]}

    def run(*args):
        return CliRunner().invoke(main, ["agent", *args, "--json"], env=env)

    dep_path = tmp_path / "deployment.json"
    r = run("deploy", "--agent-address", agent.address, "--out", str(dep_path))
    assert r.exit_code == 0, r.output
    addrs = json.loads(dep_path.read_text())["addresses"]
    swap = {"kind": "swap", "target": addrs["amm"], "token_in": addrs["token0"], "amount": str(100 * 10**18),
            "to": addrs["guard"]}
    r = run("act", "--deployment", str(dep_path), "--model", "trader", "--inputs", '{"signal": 1}',
            "--intent", json.dumps(swap), "--slippage-bps", "100", "--as", "alice")
    assert r.exit_code == 0, r.output
    acted = json.loads(r.output)
    assert acted["status"] == 1
    r = run("audit", "--agent", agent.address)
    assert r.exit_code == 0 and json.loads(r.output)["counts"]["matched"] == 1

    # bad input: exit 2, nothing logged, nothing sent
    bad = run("act", "--deployment", str(dep_path), "--model", "trader", "--inputs", "{}",
              "--intent", '{"kind": "swap", "target": "0x12"}', "--as", "alice")
    assert bad.exit_code == 2 and "intent.target" in bad.output
    over = run("act", "--deployment", str(dep_path), "--model", "trader", "--inputs", "{}", "--intent",
               json.dumps({**swap, "amount": str(5000 * 10**18)}), "--slippage-bps", "100", "--as", "alice")
    assert over.exit_code == 2 and "OverCap" in over.output

    # the agent's key sends a transaction nobody logged: the audit fails
    w3 = Web3(Web3.HTTPProvider(node.url))
    m = market_from(w3, json.loads(dep_path.read_text()), agent=agent)
    it = {"kind": "transfer", "selector": "0xa9059cbb", "target": addrs["token0"].lower(),
          "to": "0x" + "de" * 20, "amount": "1"}
    send(w3, m.guard.functions.execute(m.tokens[0].address, calldata(it)), agent)
    r = run("audit", "--agent", agent.address)
    assert r.exit_code == 1
    rep = json.loads(r.output.splitlines()[0])
    assert rep["counts"]["unlogged"] == 1 and rep["counts"]["matched"] == 1

    # the scripted scenario: every injected attack pattern found; findings logged
    r = run("detect", "--deployment", str(dep_path), "--scenario", "24", "--seed", "3", "--log", "--as", "alice")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    ev = out["evaluation"]
    for p in ("drain", "sandwich", "address-poisoning", "unknown-spender-approval"):
        assert ev[p]["labelled"] > 0 and ev[p]["recall"] >= 0.8, (p, ev[p])
    for p in ("drain", "address-poisoning"):
        assert ev[p]["precision"] >= 0.8, (p, ev[p])
    lg = Ledger.open(tmp_path / "ledger")
    try:
        logged = [lg.entry(i) for i in out["logged"]]
    finally:
        lg.close()
    assert len(logged) == out["count"] and all(e.type == "agent.finding" for e in logged)
