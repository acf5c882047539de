"""A federated run is logged round by round and replays bit for bit; tampering with a stored update is
caught and named (client and round)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from ailedger.authority.rules import fl_update_statement
from ailedger.encoding.identity import verify_did_signature
from ailedger.errors import VerificationError
from ailedger.federated.audit import replay, run_view
from ailedger.federated.dp import DPConfig, epsilon
from ailedger.federated.params import deserialize, digest, serialize
from ailedger.federated.service import run_simulation, store_for


def test_every_round_is_logged_with_signed_updates_and_replays(ledger, server):
    s = run_simulation(ledger, server, clients=6, rounds=3, poisoned=1, rule="fedavg")
    v = run_view(ledger, s["run"])
    assert [b["round"] for _, b in v.rounds] == [1, 2, 3]
    assert v.body["clients"] == s["clients"] and v.server == server.did
    prev = v.body["init_root"]
    for _, b in v.rounds:
        assert b["root_before"] == prev and b["root_after"] != prev
        prev = b["root_after"]
        assert sorted(c["did"] for c in b["clients"]) == sorted(s["clients"])
        for c in b["clients"]:
            verify_did_signature(c["did"], fl_update_statement(s["run"], b["round"], c["digest"], c["n"],
                                                               b["root_before"]), base64.b64decode(c["sig"]))
            stored = deserialize(store_for(ledger, s["run"]).get_update(b["round"], c["did"]))
            assert digest(stored) == c["digest"]
        assert b["rule"] == {"name": "fedavg", "params": {}}
    assert prev == s["final_root"]
    r = replay(ledger, s["run"], store_for(ledger, s["run"]))
    assert r["ok"] and r["rounds"] == 3 and r["final_root"] == s["final_root"]


@pytest.mark.parametrize("rule", ["fedprox", "fedadam", "krum", "trimmed", "median"])
def test_stateful_and_robust_rules_replay_bit_for_bit(ledger, server, rule):
    s = run_simulation(ledger, server, clients=6, rounds=3, poisoned=1, rule=rule)
    assert replay(ledger, s["run"], store_for(ledger, s["run"]))["final_root"] == s["final_root"]


def _tamper(path: Path) -> None:
    tensors = deserialize(path.read_bytes())
    t = bytearray(tensors[1])
    t[-1] ^= 0x01  # one bit of the last bias
    tensors[1] = bytes(t)
    path.write_bytes(serialize(tensors))


def test_replay_names_the_client_and_round_of_a_tampered_update(ledger, server):
    s = run_simulation(ledger, server, clients=4, rounds=3, poisoned=0)
    st = store_for(ledger, s["run"])
    victim = sorted(s["clients"])[2]
    _tamper(st.path(2, st._name(victim)))
    with pytest.raises(VerificationError) as ei:
        replay(ledger, s["run"], st)
    assert f"round 2: the stored update of client {victim}" in ei.value.message


def test_replay_catches_a_changed_logged_model(ledger, server):
    """A stored update replaced together with its digest would have to be re-signed: the check of the roots
    catches a store that was swapped wholesale for another run's updates."""
    a = run_simulation(ledger, server, clients=4, rounds=2, poisoned=0, seed=0)
    b = run_simulation(ledger, server, clients=4, rounds=2, poisoned=0, seed=1)
    sa, sb = store_for(ledger, a["run"]), store_for(ledger, b["run"])
    (sb.dir / "init.bin").write_bytes((sa.dir / "init.bin").read_bytes())  # same init: allowed
    for did in b["clients"]:
        p = sb.path(1, sb._name(did))
        data = sa.path(1, sa._name(did)).read_bytes() if sa.path(1, sa._name(did)).exists() else p.read_bytes()
        p.write_bytes(data)
    with pytest.raises(VerificationError, match="round 1"):
        replay(ledger, b["run"], sb)


def test_encrypted_store_replays_and_refuses_tampering(ledger, server):
    s = run_simulation(ledger, server, clients=4, rounds=2, poisoned=0, encrypt=True)
    st = store_for(ledger, s["run"])
    did = s["clients"][0]
    p = st.path(1, st._name(did))
    raw = p.read_bytes()
    assert raw.startswith(b"AILFL1\n")
    plain = st.get_update(1, did)
    assert plain not in raw and digest(deserialize(plain)) in str(run_view(ledger, s["run"]).rounds[0][1])
    assert replay(ledger, s["run"], st)["ok"]
    p.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    with pytest.raises(VerificationError, match=f"round 1 update of {did}"):
        replay(ledger, s["run"], st)


def test_dp_rounds_log_epsilon_and_replay(ledger, server):
    dp = DPConfig(clip=1.0, noise_multiplier=1.2, delta=1e-5)
    s = run_simulation(ledger, server, clients=5, rounds=3, poisoned=0, dp=dp)
    v = run_view(ledger, s["run"])
    eps = [b["dp"]["epsilon"] for _, b in v.rounds]
    assert eps == sorted(eps) and eps[0] > 0
    assert eps[-1] == pytest.approx(epsilon(3, 1.2, 1e-5), rel=1e-5)
    assert v.body["dp"] == dp.as_dict()
    assert replay(ledger, s["run"], store_for(ledger, s["run"]))["ok"]
    st = store_for(ledger, s["run"])
    st.put_seed(2, b"\x00" * 32)
    with pytest.raises(VerificationError, match="round 2: the stored noise seed"):
        replay(ledger, s["run"], st)


def test_epsilon_accounting():
    assert epsilon(0, 1.0, 1e-5) == 0.0
    assert epsilon(10, 1.0, 1e-5) > epsilon(1, 1.0, 1e-5)
    assert epsilon(10, 4.0, 1e-5) < epsilon(10, 1.0, 1e-5)
    # one Gaussian round at z = 1: the RDP bound at delta 1e-5 is sqrt(2 log(1/delta)) + 1/2 ~ 5.30
    assert epsilon(1, 1.0, 1e-5) == pytest.approx(5.30, abs=0.03)


def test_a_robust_rule_resists_scaled_updates_that_fedavg_takes(ledger, server):
    """The figure of the bench, small: 2 of 8 clients send x10 scaled updates for 5 rounds."""
    avg = run_simulation(ledger, server, clients=8, rounds=5, poisoned=2, attack="scale", rule="fedavg")
    med = run_simulation(ledger, server, clients=8, rounds=5, poisoned=2, attack="scale", rule="median")
    clean = run_simulation(ledger, server, clients=8, rounds=5, poisoned=0, rule="fedavg")
    assert med["accuracy"] > avg["accuracy"] + 0.05
    assert med["accuracy"] > clean["accuracy"] - 0.1
    for s in (avg, med):  # flagged in every round, whichever rule aggregated
        assert s["flagged"] == {d: [1, 2, 3, 4, 5] for d in s["poisoned"]}
    assert clean["flagged"] == {}


def test_a_custom_flower_strategy_is_wrapped_too(ledger, server, tmp_path):
    """LedgerStrategy wraps any Flower Strategy: here a FedAvg subclass of the user's."""
    from flwr.common import ndarrays_to_parameters
    from flwr.server.client_manager import SimpleClientManager
    from flwr.server.server import Server
    from flwr.server.strategy import FedAvg

    from ailedger.federated import model
    from ailedger.federated.client import DigitsClient, InProcessProxy, SignedClient
    from ailedger.federated.data import split_digits
    from ailedger.federated.params import model_root
    from ailedger.federated.service import client_identities
    from ailedger.federated.store import UpdateStore
    from ailedger.federated.strategy import LedgerStrategy, RunContext

    calls = []

    class Mine(FedAvg):
        def aggregate_fit(self, server_round, results, failures):
            calls.append(len(results))
            return super().aggregate_fit(server_round, results, failures)

    idents = client_identities(ledger, 3)
    init = ndarrays_to_parameters(model.init_params())
    run = ledger.append_record("fl.run", {"name": "mine", "rule": {"name": "mine", "params": {}},
                                          "clients": [i.did for i in idents], "rounds": 2,
                                          "init_root": model_root(init.tensors)}, server).index
    ctx = RunContext(ledger, server, run, {i.did for i in idents}, UpdateStore(tmp_path / "s", run),
                     {"name": "mine", "params": {}})
    strat = LedgerStrategy(Mine(min_fit_clients=3, min_available_clients=3, fraction_evaluate=0.0,
                                initial_parameters=init), ctx)
    cm = SimpleClientManager()
    split = split_digits(3)
    for ident, cd in zip(idents, split.clients):
        cm.register(InProcessProxy(ident.did, SignedClient(DigitsClient(cd, epochs=2).to_client(), ident)))
    Server(client_manager=cm, strategy=strat).fit(num_rounds=2, timeout=None)
    v = run_view(ledger, run)
    assert calls == [3, 3] and [b["round"] for _, b in v.rounds] == [1, 2]
    assert all(len(b["clients"]) == 3 for _, b in v.rounds)
