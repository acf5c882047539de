"""Screening benchmark (issue 10): label errors, backdoor trigger, poisoned source, time per 1e5 records.

All data ships in scikit-learn (load_digits: 1797 8x8 images, 10 classes).  Prints human lines, then as
the LAST line one JSON object with figures, references measured in the same run, and ratios.

    .venv/bin/python bench/screen_bench.py [--seeds 5] [--big 100000] [--skip-big]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from threadpoolctl import threadpool_limits

from ailedger.screening import screen
from ailedger.screening.loaders import Dataset

warnings.filterwarnings("ignore")


def digits_ds(X, y, src=None):
    n = len(y)
    src = np.zeros(n, dtype=np.int64) if src is None else src
    return Dataset(path="bench", modality="image", labels=y.astype(np.int64), classes=[str(i) for i in range(10)],
                   sources=src, source_names=[f"s{i}" for i in range(int(src.max()) + 1)], features=X.astype(float),
                   content_keys=[hashlib.sha256(r.tobytes()).digest() for r in X],
                   images=(X / 16).reshape(-1, 8, 8).astype(np.float32))


def flip(y, idx, rng):
    y2 = y.copy()
    for i in idx:
        y2[i] = rng.choice([c for c in range(10) if c != y[i]])
    return y2


def pr(flagged: set, truth: set) -> tuple[float, float]:
    tp = len(flagged & truth)
    return (tp / len(flagged) if flagged else 0.0), tp / len(truth)


def cleanlab_default(X, y, seed):
    """cleanlab's default: CleanLearning() (LogisticRegression, 5-fold cross-validated probabilities)."""
    from cleanlab.classification import CleanLearning

    with threadpool_limits(limits=1):
        issues = CleanLearning(seed=seed).find_label_issues(X, y)
    return set(np.flatnonzero(issues["is_label_issue"].values).tolist())


def cleanlab_filter_default(X, y, seed):
    """cleanlab.filter.find_label_issues defaults on 5-fold LogisticRegression(max_iter=1000) probabilities."""
    from cleanlab.filter import find_label_issues
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    with threadpool_limits(limits=1):
        pp = cross_val_predict(LogisticRegression(max_iter=1000), X, y, method="predict_proba",
                               cv=StratifiedKFold(5, shuffle=True, random_state=seed))
        return set(np.flatnonzero(find_label_issues(y, pp)).tolist())


def mean_std(xs):
    return round(float(np.mean(xs)), 4), round(float(np.std(xs)), 4)


def bench_flips(X, y, seeds):
    ours_all, ours_lab, ref_cl, ref_f = [], [], [], []
    t_ours = []
    for s in seeds:
        rng = np.random.default_rng(1000 + s)
        idx = rng.choice(len(y), round(0.05 * len(y)), replace=False)
        yn = flip(y, idx, rng)
        truth = set(idx.tolist())
        t = time.perf_counter()
        rep = screen(digits_ds(X, yn), seed=s, loo=False)
        t_ours.append(time.perf_counter() - t)
        fl_all = {f["record"] for f in rep["flagged"]}
        fl_lab = {f["record"] for f in rep["flagged"] if "label_issue" in f["reasons"]}
        ours_all.append(pr(fl_all, truth))
        ours_lab.append(pr(fl_lab, truth))
        ref_cl.append(pr(cleanlab_default(X, yn, s), truth))
        ref_f.append(pr(cleanlab_filter_default(X, yn, s), truth))
        print(f"flips seed {s}: ours P {ours_all[-1][0]:.3f} R {ours_all[-1][1]:.3f} | cleanlab CleanLearning() "
              f"P {ref_cl[-1][0]:.3f} R {ref_cl[-1][1]:.3f} | cleanlab filter+LR P {ref_f[-1][0]:.3f} "
              f"R {ref_f[-1][1]:.3f} ({t_ours[-1]:.1f}s)")
    out = {}
    for name, v in (("ours_all_flags", ours_all), ("ours_label_issue_only", ours_lab),
                    ("cleanlab_cleanlearning_default", ref_cl), ("cleanlab_filter_default_lr5", ref_f)):
        p, r = zip(*v)
        out[name] = {"precision_mean_std": mean_std(p), "recall_mean_std": mean_std(r)}
    out["seconds_per_run_mean"] = round(float(np.mean(t_ours)), 2)
    return out


def bench_trigger(X, y, seeds):
    rec_all, rec_bd, prec_bd, ref = [], [], [], []
    for s in seeds:
        rng = np.random.default_rng(2000 + s)
        target = int(rng.integers(10))
        cand = np.flatnonzero(y != target)
        idx = rng.choice(cand, round(0.03 * len(y)), replace=False)
        Xp, yp = X.copy(), y.copy()
        Xp.reshape(-1, 8, 8)[idx, 6:8, 6:8] = 16  # 2x2 patch, bottom-right, full intensity
        yp[idx] = target
        truth = set(idx.tolist())
        rep = screen(digits_ds(Xp, yp), seed=s, loo=False)
        fl = {f["record"] for f in rep["flagged"]}
        bd = {f["record"] for f in rep["flagged"] if "backdoor_trigger" in f["reasons"]}
        rec_all.append(pr(fl, truth)[1])
        p_bd, r_bd = pr(bd, truth)
        rec_bd.append(r_bd)
        prec_bd.append(p_bd)
        ref.append(pr(cleanlab_default(Xp, yp, s), truth)[1])
        print(f"trigger seed {s} (target {target}): recall any flag {rec_all[-1]:.3f}, backdoor flag "
              f"{r_bd:.3f} (precision {p_bd:.3f}), suspected {rep['summary']['backdoor_suspected_classes']}; "
              f"cleanlab default recall {ref[-1]:.3f}")
    return {"recall_any_flag_mean_std": mean_std(rec_all), "recall_backdoor_flag_mean_std": mean_std(rec_bd),
            "precision_backdoor_flag_mean_std": mean_std(prec_bd),
            "cleanlab_default_recall_mean_std": mean_std(ref)}


def bench_source(X, y, seeds, rate):
    found, top, false_remove, loo_rank1 = [], [], [], []
    for s in seeds:
        rng = np.random.default_rng(3000 + s)
        src = rng.permutation(np.arange(len(y)) % 10)
        bad = int(rng.integers(10))
        members = np.flatnonzero(src == bad)
        idx = rng.choice(members, round(rate * len(members)), replace=False)
        yn = flip(y, idx, rng)
        rep = screen(digits_ds(X, yn, src), seed=s, loo=True)
        v = {int(x["source"][1:]): x for x in rep["sources"]}
        found.append(v[bad]["verdict"] == "remove")
        false_remove.append(sum(1 for k, x in v.items() if k != bad and x["verdict"] == "remove"))
        by_rate = max(v, key=lambda k: v[k]["flag_rate"])
        top.append(by_rate == bad)
        by_loo = max(v, key=lambda k: v[k]["loo_delta_accuracy"])
        loo_rank1.append(by_loo == bad)
        print(f"source seed {s} (flip {rate:.0%} of source s{bad}): verdict {v[bad]['verdict']}, "
              f"flag rate {v[bad]['flag_rate']:.3f} vs {v[bad]['others_flag_rate']:.3f}, leave-out "
              f"{v[bad]['loo_delta_accuracy']:+.4f}; other sources marked remove: {false_remove[-1]}; "
              f"top by leave-out alone: s{by_loo}")
    return {"flip_rate_in_source": rate, "found_remove": f"{sum(found)}/{len(found)}",
            "top_by_flag_rate": f"{sum(top)}/{len(top)}", "top_by_leave_one_out_alone": f"{sum(loo_rank1)}/{len(loo_rank1)}",
            "false_remove_sources_total": int(sum(false_remove))}


def bench_big(X, y, n_big, seed=0):
    """n_big records: digits shifted by up to 1 pixel, with small noise, 5% labels flipped, 10 sources."""
    rng = np.random.default_rng(4000 + seed)
    base = rng.integers(len(y), size=n_big)
    imgs = X[base].reshape(-1, 8, 8)
    dx, dy = rng.integers(-1, 2, n_big), rng.integers(-1, 2, n_big)
    out = np.zeros_like(imgs)
    for sx in (-1, 0, 1):
        for sy in (-1, 0, 1):
            m = (dx == sx) & (dy == sy)
            out[m] = np.roll(np.roll(imgs[m], sx, axis=2), sy, axis=1)
    Xb = np.clip(out.reshape(n_big, 64) + rng.normal(0, 0.7, (n_big, 64)), 0, 16).round()
    yb = y[base].copy()
    idx = rng.choice(n_big, int(0.05 * n_big), replace=False)
    yb = flip(yb, idx, rng)
    src = rng.integers(10, size=n_big)
    ds = digits_ds(Xb, yb, src)
    load_before = os.getloadavg()[0]
    t = time.perf_counter()
    c = time.process_time()
    rep = screen(ds, seed=seed, loo=True)
    secs = time.perf_counter() - t
    cpu = time.process_time() - c
    load_after = os.getloadavg()[0]
    truth = set(idx.tolist())
    p, r = pr({f["record"] for f in rep["flagged"] if "label_issue" in f["reasons"]}, truth)
    print(f"big: {n_big} records screened in {secs:.1f}s wall, {cpu:.1f}s CPU ({secs * 1e5 / n_big:.1f}s wall per 1e5); parts "
          f"{rep['timing_seconds']}; label-issue P {p:.3f} R {r:.3f}")
    return {"records": n_big, "seconds": round(secs, 1), "seconds_per_1e5": round(secs * 1e5 / n_big, 1),
            "cpu_seconds_per_1e5": round(cpu * 1e5 / n_big, 1),
            "parts": rep["timing_seconds"], "models": rep["parameters"]["models"], "folds": rep["parameters"]["folds"],
            "label_issue_precision": round(p, 4), "label_issue_recall": round(r, 4),
            "load_average_1min_before_after": [round(load_before, 1), round(load_after, 1)], "cpus": os.cpu_count(),
            "blas_threads": 1}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--big", type=int, default=100_000)
    ap.add_argument("--skip-big", action="store_true")
    a = ap.parse_args()
    X, y = load_digits(return_X_y=True)
    seeds = list(range(a.seeds))
    t0 = time.perf_counter()
    flips = bench_flips(X, y, seeds)
    trig = bench_trigger(X, y, seeds)
    src20 = bench_source(X, y, seeds, 0.2)
    src10 = bench_source(X, y, seeds, 0.1)
    big = None if a.skip_big else bench_big(X, y, a.big)
    ours = flips["ours_all_flags"]
    ref = flips["cleanlab_cleanlearning_default"]
    res = {
        "bench": "screen",
        "data": "sklearn load_digits (1797 records)",
        "seeds": len(seeds),
        "figures": {
            "digits_5pct_flips": flips,
            "trigger_2x2_patch_3pct": trig,
            "poisoned_source_1_of_10": [src20, src10],
            "time_per_1e5_records": big,
        },
        "references": {"cleanlab_default_precision": ref["precision_mean_std"][0],
                       "cleanlab_default_recall": ref["recall_mean_std"][0],
                       "issue_goal": {"precision": 0.85, "recall": 0.85}},
        "ratios": {
            "precision_vs_cleanlab_default": round(ours["precision_mean_std"][0] / max(ref["precision_mean_std"][0], 1e-9), 3),
            "recall_vs_cleanlab_default": round(ours["recall_mean_std"][0] / max(ref["recall_mean_std"][0], 1e-9), 3),
            "trigger_recall_vs_cleanlab_default": round(trig["recall_any_flag_mean_std"][0]
                                                        / max(trig["cleanlab_default_recall_mean_std"][0], 1e-9), 3),
        },
        "seconds_total": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(res))


if __name__ == "__main__":
    main()
