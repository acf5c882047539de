"""Federated learning with an audit trail: accuracy after R rounds with and without 2 poisoned clients,
FedAvg vs robust rules; detection of the poisoned clients; logging overhead per round; replay time; the same
with the updates in the blob store (one storage node on loopback).

    python bench/fl_bench.py [--rounds 20] [--clients 10]

Prints human lines, then one JSON line (the last line)."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--poisoned", type=int, default=2)
    ap.add_argument("--node-port", type=int, default=18880, help="the blob store's storage node (loopback)")
    a = ap.parse_args()

    from ailedger.federated.audit import replay
    from ailedger.federated.service import run_simulation, store_for
    from ailedger.tlog.ledger import Ledger

    tmp = Path(tempfile.mkdtemp(prefix="fl-bench-"))
    led = Ledger.init(tmp / "led", "example.org/fl-bench")
    server, _ = led.new_identity("fl-server")
    acc: dict[str, dict[str, float]] = {}
    detect: dict[str, dict[str, object]] = {}
    overhead = []
    replays = []
    for attack in ("flip", "scale"):
        for rule in ("fedavg", "median", "trimmed", "krum"):
            for poisoned in (0, a.poisoned):
                if poisoned == 0 and attack == "scale":
                    continue  # the clean runs do not depend on the attack
                s = run_simulation(led, server, clients=a.clients, rounds=a.rounds, poisoned=poisoned, attack=attack,
                                   rule=rule)
                key = f"{rule}/{'clean' if poisoned == 0 else attack}"
                acc.setdefault(rule, {})["clean" if poisoned == 0 else attack] = s["accuracy"]
                t = time.perf_counter()
                r = replay(led, s["run"], store_for(led, s["run"]))
                replays.append(time.perf_counter() - t)
                assert r["final_root"] == s["final_root"]
                for rs, ls in zip(s["round_seconds"], s["log_seconds"]):
                    overhead.append((rs, ls))
                if poisoned:
                    pset = set(s["poisoned"])
                    hits = {d[8:20]: rs for d, rs in s["flagged"].items() if d in pset}
                    false = {d[8:20]: rs for d, rs in s["flagged"].items() if d not in pset}
                    detect[key] = {"poisoned_flagged_rounds": {k: len(v) for k, v in hits.items()},
                                   "first_flag_round": min((min(v) for v in hits.values()), default=None),
                                   "honest_flagged_rounds": sum(len(v) for v in false.values())}
                print(f"{key:18} accuracy {s['accuracy']:.4f}  ({s['seconds']:.2f} s for {a.rounds} rounds; "
                      f"replay {replays[-1]:.3f} s)" + (f"  flagged: {detect[key]}" if poisoned else ""))
    dp_s = None
    from ailedger.federated.dp import DPConfig

    s = run_simulation(led, server, clients=a.clients, rounds=a.rounds, poisoned=0, rule="fedavg",
                       dp=DPConfig(1.0, 1.0, 1e-5))
    dp_s = {"accuracy": s["accuracy"], "epsilon": round(s["epsilon"], 3), "clip": 1.0, "noise_multiplier": 1.0,
            "delta": 1e-5}
    print(f"fedavg + DP (clip 1, z 1): accuracy {s['accuracy']:.4f}, epsilon {s['epsilon']:.2f} at delta 1e-5")
    # the same run with the updates in the blob store: one storage node on loopback (lane port 18880)
    from ailedger.blobs.node import StorageNode

    node = StorageNode(tmp / "node", port=a.node_port, allow=[server.did]).start()
    try:
        s = run_simulation(led, server, clients=a.clients, rounds=a.rounds, poisoned=a.poisoned, rule="median",
                           attack="scale", blob_nodes=[node.url])
        t = time.perf_counter()
        st = store_for(led, s["run"], ident=server)
        r = replay(led, s["run"], st)
        st.close()
        blob_replay = time.perf_counter() - t
        assert r["final_root"] == s["final_root"]
    finally:
        node.stop()
    blob_round = statistics.median(s["round_seconds"])
    blob_log = statistics.median(s["log_seconds"])
    print(f"blob store (1 node): per round median {blob_round * 1000:.1f} ms, of which logging + storing "
          f"{blob_log * 1000:.1f} ms ({100 * blob_log / blob_round:.1f} %); replay {blob_replay:.3f} s")
    round_s = statistics.median(o[0] for o in overhead)
    log_s = statistics.median(o[1] for o in overhead)
    print(f"per round: median {round_s * 1000:.1f} ms, of which logging + storing {log_s * 1000:.1f} ms "
          f"({100 * log_s / round_s:.1f} %); replay of {a.rounds} rounds: median {statistics.median(replays):.3f} s")
    out = {"bench": "fl", "clients": a.clients, "rounds": a.rounds, "poisoned": a.poisoned,
           "accuracy": acc, "detection": detect, "dp": dp_s,
           "round_ms_median": round(round_s * 1000, 2), "log_ms_median": round(log_s * 1000, 2),
           "log_overhead_ratio": round(log_s / round_s, 4),
           "replay_s_median": round(statistics.median(replays), 4),
           "replay_vs_run_ratio": round(statistics.median(replays) / (round_s * a.rounds), 4),
           "blob_store": {"round_ms_median": round(blob_round * 1000, 2), "log_ms_median": round(blob_log * 1000, 2),
                          "log_overhead_ratio": round(blob_log / blob_round, 4), "replay_s": round(blob_replay, 4),
                          "log_vs_folder_ratio": round(blob_log / log_s, 2),
                          "replay_vs_folder_ratio": round(blob_replay / statistics.median(replays), 2)},
           "robust_gain_scale": {r: round(acc[r]["scale"] - acc["fedavg"]["scale"], 4) for r in acc},
           "robust_gain_flip": {r: round(acc[r]["flip"] - acc["fedavg"]["flip"], 4) for r in acc}}
    led.close()
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
