"""Extraction bench (issue 24 part 3): how far substitute-model attacks get through the gateway, with no
defence, a budget only, and a budget plus the PRADA detector; the detector's recall and false alarms;
the effect of output hardening on a probability-using attacker.

Everything through the network runs against the real gateway (in-process, uvicorn, on 127.0.0.1) in front of
a real digits model server subprocess, with a real ledger.  Recall and false alarms are counted with the same
detector class in-process on many more runs (the queries an attack or an honest client makes do not depend
on where the detector runs; the HTTP runs above check that they trip the gateway the same way).

Usage: PYTHONPATH=src python bench/extraction_bench.py [--attempt 1600] [--quota 800] [--seeds 10]
       [--honest 50] [--port-base 18400] [--png docs/img/extraction.png]
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from ailedger.inference.extraction import DetectorConfig, ExtractionGuard, Hardening, PradaDetector
from ailedger.inference.extraction_attack import (
    ATTACKS,
    STEP,
    Blocked,
    HttpOracle,
    LocalOracle,
    digits_split,
    honest_replay,
    run_attack,
    save_target,
)
from ailedger.inference.gateway import Gateway, GatewayKeys


class Running:
    def __init__(self, gw: Gateway, port: int) -> None:
        self.gw, self.loop = gw, asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(gw.start("127.0.0.1", port))
            ready.set()
            self.loop.run_forever()

        self.t = threading.Thread(target=run, daemon=True)
        self.t.start()
        assert ready.wait(60)
        self.url = f"http://127.0.0.1:{gw.port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.gw.stop(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.t.join(30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--attempt", type=int, default=1600, help="queries each attack tries to spend")
    ap.add_argument("--quota", type=int, default=800, help="the attacker's daily quota (budget defences)")
    ap.add_argument("--seeds", type=int, default=10, help="attack runs per attack for the detector's recall")
    ap.add_argument("--honest", type=int, default=50, help="honest replays for the false-alarm count")
    ap.add_argument("--port-base", type=int, default=18400)
    ap.add_argument("--png", default="docs/img/extraction.png")
    a = ap.parse_args()
    t_start = time.time()
    load0 = os.getloadavg()[0]
    from ailedger.provenance.models import register_model
    from ailedger.tlog.ledger import Ledger

    tmp = Path(tempfile.mkdtemp(prefix="extraction-bench-"))
    led = Ledger.init(tmp / "ledger", origin="bench.example/extraction")
    pub, _ = led.new_identity("publisher")
    target = save_target(str(tmp / "model"))
    register_model(led, tmp / "model", "digits", pub)
    d = digits_split(0)
    Xs, ys = d["test"]
    test_labels = target.predict(Xs)
    print(f"target: digits MLP, test accuracy {np.mean(test_labels == ys):.3f}; attacker pool {len(d['pool'][0])}, "
          f"test set {len(Xs)}")
    srv = subprocess.Popen([sys.executable, "-m", "ailedger.inference.extraction_attack", "serve", str(tmp / "model"),
                            str(a.port_base + 1)], stdout=subprocess.PIPE, text=True)
    line = srv.stdout.readline() if srv.stdout else ""
    assert line.startswith("PORT "), line
    upstream = f"http://127.0.0.1:{int(line.split()[1])}"
    try:
        run_all(a, led, target, d, upstream, t_start, load0)
    finally:
        srv.terminate()
        srv.wait(10)
        led.close()


def run_all(a, led, target, d, upstream, t_start, load0) -> None:
    Xs = d["test"][0]
    test_labels = target.predict(Xs)

    # -- 1. agreement vs queries through the gateway, per defence --------------------------------------------
    defences = {"none": (None, False), "budget": (a.quota, False), "budget+detector": (a.quota, True)}
    curves: dict[str, dict[str, dict]] = {}
    http_latency: list[float] = []
    keys = GatewayKeys(led.path)
    port = a.port_base + 2
    for dname, (quota, detect) in defences.items():
        gw = Gateway(led, upstream, "digits")
        gw.extraction = ExtractionGuard(led, "digits", gw.trail.operator, detect=detect)
        run = Running(gw, port)
        port += 1
        curves[dname] = {}
        try:
            for attack in ATTACKS:
                key = keys.new_key(f"{dname.replace('+', '-')}-{attack}", daily=quota)["key"]
                t0 = time.perf_counter()
                res = run_attack(HttpOracle(run.url, key), attack, a.attempt, d["pool"], Xs, test_labels, seed=0)
                dt = time.perf_counter() - t0
                curves[dname][attack] = {**res.to_dict(), "alarms": len(gw.extraction.raised), "seconds": round(dt, 1)}
                print(f"{dname:16s} {attack:6s}: {res.queries:5d} queries, agreement {res.final_agreement:.3f}"
                      + (f"  (stopped: {res.stopped[:60]})" if res.stopped else ""))
            honest_key = keys.new_key(f"{dname.replace('+', '-')}-honest")["key"]
            ho = HttpOracle(run.url, honest_key)
            t0 = time.perf_counter()
            honest_replay(ho, Xs, seed=0)
            http_latency.append((time.perf_counter() - t0) / len(Xs) * 1000)
            curves[dname]["honest_alarms"] = sum(1 for i in gw.extraction.raised
                                                 if led.entry(i).body["identity"].endswith("-honest"))
        finally:
            run.stop()
    keys.close()

    # -- 2. output hardening vs a probability-using attacker (through the gateway) ----------------------------
    rng = np.random.default_rng(5)
    Xq = d["pool"][0][rng.choice(len(d["pool"][0]), 10, replace=False)]
    while len(Xq) < 400:  # natural seeds stepped in random directions (no substitute needed to choose them)
        Xq = np.vstack([Xq, np.clip(Xq + STEP * rng.choice([-1.0, 1.0], size=Xq.shape), 0, 16)])
    Xq = Xq[:400]
    hardening = {"plain (6 places)": Hardening(), "rounded (1 place)": Hardening(decimals=1),
                 "top-1 only": Hardening(top1=True)}
    hard_out: dict[str, dict[str, float]] = {}
    keys = GatewayKeys(led.path)
    for hname, hard in hardening.items():
        gw = Gateway(led, upstream, "digits")
        gw.extraction = ExtractionGuard(led, "digits", gw.trail.operator, detect=False, hardening=hard)
        run = Running(gw, port)
        port += 1
        try:
            o = HttpOracle(run.url, keys.new_key(f"soft-{len(hard_out)}")["key"])
            labels = o.query(Xq)
        finally:
            run.stop()
        soft = np.asarray([p if p is not None else np.eye(10)[lab] for p, lab in zip(o.probs, labels)])
        row = {}
        for n in (100, 400):
            from sklearn.neural_network import MLPRegressor
            from threadpoolctl import threadpool_limits

            with threadpool_limits(1):
                reg = MLPRegressor(hidden_layer_sizes=(100,), max_iter=500, random_state=0).fit(Xq[:n] / 16,
                                                                                                soft[:n])
            row[f"agreement_at_{n}"] = round(float(np.mean(reg.predict(Xs / 16).argmax(1) == test_labels)), 4)
        hard_out[hname] = row
        print(f"hardening {hname:18s}: soft-label substitute agreement {row}")
    keys.close()

    # -- 3. detector recall and false alarms (same detector, in-process, many runs) ----------------------------
    cfg = DetectorConfig()
    recall: dict[str, dict] = {}
    for attack in ATTACKS:
        hits, at = 0, []
        seeds = a.seeds if attack != "random" else max(3, a.seeds // 3)
        for seed in range(seeds):
            det = PradaDetector(cfg)

            def obs(x, lab, det=det):
                if det.observe("attacker", x, lab) is not None:
                    raise Blocked(403, "alarm", "detected")

            res = run_attack(LocalOracle(target, obs), attack, a.attempt, d["pool"], Xs, test_labels, seed=100 + seed)
            if res.stopped:
                hits += 1
                at.append(res.queries)
        recall[attack] = {"runs": seeds, "detected": hits, "recall": round(hits / seeds, 3),
                          "median_queries_to_alarm": float(np.median(at)) if at else None}
        print(f"detector on {attack:6s}: {hits}/{seeds} runs detected"
              + (f", median {np.median(at):.0f} queries" if at else ""))
    false_alarms, min_w = 0, []
    for seed in range(a.honest):
        det = PradaDetector(cfg)
        ws: list[float] = []

        def obs2(x, lab, det=det, ws=ws):
            nonlocal false_alarms
            if det.observe("honest", x, lab) is not None:
                false_alarms += 1
                det.reset("honest")
            if "honest" in det.last_w:
                ws.append(det.last_w["honest"])

        honest_replay(LocalOracle(target, obs2), Xs, seed=1000 + seed)
        min_w.append(min(ws))
    print(f"honest replays: {false_alarms} false alarms in {a.honest} replays of {len(Xs)} queries "
          f"(lowest W {min(min_w):.4f}, delta {cfg.delta})")

    # -- chart -------------------------------------------------------------------------------------------------
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(ATTACKS), figsize=(13, 4), sharey=True)
    for ax, attack in zip(axes, ATTACKS):
        for dname, style in zip(defences, ("-", "--", ":")):
            c = curves[dname][attack]["curve"]
            ax.plot([q for q, _ in c], [g for _, g in c], style, marker="o", ms=3, label=dname)
        ax.set_xscale("log")
        ax.set_title(f"{attack} attack")
        ax.set_xlabel("queries spent")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("substitute agreement with target")
    axes[0].legend(loc="lower right")
    fig.suptitle(f"Extraction of a digits MLP through the gateway (quota {a.quota}, detector delta {cfg.delta})")
    fig.tight_layout()
    Path(a.png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.png, dpi=90)
    print(f"chart: {a.png}")

    fin = {k: {att: curves[k][att]["final_agreement"] for att in ATTACKS} for k in curves}
    qs = {k: {att: curves[k][att]["queries"] for att in ATTACKS} for k in curves}
    out = {
        "bench": "extraction", "cpus": os.cpu_count(), "loadavg_start": round(load0, 2),
        "loadavg_end": round(os.getloadavg()[0], 2), "seconds": round(time.time() - t_start, 1),
        "attempted_queries": a.attempt, "quota": a.quota, "delta": cfg.delta, "min_samples": cfg.min_samples,
        "final_agreement": fin, "queries_spent": qs,
        "curves": {k: {att: curves[k][att]["curve"] for att in ATTACKS} for k in curves},
        "alarms_through_gateway": {k: {att: curves[k][att]["alarms"] for att in ATTACKS} for k in curves},
        "honest_alarms_through_gateway": {k: curves[k]["honest_alarms"] for k in curves},
        "recall": recall, "honest_replays": a.honest, "false_alarms": false_alarms,
        "honest_min_w": round(min(min_w), 4), "hardening_soft_label_substitute": hard_out,
        "gateway_ms_per_query_honest": [round(v, 2) for v in http_latency],
        "references": {"prada_reported": "all prior attacks detected, no false positives (Juuti et al. 2019)"},
        "ratios": {
            f"agreement_{att}_detector_vs_none": round(fin["budget+detector"][att] / fin["none"][att], 3)
            for att in ATTACKS
        } | {
            f"queries_{att}_detector_vs_budget": round(qs["budget+detector"][att] / max(1, qs["budget"][att]), 3)
            for att in ATTACKS
        } | {"false_alarm_rate": round(false_alarms / a.honest, 4)},
    }
    print(json.dumps(out, separators=(",", ":")))


if __name__ == "__main__":
    main()
