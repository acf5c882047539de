"""The server refuses unsigned, unregistered, unenrolled, tampered, other-round and replayed updates, and
logs them only as refused; the authority rule refuses fl.round / fl.remove entries without standing."""

from __future__ import annotations

import base64

import pytest
from flwr.common import FitIns, FitRes, Parameters, ndarrays_to_parameters
from flwr.server.client_manager import SimpleClientManager

from ailedger.errors import NotAuthorisedError
from ailedger.federated import model
from ailedger.federated.audit import remove_client, run_view
from ailedger.federated.client import DigitsClient, InProcessProxy, SignedClient
from ailedger.federated.data import split_digits
from ailedger.federated.params import model_root
from ailedger.federated.service import client_identities
from ailedger.federated.store import UpdateStore
from ailedger.federated.strategy import LedgerStrategy, RunContext, make_strategy


class Rig:
    def __init__(self, ledger, server, tmp_path, n=3):
        self.ledger, self.server = ledger, server
        self.idents = client_identities(ledger, n)
        self.ghost = ledger.identities.create("ghost")  # a key on disk, never registered on the ledger
        self.outsider, _ = ledger.new_identity("outsider")  # registered, not enrolled
        self.split = split_digits(n + 2, seed=0)
        self.init = ndarrays_to_parameters(model.init_params())
        enrolled = [i.did for i in self.idents] + [self.ghost.did]
        self.run = ledger.append_record("fl.run", {"name": "t", "rule": {"name": "fedavg", "params": {}},
                                                   "clients": enrolled, "rounds": 2,
                                                   "init_root": model_root(self.init.tensors)}, server).index
        self.ctx = RunContext(ledger, server, self.run, set(enrolled), UpdateStore(tmp_path / "store", self.run),
                              {"name": "fedavg", "params": {}})
        inner = make_strategy("fedavg", {}, n_clients=n, initial=self.init)
        self.strategy = LedgerStrategy(inner, self.ctx)
        self.cm = SimpleClientManager()
        for k, ident in enumerate(self.idents):
            self.cm.register(InProcessProxy(ident.did, self.signed(ident, k)))

    def signed(self, ident, k):
        return SignedClient(DigitsClient(self.split.clients[k], epochs=3).to_client(), ident)

    def good_round(self, rnd, params):
        ins = self.strategy.configure_fit(rnd, params, self.cm)
        return ins, [(p, p.fit(i, None, rnd)) for p, i in ins]

    def entry(self, index):
        return self.ledger.entry(index).body


def _reasons(body):
    return {r["did"]: r["reason"] for r in body["refused"]}


def test_bad_updates_are_refused_and_logged_only_as_refused(ledger, server, tmp_path):
    rig = Rig(ledger, server, tmp_path)
    ins, results = rig.good_round(1, rig.init)
    cfg = dict(ins[0][1].config)
    k = len(rig.idents)
    bad = []
    # unsigned: a plain Flower client
    plain = DigitsClient(rig.split.clients[k], epochs=3).to_client().fit(FitIns(rig.init, cfg))
    bad.append(plain)
    # unregistered (enrolled in the run, but its key was never registered on the ledger)
    bad.append(rig.signed(rig.ghost, k).fit(FitIns(rig.init, cfg)))
    # registered but not enrolled in this run
    bad.append(rig.signed(rig.outsider, k + 1).fit(FitIns(rig.init, cfg)))
    # tampered in transit: a good update whose parameters changed after signing
    good0 = results[0][1]
    arrays = model.init_params()
    arrays[1][0] = 1.0
    tampered = FitRes(good0.status, ndarrays_to_parameters(arrays), good0.num_examples, dict(good0.metrics))
    sent = [(p, r) for p, r in results[1:]] + [(InProcessProxy("x", None), r) for r in bad]
    sent.append((results[0][0], tampered))
    params, _ = rig.strategy.aggregate_fit(1, sent, [])
    body = rig.entry(rig.ctx.rounds[-1].entry)
    reasons = _reasons(body)
    assert "unsigned update" in reasons["None"]
    assert reasons[rig.ghost.did] == f"{rig.ghost.did} is not a registered identity on this ledger"
    assert reasons[rig.outsider.did] == f"{rig.outsider.did} is not enrolled in run {rig.run}"
    victim = good0.metrics["ailedger.did"]
    assert "do not match the signed digest" in reasons[victim]
    accepted = {c["did"] for c in body["clients"]}
    assert accepted == {i.did for i in rig.idents} - {victim}
    assert not accepted & set(reasons)
    assert isinstance(params, Parameters)


def test_an_update_for_another_round_and_a_replayed_signature_are_refused(ledger, server, tmp_path):
    rig = Rig(ledger, server, tmp_path)
    _ins, results = rig.good_round(1, rig.init)
    params, _ = rig.strategy.aggregate_fit(1, results, [])
    assert len(rig.entry(rig.ctx.rounds[-1].entry)["clients"]) == len(rig.idents)
    ins2, results2 = rig.good_round(2, params)
    # client 0 sends its round-1 update again (the same signature), client 1 one signed for round 3
    cfg3 = {**ins2[0][1].config, "ailedger.round": 3}
    c1 = rig.idents[1].did
    proxy1 = next(p for p, _ in results2 if p.cid == c1)
    other_round = proxy1.fit(FitIns(params, cfg3), None, 2)
    # the same, with the round field stripped: only the signature can tell
    stripped = FitRes(other_round.status, other_round.parameters, other_round.num_examples,
                      {k: v for k, v in other_round.metrics.items() if k != "ailedger.round"})
    replayed = next(r for p, r in results if p.cid == rig.idents[0].did)
    rest = [(p, r) for p, r in results2 if p.cid not in (rig.idents[0].did, c1)]
    rig.strategy.aggregate_fit(2, rest + [(InProcessProxy("a", None), replayed),
                                          (InProcessProxy("b", None), other_round),
                                          (InProcessProxy("c", None), stripped)], [])
    body = rig.entry(rig.ctx.rounds[-1].entry)
    got = [(r["did"], r["reason"]) for r in body["refused"]]
    assert (rig.idents[0].did, "replayed signature: already used in round 1") in got
    assert (c1, "update signed for round 3, not round 2") in got
    assert any(d == c1 and "signature does not verify for run" in why for d, why in got)
    assert [c["did"] for c in body["clients"]] == sorted(d for d in [i.did for i in rig.idents[2:]])


def test_a_second_update_from_one_client_in_a_round_is_refused(ledger, server, tmp_path):
    rig = Rig(ledger, server, tmp_path)
    _, results = rig.good_round(1, rig.init)
    rig.strategy.aggregate_fit(1, results + [results[0]], [])
    body = rig.entry(rig.ctx.rounds[-1].entry)
    assert [r["reason"] for r in body["refused"]] == [f"a second update from {results[0][0].cid} in round 1"]


def _round_body(rig, results, rnd=1):
    return {"run": rig.run, "round": rnd, "root_before": model_root(rig.init.tensors), "root_after": "00" * 32,
            "rule": {"name": "fedavg", "params": {}}, "refused": [],
            "clients": [{"did": r.metrics["ailedger.did"], "digest": r.metrics["ailedger.digest"],
                         "n": r.num_examples, "sig": r.metrics["ailedger.sig"], "score": 1.0, "flagged": False}
                        for _, r in results]}


def test_only_the_runs_server_logs_its_rounds(ledger, server, tmp_path):
    rig = Rig(ledger, server, tmp_path)
    _, results = rig.good_round(1, rig.init)
    body = _round_body(rig, results)
    with pytest.raises(NotAuthorisedError, match="only the run's server"):
        ledger.append_record("fl.round", body, rig.outsider)
    # a client's signature that does not match what the entry says it signed
    forged = {**body, "clients": [dict(body["clients"][0], n=body["clients"][0]["n"] + 1)]}
    with pytest.raises(NotAuthorisedError, match="signature on its round 1 update does not verify"):
        ledger.append_record("fl.round", forged, server)
    stranger = {**body, "clients": [{**body["clients"][0], "did": rig.outsider.did}]}
    with pytest.raises(NotAuthorisedError, match="is not enrolled in run"):
        ledger.append_record("fl.round", stranger, server)
    ghost = {**body, "clients": [{**body["clients"][0], "did": rig.ghost.did}]}
    with pytest.raises(NotAuthorisedError, match="is not a registered identity"):
        ledger.append_record("fl.round", ghost, server)
    with pytest.raises(NotAuthorisedError, match="not an fl.run"):
        ledger.append_record("fl.round", {**body, "run": 0}, server)
    with pytest.raises(NotAuthorisedError, match="only the run's server"):
        ledger.append_record("fl.remove", {"run": rig.run, "client": rig.idents[0].did, "reason": "x"}, rig.outsider)
    assert run_view(ledger, rig.run).rounds == []
    ok = ledger.append_record("fl.round", body, server).index
    assert [i for i, _ in run_view(ledger, rig.run).rounds] == [ok]


def test_a_removed_client_is_refused_and_its_rounds_named(ledger, server, tmp_path):
    rig = Rig(ledger, server, tmp_path)
    _, results = rig.good_round(1, rig.init)
    params, _ = rig.strategy.aggregate_fit(1, results, [])
    victim = rig.idents[0].did
    r = remove_client(ledger, rig.run, victim, server, reason="flagged; label flips confirmed")
    assert r["rounds"] == [1] and r["tainted_rounds"] == [1]
    _, results2 = rig.good_round(2, params)
    rig.strategy.aggregate_fit(2, results2, [])
    body = rig.entry(rig.ctx.rounds[-1].entry)
    assert {x["did"]: x["reason"] for x in body["refused"]} == {
        victim: f"{victim} was removed from run {rig.run} at entry {r['entry']}"}
    # the earlier round still counts; a new round naming the removed client has no effect
    v = run_view(ledger, rig.run)
    assert [b["round"] for _, b in v.rounds] == [1, 2] and v.summary()["removed"][0]["rounds"] == [1]
    late = _round_body(rig, [x for x in results if x[0].cid == victim])
    with pytest.raises(NotAuthorisedError, match="was removed from run"):
        ledger.append_record("fl.round", {**late, "round": 3}, server)


def test_signature_binds_the_base_model(ledger, server, tmp_path):
    rig = Rig(ledger, server, tmp_path)
    ins, _ = rig.good_round(1, rig.init)
    cfg = {**ins[0][1].config, "ailedger.base": "11" * 32}
    res = rig.signed(rig.idents[0], 0).fit(FitIns(rig.init, cfg))
    rig.strategy.aggregate_fit(1, [(InProcessProxy("a", None), res)], [])
    body = rig.entry(rig.ctx.rounds[-1].entry)
    assert "signature does not verify" in body["refused"][0]["reason"] and body["clients"] == []
    assert base64.b64decode(res.metrics["ailedger.sig"])


def test_a_revoked_client_key_is_refused(ledger, server, tmp_path):
    rig = Rig(ledger, server, tmp_path)
    _, results = rig.good_round(1, rig.init)
    name = "fl-client-2"
    did = ledger.did_for(name)
    ledger.revoke_identity(name, reason="key lost")
    rig.strategy.aggregate_fit(1, results, [])
    body = rig.entry(rig.ctx.rounds[-1].entry)
    assert [r["did"] for r in body["refused"]] == [did]
    assert body["refused"][0]["reason"].startswith(f"{did} cannot sign: key {did} was revoked at entry")
    assert did not in {c["did"] for c in body["clients"]}


def test_the_log_refuses_a_round_1_signature_in_round_2_and_ignores_a_second_entry_for_a_round(ledger, server,
                                                                                                tmp_path):
    """The same bad inputs reaching the log directly (not through LedgerStrategy): admission refuses an
    fl.round that re-uses a client's round-1 signature as its round-2 update (a replayed signature, or an
    update for another round), and the fold counts only the first effective entry of a round."""
    rig = Rig(ledger, server, tmp_path)
    _, results = rig.good_round(1, rig.init)
    rig.strategy.aggregate_fit(1, results, [])
    first = rig.ctx.rounds[-1].entry
    body1 = rig.entry(first)
    replayed = {**body1, "round": 2, "root_before": body1["root_after"]}
    with pytest.raises(NotAuthorisedError, match="signature on its round 2 update does not verify"):
        ledger.append_record("fl.round", replayed, server)
    # the signatures are for round 1 and its base: only a second round-1 entry verifies, and it has no effect
    again = ledger.append_record("fl.round", {**body1, "root_after": "22" * 32}, server).index
    v = run_view(ledger, rig.run)
    assert [i for i, _ in v.rounds] == [first]
    assert (again, "round 1 was already logged") in v.ignored
    assert v.summary()["final_root"] == body1["root_after"]
