"""The agent.* rules at admission (defi.rules.judge, asked by every write path) and when read: what admission
refuses (a malformed intent, a model that is not an effective registration or not usable, a replayed intent, a
malformed plan, a stranger's backtest result, a second result, a result before its plan) the readers ignore when
it reaches the log another way (written straight into the store, as an older ledger or another writer would)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ailedger.cli.main import main
from ailedger.defi.actions import ACTION, commit_inputs, effective_actions, intent_id, validate_intent
from ailedger.defi.backtest import data_digest, make_plan, score, simulate_amm, trials_on_ledger
from ailedger.defi.rules import PLAN, RESULT, effective_results, plan_digest
from ailedger.errors import ConflictError, NotAuthorisedError
from ailedger.tlog.ledger import entry_terms
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.stores import LeafRow

CHAIN = 31337
AGENT = "0x" + "a1" * 20
GUARD = "0x" + "9a" * 20
TOKEN = "0x" + "70" * 20
SINK = "0x" + "22" * 20


def intent(amount: int = 10**18, **kw):
    return {"kind": "transfer", "target": TOKEN, "to": SINK, "amount": str(amount), **kw}


def action(n: int, it=None, *, model="trader", model_entry=0, agent=AGENT, tx=None, **over):
    """An agent.action body as `log_action` writes it (no chain needed: the ledger rules read the body)."""
    it = validate_intent(it or intent())
    body = {"agent": agent, "chain_id": CHAIN, "guard": GUARD, "nonce": n, "model": model,
            "model_entry": model_entry, "inputs": {"alg": "sha256-salted-jcs",
                                                   "commitment": commit_inputs({"n": n}, b"s" * 32)[0]},
            "intent": it, "intent_id": intent_id(CHAIN, agent, n, it),
            "tx": tx or "0x" + f"{n + 1:064x}"}
    body.update(over)
    return body


def raw(lg, type_, body, who):
    """Append straight into the store, past admission (as another writer or an older ledger did)."""
    e = lg.make_entry(type_, body, who)
    return lg.log.append([LeafRow(e.leaf_bytes, leaf_hash(e.leaf_bytes), entry_terms(e))])[0].index


def refused(lg, type_, body, who, match):
    size = lg.size
    with pytest.raises(NotAuthorisedError, match=match):
        lg.append_record(type_, body, who)
    assert lg.size == size  # nothing logged


# -- agent.action ---------------------------------------------------------------------------------------------

BAD_ACTIONS = [
    ("intent kind", {"intent": {**validate_intent(intent()), "kind": "borrow"}}, "intent.kind must be one of"),
    ("intent amount", {"intent": {**validate_intent(intent()), "amount": "0"}}, "intent.amount must be positive"),
    ("intent field", {"intent": {**validate_intent(intent()), "memo": "x"}}, r"unknown field\(s\) \['memo'\]"),
    ("not canonical", {"intent": {**validate_intent(intent()), "to": "0x" + "AB" * 20}},
     "not in canonical form"),
    ("intent id", {"intent_id": "00" * 32}, "intent_id is not the sha256"),
    ("agent", {"agent": "0x12"}, "body.agent must be"),
    ("tx", {"tx": "0xabc"}, "body.tx must be"),
    ("nonce", {"nonce": -1}, "body.nonce must be a non-negative integer"),
    ("inputs", {"inputs": {"alg": "md5", "commitment": "00"}}, "body.inputs must be"),
    ("future model entry", {"model_entry": 99}, "is not a model.register logged before it"),
    ("model name", {"model": "other"}, "body.model 'other' is not 'trader'"),
]


@pytest.mark.parametrize(("what", "over", "why"), BAD_ACTIONS, ids=[b[0] for b in BAD_ACTIONS])
def test_a_bad_action_is_refused_when_logged_and_ignored_when_read(led, what, over, why):
    lg, alice = led
    body = action(0, **over)
    refused(lg, ACTION, body, alice, why)
    idx = raw(lg, ACTION, body, alice)
    kept, ignored = effective_actions(lg)
    assert kept == [] and len(ignored) == 1 and ignored[0][0] == idx
    assert pytest.importorskip("re").search(why, ignored[0][1]), ignored
    # the well-formed action with the same nonce is admitted afterwards: the ignored one took nothing
    good = lg.append_record(ACTION, action(0), alice).index
    assert [i for i, _ in effective_actions(lg)[0]] == [good]


def test_not_a_body_object_is_refused(led):
    lg, alice = led
    refused(lg, ACTION, {"intent": "transfer everything"}, alice, "malformed agent.action body")


def test_a_strangers_claim_on_the_model_name_cannot_act(led):
    lg, alice = led
    bob = lg.identities.create("bob")
    # a stranger's registration of an owned name, written past admission: the rules ignore it, and an action
    # naming it is refused (and ignored when read)
    claim = raw(lg, "model.register", {"name": "trader", "manifest": {"root": "cd" * 32}}, bob)
    refused(lg, ACTION, action(0, model_entry=claim), bob, f"entry #{claim} is not an effective model registration")
    plan, _ = small_plan()
    other = lg.append_record(PLAN, {"plan": plan, "plan_sha256": plan_digest(plan)}, alice).index
    refused(lg, ACTION, action(0, model_entry=other), alice, f"entry #{other} is not an effective model registration")
    ignored = raw(lg, ACTION, action(0, model_entry=claim), bob)
    assert effective_actions(lg) == ([], [(ignored, f"entry #{claim} is not an effective model registration")])


def test_a_revoked_or_suspended_model_cannot_act_and_earlier_actions_still_count(led):
    lg, alice = led
    before = lg.append_record(ACTION, action(0), alice).index
    rev = lg.append_record("model.revoke", {"name": "trader", "reason": "drifted"}, alice).index
    refused(lg, ACTION, action(1), alice, f"model trader was revoked by .* \\(entry #{rev}\\) before this action")
    after = raw(lg, ACTION, action(1), alice)
    kept, ignored = effective_actions(lg)
    assert [i for i, _ in kept] == [before]  # logged while the model was usable: it still counts
    assert [i for i, _ in ignored] == [after] and "revoked" in ignored[0][1]


def test_replays_by_nonce_and_by_intent_id_are_refused_and_ignored(led):
    lg, alice = led
    first = lg.append_record(ACTION, action(0), alice).index
    again = action(0, tx="0x" + "cd" * 32)  # same agent, chain, nonce: a replay whatever the transaction
    refused(lg, ACTION, again, alice, f"nonce 0 on chain {CHAIN} was already logged at entry #{first}")
    # another agent's nonce 0 is not a replay of this one
    other = lg.append_record(ACTION, action(0, agent="0x" + "b2" * 20), alice).index
    r1 = raw(lg, ACTION, again, alice)
    kept, ignored = effective_actions(lg)
    assert [i for i, _ in kept] == [first, other]
    assert ignored == [(r1, (f"replayed intent: agent {AGENT} nonce 0 on chain {CHAIN} was already logged at "
                            f"entry #{first}"))]
    assert [i for i, _ in effective_actions(lg, AGENT)[0]] == [first]


def test_a_batch_is_judged_in_order_and_only_the_bad_entry_fails(led):
    lg, alice = led
    mk = lambda b: lg.make_entry(ACTION, b, alice).leaf_bytes
    bad_intent = {**validate_intent(intent()), "kind": "borrow"}
    out = lg.append_entries([mk(action(0)), mk(action(0, tx="0x" + "ee" * 32)), mk(action(1, intent_id="0" * 64)),
                             mk(action(1)), mk(action(2, intent=bad_intent))])
    assert [isinstance(r, str) for r in out] == [False, True, True, False, True], out
    assert "replayed intent" in out[1] and "intent_id" in out[2] and "intent.kind" in out[4]
    kept, ignored = effective_actions(lg)
    assert [e.body["nonce"] for _, e in kept] == [0, 1] and ignored == []


def test_cli_append_of_a_bad_action_exits_2_and_logs_nothing(led, tmp_path):
    lg, alice = led
    lg.append_record(ACTION, action(0), alice)
    d = lg.path
    size = lg.size
    lg.close()
    f = tmp_path / "replay.json"
    f.write_text(json.dumps({"type": ACTION, "body": action(0, tx="0x" + "cd" * 32)}))
    r = CliRunner().invoke(main, ["--ledger", str(d), "append", "--as", "alice", str(f)])
    assert r.exit_code == 2, r.output
    assert "error:" in r.output and "replayed intent" in r.output
    from ailedger.tlog.ledger import Ledger

    with Ledger.open(d, read_only=True) as again:
        assert again.size == size


# -- agent.backtest.plan / agent.backtest.result --------------------------------------------------------------

def small_plan(study="s", seed=0):
    data = simulate_amm(600, seed)
    plan = make_plan(study=study, data_digest=data_digest(data), bars=600, seed=seed, horizon=4, embargo=8, k=4,
                     cost_bps=5, grid="small")
    return plan, data


def result_body(plan_index, plan, dsr="0.500000"):
    return {"plan": plan_index, "plan_sha256": plan_digest(plan), "study": plan["study"], "trials_on_ledger": 2,
            "best_config": 0, "metrics": {"dsr": dsr, "pbo": "0.100000", "sharpe_annual": "1.000000"}}


def test_malformed_plans_are_refused_and_not_counted(led):
    lg, alice = led
    plan, _ = small_plan()
    refused(lg, PLAN, {"plan": plan, "plan_sha256": "00" * 32}, alice, "is not the plan's digest")
    refused(lg, PLAN, {"plan": [1, 2]}, alice, "malformed agent.backtest.plan")
    refused(lg, PLAN, {"plan": {**plan, "configs": []}, "plan_sha256": "x"}, alice, "plan.configs must list")
    raw(lg, PLAN, {"plan": [1, 2]}, alice)  # a reader is not thrown by it
    raw(lg, PLAN, {"plan": plan, "plan_sha256": "00" * 32}, alice)
    assert trials_on_ledger(lg, "s", alice.did) == (0, [])
    good = lg.append_record(PLAN, {"plan": plan, "plan_sha256": plan_digest(plan)}, alice).index
    assert trials_on_ledger(lg, "s", alice.did) == (2, [good])


def test_results_by_strangers_twice_or_before_the_plan_are_refused(led):
    lg, alice = led
    bob = lg.identities.create("bob")
    plan, _ = small_plan()
    p = lg.append_record(PLAN, {"plan": plan, "plan_sha256": plan_digest(plan)}, alice).index
    refused(lg, RESULT, result_body(p, plan), bob, f"only the plan's signer {alice.did}")
    refused(lg, RESULT, result_body(p + 5, plan), alice, "names its plan logged before it")
    refused(lg, RESULT, result_body(0, plan), alice, "entry #0 is a model.register, not an agent.backtest.plan")
    refused(lg, RESULT, {**result_body(p, plan), "plan_sha256": "11" * 32}, alice, "must be those of the plan")
    refused(lg, RESULT, {**result_body(p, plan), "plan": "first"}, alice, "body.plan must be the index")
    first = lg.append_record(RESULT, result_body(p, plan), alice).index
    refused(lg, RESULT, result_body(p, plan, dsr="0.990000"), alice, f"already scored at entry #{first}")
    assert [i for i, _ in effective_results(lg)[0]] == [first]


def test_a_plan_and_its_result_in_one_batch_and_a_strangers_in_the_same_batch(led):
    lg, alice = led
    bob = lg.identities.create("bob")
    plan, _ = small_plan("batch")
    base = lg.size
    out = lg.append_entries([lg.make_entry(PLAN, {"plan": plan, "plan_sha256": plan_digest(plan)}, alice).leaf_bytes,
                             lg.make_entry(RESULT, result_body(base, plan), bob).leaf_bytes,
                             lg.make_entry(RESULT, result_body(base, plan), alice).leaf_bytes])
    assert isinstance(out[1], str) and "only the plan's signer" in out[1], out
    assert not isinstance(out[0], str) and not isinstance(out[2], str), out
    assert [e.signer for _, e in effective_results(lg, "batch")[0]] == [alice.did]


def test_a_strangers_result_in_the_log_is_ignored_and_the_signers_result_is_reported(led, tmp_path):
    """Point 2 of the lane: a stranger's agent.backtest.result appended by the low-level path (bypassing the
    judge) is ignored by the reader that reports results; it does not stop the plan's signer from scoring, and
    `agent results` shows the signer's result and lists the stranger's as ignored."""
    lg, alice = led
    mallory = lg.identities.create("mallory")
    plan, data = small_plan("honest")
    p = lg.append_record(PLAN, {"plan": plan, "plan_sha256": plan_digest(plan)}, alice).index
    forged = raw(lg, RESULT, result_body(p, plan, dsr="0.999000"), mallory)  # flattering numbers, wrong key
    early = raw(lg, RESULT, result_body(p + 50, plan), alice)  # names a plan "after" it
    kept, ignored = effective_results(lg)
    assert kept == []
    assert [i for i, _ in ignored] == [forged, early] and "only the plan's signer" in ignored[0][1]
    rep = score(lg, alice, p, data)  # the stranger's result does not count as the plan's score
    kept, _ = effective_results(lg, "honest")
    assert [i for i, _ in kept] == [rep["result_index"]] and kept[0][1].signer == alice.did
    with pytest.raises(ConflictError, match="already scored"):
        score(lg, alice, p, data)
    d = lg.path
    lg.close()
    r = CliRunner().invoke(main, ["--ledger", str(d), "agent", "results", "--study", "honest", "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert [x["entry"] for x in got["results"]] == [rep["result_index"]]
    assert got["results"][0]["signer"] == alice.did and got["results"][0]["metrics"]["dsr"] != "0.999000"
    assert {x["entry"] for x in got["ignored"]} == {forged, early}
    r = CliRunner().invoke(main, ["--ledger", str(d), "agent", "results"])
    assert r.exit_code == 0 and f"ignored #{forged}: only the plan's signer" in r.output, r.output
