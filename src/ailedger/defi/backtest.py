"""Honest backtests for trading signals (López de Prado, *Advances in Financial Machine Learning*, ch. 7, 11, 14):

* purged, embargoed walk-forward cross-validation: a training sample whose label window ``[t, t+h]`` reaches
  into the test fold is purged; ``embargo`` bars right before each test fold are dropped too (features are
  rolling windows, so the bars next to the test fold carry its information); :func:`check_folds` finds any
  fold that breaks these rules (a leak);
* the plan (data digest, features, horizon, every model configuration, the folds) is committed to the ledger as
  an ``agent.backtest.plan`` entry *before* anything is scored; the score (``agent.backtest.result``) names
  the plan entry and the digest of the plan it used;
* the report gives net-of-cost Sharpe, the deflated Sharpe ratio (Bailey & López de Prado 2014) with the
  number of trials counted *from the ledger* (every configuration in every plan of the study by the signer),
  and the probability of backtest overfitting by combinatorially symmetric cross-validation (CSCV, Bailey,
  Borwein, López de Prado & Zhu 2015).

Data: a simulated constant-product AMM market (noise traders plus a slowly varying trend), so the series and
its on-chain style features (returns, trade flow, reserve imbalance) are generated offline and reproducibly.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from typing import Any

import numpy as np

from ailedger.errors import BadInputError, ConflictError, NotFoundError, VerificationError

from .rules import PLAN, RESULT, effective_plans, effective_results, plan_digest

__all__ = ["PLAN", "RESULT", "check_folds", "cscv_pbo", "data_digest", "deflated_sharpe", "evaluate_plan", "make_folds", "make_plan",
           "plan_digest", "run_backtest", "score", "simulate_amm", "trials_on_ledger"]

EULER = 0.5772156649015329
TREND = 0.001  # strength of the trend followers (a weak, real signal)
FEATURES = ("ret_1", "ret_4", "ret_16", "vol_16", "flow_4", "flow_16", "imbalance")


def simulate_amm(n: int = 2000, seed: int = 0, liquidity: float = 1e6) -> dict[str, np.ndarray]:
    """Bars of a constant-product pool: each bar, noise traders plus a trend follower whose pressure follows a
    slowly varying (AR(1)) trend.  Price, signed trade flow per bar and reserves."""
    if not 100 <= n <= 1_000_000:
        raise BadInputError("bars must be between 100 and 1000000", field="bars")
    rng = np.random.default_rng(seed)
    x, y = liquidity, liquidity  # reserves of the base and quote token
    trend = 0.0
    price, flow, rx = np.empty(n), np.empty(n), np.empty(n)
    for t in range(n):
        trend = 0.97 * trend + rng.normal(0, 0.15)
        trades = rng.normal(trend * TREND, 0.01, size=8) * x  # base-token amounts bought (+) or sold (-)
        net = 0.0
        for dq in trades:
            if dq > 0:  # buy base with quote: pay quote in, get dq base out
                dq = min(dq, 0.5 * x)
                y = x * y / (x - dq)
                x -= dq
            else:
                x += -dq
                y = (x + dq) * y / x
            net += dq
        price[t], flow[t], rx[t] = y / x, net / liquidity, x / liquidity
    return {"price": price, "flow": flow, "reserve": rx}


def features(data: dict[str, np.ndarray]) -> np.ndarray:
    """Rolling on-chain features (only past bars: column j at bar t uses bars <= t)."""
    p = np.log(data["price"])
    r = np.diff(p, prepend=p[0])
    n = len(p)

    def roll(v: np.ndarray, w: int, f: Any) -> np.ndarray:
        out = np.zeros(n)
        for t in range(n):
            out[t] = f(v[max(0, t - w + 1):t + 1])
        return out

    cols = [r, p - np.concatenate([np.full(4, p[0]), p[:-4]]), p - np.concatenate([np.full(16, p[0]), p[:-16]]),
            roll(r, 16, np.std), roll(data["flow"], 4, np.sum), roll(data["flow"], 16, np.sum),
            data["reserve"] - 1.0]
    return np.column_stack(cols)


def labels(data: dict[str, np.ndarray], horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Sign of the forward ``horizon``-bar log return (1 up, 0 down), and the next-bar return the strategy
    earns holding a position from bar t to t+1.  The last ``horizon`` bars have no label."""
    p = np.log(data["price"])
    fwd = np.full(len(p), np.nan)
    fwd[:-horizon] = p[horizon:] - p[:-horizon]
    nxt = np.zeros(len(p))
    nxt[:-1] = p[1:] - p[:-1]
    return (fwd > 0).astype(int), nxt


def make_folds(n: int, k: int, horizon: int, embargo: int, *, start: int = 0, leak: bool = False) -> list[dict[str, Any]]:
    """Walk-forward folds over samples ``start..n-horizon-1``: k contiguous test blocks after a first training
    block; each fold trains on the samples before its test block, purged (label windows reaching the test block)
    and embargoed.  ``leak=True`` builds the folds a careless backtest uses: plain k-fold, training on both
    sides of the test block, no purge, no embargo (for showing that :func:`check_folds` catches it)."""
    last = n - horizon  # samples with a label
    if k < 2 or last - start < 4 * (k + 1):
        raise BadInputError(f"too few samples ({last - start}) for {k} folds", field="folds")
    edges = np.linspace(start, last, k + 2).astype(int)
    out = []
    for j in range(1, k + 1):
        a, b = int(edges[j]), int(edges[j + 1])
        if leak:
            train = [[start, a], [b, last]]
        else:
            train = [[start, max(start, a - horizon - embargo)]]
        out.append({"train": [r for r in train if r[1] > r[0]], "test": [a, b]})
    return out


def check_folds(folds: list[dict[str, Any]], horizon: int, embargo: int) -> list[str]:
    """Every way the folds leak: a training sample inside a test block, a training label window ``[t, t+h]``
    overlapping the test block (not purged), or one within ``embargo`` bars before it.  Empty when clean."""
    problems = []
    for j, f in enumerate(folds):
        a, b = f["test"]
        for lo, hi in f["train"]:
            inside = max(0, min(hi, b) - max(lo, a))
            if inside:
                problems.append(f"fold {j}: {inside} training samples inside the test block [{a}, {b})")
            if hi > a - horizon - embargo and lo < a:  # samples in [a-h-e, a): label window or embargo
                n = min(hi, a) - max(lo, a - horizon - embargo)
                problems.append(f"fold {j}: {n} training samples within horizon+embargo ({horizon}+{embargo}) "
                                f"bars before the test block (label windows reach into it)")
            if lo < b + embargo and hi > b:  # samples right after the test block: embargo
                n = min(hi, b + embargo) - max(lo, b)
                problems.append(f"fold {j}: {n} training samples within the embargo ({embargo}) after the test block")
    return problems


def configs(grid: str = "default") -> list[dict[str, Any]]:
    """The model configurations a study tries (each one a trial for the deflated Sharpe ratio and PBO)."""
    feats = [list(FEATURES), ["ret_1", "ret_4", "ret_16"], ["flow_4", "flow_16", "imbalance"], ["ret_4", "flow_4"]]
    out: list[dict[str, Any]] = []
    for fs, c in itertools.product(feats, ["0.01", "1"]):
        out.append({"model": "logistic", "C": c, "features": fs})
    for fs in feats[:2]:
        out.append({"model": "tree", "max_depth": 3, "features": fs})
    return out if grid == "default" else out[:2]


def make_plan(*, study: str, data_digest: str, bars: int, seed: int, horizon: int, embargo: int, k: int,
              cost_bps: int, leak: bool = False, grid: str = "default") -> dict[str, Any]:
    if not study or len(study) > 200:
        raise BadInputError("study must be a non-empty name", field="study")
    if not 1 <= horizon <= 100 or not 0 <= embargo <= 1000 or not 0 <= cost_bps <= 1000:
        raise BadInputError("horizon 1..100, embargo 0..1000 and cost_bps 0..1000", field="horizon")
    folds = make_folds(bars, k, horizon, embargo, start=32, leak=leak)
    return {"study": study, "data": {"source": "simulated-amm/1", "bars": bars, "seed": seed, "sha256": data_digest},
            "features": list(FEATURES), "label": {"kind": "sign-forward-log-return", "horizon": horizon},
            "cv": {"kind": "plain-kfold" if leak else "purged-embargoed-walk-forward", "folds": folds,
                   "embargo": embargo}, "configs": configs(grid), "cost_bps": cost_bps}


def _model(cfg: dict[str, Any]) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    if cfg["model"] == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(C=float(cfg["C"]), max_iter=500))
    return DecisionTreeClassifier(max_depth=int(cfg["max_depth"]), random_state=0)


def oos_returns(plan: dict[str, Any], data: dict[str, np.ndarray], progress: bool = False) -> np.ndarray:
    """Per-bar net-of-cost out-of-sample returns, one column per configuration, over the concatenated test
    blocks: position +1/-1 from the predicted sign, held one bar, paying ``cost_bps`` per unit of turnover."""
    X = features(data)
    y, nxt = labels(data, plan["label"]["horizon"])
    cols = {f: i for i, f in enumerate(FEATURES)}
    cost = plan["cost_bps"] / 10_000
    from tqdm import tqdm

    out = []
    for cfg in tqdm(plan["configs"], desc="configurations", unit="cfg", disable=not progress, leave=False):
        idx = [cols[f] for f in cfg["features"]]
        rets = []
        for f in plan["cv"]["folds"]:
            tr = np.concatenate([np.arange(lo, hi) for lo, hi in f["train"]])
            a, b = f["test"]
            m = _model(cfg).fit(X[tr][:, idx], y[tr])
            pos = np.where(m.predict(X[a:b][:, idx]) == 1, 1.0, -1.0)
            turn = np.abs(np.diff(pos, prepend=0.0))
            rets.append(pos * nxt[a:b] - cost * turn)
        out.append(np.concatenate(rets))
    return np.column_stack(out)


def sharpe(r: np.ndarray) -> float:
    s = float(np.std(r, ddof=1))
    return float(np.mean(r)) / s if s > 0 else 0.0


def deflated_sharpe(r: np.ndarray, trial_sharpes: np.ndarray, n_trials: int) -> dict[str, float]:
    """DSR = PSR(SR0): the probability that the true Sharpe exceeds the expected maximum of ``n_trials``
    unskilled trials (SR0 from the variance of the trials' Sharpe ratios), given skew and kurtosis of ``r``."""
    from scipy.stats import kurtosis, norm, skew

    sr = sharpe(r)
    t = len(r)
    var = float(np.var(trial_sharpes, ddof=1)) if len(trial_sharpes) > 1 else 0.0
    n = max(1, n_trials)
    sr0 = 0.0 if n == 1 else math.sqrt(var) * ((1 - EULER) * norm.ppf(1 - 1 / n) + EULER * norm.ppf(1 - 1 / (n * math.e)))
    g3, g4 = float(skew(r)), float(kurtosis(r, fisher=False))
    den = math.sqrt(max(1e-12, 1 - g3 * sr + (g4 - 1) / 4 * sr * sr))
    return {"sharpe": sr, "sr0": sr0, "dsr": float(norm.cdf((sr - sr0) * math.sqrt(t - 1) / den)),
            "psr": float(norm.cdf(sr * math.sqrt(t - 1) / den)), "skew": g3, "kurtosis": g4}


def cscv_pbo(m: np.ndarray, s: int = 12) -> dict[str, Any]:
    """Probability of backtest overfitting by CSCV: split the T x N returns into ``s`` blocks; for every half of
    the blocks as in-sample, take the best configuration in-sample and its relative rank out of sample; PBO is
    the share of splits where that rank is at or below the median (logit <= 0)."""
    t, n = m.shape
    if n < 2:
        raise BadInputError("PBO needs at least two configurations", field="configs")
    blocks = np.array_split(np.arange(t), s)
    mu = np.array([m[b].mean(axis=0) for b in blocks])
    sq = np.array([(m[b] ** 2).mean(axis=0) for b in blocks])
    sizes = np.array([len(b) for b in blocks])[:, None]
    lam = []
    for comb in itertools.combinations(range(s), s // 2):
        ins = np.zeros(s, bool)
        ins[list(comb)] = True

        def sr(mask: np.ndarray) -> np.ndarray:
            w = sizes[mask]
            mean = (mu[mask] * w).sum(0) / w.sum()
            var = (sq[mask] * w).sum(0) / w.sum() - mean**2
            return np.asarray(mean / np.sqrt(np.maximum(var, 1e-18)))

        sr_in, sr_out = sr(ins), sr(~ins)
        best = int(np.argmax(sr_in))
        omega = (np.sum(sr_out < sr_out[best]) + 0.5) / n  # relative rank in (0, 1)
        lam.append(math.log(omega / (1 - omega)))
    arr = np.array(lam)
    return {"pbo": float(np.mean(arr <= 0)), "splits": len(lam), "blocks": s, "logits": arr}


def data_digest(data: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(data):
        h.update(k.encode() + np.ascontiguousarray(data[k], dtype="<f8").tobytes())
    return h.hexdigest()


def trials_on_ledger(ledger: Any, study: str, signer: str) -> tuple[int, list[int]]:
    """Configurations tried in ``study`` by ``signer``, counted from every well-formed ``agent.backtest.plan`` it
    signed (the first plan entry for a digest counts once: :func:`ailedger.defi.rules.effective_plans`); and the
    plan entries."""
    plans = effective_plans(ledger, signer, study)
    return sum(len(e.body["plan"]["configs"]) for _, e in plans), [i for i, _ in plans]


def _s(x: float) -> str:  # signed records carry no floats
    return f"{x:.6f}"


def score(ledger: Any, identity: Any, plan_index: int, data: dict[str, np.ndarray], *,
          chart: str | None = None, progress: bool = False) -> dict[str, Any]:
    """Score the plan committed at entry ``plan_index`` (refused unless it is an ``agent.backtest.plan`` by the
    same signer, its digest matches, the data is the committed data and its folds do not leak) and log the
    result."""
    if plan_index >= ledger.size or plan_index < 0:
        raise NotFoundError(f"no entry #{plan_index}", field="plan")
    e = ledger.entry(plan_index)
    if e.type != PLAN:
        raise NotFoundError(f"entry #{plan_index} is a {e.type}, not an {PLAN}", field="plan")
    if e.signer != identity.did:
        raise VerificationError("the plan was committed by another key", expected=identity.did, found=e.signer)
    plan = e.body["plan"]
    if plan_digest(plan) != e.body.get("plan_sha256"):
        raise VerificationError("plan digest mismatch", expected=e.body.get("plan_sha256"), found=plan_digest(plan))
    if data_digest(data) != plan["data"]["sha256"]:
        raise VerificationError("the data is not the data the plan committed to", expected=plan["data"]["sha256"],
                                found=data_digest(data))
    for i, r in effective_results(ledger)[0]:  # the result that counts (a stranger's does not)
        if r.body["plan"] == plan_index:
            raise ConflictError(f"plan #{plan_index} was already scored at entry #{i}", field="plan", entry=i)
    problems = check_folds(plan["cv"]["folds"], plan["label"]["horizon"], plan["cv"]["embargo"])
    if problems:
        raise VerificationError(f"the committed folds leak ({len(problems)} problems): {problems[0]}",
                                expected="purged, embargoed folds", found=problems)
    rep = evaluate_plan(plan, data, progress=progress)
    n_trials, plans = trials_on_ledger(ledger, plan["study"], identity.did)
    d = deflated_sharpe(rep["best_returns"], rep["sharpes"], n_trials)
    rep.update(n_trials_ledger=n_trials, plan_entries=plans, deflated=d)
    if chart:
        _chart(rep, chart)
    body = {"plan": plan_index, "plan_sha256": e.body["plan_sha256"], "study": plan["study"],
            "trials_on_ledger": n_trials, "best_config": rep["best"],
            "metrics": {"sharpe_per_bar": _s(d["sharpe"]), "sharpe_annual": _s(rep["best_sharpe_annual"]),
                        "dsr": _s(d["dsr"]), "sr0": _s(d["sr0"]), "pbo": _s(rep["pbo"]["pbo"]),
                        "oos_bars": len(rep["best_returns"])}}
    res = ledger.append_record(RESULT, body, identity)
    return {**_public(rep), "deflated": d, "n_trials_ledger": n_trials, "plan_entries": plans,
            "result_index": res.index, "plan_index": plan_index}


def evaluate_plan(plan: dict[str, Any], data: dict[str, np.ndarray], bars_per_year: int = 24 * 365,
                  progress: bool = False) -> dict[str, Any]:
    m = oos_returns(plan, data, progress)
    srs = np.array([sharpe(m[:, j]) for j in range(m.shape[1])])
    best = int(np.argmax(srs))
    return {"sharpes": srs, "best": best, "best_returns": m[:, best], "returns": m,
            "best_sharpe_annual": float(srs[best] * math.sqrt(bars_per_year)), "pbo": cscv_pbo(m)}


def _public(rep: dict[str, Any]) -> dict[str, Any]:
    return {"sharpes": [round(float(x), 6) for x in rep["sharpes"]], "best": rep["best"],
            "best_sharpe_annual": rep["best_sharpe_annual"],
            "pbo": {k: v for k, v in rep["pbo"].items() if k != "logits"}}


def _chart(rep: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    eq = np.cumsum(rep["returns"], axis=0)
    for j in range(eq.shape[1]):
        a.plot(eq[:, j], lw=2.0 if j == rep["best"] else 0.7, alpha=1 if j == rep["best"] else 0.5)
    a.set_title("out-of-sample equity (log), net of costs; bold = best")
    a.set_xlabel("test bar")
    b.hist(rep["pbo"]["logits"], bins=30, color="#4a7")
    b.axvline(0, color="k", lw=1)
    b.set_title(f"CSCV logits; PBO = {rep['pbo']['pbo']:.2f}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_backtest(ledger: Any, identity: Any, *, study: str, bars: int = 1500, seed: int = 0, horizon: int = 4,
                 embargo: int = 8, k: int = 6, cost_bps: int = 5, leak: bool = False, grid: str = "default",
                 chart: str | None = None, progress: bool = False) -> dict[str, Any]:
    """Simulate the data, commit the plan (``agent.backtest.plan``), then score it (``agent.backtest.result``).
    With ``leak`` the plan's folds leak: it is still committed (the ledger counts it as tried), and scoring
    refuses it with the leak named."""
    data = simulate_amm(bars, seed)
    plan = make_plan(study=study, data_digest=data_digest(data), bars=bars, seed=seed, horizon=horizon,
                     embargo=embargo, k=k, cost_bps=cost_bps, leak=leak, grid=grid)
    res = ledger.append_record(PLAN, {"plan": plan, "plan_sha256": plan_digest(plan)}, identity)
    return score(ledger, identity, res.index, data, chart=chart, progress=progress)
