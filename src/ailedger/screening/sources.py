"""Per-source verdicts: flag rates, class balance, and the effect of leaving each source out.

For every source s (the values of the source column):

* flag rate: share of its records flagged for a label problem (label issue, duplicate label conflict,
  backdoor trigger), tested against the rate of all other sources with a one-sided binomial test;
* class balance: Jensen-Shannon divergence (base 2, in [0, 1]) between its label distribution and that
  of the other sources, with a chi-square test of independence (2 x K table);
* leave-one-source-out: over 3 random stratified 75/25 splits, a model is trained on the training part
  with and without s and scored on the *trusted* validation records (those not flagged); the mean
  change in accuracy when s is left out (positive = s hurts) and its standard error are reported.
  The model is an RBF SVC when the training split has <= 5 000 records, else standardized logistic
  regression; training splits above 10 000 records are subsampled uniformly to 10 000.

Verdict (stated policy):
  ``remove``  flag rate >= 3x the others' rate with p < 1e-3 (and >= 5% of the source), or leaving it out
              raises validation accuracy by > 1 point and by > 2 standard errors;
  ``review``  flag rate >= 2x with p < 0.01, or a positive leave-out effect > 2 standard errors, or a
              class balance far from the others (JS > 0.1 and p < 1e-3), or backdoor-flagged records;
  ``keep``    otherwise.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

LOO_REPEATS = 3
LOO_MAX_TRAIN = 10_000  # larger training splits are subsampled uniformly at random to this size
LOO_SVC_MAX = 5_000  # RBF SVC up to this many training records, logistic regression above


@dataclass
class SourceVerdict:
    source: str
    records: int
    flagged: int
    label_flagged: int
    backdoor_flagged: int
    flag_rate: float
    others_flag_rate: float
    flag_rate_p: float
    label_counts: dict[str, int]
    label_js: float
    label_chi2_p: float
    loo_delta_accuracy: float | None
    loo_stderr: float | None
    verdict: str
    reasons: list[str] = field(default_factory=list)


def _js(p: np.ndarray, q: np.ndarray) -> float:
    p = p / max(p.sum(), 1e-12)
    q = q / max(q.sum(), 1e-12)
    m = (p + q) / 2

    def kl(a: np.ndarray, b: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / b[mask])))

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def _loo_model(text: bool, n: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if text:
        return LogisticRegression(C=10.0, max_iter=2000)
    if n <= LOO_SVC_MAX:
        return SVC(C=10.0, gamma="scale")
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=300, tol=1e-3))


def leave_one_source_out(X, labels: np.ndarray, sources: np.ndarray, trusted: np.ndarray, *, text: bool,
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(mean delta accuracy, standard error) per source; delta = acc(without s) - acc(with all)."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedShuffleSplit

    n_src = int(sources.max()) + 1
    deltas = np.zeros((LOO_REPEATS, n_src))
    _, counts = np.unique(labels, return_counts=True)
    strat = labels if counts.min() >= 2 else None
    splitter = StratifiedShuffleSplit(n_splits=LOO_REPEATS, test_size=0.25, random_state=seed) if strat is not None \
        else None
    rng = np.random.default_rng(seed)
    splits = []
    if splitter is not None:
        splits = list(splitter.split(np.zeros(len(labels)), labels))
    else:
        for _ in range(LOO_REPEATS):
            perm = rng.permutation(len(labels))
            cut = int(0.75 * len(labels))
            splits.append((perm[:cut], perm[cut:]))
    base_model = _loo_model(text, min(len(labels), LOO_MAX_TRAIN))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r, (tr, va) in enumerate(splits):
            va = va[trusted[va]]
            if va.size == 0:
                continue
            if tr.size > LOO_MAX_TRAIN:
                tr = np.sort(rng.choice(tr, LOO_MAX_TRAIN, replace=False))
            m = clone(base_model).fit(X[tr], labels[tr])
            base = float(np.mean(m.predict(X[va]) == labels[va]))
            for s in range(n_src):
                keep = tr[sources[tr] != s]
                if keep.size == 0 or np.unique(labels[keep]).size < 2:
                    continue
                m2 = clone(base_model).fit(X[keep], labels[keep])
                deltas[r, s] = float(np.mean(m2.predict(X[va]) == labels[va])) - base
    mean = deltas.mean(0)
    se = deltas.std(0, ddof=1) / np.sqrt(LOO_REPEATS) if LOO_REPEATS > 1 else np.zeros(n_src)
    return mean, se


def source_verdicts(labels: np.ndarray, classes: list[str], sources: np.ndarray, source_names: list[str],
                    label_flag: np.ndarray, any_flag: np.ndarray, backdoor_flag: np.ndarray,
                    loo: tuple[np.ndarray, np.ndarray] | None) -> list[SourceVerdict]:
    from scipy.stats import binomtest, chi2_contingency

    k = len(classes)
    out = []
    for s, name in enumerate(source_names):
        mine = sources == s
        others = ~mine
        n_s = int(mine.sum())
        lf = int(label_flag[mine].sum())
        rate = lf / max(n_s, 1)
        o_rate = float(label_flag[others].mean()) if others.any() else 0.0
        if others.any() and n_s:
            p_ref = min(max(o_rate, 1.0 / (int(others.sum()) + 1)), 1.0)
            pval = float(binomtest(lf, n_s, p_ref, alternative="greater").pvalue)
        else:
            pval = 1.0
        cnt = np.bincount(labels[mine], minlength=k).astype(float)
        ocnt = np.bincount(labels[others], minlength=k).astype(float)
        js = _js(cnt, ocnt) if others.any() else 0.0
        chi_p = 1.0
        if others.any():
            table = np.vstack([cnt, ocnt])
            table = table[:, table.sum(0) > 0]
            if table.shape[1] >= 2 and (table.sum(1) > 0).all():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    chi_p = float(chi2_contingency(table)[1])
        d = se = None
        if loo is not None:
            d, se = float(loo[0][s]), float(loo[1][s])
        reasons: list[str] = []
        verdict = "keep"
        ratio = rate / o_rate if o_rate > 0 else (np.inf if rate > 0 else 0.0)
        if others.any() and pval < 1e-3 and ratio >= 3 and rate >= 0.05:
            verdict = "remove"
            reasons.append(f"label-problem rate {rate:.1%} vs {o_rate:.1%} in the other sources (p={pval:.1e})")
        if d is not None and se is not None and d > 0.01 and d > 2 * se:
            verdict = "remove"
            reasons.append(f"leaving it out raises validation accuracy by {d:+.2%} (se {se:.2%})")
        if verdict != "remove":
            if others.any() and pval < 0.01 and ratio >= 2:
                verdict = "review"
                reasons.append(f"label-problem rate {rate:.1%} vs {o_rate:.1%} (p={pval:.1e})")
            if d is not None and se is not None and d > 0 and d > 2 * se:
                verdict = "review"
                reasons.append(f"leaving it out raises validation accuracy by {d:+.2%} (se {se:.2%})")
            if js > 0.1 and chi_p < 1e-3:
                verdict = "review"
                reasons.append(f"class balance differs from the other sources (JS {js:.2f}, p={chi_p:.1e})")
            if int(backdoor_flag[mine].sum()):
                verdict = "review"
                reasons.append(f"{int(backdoor_flag[mine].sum())} record(s) carry a suspected backdoor trigger")
        out.append(SourceVerdict(
            source=name, records=n_s, flagged=int(any_flag[mine].sum()), label_flagged=lf,
            backdoor_flagged=int(backdoor_flag[mine].sum()), flag_rate=rate, others_flag_rate=o_rate,
            flag_rate_p=pval, label_counts={classes[i]: int(cnt[i]) for i in range(k)}, label_js=js,
            label_chi2_p=chi_p, loo_delta_accuracy=d, loo_stderr=se, verdict=verdict, reasons=reasons))
    return out
