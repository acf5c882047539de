"""End to end on a real anvil (the pinned binary, a port in this lane's range) through the CLI: deploy, the
policy registered as a model, the series logged, rebalances logged then sent through the guard, the audit,
and the bad inputs: a transfer to an unverified holder (exit 2, the token's error), a rebalance beyond the
caps and while the kill switch is pulled (exit 2, nothing logged), a transaction with no logged decision
(audit exit 1)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.devchain import ANVIL_KEYS, AnvilNode, find_anvil

pytestmark = pytest.mark.anvil

PORT = 18611


@pytest.fixture(scope="module")
def node():
    try:
        find_anvil()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(str(exc))
    with AnvilNode(PORT) as n:
        yield n


def test_vault_on_anvil_end_to_end(node, tmp_path):
    from eth_account import Account

    from ailedger.cli.main import main
    from ailedger.defi.actions import act, calldata, validate_intent
    from ailedger.defi.chain import connect, send
    from ailedger.rwa.chain import vault_from
    from ailedger.tlog.ledger import Ledger

    led = tmp_path / "ledger"
    Ledger.init(led, origin="test.example/rwa").close()
    agent = Account.from_key(ANVIL_KEYS[2])
    env = {"AILEDGER_LEDGER": str(led), "AILEDGER_RPC": node.url, "AILEDGER_DAO_KEY": ANVIL_KEYS[0],
           "AILEDGER_KILL_KEY": ANVIL_KEYS[1], "AILEDGER_AGENT_KEY": ANVIL_KEYS[2]}

    def run(*args):
        return CliRunner().invoke(main, [*args, "--json"], env=env)

    def ok(*args):
        r = run(*args)
        assert r.exit_code == 0, r.output
        try:
            return json.loads(r.output)
        except json.JSONDecodeError:
            return json.loads(r.output.strip().splitlines()[-1])

    ok("identity", "new", "operator")
    pol = ok("vault", "policy", str(tmp_path / "policy"))
    ok("model", "register", str(tmp_path / "policy"), "--name", "vol-target", "--as", "operator")
    dep = str(tmp_path / "deployment.json")
    d = ok("vault", "deploy", "--agent-address", agent.address, "--cap", "20000", "--out", dep)
    assert d["addresses"]["agent"] == agent.address and len(pol["root"]) == 64
    s = ok("vault", "series", "--deployment", dep, "--seed", "5", "--steps", "6", "--as", "operator")
    reb = ok("vault", "rebalance", "--deployment", dep, "--model", "vol-target", "--series", str(s["index"]),
             "--steps", "4", "--advance", "86400", "--as", "operator")
    assert reb["trades"] >= 2 and all(r["action"] is None or r["action"]["status"] == 1 for r in reb["steps"])
    st = ok("vault", "status", "--deployment", dep)
    assert st["rwa_weight_bps"] > 0 and not st["paused"]
    assert ok("agent", "audit", "--agent", agent.address)["counts"]["matched"] == reb["trades"]

    # a transfer to an unverified holder: the token refuses (exit 2), then the DAO verifies the holder
    stranger = "0x" + "5a" * 20
    r = run("vault", "transfer", "--deployment", dep, "--to", stranger, "--amount", "1")
    assert r.exit_code == 2 and "UnverifiedHolder(" in r.output
    assert ok("vault", "holder", stranger, "--deployment", dep)["verified"]
    ok("vault", "transfer", "--deployment", dep, "--to", stranger, "--amount", "1")

    size = Ledger.open(led).size
    # beyond the guard's caps: the agent acting outside its policy (a hand-made intent) is refused by the guard
    addrs = d["addresses"]
    big = {"kind": "swap", "target": addrs["vault"], "token_in": addrs["stable"], "amount": str(30_000 * 10**18),
           "to": addrs["guard"]}
    r = run("agent", "act", "--deployment", dep, "--model", "vol-target", "--inputs", "{}", "--intent",
            json.dumps(big), "--as", "operator")
    assert r.exit_code == 2  # not an agent deployment file: refused before anything is signed
    w3 = connect(node.url)
    v = vault_from(w3, json.loads((tmp_path / "deployment.json").read_text()), agent=agent)
    big["min_out"] = str(v.vault.functions.getAmountOut(w3.to_checksum_address(addrs["stable"]),
                                                        30_000 * 10**18).call())
    lg = Ledger.open(led)
    try:
        with pytest.raises(Exception, match="OverCap"):
            act(lg, lg.identities.load("operator", None), v, model="vol-target", inputs={}, intent=big)
    finally:
        lg.close()
    # the kill switch: every rebalance refused (exit 2), nothing logged; the DAO lifts it
    assert ok("vault", "pause", "--deployment", dep)["paused"]
    r = run("vault", "rebalance", "--deployment", dep, "--model", "vol-target", "--series", str(s["index"]),
            "--from-step", "4", "--steps", "2", "--as", "operator")
    assert r.exit_code == 2 and "GuardPaused" in r.output, r.output
    assert Ledger.open(led).size == size
    assert not ok("vault", "pause", "--deployment", dep, "--lift", "--kill-key", "env:AILEDGER_DAO_KEY")["paused"]

    # a vault transaction with no logged decision (the agent's key used directly): the audit reports it, exit 1
    it = validate_intent({**big, "amount": str(10**18), "min_out": "0"})
    it["min_out"] = str(v.vault.functions.getAmountOut(w3.to_checksum_address(addrs["stable"]), 10**18).call())
    send(w3, v.guard.functions.execute(v.vault.address, calldata(it)), agent)
    r = run("agent", "audit", "--agent", agent.address)
    assert r.exit_code == 1
    assert '"unlogged": 1' in r.output
    # bad input: a deployment from another command, a series that is not one, a negative amount
    assert run("vault", "status", "--deployment", str(tmp_path / "nope.json")).exit_code == 2
    assert run("vault", "rebalance", "--deployment", dep, "--model", "vol-target", "--series", "0",
               "--as", "operator").exit_code == 2
    r = run("vault", "transfer", "--deployment", dep, "--to", stranger, "--amount", "-1")
    assert r.exit_code == 2 and "--amount" in r.output
