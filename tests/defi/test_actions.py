"""agent.action: logged before the transaction is sent, refused when malformed, replayed or from a model that may
not be used; the audit finds transactions without a logged decision and ones that differ from it."""

from __future__ import annotations

import pytest

from ailedger.defi.actions import (
    ACTION,
    act,
    audit,
    calldata,
    commit_inputs,
    effective_actions,
    log_action,
    validate_intent,
)
from ailedger.defi.chain import E18, GuardRefused, send
from ailedger.errors import BadInputError, ConflictError, NotAuthorisedError, VerificationError
from ailedger.tlog.ledger import entry_terms
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.stores import LeafRow

SINK = "0x" + "22" * 20


def transfer(m, amount=E18):
    return {"kind": "transfer", "target": m.tokens[0].address, "to": SINK, "amount": str(amount)}


def test_act_logs_then_sends_and_the_audit_matches(market, led):
    lg, alice = led
    res = act(lg, alice, market, model="trader", inputs={"price": 1.5}, intent=transfer(market))
    assert res["status"] == 1
    e = lg.entry(res["index"])
    assert e.type == ACTION and e.body["tx"] == res["body"]["tx"]
    assert lg.entry(e.body["model_entry"]).type == "model.register" and e.body["model"] == "trader"
    # the salted commitment opens with the salt and the inputs, and only with them
    assert commit_inputs({"price": 1.5}, bytes.fromhex(res["salt"]))[0] == e.body["inputs"]["commitment"]
    assert commit_inputs({"price": 1.6}, bytes.fromhex(res["salt"]))[0] != e.body["inputs"]["commitment"]
    rep = audit(lg, market.w3, market.agent.address)
    assert rep["ok"] and rep["counts"]["matched"] == 1 and rep["transactions"][0]["entry"] == res["index"]


def test_a_transaction_without_a_logged_decision_is_reported(market, led):
    lg, alice = led
    act(lg, alice, market, model="trader", inputs={}, intent=transfer(market))
    it = validate_intent(transfer(market, 2 * E18))
    rcpt = send(market.w3, market.guard.functions.execute(market.tokens[0].address, calldata(it)), market.agent)
    rep = audit(lg, market.w3, market.agent.address)
    assert not rep["ok"]
    assert rep["counts"] == {"matched": 1, "unlogged": 1, "mismatch": 0, "not_on_chain": 0}
    row = next(r for r in rep["transactions"] if r["status"] == "unlogged")
    assert row["tx"] == "0x" + bytes(rcpt["transactionHash"]).hex()


def test_a_transaction_that_differs_from_its_intent_is_a_mismatch(market, led):
    lg, alice = led
    w3, m = market.w3, market
    sent = validate_intent(transfer(m, 3 * E18))
    fn = m.guard.functions.execute(m.tokens[0].address, calldata(sent))
    nonce = w3.eth.get_transaction_count(m.agent.address)
    tx = fn.build_transaction({"from": m.agent.address, "nonce": nonce, "chainId": w3.eth.chain_id})
    signed = m.agent.sign_transaction(tx)
    # the log says 1 token; the transaction moves 3
    log_action(lg, alice, model="trader", inputs={}, intent=transfer(m, E18), chain_id=w3.eth.chain_id,
               agent=m.agent.address, nonce=nonce, tx_hash="0x" + bytes(signed.hash).hex(), guard=m.guard.address)
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))
    rep = audit(lg, w3, m.agent.address)
    assert not rep["ok"] and rep["counts"]["mismatch"] == 1
    assert rep["transactions"][0]["decoded"]["amount"] == str(3 * E18)


@pytest.mark.parametrize(("intent", "field"), [
    ("not a dict", "intent"),
    ({"kind": "borrow"}, "kind"),
    ({"kind": "transfer", "target": "0x12", "to": SINK, "amount": "1"}, "target"),
    ({"kind": "transfer", "target": SINK, "to": SINK, "amount": "-5"}, "amount"),
    ({"kind": "transfer", "target": SINK, "to": SINK, "amount": "0"}, "amount"),
    ({"kind": "transfer", "target": SINK, "to": SINK, "amount": 1.5}, "amount"),
    ({"kind": "transfer", "target": SINK, "to": SINK, "amount": str(2**256)}, "amount"),
    ({"kind": "transfer", "target": SINK, "to": SINK, "amount": "1", "selector": "0x095ea7b3"}, "selector"),
    ({"kind": "transfer", "target": SINK, "to": SINK, "amount": "1", "memo": "x"}, "memo"),
    ({"kind": "swap", "target": SINK, "to": SINK, "amount": "1", "token_in": SINK}, "min_out"),
])
def test_malformed_intents_are_refused_and_nothing_is_logged(market, led, intent, field):
    lg, alice = led
    size = lg.size
    with pytest.raises(BadInputError) as ei:
        act(lg, alice, market, model="trader", inputs={}, intent=intent)
    assert ei.value.field == field
    assert lg.size == size


def test_a_revoked_model_cannot_act(market, led):
    lg, alice = led
    lg.append_record("model.revoke", {"name": "trader", "reason": "drifted"}, alice)
    size = lg.size
    with pytest.raises(VerificationError, match="revoked"):
        act(lg, alice, market, model="trader", inputs={}, intent=transfer(market))
    assert lg.size == size
    assert market.w3.eth.get_transaction_count(market.agent.address) == 0  # nothing sent


def test_an_unregistered_model_cannot_act(market, led):
    lg, alice = led
    with pytest.raises(Exception, match="no registered model"):
        act(lg, alice, market, model="nobody", inputs={}, intent=transfer(market))


def test_a_replayed_intent_is_refused_and_ignored_when_read(market, led):
    lg, alice = led
    first = act(lg, alice, market, model="trader", inputs={}, intent=transfer(market))
    b = first["body"]
    with pytest.raises(ConflictError, match="replayed intent"):
        log_action(lg, alice, model="trader", inputs={}, intent=b["intent"], chain_id=b["chain_id"],
                   agent=b["agent"], nonce=b["nonce"], tx_hash="0x" + "ab" * 32, guard=b["guard"])
    # the same body through the ledger's write path: refused by admission (the agent.* judge), nothing logged
    size = lg.size
    with pytest.raises(NotAuthorisedError, match="replayed intent"):
        lg.append_record(ACTION, {**b, "tx": "0x" + "cd" * 32}, alice)
    assert lg.size == size
    # written straight into the store (another writer, an older ledger): a replay, ignored; the first counts
    e = lg.make_entry(ACTION, {**b, "tx": "0x" + "cd" * 32}, alice)
    dup = lg.log.append([LeafRow(e.leaf_bytes, leaf_hash(e.leaf_bytes), entry_terms(e))])[0].index
    kept, ignored = effective_actions(lg)
    assert [i for i, _ in kept] == [first["index"]]
    assert ignored == [(dup, (f"replayed intent: agent {b['agent']} nonce {b['nonce']} on chain {b['chain_id']} "
                             f"was already logged at entry #{first['index']}"))]


def test_a_refused_call_is_not_logged(market, led):
    lg, alice = led
    size = lg.size
    with pytest.raises(GuardRefused, match="OverCap"):
        act(lg, alice, market, model="trader", inputs={}, intent=transfer(market, 5000 * E18))
    assert lg.size == size
