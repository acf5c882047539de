#!/usr/bin/env python3
"""The RWA vault managed by an AI agent within limits (issue 33, part 2), on a real anvil (127.0.0.1:18620):

* the agent's rebalances over a seeded NAV series (one step per cap period): the share that stayed inside the
  guard's limits (every one sent and mined, none reverted: must be 100%), each logged before its transaction,
  and the audit matching every vault transaction to a logged decision;
* a randomized set of attempts to exceed the limits (over the cap, while paused, slippage below the bound,
  proceeds sent elsewhere, an off-list target, another key, a direct call to the vault bypassing the guard),
  each sent WITHOUT pre-flight simulation so the chain itself decides: the share reverted (must be 100%);
* gas per rebalance through the guard vs the same swap called directly on a vault whose manager is a plain key
  (the reference, measured in the same run);
* the vault's tracking error against the policy's target weights (rms and max, bps), all steps and after the
  build-up (the first steps move at most the per-period cap).

Human lines, then as the LAST line one JSON object with figures, references and ratios.
Usage: python bench/vault_bench.py [--steps 60] [--attempts 120] [--seed 11]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.devchain

from eth_account import Account
from tests.devchain import ANVIL_KEYS, AnvilNode
from web3 import Web3

from ailedger.defi.actions import audit, calldata
from ailedger.defi.chain import fund, send_unchecked
from ailedger.rwa.agent import find_series, log_series, policy_root, rebalance_step, tracking_error
from ailedger.rwa.chain import E18, deploy_vault, send
from ailedger.tlog.ledger import Ledger

PORT = 18620
CAP = 20_000 * E18
PERIOD = 86400


def advance(w3, seconds):
    w3.provider.make_request("evm_increaseTime", [seconds])
    w3.provider.make_request("evm_mine", [])


def swap_intent(v, token, amount, min_out, to=None, target=None):
    return {"kind": "swap", "selector": "0xf3e6ea8a", "target": (target or v.vault.address).lower(),
            "token_in": token.address.lower(), "amount": str(amount), "min_out": str(min_out),
            "to": (to or v.guard.address).lower()}


def attempts(v, other, direct_v, n, rng):
    """Randomized attempts to exceed the guard's limits; each sent without simulation. (kind, status)."""
    from ailedger.rwa.chain import cap_left

    w3 = v.w3
    out = []
    kinds = ["over_cap", "paused", "slippage", "proceeds_elsewhere", "off_list_target", "not_agent",
             "bypass_guard"]
    for i in range(n):
        kind = kinds[i % len(kinds)] if i < len(kinds) else rng.choice(kinds)
        token = rng.choice([v.stable, v.rwa])
        left = cap_left(v, token)
        amount = rng.randint(1, 5_000) * E18
        quote = v.vault.functions.getAmountOut(token.address, amount).call()
        min_out = quote * 999 // 1000
        who, fn = v.agent, None
        if kind == "over_cap":
            amount = left + rng.randint(1, 3 * CAP // E18) * E18
            quote = v.vault.functions.getAmountOut(token.address, amount).call()
            it = swap_intent(v, token, amount, quote * 999 // 1000)
        elif kind == "slippage":
            it = swap_intent(v, token, amount, quote * rng.randint(0, 9850) // 10000)  # > 1.5% below the quote
        elif kind == "proceeds_elsewhere":
            it = swap_intent(v, token, amount, min_out, to=rng.choice([other.address, v.agent.address,
                                                                        v.vault.address]))
        elif kind == "off_list_target":
            it = swap_intent(v, token, amount, min_out, target=rng.choice([v.desk.address, direct_v.vault.address]))
        else:
            it = swap_intent(v, token, amount, min_out)
        if kind == "not_agent":
            who = rng.choice([other, v.dao, v.kill])
        if kind == "bypass_guard":  # the agent's key calls the vault itself
            fn = v.vault.functions.swap(token.address, amount, min_out, v.agent.address)
        else:
            fn = v.guard.functions.execute(w3.to_checksum_address(it["target"]), calldata(it))
        if kind == "paused":
            send(w3, v.guard.functions.pause(), v.kill)
        rc = send_unchecked(w3, fn, who, gas=600_000)
        if kind == "paused":
            send(w3, v.guard.functions.unpause(), v.dao)
        out.append((kind, int(rc["status"])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--attempts", type=int, default=120)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--verbose", action="store_true", help="print every step")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    with AnvilNode(PORT) as node, tempfile.TemporaryDirectory(prefix="vault-bench-") as tmp:
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 60}))
        dao, kill, agent = (Account.from_key(k) for k in ANVIL_KEYS)
        other, manager = Account.create(), Account.create()
        fund(w3, [other.address, manager.address], eth=100)
        t0 = time.perf_counter()
        v = deploy_vault(w3, dao, kill, agent, cap=CAP, period=PERIOD)
        direct_v = deploy_vault(w3, dao, kill, agent, cap=CAP, period=PERIOD, direct_manager=manager.address)
        deploy_s = time.perf_counter() - t0
        start_block = w3.eth.block_number + 1
        lg = Ledger.init(Path(tmp) / "ledger", origin="bench.example/vault")
        op = lg.identities.create("operator")
        lg.append_record("model.register", {"name": "vol-target", "manifest": {"root": policy_root()}}, op)
        s = log_series(lg, op, seed=a.seed, steps=a.steps, vault=v.vault.address, chain_id=w3.eth.chain_id)
        _, prices = find_series(lg, s["index"])

        rows, step_s = [], []
        for t in range(a.steps):
            t1 = time.perf_counter()
            rows.append(rebalance_step(lg, op, v, model="vol-target", series_index=s["index"], prices=prices, t=t))
            step_s.append(time.perf_counter() - t1)
            advance(w3, PERIOD)
        trades = [r["action"] for r in rows if r["action"]]
        if a.verbose:
            for r in rows:
                print(r["t"], r["nav"], r["target_bps"], r["weight_before_bps"], r["weight_after_bps"], (r["action"] or {}).get("amount"))
        inside = sum(1 for x in trades if x["status"] == 1)
        guard_gas = [x["gas"] for x in trades]
        rep = audit(lg, w3, agent.address, from_block=start_block)

        # the same swaps on the reference vault, called directly by its manager key (no guard)
        direct_gas, direct_s = [], []
        for x in trades[:20]:
            token = direct_v.stable if x["token"] == "stable" else direct_v.rwa
            amount = min(int(x["amount"]), int(token.functions.balanceOf(direct_v.vault.address).call()))
            q = direct_v.vault.functions.getAmountOut(token.address, amount).call()
            t1 = time.perf_counter()
            rc = send(w3, direct_v.vault.functions.swap(token.address, amount, q * 997 // 1000, manager.address),
                      manager)
            direct_s.append(time.perf_counter() - t1)
            direct_gas.append(int(rc["gasUsed"]))

        att = attempts(v, other, direct_v, a.attempts, rng)
        reverted = sum(1 for _k, st in att if st == 0)
        by_kind: dict[str, list[int]] = {}
        for k, st in att:
            by_kind.setdefault(k, [0, 0])
            by_kind[k][0] += 1
            by_kind[k][1] += st == 0
        audit_after = audit(lg, w3, agent.address, from_block=start_block)
        lg.close()

    te_all = tracking_error(rows)
    first = next((i for i, r in enumerate(rows) if abs(r["weight_after_bps"] - r["target_bps"]) <= 50), len(rows))
    te_after = tracking_error(rows[first + 1:])
    g_med, d_med = statistics.median(guard_gas), statistics.median(direct_gas)
    print(f"deployed two vaults in {deploy_s:.1f} s; {a.steps} steps, {len(trades)} rebalances")
    print(f"inside the guard's limits: {inside}/{len(trades)} ({100 * inside / max(1, len(trades)):.1f}%), "
          f"audit {rep['counts']['matched']} matched / {rep['counts']['unlogged']} unlogged")
    print(f"attempts to exceed the limits: {reverted}/{len(att)} reverted by the chain "
          + ", ".join(f"{k} {r}/{n}" for k, (n, r) in sorted(by_kind.items())))
    print(f"gas per rebalance: through the guard {g_med:.0f} (median), direct {d_med:.0f}: "
          f"x{g_med / d_med:.3f} (+{g_med - d_med:.0f})")
    print(f"tracking error vs target: {te_all['rms_bps']:.1f} bps rms, {te_all['max_bps']:.0f} max; after the build-up "
          f"(from step {first + 1}) {te_after['rms_bps']:.1f} rms, {te_after['max_bps']:.0f} max (band 50 bps); "
          f"steps off target by more than the band: {sum(abs(r['weight_after_bps'] - r['target_bps']) > 50 for r in rows)}")
    print(f"time per agent step (post NAV, decide, log, send): {statistics.median(step_s) * 1000:.0f} ms median; a "
          f"direct swap {statistics.median(direct_s) * 1000:.0f} ms")
    out = {"bench": "vault", "steps": a.steps, "rebalances": len(trades), "inside_limits": inside,
           "inside_limits_share": round(inside / max(1, len(trades)), 4),
           "audit": rep["counts"], "audit_after_attempts": audit_after["counts"],
           "attempts": len(att), "attempts_reverted": reverted,
           "attempts_reverted_share": round(reverted / max(1, len(att)), 4),
           "attempts_by_kind": {k: {"sent": n, "reverted": r} for k, (n, r) in sorted(by_kind.items())},
           "gas": {"guard_median": g_med, "direct_median": d_med, "guard_min": min(guard_gas),
                   "guard_max": max(guard_gas), "samples_guard": len(guard_gas), "samples_direct": len(direct_gas)},
           "tracking_error_bps": {"all": te_all, "after_build_up": te_after, "build_up_steps": first + 1,
                                  "band_bps": 50,
                                  "steps_outside_band": sum(abs(r["weight_after_bps"] - r["target_bps"]) > 50
                                                            for r in rows),
                                  "target_changes": sum(r1["target_bps"] != r0["target_bps"]
                                                        for r0, r1 in itertools.pairwise(rows))},
           "step_ms_median": round(statistics.median(step_s) * 1000, 1),
           "direct_swap_ms_median": round(statistics.median(direct_s) * 1000, 1),
           "reference": {"direct_swap_gas": d_med, "direct_swap_ms": round(statistics.median(direct_s) * 1000, 1)},
           "ratios": {"gas_guard_over_direct": round(g_med / d_med, 3),
                      "step_time_over_direct_swap": round(statistics.median(step_s) / statistics.median(direct_s), 2)}}
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
