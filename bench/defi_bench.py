#!/usr/bin/env python3
"""DeFi agents: violations blocked by the guard, its gas overhead, the detector's precision/recall per pattern,
and the backtest's PBO and deflated Sharpe with clean and leaked folds.

On a real anvil (the pinned binary, 127.0.0.1:18960) for the chain parts; the backtest runs offline.
Human lines, then as the LAST line one JSON object with figures, references and ratios.
Usage: python bench/defi_bench.py [--violations 120] [--blocks 60] [--seeds 3] [--bars 1500]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.devchain

from eth_account import Account
from tests.devchain import AnvilNode
from web3 import Web3

from ailedger.defi import backtest as bt
from ailedger.defi.actions import calldata
from ailedger.defi.chain import E18, fund, send, send_unchecked, setup_market
from ailedger.defi.detector import PATTERNS, Detector, chain_balance, evaluate, run_scenario, scan

PORT = 18960


def new_market(w3):
    dao, kill, agent, other = (Account.create() for _ in range(4))
    fund(w3, [dao.address, kill.address, agent.address, other.address], eth=100)
    m = setup_market(w3, dao, kill, agent)
    m.other = other
    return m


def violations(w3, m, n, rng):
    """A randomized set of calls the policy forbids, sent without simulation: how many the chain reverts; and as
    many allowed calls (the control: the guard must not block them)."""
    sink = w3.to_checksum_address("0x" + "33" * 20)
    bad_guy = w3.to_checksum_address("0x" + "44" * 20)
    send(w3, m.deny.functions.addToSanctionsList([bad_guy]), m.dao)
    ta = m.tokens[0]
    kinds = ["over-cap", "off-list-selector", "off-list-target", "sanctioned", "slippage", "not-agent", "exfil-swap"]
    blocked = {k: [0, 0] for k in kinds}
    for _ in range(n):
        k = rng.choice(kinds)
        who = m.agent
        if k == "over-cap":
            it = {"kind": "transfer", "selector": "0xa9059cbb", "target": ta.address.lower(), "to": sink.lower(),
                  "amount": str(rng.randint(1001, 100_000) * E18)}
        elif k == "off-list-selector":
            it = {"kind": "approve", "selector": "0x095ea7b3", "target": ta.address.lower(), "to": sink.lower(),
                  "amount": str(rng.randint(1, 10) * E18)}
        elif k == "off-list-target":
            it = {"kind": "transfer", "selector": "0xa9059cbb", "target": f"0x{rng.getrandbits(160):040x}",
                  "to": sink.lower(), "amount": str(E18)}
        elif k == "sanctioned":
            it = {"kind": "transfer", "selector": "0xa9059cbb", "target": ta.address.lower(), "to": bad_guy.lower(),
                  "amount": str(rng.randint(1, 10) * E18)}
        elif k in ("slippage", "exfil-swap"):
            amt = rng.randint(1, 50) * E18
            q = m.amm.functions.getAmountOut(ta.address, amt).call()
            it = {"kind": "swap", "selector": "0xf3e6ea8a", "target": m.amm.address.lower(),
                  "token_in": ta.address.lower(), "amount": str(amt),
                  "min_out": str(q * rng.randint(0, 980) // 1000 if k == "slippage" else q * 995 // 1000),
                  "to": (m.guard.address if k == "slippage" else sink).lower()}
        else:
            who = m.other
            it = {"kind": "transfer", "selector": "0xa9059cbb", "target": ta.address.lower(), "to": sink.lower(),
                  "amount": str(E18)}
        fn = m.guard.functions.execute(w3.to_checksum_address(it["target"]), calldata(it))
        blocked[k][1] += 1
        blocked[k][0] += send_unchecked(w3, fn, who)["status"] == 0
    allowed_ok = 0
    n_ok = max(10, n // 6)
    for _ in range(n_ok):
        it = {"kind": "transfer", "selector": "0xa9059cbb", "target": ta.address.lower(), "to": sink.lower(),
              "amount": str(rng.randint(1, 5) * E18)}
        fn = m.guard.functions.execute(ta.address, calldata(it))
        allowed_ok += send_unchecked(w3, fn, m.agent)["status"] == 1
    return blocked, allowed_ok, n_ok


def gas(w3, m):
    """Guarded vs direct: a token transfer, and a swap (direct = an EOA holding the funds, approve set once)."""
    ta = m.tokens[0]
    sink = w3.to_checksum_address("0x" + "55" * 20)
    send(w3, ta.functions.mint(m.other.address, 10_000 * E18), m.dao)
    send(w3, ta.functions.approve(m.amm.address, 2**255), m.other)
    send(w3, ta.functions.transfer(sink, E18), m.other)  # warm the recipient for both paths alike
    g = {"transfer": [[], []], "swap": [[], []]}
    for _ in range(5):
        it = {"kind": "transfer", "selector": "0xa9059cbb", "target": ta.address.lower(), "to": sink.lower(),
              "amount": str(E18)}
        g["transfer"][0].append(send(w3, m.guard.functions.execute(ta.address, calldata(it)), m.agent)["gasUsed"])
        g["transfer"][1].append(send(w3, ta.functions.transfer(sink, E18), m.other)["gasUsed"])
        q = m.amm.functions.getAmountOut(ta.address, 10 * E18).call() * 995 // 1000
        it = {"kind": "swap", "selector": "0xf3e6ea8a", "target": m.amm.address.lower(),
              "token_in": ta.address.lower(), "amount": str(10 * E18), "min_out": str(q),
              "to": m.guard.address.lower()}
        g["swap"][0].append(send(w3, m.guard.functions.execute(m.amm.address, calldata(it)), m.agent)["gasUsed"])
        q = m.amm.functions.getAmountOut(ta.address, 10 * E18).call() * 995 // 1000
        g["swap"][1].append(send(w3, m.amm.functions.swap(ta.address, 10 * E18, q, m.other.address),
                                 m.other)["gasUsed"])
    return {k: {"guarded": statistics.median(v[0]), "direct": statistics.median(v[1]),
                "overhead": statistics.median(v[0]) - statistics.median(v[1]),
                "ratio": round(statistics.median(v[0]) / statistics.median(v[1]), 3)} for k, v in g.items()}


def detection(url, blocks, seeds):
    tot = {p: {"tp": 0, "fp": 0, "fn": 0} for p in PATTERNS}
    secs = []
    for seed in range(seeds):
        with AnvilNode(PORT + 1 + seed) as node:
            w3 = Web3(Web3.HTTPProvider(node.url))
            m = new_market(w3)
            labels, info = run_scenario(w3, m, seed=seed, blocks=blocks)
            t = time.perf_counter()
            f = scan(w3, Detector(known=m.known, balance_of=chain_balance(w3)), info["start_block"], info["end_block"])
            secs.append(time.perf_counter() - t)
            for p, e in evaluate(f, labels).items():
                for k in ("tp", "fp", "fn"):
                    tot[p][k] += e[k]
    out = {}
    for p, c in tot.items():
        out[p] = {**c, "precision": round(c["tp"] / (c["tp"] + c["fp"]), 4) if c["tp"] + c["fp"] else None,
                  "recall": round(c["tp"] / (c["tp"] + c["fn"]), 4) if c["tp"] + c["fn"] else None}
    return out, statistics.median(secs) / blocks


def backtests(bars):
    data = bt.simulate_amm(bars, 0)
    out = {}
    for name, leak in (("clean", False), ("leaked", True)):
        plan = bt.make_plan(study="bench", data_digest=bt.data_digest(data), bars=bars, seed=0, horizon=4,
                            embargo=8, k=6, cost_bps=5, leak=leak)
        rep = bt.evaluate_plan(plan, data)
        d = bt.deflated_sharpe(rep["best_returns"], rep["sharpes"], len(plan["configs"]))
        out[name] = {"pbo": round(rep["pbo"]["pbo"], 4), "dsr": round(d["dsr"], 4),
                     "sharpe_per_bar": round(d["sharpe"], 5), "sharpe_annual": round(rep["best_sharpe_annual"], 3),
                     "sr0": round(d["sr0"], 5), "configs": len(plan["configs"]),
                     "fold_check_problems": len(bt.check_folds(plan["cv"]["folds"], 4, 8))}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--violations", type=int, default=120)
    ap.add_argument("--blocks", type=int, default=60)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--bars", type=int, default=1500)
    a = ap.parse_args()
    rng = random.Random(7)
    with AnvilNode(PORT) as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        m = new_market(w3)
        blocked, allowed_ok, n_ok = violations(w3, m, a.violations, rng)
        m2 = new_market(w3)
        g = gas(w3, m2)
    nb = sum(v[0] for v in blocked.values())
    nv = sum(v[1] for v in blocked.values())
    print(f"violations blocked by the contract: {nb}/{nv} ({100 * nb / nv:.1f}%); allowed control calls passed: "
          f"{allowed_ok}/{n_ok}")
    for k, (b, n) in blocked.items():
        print(f"  {k:<18} {b}/{n}")
    for k, v in g.items():
        print(f"gas {k}: guarded {v['guarded']}, direct {v['direct']}, overhead {v['overhead']} (x{v['ratio']})")
    det, s_per_block = detection(None, a.blocks, a.seeds)
    print(f"detector over {a.seeds} scenario(s) x {a.blocks} blocks ({1000 * s_per_block:.1f} ms per block):")
    for p, e in det.items():
        print(f"  {p:<25} precision {e['precision']}  recall {e['recall']}  (tp {e['tp']}, fp {e['fp']}, fn {e['fn']})")
    bts = backtests(a.bars)
    for k, v in bts.items():
        print(f"backtest {k}: PBO {v['pbo']}, DSR {v['dsr']}, net Sharpe/bar {v['sharpe_per_bar']} "
              f"({v['sharpe_annual']} annualised), fold-check problems {v['fold_check_problems']}")
    print(json.dumps({
        "bench": "defi", "violations": {"blocked": nb, "total": nv, "rate": round(nb / nv, 4),
                                        "by_kind": {k: {"blocked": b, "total": n} for k, (b, n) in blocked.items()},
                                        "control_allowed_passed": allowed_ok, "control_total": n_ok},
        "gas": g, "detector": {"blocks": a.blocks, "seeds": a.seeds, "ms_per_block": round(1000 * s_per_block, 2),
                               "patterns": det},
        "backtest": {**bts, "bars": a.bars,
                     "pbo_leaked_minus_clean": round(bts["leaked"]["pbo"] - bts["clean"]["pbo"], 4)},
    }, sort_keys=True))


if __name__ == "__main__":
    main()
