"""Compute marketplace figures: how often a cheat is caught, what the game costs in gas, and what committing
to every step's state costs in run time.

* Detection: a provider corrupts 1 of S steps (S = 100, 1000; the step drawn at random, the rest of its
  trace computed honestly from the corrupted state, so only a check of that one step can see it).  A
  verifier re-executes all of it, or a sample drawn at rate p (1%, 10%) from a seed the provider cannot
  know (a later checkpoint: here a fresh random seed per trial).  Measured rate vs the formula: full
  re-execution 1; sampling each step with probability p catches the one bad step with probability p.
* Gas (in-process EVM, py-evm: the same gas as any EVM of the same fork): deploy, post, bid, accept,
  submit, finish; a full dispute for S = 100, 1000 (challenge, ceil(log2 S) rounds of reveal + respond,
  the referee's rule) and its total.
* Overhead of the trace commitment: the job's run time with a state root after every step vs without.

Usage: PYTHONPATH=src .venv/bin/python bench/compute_bench.py [--trials 1000] [--traces 40] [--svg OUT.svg]
(``--plot-from RUN.txt --svg OUT.svg`` draws the chart from a previous run's JSON line.)
Prints human lines, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ailedger.compute import chain, game, job, service


def detection(S: int, trials: int, n_traces: int, rng: random.Random) -> dict[str, object]:
    spec = job.JobSpec(steps=S, rows=256)
    honest_final = job.run(spec)[-1]
    bad_steps = [rng.randrange(S) for _ in range(n_traces)]
    traces = [service.Trace.compute(spec, corrupt=j) for j in bad_steps]
    out: dict[str, object] = {}
    # full re-execution: the verifier's own final root against the submitted one (each cheat trace once)
    caught = sum(t.roots[-1] != honest_final for t in traces)
    out["full"] = {"trials": len(traces), "caught": caught, "rate": caught / len(traces), "formula": 1.0}
    for p in (0.01, 0.10):
        hits, checked = 0, 0
        t0 = time.perf_counter()
        for _ in range(trials):
            k = rng.randrange(len(traces))
            steps = game.sample_steps(S, p, rng.randbytes(32))
            checked += len(steps)
            found = game.sample_check(spec, traces[k], steps)
            if found is not None:
                assert found == bad_steps[k], (found, bad_steps[k])
                hits += 1
        rate = hits / trials
        se = math.sqrt(p * (1 - p) / trials)
        out[f"sample_{p:g}"] = {"trials": trials, "caught": hits, "rate": round(rate, 4), "formula": p,
                                "stderr": round(se, 4), "mean_steps_checked": round(checked / trials, 1),
                                "seconds": round(time.perf_counter() - t0, 2)}
    return out


def gas(S_values: list[int]) -> dict[str, object]:
    from eth_account import Account
    from web3 import EthereumTesterProvider, Web3

    w3 = Web3(EthereumTesterProvider())
    accts = [Account.create() for _ in range(4)]
    for a in accts:
        w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": a.address, "value": 100 * 10**18})
    client, prov, chal, ref = accts
    m = chain.Market.deploy(w3, client)
    out: dict[str, object] = {"deploy": m.gas["deploy"]}
    # the honest path
    spec = job.JobSpec(steps=64)
    roots = job.run(spec)
    jid = m.post(client, service.spec_hash(spec), roots[0], spec.steps, 10**18, 10**17, ref.address, 3600, 60, 60)
    m.bid(prov, jid)
    m.accept(client, jid, prov.address)
    m.submit(prov, jid, roots)
    chain.advance(w3, 61)
    m.finish(prov, jid)
    out.update({k: m.gas[k] for k in ("post", "bid", "accept", "submit", "finish")})
    out["honest_total"] = sum(m.gas[k] for k in ("post", "bid", "accept", "submit", "finish"))
    disputes = {}
    for S in S_values:
        spec = job.JobSpec(steps=S)
        bad = S // 3
        honest = service.Trace.compute(spec)
        cheat = service.Trace.compute(spec, corrupt=bad)
        jid = m.post(client, service.spec_hash(spec), honest.roots[0], S, 10**18, 10**17, ref.address, 3600, 600, 600)
        m.bid(prov, jid)
        m.accept(client, jid, prov.address)
        m.submit(prov, jid, cheat.roots)
        m.challenge(chal, jid)
        moves: list[tuple[str, int]] = []
        p = game.Provider(prov, cheat)
        c = game.Challenger(chal, roots=honest.roots)

        def rec(who: str, _d: dict[str, object], into: list[tuple[str, int]] = moves) -> None:
            into.append((who, m.gas["reveal" if who == "provider" else "respond"]))

        st = game.play(m, jid, p, c, on_move=rec)
        d = st["dispute"]
        v = service.referee_step(spec, d, {"step": d["lo"], "state": service.encode_state(honest.state(d["lo"]))})
        m.rule(ref, jid, v["provider_right"])
        rounds = sum(1 for w, _ in moves if w == "challenger")
        total = m.gas["challenge"] + sum(g for _, g in moves) + m.gas["rule"]
        disputes[str(S)] = {"rounds": rounds, "log2_S": math.ceil(math.log2(S)), "challenge": m.gas["challenge"],
                            "reveal_mean": round(sum(g for w, g in moves if w == "provider") / rounds),
                            "respond_mean": round(sum(g for w, g in moves if w == "challenger") / rounds),
                            "rule": m.gas["rule"], "total": total, "caught_step": d["lo"], "bad_step": bad}
    out["dispute"] = disputes
    return out


def overhead(S: int, reps: int) -> dict[str, object]:
    spec = job.JobSpec(steps=S)
    job.dataset(spec)
    plain, rooted, kept = [], [], []
    for _ in range(reps):
        st = job.init_state(spec)
        t0 = time.perf_counter()
        for i in range(S):
            st = job.step(spec, st, i)
        plain.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        job.run(spec)
        rooted.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        service.Trace.compute(spec)
        kept.append(time.perf_counter() - t0)
    a, b, c = min(plain), min(rooted), min(kept)
    return {"steps": S, "run_s": round(a, 4), "run_with_roots_s": round(b, 4), "run_with_roots_and_states_s": round(c, 4),
            "overhead_roots": round(b / a - 1, 3), "overhead_roots_and_states": round(c / a - 1, 3)}


def plot(res: dict[str, object], out: str) -> None:
    """Detection rate vs sampling rate: measured (with 2 s.e.) against the formula, as an SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    det = res["detection"]
    assert isinstance(det, dict)
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [0.005, 1.0]
    ax.plot(xs, xs, "k--", lw=1, label="formula: P(caught) = p")
    for S, mark in (("100", "o"), ("1000", "s")):
        d = det[S]
        pts = [(d[f"sample_{p:g}"], p) for p in (0.01, 0.1)] + [(d["full"], 1.0)]
        ax.errorbar([p for _, p in pts], [r["rate"] for r, _ in pts],
                    yerr=[2 * float(r.get("stderr", 0)) for r, _ in pts], fmt=mark, capsize=3,
                    label=f"measured, S = {S}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("share of steps re-executed (1 = full re-execution)")
    ax.set_ylabel("one-step cheat caught")
    ax.set_title("Catching a provider that corrupts 1 of S steps")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, metadata={"Date": None})
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=1000, help="sampling trials per (S, rate)")
    ap.add_argument("--traces", type=int, default=40, help="cheating traces (random bad step) per S")
    ap.add_argument("--seed", type=int, default=26)
    ap.add_argument("--svg", help="also draw the detection chart here")
    ap.add_argument("--plot-from", help="only draw --svg from this file's last JSON line (a previous run)")
    args = ap.parse_args()
    if args.plot_from:
        plot(json.loads(Path(args.plot_from).read_text().strip().splitlines()[-1]), args.svg or "detection.svg")
        return
    rng = random.Random(args.seed)
    load0 = os.getloadavg()[0]
    res: dict[str, object] = {"bench": "compute", "cpus": os.cpu_count(), "loadavg_start": round(load0, 2)}
    det = {}
    for S in (100, 1000):
        det[str(S)] = d = detection(S, args.trials, args.traces, rng)
        for mode, r in d.items():
            assert isinstance(r, dict)
            print(f"S={S:5d} {mode:12s}: caught {r['caught']}/{r['trials']} = {r['rate']:.3f} (formula {r['formula']})")
    res["detection"] = det
    g = gas([100, 1000])
    res["gas"] = g
    print(f"gas: deploy {g['deploy']}, post {g['post']}, bid {g['bid']}, accept {g['accept']}, submit {g['submit']}, "
          f"finish {g['finish']} (honest job total {g['honest_total']})")
    for S, dd in g["dispute"].items():  # type: ignore[union-attr]
        print(f"gas: dispute S={S}: {dd['rounds']} rounds (ceil log2 S = {dd['log2_S']}), challenge {dd['challenge']}, "
              f"reveal ~{dd['reveal_mean']}, respond ~{dd['respond_mean']}, rule {dd['rule']}: total {dd['total']}")
    ov = overhead(1000, 3)
    res["overhead"] = ov
    print(f"run of 1000 steps: {ov['run_s']} s plain, {ov['run_with_roots_s']} s with a state root per step "
          f"(+{ov['overhead_roots'] * 100:.1f}%), {ov['run_with_roots_and_states_s']} s keeping every state too "
          f"(+{ov['overhead_roots_and_states'] * 100:.1f}%)")
    res["ratios"] = {
        **{f"detect_S{S}_{m}_measured_vs_formula": round(r["rate"] / r["formula"], 3)  # type: ignore[index]
           for S, d in det.items() for m, r in d.items()},
        **{f"dispute_S{S}_rounds_vs_log2S": dd["rounds"] / dd["log2_S"] for S, dd in g["dispute"].items()},  # type: ignore[union-attr]
        "trace_commit_overhead": ov["overhead_roots"],
    }
    res["loadavg_end"] = round(os.getloadavg()[0], 2)
    if args.svg:
        plot(res, args.svg)
    print(json.dumps(res, sort_keys=True))


if __name__ == "__main__":
    main()
