"""Subnets: the cartel bound (10/30/49/60% of stake) and copiers with and without commit-reveal (the adversarial
simulation, consensus vs a plain stake-weighted mean of the same weights), the epoch fold for 1,000 miners x 64
validators, and a replay of 1,000 epochs from a real ledger.

    python bench/subnet_bench.py [--epochs 40] [--replay-epochs 1000] [--png bench-subnet.png]

Prints human lines, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ailedger.encoding.records import build_entry
from ailedger.encoding.times import iso
from ailedger.governance import service as gov
from ailedger.governance import staking
from ailedger.subnets import service
from ailedger.subnets.simulate import SimConfig, simulate
from ailedger.subnets.state import SubnetBook, commitment
from ailedger.subnets.yuma import U16, Params, fold_epoch
from ailedger.tlog.ledger import Ledger


def cartel(epochs: int) -> dict[str, dict[str, float]]:
    out = {}
    for share in (0.1, 0.3, 0.49, 0.6):
        f = simulate(SimConfig(cartel_share=share, epochs=epochs))["figures"]
        out[f"{round(share * 100)}%"] = {
            "consensus_excess_relative": round(f["consensus"]["cartel_excess_relative"], 4),
            "mean_excess_relative": round(f["mean"]["cartel_excess_relative"], 4),
            "consensus_excess_share": round(f["consensus"]["cartel_excess_share"], 5),
            "mean_excess_share": round(f["mean"]["cartel_excess_share"], 5),
            "honest_share": round(f["consensus"]["cartel_miner_honest_share"], 5)}
        print(f"cartel {share:>4.0%} of stake: its miner's excess over its honest share: consensus "
              f"{f['consensus']['cartel_excess_relative']:+7.1%}, plain mean {f['mean']['cartel_excess_relative']:+7.1%}")
    return out


def cartel_49_choices(epochs: int) -> dict[str, dict[str, float]]:
    """The 49% cartel's excess under parameter choices: the evaluation sample (prompts per validator per
    miner, a task parameter), kappa above 1/2, and the run without copiers (whose stale vectors sit above the
    honest ones in the consensus order)."""
    out = {}
    for label, cfg, p in (
            ("prompts_200", SimConfig(cartel_share=0.49, epochs=epochs), Params()),
            ("prompts_800", SimConfig(cartel_share=0.49, epochs=epochs, prompts=800), Params()),
            ("prompts_3200", SimConfig(cartel_share=0.49, epochs=epochs, prompts=3200), Params()),
            ("kappa_5500", SimConfig(cartel_share=0.49, epochs=epochs), Params(kappa_bps=5500)),
            ("no_copiers", SimConfig(cartel_share=0.49, copier_share=0.0, copier_validators=0, epochs=epochs),
             Params())):
        f = simulate(cfg, params=p)["figures"]["consensus"]
        out[label] = {"consensus_excess_relative": round(f["cartel_excess_relative"], 4),
                      "cheap_vs_good_miner": round(f["cheap_vs_good_miner"], 4),
                      "honest_good_miner_share": round(f["honest_good_share"], 5)}
        print(f"cartel 49%, {label}: excess {f['cartel_excess_relative']:+.1%}; an honest good miner's share "
              f"{f['honest_good_share']:.4f}")
    return out


def copiers(epochs: int) -> dict[str, float]:
    on = simulate(SimConfig(epochs=epochs, commit_reveal=True))["figures"]
    off = simulate(SimConfig(epochs=epochs, commit_reveal=False))["figures"]
    norule = simulate(SimConfig(epochs=epochs, commit_reveal=True, copy_rule=False))["figures"]
    r = {"commit_reveal_consensus": round(on["consensus"]["copier_dividend_ratio"], 4),
         "commit_reveal_no_copy_rule_consensus": round(norule["consensus"]["copier_dividend_ratio"], 4),
         "copier_reveals_caught": round(on["consensus"]["copier_reveals_caught"], 4),
         "honest_reveals_caught": round(on["consensus"]["honest_reveals_caught"], 4),
         "no_commit_reveal_consensus": round(off["consensus"]["copier_dividend_ratio"], 4),
         "commit_reveal_mean": round(on["mean"]["copier_dividend_ratio"], 4),
         "no_commit_reveal_mean": round(off["mean"]["copier_dividend_ratio"], 4),
         "cheap_miner_vs_good_miner": round(on["consensus"]["cheap_vs_good_miner"], 4)}
    print(f"copy rule: {r['copier_reveals_caught']:.0%} of copier reveals caught, {r['honest_reveals_caught']:.0%} "
          f"of honest ones; copiers' ratio without the rule {r['commit_reveal_no_copy_rule_consensus']:.3f}")
    print(f"copiers' dividends per stake / honest validators': with commit-reveal {r['commit_reveal_consensus']:.3f}, "
          f"without {r['no_commit_reveal_consensus']:.3f} (plain mean: {r['commit_reveal_mean']:.3f} / "
          f"{r['no_commit_reveal_mean']:.3f})")
    return r


def fold_time(miners: int = 1000, validators: int = 64, reps: int = 7) -> dict[str, float]:
    rng = np.random.default_rng(1)
    w = rng.integers(0, U16 + 1, size=(validators, miners))
    stake = [int(x) for x in rng.integers(1, 10**9, size=validators)]
    prev = fold_epoch(stake, w, None, Params()).bonds
    ts, tm = [], []
    for _ in range(reps):
        t = time.perf_counter()
        fold_epoch(stake, w, prev, Params())
        ts.append(time.perf_counter() - t)
        t = time.perf_counter()
        fold_epoch(stake, w, prev, Params(), clip=False)
        tm.append(time.perf_counter() - t)
    r = {"yuma_ms": round(statistics.median(ts) * 1000, 2), "plain_mean_ms": round(statistics.median(tm) * 1000, 2)}
    r["ratio"] = round(r["yuma_ms"] / r["plain_mean_ms"], 2)
    print(f"epoch fold, {miners} miners x {validators} validators: {r['yuma_ms']} ms (plain mean, no consensus: "
          f"{r['plain_mean_ms']} ms)")
    return r


def replay_time(epochs: int, miners: int = 16, validators: int = 8) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        led = Ledger.init(Path(d) / "led", "example.org/subnet-bench")
        owner, _ = led.new_identity("owner")
        vids = [led.new_identity(f"v{i}")[0] for i in range(validators)]
        mids = [led.new_identity(f"m{i}")[0] for i in range(miners)]
        epoch_ms = 900  # 1,002 windows span 902 s: from 560 s ago to 342 s ahead, inside the writers' 600 s skew
        now = int(time.time() * 1000)
        t0 = now - 560_000
        gov.name_founders(led, [owner.did])
        gov.init_dao(led, owner, "dao", reputation={v.did: 100 + 10 * i for i, v in enumerate(vids)},
                     time=iso(t0 - 5000))
        for i, v in enumerate(vids):  # stake: each validator locks its reputation on the subnet
            staking.stake_claim(led, v, "subnet:bench", "subnet", 100 + 10 * i, time=iso(t0 - 4000))
        b = SubnetBook(service.stake_reader(led))
        idx = led.size
        datas: list[bytes] = []

        def add(kind: str, body: dict, who, t: int) -> None:
            nonlocal idx
            e = build_entry(kind, body, who.did, iso(t), who.sign)
            b.apply(idx, e)
            datas.append(e.leaf_bytes)
            idx += 1

        add("subnet.create", {"name": "bench", "task": {"metric": "accuracy"}, "epoch_ms": epoch_ms,
                              "params": Params().to_dict()}, owner, t0)
        for who in mids:
            add("subnet.register", {"subnet": "bench", "role": "miner"}, who, t0 + 1)
        for who in vids:
            add("subnet.register", {"subnet": "bench", "role": "validator"}, who, t0 + 2)
        rng = np.random.default_rng(2)
        quality = rng.random(miners)
        pending: dict[int, list[tuple]] = {}
        t_build = time.perf_counter()
        for n in range(epochs + 2):
            start = t0 + n * epoch_ms
            if n < epochs:
                pending[n] = []
                for v in vids:
                    vals = [int(x) for x in np.clip(quality + rng.normal(0, 0.05, miners), 0.01, 1) * U16]
                    salt = secrets.token_hex(8)
                    uids = list(range(miners))
                    add("subnet.commit", {"subnet": "bench", "epoch": n,
                                          "commitment": commitment("bench", n, v.did, uids, vals, salt)}, v, start + 10)
                    pending[n].append((v, uids, vals, salt))
            if n >= 1 and n - 1 < epochs:
                for v, uids, vals, salt in pending.pop(n - 1):
                    add("subnet.reveal", {"subnet": "bench", "epoch": n - 1, "salt": salt, "uids": uids,
                                          "values": vals, "evidence": []}, v, start + 20)
            if n >= 2:
                _, body = b.compute_next("bench")
                add("subnet.epoch", body, owner, start + 30)
        build_s = time.perf_counter() - t_build
        t = time.perf_counter()
        led.append_entries(datas)
        append_s = time.perf_counter() - t
        t = time.perf_counter()
        out = service.replay(led, "bench")
        replay_s = time.perf_counter() - t
        assert out["agree"] and out["epochs_checked"] == epochs, out
        t = time.perf_counter()
        n_leaves = sum(1 for _ in led.store.iter_leaves(0, led.size, 20000))
        scan_s = time.perf_counter() - t
        size = led.size
        led.close()
    r = {"epochs": epochs, "miners": miners, "validators": validators, "entries": size, "replay_s": round(replay_s, 3),
         "epochs_per_s": round(epochs / replay_s, 1), "raw_leaf_scan_s": round(scan_s, 3),
         "replay_vs_scan": round(replay_s / scan_s, 1), "write_fold_s": round(build_s, 3),
         "append_s": round(append_s, 3)}
    assert n_leaves == size
    print(f"replay of {epochs} epochs ({miners} miners x {validators} validators, {size} entries): {replay_s:.2f} s, "
          f"{r['epochs_per_s']} epochs/s, every result equal bit for bit (reading the leaves alone: {scan_s:.2f} s)")
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--replay-epochs", type=int, default=1000)
    ap.add_argument("--png", default=None)
    a = ap.parse_args(argv)
    res = {"cartel": cartel(a.epochs), "cartel_49_choices": cartel_49_choices(a.epochs), "copiers": copiers(a.epochs), "fold_1000x64": fold_time(),
           "replay": replay_time(a.replay_epochs)}
    if a.png:
        from ailedger.subnets.simulate import chart

        chart(simulate(SimConfig(cartel_share=0.3, epochs=a.epochs)), a.png)
        print(f"chart: {a.png}")
    print(json.dumps(res, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
