"""The compute marketplace on the in-process EVM: the job is deterministic, the contract pays once, the
bisection game catches a cheat at any step, honest providers are never slashed, every timeout settles, the
referee refuses a proof for the wrong step, and the ledger fold applies the authority rules."""

from __future__ import annotations

import math

import pytest
from eth_account import Account
from web3 import EthereumTesterProvider, Web3

from ailedger.compute import chain, game, job, service
from ailedger.errors import BadInputError, NotAuthorisedError, VerificationError
from ailedger.tlog.ledger import Ledger, entry_terms
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.stores import LeafRow

E18 = 10**18
PRICE, BOND = 3 * E18, E18
SPEC = job.JobSpec(steps=24, rows=64)
RUN_W, CHAL_W, MOVE_W = 3600, 600, 300


@pytest.fixture(scope="module")
def traces():
    honest = service.Trace.compute(SPEC)
    return honest


@pytest.fixture
def w3():
    return Web3(EthereumTesterProvider())


def fund(w3, n):
    out = [Account.create() for _ in range(n)]
    for a in out:
        w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": a.address, "value": 20 * E18})
    return out


@pytest.fixture
def market(w3):
    client, prov, chal, ref = fund(w3, 4)
    m = chain.Market.deploy(w3, client)
    return m, client, prov, chal, ref


def post_and_accept(m, client, prov, ref, init_root):
    jid = m.post(client, service.spec_hash(SPEC), init_root, SPEC.steps, PRICE, BOND, ref.address, RUN_W, CHAL_W,
                 MOVE_W)
    m.bid(prov, jid)
    m.accept(client, jid, prov.address)
    return jid


def balance(m):
    return m.w3.eth.get_balance(m.address)


def test_job_is_deterministic_and_learns(traces):
    again = job.run(SPEC)
    assert again == traces.roots and len(again) == SPEC.steps + 1
    assert len(set(again)) == len(again)                         # every step changes the state
    assert job.run(job.JobSpec(steps=24, rows=64, seed=2))[0] != again[0]
    assert job.loss(SPEC, traces.state(SPEC.steps)) < job.loss(SPEC, traces.state(0))
    s = traces.state(5)
    nudged = {**s, "b2": s["b2"].copy()}
    nudged["b2"][0] += 1
    assert job.state_root(nudged) != job.state_root(s) == traces.roots[5]
    assert job.state_root(job.step(SPEC, s, 5)) == traces.roots[6]


def test_honest_job_is_paid_once(market, traces):
    m, client, prov, chal, ref = market
    jid = post_and_accept(m, client, prov, ref, traces.roots[0])
    m.submit(prov, jid, traces.roots)
    with pytest.raises(BadInputError, match=r"TooEarly"):
        m.finish(chal, jid)                                     # the challenge window is open
    chain.advance(m.w3, CHAL_W + 1)
    with pytest.raises(BadInputError, match=r"TooLate"):
        m.challenge(chal, jid)
    m.finish(chal, jid)                                         # anyone may settle
    with pytest.raises(BadInputError, match=r"WrongPhase\(submitted, settled\)"):
        m.finish(prov, jid)                                     # a double payout claim
    assert m.credit(prov.address) == PRICE + BOND
    assert m.withdraw(prov) == PRICE + BOND
    with pytest.raises(BadInputError, match="NothingToWithdraw"):
        m.withdraw(prov)                                        # paid once
    assert balance(m) == 0                                      # nothing stuck


@pytest.mark.parametrize("bad", [0, 11, 23])
def test_a_cheat_at_any_step_is_caught_and_slashed(market, traces, bad):
    m, client, prov, chal, ref = market
    cheat = service.Trace.compute(SPEC, corrupt=bad)
    assert cheat.roots[: bad + 1] == traces.roots[: bad + 1] and cheat.roots[bad + 1] != traces.roots[bad + 1]
    jid = post_and_accept(m, client, prov, ref, traces.roots[0])
    m.submit(prov, jid, cheat.roots)
    m.challenge(chal, jid)
    moves = []
    st = game.play(m, jid, game.Provider(prov, cheat), game.Challenger(chal, roots=traces.roots),
                   on_move=lambda who, d: moves.append(who))
    d = st["dispute"]
    assert (d["lo"], d["hi"], d["turn"]) == (bad, bad + 1, "referee")
    assert moves.count("provider") == moves.count("challenger") <= math.ceil(math.log2(SPEC.steps))
    # the honest challenger holds the agreed state; the referee re-executes the one step
    v = service.referee_step(SPEC, d, {"step": bad, "state": service.encode_state(traces.state(bad))})
    assert v["provider_right"] is False and v["computed_root"] == traces.roots[bad + 1].hex()
    with pytest.raises(BadInputError, match="NotReferee"):
        m.rule(chal, jid, False)                                # only the referee rules
    m.rule(ref, jid, v["provider_right"])
    assert m.settlement(jid)["outcome"] == "referee: provider wrong"
    assert m.credit(prov.address) == 0
    assert m.withdraw(chal) == 2 * BOND and m.withdraw(client) == PRICE
    assert balance(m) == 0


@pytest.mark.parametrize("lie", ["disagree-all", "agree-all"])
def test_challenging_an_honest_result_loses_the_bond(market, traces, lie):
    m, client, prov, chal, ref = market
    jid = post_and_accept(m, client, prov, ref, traces.roots[0])
    m.submit(prov, jid, traces.roots)
    m.challenge(chal, jid)
    liar = game.Challenger(chal, bad_step=-1 if lie == "disagree-all" else SPEC.steps)
    st = game.play(m, jid, game.Provider(prov, traces), liar)
    d = st["dispute"]
    assert d["turn"] == "referee"
    # whatever the liar said, the one step left is one the honest provider computed right
    v = service.referee_step(SPEC, d, {"step": d["lo"], "state": service.encode_state(traces.state(d["lo"]))})
    assert v["provider_right"] is True
    m.rule(ref, jid, True)
    assert m.withdraw(prov) == PRICE + 2 * BOND                 # the challenger's bond goes to the provider
    assert m.credit(chal.address) == 0 and balance(m) == 0


def test_provider_that_never_answers_forfeits_its_bond(market, traces):
    m, client, prov, _chal, ref = market
    jid = post_and_accept(m, client, prov, ref, traces.roots[0])
    with pytest.raises(BadInputError, match="TooEarly"):
        m.claim_timeout(client, jid)
    chain.advance(m.w3, RUN_W + 1)
    with pytest.raises(BadInputError, match="TooLate"):
        m.submit(prov, jid, traces.roots)
    m.claim_timeout(client, jid)
    with pytest.raises(BadInputError, match="WrongPhase"):
        m.claim_timeout(client, jid)                            # claimed once
    assert m.withdraw(client) == PRICE + BOND and balance(m) == 0


@pytest.mark.parametrize("silent", ["provider", "challenger", "referee"])
def test_a_silent_party_in_the_dispute_loses(market, traces, silent):
    m, client, prov, chal, ref = market
    cheat = service.Trace.compute(SPEC, corrupt=7)
    jid = post_and_accept(m, client, prov, ref, traces.roots[0])
    m.submit(prov, jid, cheat.roots)
    m.challenge(chal, jid)
    p, c = game.Provider(prov, cheat), game.Challenger(chal, roots=traces.roots)
    if silent == "provider":
        st = game.play(m, jid, None, c)
    elif silent == "challenger":
        st = game.play(m, jid, p, None)
    else:
        st = game.play(m, jid, p, c)
    assert st["dispute"]["turn"] == silent
    with pytest.raises(BadInputError, match="TooEarly"):
        m.timeout_dispute(client, jid)
    chain.advance(m.w3, MOVE_W + 1)
    m.timeout_dispute(client, jid)
    got = {a.address: m.credit(a.address) for a in (client, prov, chal)}
    want = {"provider": {client.address: PRICE, prov.address: 0, chal.address: 2 * BOND},
            "challenger": {client.address: 0, prov.address: PRICE + 2 * BOND, chal.address: 0},
            "referee": {client.address: PRICE, prov.address: BOND, chal.address: BOND}}[silent]
    assert got == want
    for a in (client, prov, chal):
        if got[a.address]:
            m.withdraw(a)
    assert balance(m) == 0


def test_referee_refuses_a_proof_for_the_wrong_step(traces):
    cheat = service.Trace.compute(SPEC, corrupt=9)
    d = {"lo": 9, "hi": 10, "lo_root": traces.roots[9].hex(), "hi_root": cheat.roots[10].hex()}
    with pytest.raises(BadInputError, match="the step proof is for step 10; the dispute is about step 9"):
        service.referee_step(SPEC, d, {"step": 10, "state": service.encode_state(traces.state(10))})
    with pytest.raises(BadInputError, match="not the agreed root"):
        service.referee_step(SPEC, d, {"step": 9, "state": service.encode_state(traces.state(8))})
    with pytest.raises(BadInputError, match="exactly the tensors"):
        service.referee_step(SPEC, d, {"step": 9, "state": {"w1": {}}})
    with pytest.raises(BadInputError, match="not down to one step"):
        service.referee_step(SPEC, {**d, "hi": 12}, {"step": 9, "state": service.encode_state(traces.state(9))})
    assert service.referee_step(SPEC, d, {"step": 9, "state": service.encode_state(traces.state(9))})[
        "provider_right"] is False


def test_bad_posts_are_refused(market, traces):
    m, client, _prov, _chal, ref = market
    args = (service.spec_hash(SPEC), traces.roots[0])
    with pytest.raises(BadInputError, match="BadPrice"):
        m.post(client, *args, SPEC.steps, 0, BOND, ref.address, 1, 1, 1)
    with pytest.raises(BadInputError, match="BadReferee"):
        m.post(client, *args, SPEC.steps, PRICE, BOND, "0x" + "00" * 20, 1, 1, 1)
    with pytest.raises(BadInputError, match="dataset"):
        job.JobSpec(dataset="mnist")
    with pytest.raises(BadInputError, match="steps must be an integer"):
        job.JobSpec(steps=0)


def test_sampling_catches_the_bad_step_only_when_it_is_drawn(traces):
    cheat = service.Trace.compute(SPEC, corrupt=5)
    assert game.sample_check(SPEC, cheat, [5]) == 5
    assert game.sample_check(SPEC, cheat, [0, 4, 6, 20]) is None
    assert game.sample_check(SPEC, traces, list(range(SPEC.steps))) is None
    drawn = game.sample_steps(1000, 0.1, b"checkpoint")
    assert drawn == game.sample_steps(1000, 0.1, b"checkpoint") != game.sample_steps(1000, 0.1, b"other")
    assert 50 < len(drawn) < 150
    with pytest.raises(BadInputError, match="sampling rate"):
        game.sample_steps(10, 0, b"x")


def test_ledger_fold_applies_the_authority_rules(tmp_path, traces):
    led = Ledger.init(tmp_path / "l", "test.example/compute")
    client, prov, other, ref = (led.new_identity(n)[0] for n in ("client", "prov", "other", "ref"))
    c, j = "0x" + "ab" * 20, 1
    service.log_entry(led, client, "job", c, j, {"spec": SPEC.to_dict(), "referee": ref.did})
    service.log_entry(led, prov, "bid", c, j, {"provider_address": "0x1"})
    with pytest.raises(NotAuthorisedError, match="only the job's client"):
        service.log_entry(led, other, "accept", c, j, {"provider": other.did})
    service.log_entry(led, client, "accept", c, j, {"provider": prov.did})
    with pytest.raises(NotAuthorisedError, match="only the accepted provider"):
        service.log_entry(led, other, "result", c, j, service.result_body(SPEC, traces.roots))
    service.log_entry(led, prov, "result", c, j, service.result_body(SPEC, traces.roots))
    d = {"lo": 3, "hi": 4, "lo_root": traces.roots[3].hex(), "hi_root": traces.roots[4].hex()}
    pf = {"step": 3, "state": service.encode_state(traces.state(3))}
    v = {**service.referee_step(SPEC, d, pf), "spec": SPEC.to_dict(), "state": pf["state"]}
    with pytest.raises(NotAuthorisedError, match="only the job's referee"):
        service.log_entry(led, other, "verdict", c, j, v)
    idx = service.log_entry(led, ref, "verdict", c, j, v)
    # refused at every write path; one that reaches the store another way (no checks at all) is ignored
    forged = led.make_entry("compute.verdict", {"contract": c, "job": j, **v, "provider_right": False,
                                                "subjects": [service.job_term(c, j)]}, other)
    with pytest.raises(NotAuthorisedError, match="only the job's referee"):
        led.append_entry(forged)
    led.log.append([LeafRow(forged.leaf_bytes, leaf_hash(forged.leaf_bytes), entry_terms(forged))])
    view = service.job_view(led, c, j)
    assert view.accepted["provider"] == prov.did and view.result["roots"][-1] == traces.roots[-1].hex()
    assert view.verdict["index"] == idx and view.verdict["provider_right"] is True
    assert [i["type"] for i in view.ignored] == ["compute.verdict"]
    assert service.replay_verdict(dict(led.entry(idx).body))["provider_right"] is True
    with pytest.raises(VerificationError, match="does not replay"):
        service.replay_verdict({**v, "computed_root": traces.roots[5].hex()})


def test_the_explorer_lists_jobs_and_where_they_stand(tmp_path, traces):
    from starlette.testclient import TestClient

    from ailedger.http.app import create_app

    led = Ledger.init(tmp_path / "l", "test.example/compute-explorer")
    client, prov, ref = (led.new_identity(n)[0] for n in ("client", "prov", "ref"))
    c = "0x" + "cd" * 20
    service.log_entry(led, client, "job", c, 1, {"spec": SPEC.to_dict(), "referee": ref.did})
    service.log_entry(led, client, "job", c, 2, {"spec": SPEC.to_dict(), "referee": ref.did})
    service.log_entry(led, client, "accept", c, 2, {"provider": prov.did})
    service.log_entry(led, prov, "result", c, 2, service.result_body(SPEC, traces.roots))
    with TestClient(create_app(led)) as http:
        r = http.get("/compute")
        assert r.status_code == 200
        assert "open (0 bids)" in r.text and "result logged" in r.text
        assert traces.roots[-1].hex()[:16] in r.text and "24 steps of digits" in r.text
        home = http.get("/").text
        assert '<a href="/compute">' in home
    led.close()


@pytest.mark.parametrize("seed", [1, 2])
def test_any_strategy_loses_against_the_honest_side(market, traces, seed):
    """Soundness both ways: a provider that commits to any made-up trace (honest roots here and there,
    made-up ones elsewhere, a wrong final root) is caught by an honest challenger, and a challenger answering
    at random cannot get an honest provider slashed."""
    import random

    m, client, prov, chal, ref = market
    rng = random.Random(seed)
    made_up = [traces.roots[0]] + [r if rng.random() < 0.5 else rng.randbytes(32) for r in traces.roots[1:-1]]
    made_up.append(rng.randbytes(32))
    jid = post_and_accept(m, client, prov, ref, traces.roots[0])
    m.submit(prov, jid, made_up)
    m.challenge(chal, jid)
    d = game.play(m, jid, game.Provider(prov, service.Trace({}, made_up)),
                  game.Challenger(chal, roots=traces.roots))["dispute"]
    assert bytes.fromhex(d["lo_root"]) == traces.roots[d["lo"]]      # the agreed root is always the honest one
    v = service.referee_step(SPEC, d, {"step": d["lo"], "state": service.encode_state(traces.state(d["lo"]))})
    assert v["provider_right"] is False
    # an honest provider against a challenger that answers at random
    jid = post_and_accept(m, client, prov, ref, traces.roots[0])
    m.submit(prov, jid, traces.roots)
    m.challenge(chal, jid)

    class Coin(game.Challenger):
        def agrees(self, step, root_hex):
            return rng.random() < 0.5

    d = game.play(m, jid, game.Provider(prov, traces), Coin(chal))["dispute"]
    v = service.referee_step(SPEC, d, {"step": d["lo"], "state": service.encode_state(traces.state(d["lo"]))})
    assert v["provider_right"] is True


def test_the_provider_is_bound_to_its_trace_root(market, traces):
    """submit proves r_0 and r_S are the first and last leaves of the trace root; every reveal proves its
    root is that step's leaf: another root, or a proof for another step, is refused."""
    m, client, prov, chal, ref = market
    cheat = service.Trace.compute(SPEC, corrupt=3)
    jid = post_and_accept(m, client, prov, ref, traces.roots[0])
    tr = job.trace_root(cheat.roots)
    last = len(cheat.roots) - 1
    with pytest.raises(BadInputError, match=r"BadProof\(0\)"):            # a trace that does not start at r_0
        m.submit(prov, jid, [traces.roots[1], *cheat.roots[1:]])
    with pytest.raises(BadInputError, match=rf"BadProof\({SPEC.steps}\)"):  # r_S is not the trace's last leaf
        m.submit_raw(prov, jid, traces.roots[-1], tr, job.trace_proof(cheat.roots, 0),
                     job.trace_proof(cheat.roots, last))
    m.submit(prov, jid, cheat.roots)
    m.challenge(chal, jid)
    mid = SPEC.steps // 2
    with pytest.raises(BadInputError, match=rf"BadProof\({mid}\)"):
        m.reveal(prov, jid, traces.roots[mid], job.trace_proof(cheat.roots, mid))     # the honest root: not committed
    with pytest.raises(BadInputError, match=rf"BadProof\({mid}\)"):
        m.reveal(prov, jid, cheat.roots[mid + 1], job.trace_proof(cheat.roots, mid + 1))  # another step's leaf
    m.reveal(prov, jid, cheat.roots[mid], job.trace_proof(cheat.roots, mid))
    assert m.status(jid)["dispute"]["turn"] == "challenger"
