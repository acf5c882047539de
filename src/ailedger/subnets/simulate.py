"""The adversarial simulation: what honest validators, a colluding cartel, lazy copiers, honest miners and
a miner serving a cheaper model earn under the consensus (Yuma, clipped) and under a plain stake-weighted
mean of the same weights.

Miners serve real models: classifiers trained with scikit-learn on its bundled ``digits`` set; the prompt
pool is the held-out part.  Every epoch each validator draws its own prompts from the pool and scores each
miner by the accuracy of the answers it is served (an offline miner serves nothing; the cheap miner
answers a share of the calls with a much smaller model).  The weights of one epoch are folded twice, with
``clip=True`` (the consensus) and ``clip=False`` (the plain mean), each with its own bonds.

* the **cartel** (``cartel_share`` of the stake) over-scores its own miner as far as it can: all its weight
  on it, none on anyone else;
* **copiers** (``copier_share`` of the stake) measure nothing: with commit-reveal they can only copy the
  weights revealed for the previous epoch; without it they copy this epoch's honest weights as they appear;
* the cartel's excess is its miner's incentive share minus the share it gets in the same run with the
  cartel scoring honestly (same draws).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ailedger.subnets.yuma import ONE, U16, Params, copies, fold_epoch

__all__ = ["SimConfig", "chart", "run", "simulate", "table"]


@dataclass(frozen=True)
class SimConfig:
    miners: int = 16
    honest_validators: int = 8
    cartel_validators: int = 2
    copier_validators: int = 2
    cartel_share: float = 0.3     # of all stake
    copier_share: float = 0.1
    epochs: int = 40
    prompts: int = 200            # drawn by each validator per epoch
    online: float = 0.8           # chance an honest miner serves in an epoch
    cheap_calls: float = 0.5      # share of the cheap miner's calls answered by the small model
    commit_reveal: bool = True
    copy_rule: bool = True        # cut the dividends of reveals that copy the previous epoch (state.py's rule)
    seed: int = 0


_MODELS: dict[str, Any] = {}


def _correct() -> dict[str, np.ndarray]:
    """Per-prompt correctness (bool) of each model on the held-out digits: the prompt pool."""
    if _MODELS:
        return _MODELS
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.naive_bayes import GaussianNB
    from sklearn.tree import DecisionTreeClassifier

    x, y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.5, random_state=0, stratify=y)
    models = {"good": LogisticRegression(max_iter=300), "medium": GaussianNB(),
              "small": DecisionTreeClassifier(max_depth=3, random_state=0)}
    for k, m in models.items():
        m.fit(xtr, ytr)
        _MODELS[k] = np.asarray(m.predict(xte) == yte)
    return _MODELS


def _weights_u16(scores: np.ndarray) -> np.ndarray:
    top = scores.max()
    if top <= 0:
        return np.zeros_like(scores, dtype=np.int64)
    return np.rint(scores / top * U16).astype(np.int64)


def run(cfg: SimConfig, *, cartel_attacks: bool = True, params: Params | None = None) -> dict[str, Any]:
    """One simulation; returns per-epoch incentive and dividends under both folds."""
    correct = _correct()
    pool = len(correct["good"])
    rng = np.random.default_rng(cfg.seed)
    p = params or Params()
    m = cfg.miners
    # miner roles: 0 = the cartel's miner (medium model), 1 = the cheap miner (good model, small on some calls),
    # the rest honest: half good, half medium
    kinds = ["medium", "good"] + ["good" if j % 2 == 0 else "medium" for j in range(2, m)]
    nh, nc, nk = cfg.honest_validators, cfg.cartel_validators, cfg.copier_validators
    v = nh + nc + nk
    honest_share = 1.0 - cfg.cartel_share - cfg.copier_share
    stake_f = [honest_share / nh] * nh + [cfg.cartel_share / max(nc, 1)] * nc + [cfg.copier_share / max(nk, 1)] * nk
    stake = [round(s * 1_000_000) for s in stake_f]
    bonds: dict[bool, np.ndarray | None] = {True: None, False: None}
    out: dict[str, Any] = {"incentive": {True: [], False: []}, "dividends": {True: [], False: []},
                           "stake": stake, "kinds": kinds, "groups": {"honest": list(range(nh)),
                                                                      "cartel": list(range(nh, nh + nc)),
                                                                      "copier": list(range(nh + nc, v))}}
    prev_honest: np.ndarray | None = None
    previous: list[tuple[int, np.ndarray]] = []
    out["copied"] = out["copied_honest"] = 0
    for _t in range(cfg.epochs):
        online = rng.random(m) < cfg.online
        online[0] = True  # the cartel keeps its own miner up
        w = np.zeros((v, m), dtype=np.int64)
        for i in range(nh + nc):
            draws = rng.integers(0, pool, size=(m, cfg.prompts))
            scores = np.zeros(m)
            for j in range(m):
                if not online[j]:
                    continue
                ok = correct[kinds[j]][draws[j]]
                if j == 1:  # the cheap miner answers some calls with the small model
                    cheap = rng.random(cfg.prompts) < cfg.cheap_calls
                    ok = np.where(cheap, correct["small"][draws[j]], ok)
                scores[j] = ok.mean()
            if i >= nh and cartel_attacks:  # the cartel gives all its weight to its own miner
                scores[:] = 0.0
                scores[0] = 1.0
            w[i] = _weights_u16(scores)
        honest_mean = w[:nh].mean(axis=0)
        if nk:
            src = prev_honest if cfg.commit_reveal else honest_mean
            if src is not None:
                w[nh + nc:] = _weights_u16(src)
        prev_honest = honest_mean
        copied = copies(w, previous, p.copy_tol_bps) if cfg.copy_rule else []
        out["copied"] += sum(1 for i in copied if i >= nh + nc)
        out["copied_honest"] += sum(1 for i in copied if i < nh)
        for clip in (True, False):
            res = fold_epoch(stake, w, bonds[clip], p, clip=clip, copied=copied)
            bonds[clip] = res.bonds
            if clip:
                previous = [(i, w[i].copy()) for i in range(v) if w[i].any()]
                previous.append((-1, np.asarray(res.consensus, dtype=np.int64)))
            out["incentive"][clip].append(np.array(res.incentive, dtype=np.float64) / ONE)
            out["dividends"][clip].append(np.array(res.dividends, dtype=np.float64) / ONE)
    return out


def _mean_after(xs: list[np.ndarray], warm: int) -> np.ndarray:
    return np.mean(np.stack(xs[warm:]), axis=0)


def simulate(cfg: SimConfig, *, params: Params | None = None) -> dict[str, Any]:
    """The summary the CLI prints and the bench records: per class, the share each earns per epoch."""
    p = params or Params()
    att = run(cfg, params=p)
    base = run(cfg, cartel_attacks=False, params=p)
    warm = min(10, cfg.epochs // 4)
    stake = np.array(att["stake"], dtype=np.float64)
    g = att["groups"]
    kinds = att["kinds"]
    res: dict[str, Any] = {"config": cfg.__dict__, "params": p.to_dict(), "classes": {}, "figures": {}}
    honest_good = [j for j in range(2, cfg.miners) if kinds[j] == "good"]
    honest_medium = [j for j in range(2, cfg.miners) if kinds[j] == "medium"]
    for label, clip in (("consensus", True), ("mean", False)):
        inc = _mean_after(att["incentive"][clip], warm)
        div = _mean_after(att["dividends"][clip], warm)
        inc0 = _mean_after(base["incentive"][clip], warm)
        miner_pool = p.emission * p.miner_bps / 10000
        val_pool = p.emission * p.validator_bps / 10000

        def per_stake(ix: list[int], div: np.ndarray = div) -> float:
            return float(div[ix].sum() / stake[ix].sum()) if ix and stake[ix].sum() > 0 else 0.0
        hv = per_stake(g["honest"])
        classes = {
            "honest validator (per 1% stake)": val_pool * hv * stake.sum() / 100,
            "cartel validator (per 1% stake)": val_pool * per_stake(g["cartel"]) * stake.sum() / 100,
            "copier validator (per 1% stake)": val_pool * per_stake(g["copier"]) * stake.sum() / 100,
            "cartel's miner (medium model)": miner_pool * float(inc[0]),
            "cartel's miner if scored honestly": miner_pool * float(inc0[0]),
            "honest miner, good model (mean)": miner_pool * float(inc[honest_good].mean()),
            "honest miner, medium model (mean)": miner_pool * float(inc[honest_medium].mean()),
            "cheap miner (good model, small on some calls)": miner_pool * float(inc[1]),
        }
        for k, val in classes.items():
            res["classes"].setdefault(k, {})[label] = round(val)
        res["figures"][label] = {
            "cartel_miner_share": float(inc[0]), "cartel_miner_honest_share": float(inc0[0]),
            "cartel_excess_share": float(inc[0] - inc0[0]),
            "cartel_excess_relative": float((inc[0] - inc0[0]) / inc0[0]) if inc0[0] else 0.0,
            "copier_dividend_ratio": per_stake(g["copier"]) / hv if hv else 0.0,
            "cheap_vs_good_miner": float(inc[1] / inc[honest_good].mean()) if inc[honest_good].mean() else 0.0,
            "honest_good_share": float(inc[honest_good].mean()),
            "copier_reveals_caught": att["copied"] / max(1, cfg.copier_validators * cfg.epochs),
            "honest_reveals_caught": att["copied_honest"] / max(1, cfg.honest_validators * cfg.epochs),
        }
    res["series"] = {"consensus": [float(x[0]) for x in att["incentive"][True]],
                     "mean": [float(x[0]) for x in att["incentive"][False]],
                     "honest": [float(x[0]) for x in base["incentive"][True]]}
    return res


def table(res: dict[str, Any]) -> list[str]:
    c = res["config"]
    lines = [(f"{c['miners']} miners, validators: {c['honest_validators']} honest, {c['cartel_validators']} cartel "
              f"({c['cartel_share']:.0%} of stake), {c['copier_validators']} copiers ({c['copier_share']:.0%}); "
              f"{c['epochs']} epochs; commit-reveal {'on' if c['commit_reveal'] else 'off'}"),
             f"{'earnings per epoch (units)':<48} {'consensus':>12} {'plain mean':>12}"]
    for k, v in res["classes"].items():
        lines.append(f"{k:<48} {v['consensus']:>12,} {v['mean']:>12,}")
    f = res["figures"]
    lines.append(f"cartel miner's excess over its honest share: consensus {f['consensus']['cartel_excess_relative']:+.1%}, "
                 f"mean {f['mean']['cartel_excess_relative']:+.1%}")
    lines.append(f"copier dividends per stake / honest: consensus {f['consensus']['copier_dividend_ratio']:.3f}, "
                 f"mean {f['mean']['copier_dividend_ratio']:.3f}")
    if c["copy_rule"]:
        lines.append(f"copy rule: {f['consensus']['copier_reveals_caught']:.0%} of the copiers' reveals and "
                     f"{f['consensus']['honest_reveals_caught']:.0%} of the honest ones were found to copy")
    return lines


def chart(res: dict[str, Any], path: str | os.PathLike[str]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.8))
    names = list(res["classes"])
    ys = np.arange(len(names))
    cons = [res["classes"][k]["consensus"] for k in names]
    mean = [res["classes"][k]["mean"] for k in names]
    a.barh(ys - 0.2, cons, height=0.4, label="consensus (Yuma, clipped)", color="#2a7")
    a.barh(ys + 0.2, mean, height=0.4, label="plain stake-weighted mean", color="#c53")
    a.set_yticks(ys, names, fontsize=8)
    a.invert_yaxis()
    a.set_xlabel("earnings per epoch (units)")
    a.legend(fontsize=8)
    a.set_title("who earns what")
    s = res["series"]
    b.plot(s["honest"], label="if the cartel scored honestly", color="#888")
    b.plot(s["consensus"], label="consensus", color="#2a7")
    b.plot(s["mean"], label="plain mean", color="#c53")
    b.set_xlabel("epoch")
    b.set_ylabel("incentive share")
    b.set_title(f"the cartel's miner ({res['config']['cartel_share']:.0%} of stake)")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
