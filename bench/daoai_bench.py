"""The DAO proposal analyst: time per proposal, bit-identical replay over generated proposals, and whether
advice changes outcomes in the whale simulation.

    python bench/daoai_bench.py [--proposals 1000] [--outcome-proposals 300] [--follow 0.3]

Replay: every advice is recomputed from its opened inputs after the model is retrained from its spec (the
caches cleared), and compared byte for byte (RFC 8785 JSON); each commitment is opened too.
Outcomes: for held-out generated proposals with known labels (the hidden rule the training data follows),
a Pareto population of holders votes; the top 3 vote as a bloc in a random direction (they ignore advice),
the others turn out at 30% and vote by a per-proposal mood.  With advice, a share ``--follow`` of the other
voters votes as advised instead.  Reported: how often the outcome changes, how often it is "right" (passes
iff the proposal is not risky) with and without advice, and how often the top 3 alone decide.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import time

from tqdm import tqdm

from ailedger.daoai import analyst as an
from ailedger.encoding.canonical import canonical_json
from ailedger.governance.state import vote_weight


def _proposal(rng: random.Random, i: int) -> dict:
    acts = []
    for _ in range(rng.randint(1, 4)):
        k = rng.choice(["model.revoke", "model.approve", "dataset.approve", "param.set"])
        if k == "param.set":
            acts.append({"kind": k, "key": "quorum_bps", "value": rng.randint(100, 4000)})
        else:
            acts.append({"kind": k, ("dataset" if k.startswith("dataset") else "model"): f"m{rng.randint(1, 9)}"})
    strategy = rng.choice(["token", "quadratic", "reputation", "capped"])
    total = rng.randint(1000, 10**6)
    return {"id": i, "actions": acts, "description": " ".join(["word"] * rng.randint(2, 60)), "strategy": strategy,
            "cap": total * rng.choice([500, 1000, 2000]) // 10000 if strategy == "capped" else None,
            "quorum": total * rng.randint(200, 3000) // 10000, "total_power": total,
            "proposal_hash": secrets.token_hex(32)}


def outcomes(n: int, follow: float, strategy: str, seed: int = 11, holders: int = 300, trials: int = 40) -> dict:
    clf = an._model()
    xs = an.generate_proposals(n, seed)
    lab_rng = random.Random(seed + 1)
    labels = [an._label(x, lab_rng) for x in xs]
    advice = [int(p) for p in clf.predict(xs)]
    rng = random.Random(seed + 2)
    raw = sorted((max(1, int(rng.paretovariate(0.9) * 1000)) for _ in range(holders)), reverse=True)
    cap = sum(raw) * 500 // 10000
    tokens = [vote_weight(strategy, t, max(1, int(rng.lognormvariate(3.0, 0.8))), cap) for t in raw]
    changed = right_without = right_with = decided_without = decided_with = total = 0
    for risky, adv in zip(labels, advice):
        for _ in range(trials):
            mood = rng.random()
            whales_for = rng.random() < 0.5
            f0 = a0 = f1 = a1 = 0
            for i in range(3, holders):
                if rng.random() >= 0.3:
                    continue
                own = rng.random() < mood
                follows = rng.random() < follow
                w = tokens[i]
                f0, a0 = (f0 + w, a0) if own else (f0, a0 + w)
                yes = (not adv) if follows else own
                f1, a1 = (f1 + w, a1) if yes else (f1, a1 + w)
            top = sum(tokens[:3])
            pass0 = f0 + (top if whales_for else 0) > a0 + (0 if whales_for else top)
            pass1 = f1 + (top if whales_for else 0) > a1 + (0 if whales_for else top)
            decided_without += (f0 + top > a0) != (f0 > a0 + top)
            decided_with += (f1 + top > a1) != (f1 > a1 + top)
            changed += pass0 != pass1
            right_without += pass0 == (not risky)
            right_with += pass1 == (not risky)
            total += 1
    acc = sum(a == y for a, y in zip(advice, labels)) / n
    return {"strategy": strategy, "outcome_proposals": n, "trials_per_proposal": trials, "follow_share": follow,
            "advice_accuracy_vs_labels": round(acc, 4), "outcome_changed_rate": round(changed / total, 4),
            "right_outcome_rate_without_advice": round(right_without / total, 4),
            "right_outcome_rate_with_advice": round(right_with / total, 4),
            "top3_decide_rate_without_advice": round(decided_without / total, 4),
            "top3_decide_rate_with_advice": round(decided_with / total, 4)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--proposals", type=int, default=1000)
    ap.add_argument("--outcome-proposals", type=int, default=300)
    ap.add_argument("--follow", type=float, default=0.3)
    a = ap.parse_args()
    rng = random.Random(5)
    props = [_proposal(rng, i) for i in range(a.proposals)]
    t0 = time.perf_counter()
    root = an.manifest()["root"]
    train_s = time.perf_counter() - t0
    logged = []
    t0 = time.perf_counter()
    for p in tqdm(props, desc="advise", unit="proposal"):
        inputs = an.advise_inputs(p, 2000)
        salt = secrets.token_bytes(32)
        logged.append((inputs, salt.hex(), an.commit(inputs, salt), canonical_json(an.analyse(inputs))))
    advise_s = time.perf_counter() - t0
    an._model.cache_clear()
    an.manifest.cache_clear()
    same_root = an.manifest()["root"] == root
    t0 = time.perf_counter()
    identical = opened = 0
    for inputs, salt, c, out in tqdm(logged, desc="replay", unit="proposal"):
        opened += an.commit(inputs, bytes.fromhex(salt)) == c
        identical += canonical_json(an.analyse(inputs)) == out
    replay_s = time.perf_counter() - t0
    high = sum(json.loads(o)["risk"] == "high" for *_, o in logged)
    print(f"analyst {root[:16]}... trained in {train_s:.2f} s; retrained root identical: {same_root}")
    print(f"advice: {advise_s / a.proposals * 1e3:.2f} ms per proposal ({high} of {a.proposals} high risk)")
    print(f"replay: {identical}/{a.proposals} bit-identical, {opened}/{a.proposals} commitments opened, "
          f"{replay_s / a.proposals * 1e3:.2f} ms per proposal")
    t0 = time.perf_counter()
    ocs = {}
    for strat in ("token", "quadratic", "capped"):
        oc = outcomes(a.outcome_proposals, a.follow, strat)
        ocs[strat] = {k: v for k, v in oc.items() if k not in ("strategy", "outcome_proposals", "follow_share",
                                                               "trials_per_proposal")}
        print(f"outcomes, {strat} ({a.follow:.0%} of non-whale voters follow the advice): changed in "
              f"{oc['outcome_changed_rate']:.1%} of trials; right outcome "
              f"{oc['right_outcome_rate_without_advice']:.1%} -> {oc['right_outcome_rate_with_advice']:.1%}; top 3 "
              f"decide {oc['top3_decide_rate_without_advice']:.1%} -> {oc['top3_decide_rate_with_advice']:.1%}")
    print(f"outcome simulation: {time.perf_counter() - t0:.1f} s")
    print(json.dumps({"bench": "daoai", "proposals": a.proposals, "train_s": round(train_s, 3),
                      "advice_ms_per_proposal": round(advise_s / a.proposals * 1e3, 3),
                      "replay_ms_per_proposal": round(replay_s / a.proposals * 1e3, 3),
                      "replay_bit_identical": identical == a.proposals, "replay_identical_count": identical,
                      "commitments_opened": opened, "retrained_root_identical": same_root,
                      "high_risk_share": round(high / a.proposals, 4),
                      "outcome_proposals": a.outcome_proposals, "follow_share": a.follow, "outcomes": ocs}, sort_keys=True))


if __name__ == "__main__":
    main()
