"""The screeners on small made data and on digits subsets (fast: < 60 s together)."""

import numpy as np

from ailedger.screening import screen
from ailedger.screening.duplicates import find_duplicates, minhash_pairs, minhash_signatures, phash
from ailedger.screening.labels import find_label_errors
from ailedger.screening.outliers import find_outliers
from tests.screening.screening_data import digits_dataset, flip_labels


def test_label_errors_digits_flips(digits_small):
    X, y = digits_small
    y2, truth = flip_labels(y, 0.05, seed=1)
    rep = screen(digits_dataset(X, y2), seed=0, loo=False)
    flagged = {f["record"] for f in rep["flagged"] if "label_issue" in f["reasons"]}
    tp = len(flagged & truth)
    assert tp / len(truth) >= 0.8, (tp, len(truth))
    assert tp / len(flagged) >= 0.8, (tp, len(flagged))
    # flagged label issues suggest the true label for most
    sugg = {f["record"]: f["suggested_label"] for f in rep["flagged"] if "suggested_label" in f}
    right = sum(1 for i in truth & set(sugg) if sugg[i] == str(y[i]))
    assert right >= 0.8 * len(truth & set(sugg))


def test_label_rule_self_confidence_below_chance():
    labels = np.array([0, 1, 2, 0, 1, 2] * 5)
    probs = np.full((30, 3), 0.05)
    probs[np.arange(30), labels] = 0.9
    probs[4] = [0.7, 0.2, 0.1]  # given label 1 at 0.2 < 0.9 but >= 1/3? no: 0.2 < 1/3 -> flagged
    probs[5] = [0.3, 0.3, 0.4]  # given 2 at 0.4 (argmax): not flagged
    probs = probs / probs.sum(1, keepdims=True)
    issue, _ = find_label_errors(labels, probs)
    assert issue[4] and not issue[5]
    assert issue.sum() == 1


def test_exact_duplicates_and_label_conflict():
    keys = [b"a", b"b", b"a", b"c", b"c"]
    labels = np.array([0, 1, 0, 0, 1])
    res = find_duplicates(keys, labels)
    assert res.groups == [[0, 2], [3, 4]]
    assert res.flagged[2] == ["exact_duplicate"]
    assert "duplicate_label_conflict" in res.flagged[3] and "duplicate_label_conflict" in res.flagged[4]
    assert 0 not in res.flagged and res.original == {2: 0, 4: 3}


def test_minhash_near_duplicate_text():
    base = "the quick brown fox jumps over the lazy dog near the river bank at dawn"
    texts = [base, base.replace("dawn", "dusk"), "completely different sentence about ledgers and proofs",
             base.upper() + "  "]
    sig = minhash_signatures(texts)
    pairs = {(i, j) for i, j, _ in minhash_pairs(sig)}
    assert (0, 1) in pairs and (0, 3) in pairs
    assert not any(2 in p for p in pairs)


def test_phash_near_duplicate_images():
    r = np.random.default_rng(0)
    imgs = r.random((3, 32, 32)).astype(np.float32)
    imgs[1] = np.clip(imgs[0] + r.normal(0, 0.01, (32, 32)), 0, 1)  # re-encoded copy of 0
    h = phash(imgs)
    dist = lambda a, b: (int(a) ^ int(b)).bit_count()
    assert dist(h[0], h[1]) <= 4
    assert dist(h[0], h[2]) > 10
    res = find_duplicates([b"x", b"y", b"z"], np.array([0, 1, 0]), images=imgs)
    assert res.groups == [[0, 1]] and res.kinds == ["near"]
    assert set(res.flagged[1]) == {"near_duplicate", "duplicate_label_conflict"}


def test_outlier_far_point():
    r = np.random.default_rng(0)
    Z = r.normal(size=(300, 5))
    Z[17] = 40.0
    res = find_outliers(Z)
    assert res.flag[17]
    assert res.flag.sum() <= 3


def test_backdoor_trigger_patch_digits(digits_small):
    X, y = digits_small
    r = np.random.default_rng(5)
    target = 4
    idx = r.choice(np.flatnonzero(y != target), 21, replace=False)  # 3%
    Xp, yp = X.copy(), y.copy()
    Xp.reshape(-1, 8, 8)[idx, 6:8, 6:8] = 16
    yp[idx] = target
    rep = screen(digits_dataset(Xp, yp), seed=0, loo=False)
    assert rep["summary"]["backdoor_suspected_classes"] == ["4"]
    bd = {f["record"] for f in rep["flagged"] if "backdoor_trigger" in f["reasons"]}
    assert len(bd & set(idx.tolist())) / len(idx) >= 0.9
    assert rep["verdict"] == "fail"


def test_no_backdoor_on_clean_digits(digits_small):
    X, y = digits_small
    rep = screen(digits_dataset(X, y), seed=0, loo=False)
    assert rep["summary"]["backdoor_suspected_classes"] == []
    assert rep["summary"]["flagged"] <= 0.03 * len(y)


def test_poisoned_source_found(digits_small):
    X, y = digits_small
    r = np.random.default_rng(2)
    src = r.permutation(np.arange(len(y)) % 7)
    y2 = y.copy()
    bad = np.flatnonzero(src == 3)
    for i in r.choice(bad, int(0.3 * len(bad)), replace=False):
        y2[i] = r.choice([c for c in range(10) if c != y[i]])
    rep = screen(digits_dataset(X, y2, sources=src), seed=0, loo=True)
    verdicts = {s["source"]: s["verdict"] for s in rep["sources"]}
    assert verdicts["s3"] == "remove"
    assert [k for k, v in verdicts.items() if v == "remove"] == ["s3"]
    s3 = next(s for s in rep["sources"] if s["source"] == "s3")
    assert s3["loo_delta_accuracy"] is not None and s3["flag_rate_p"] < 1e-3


def test_large_n_paths(monkeypatch, digits_small):
    """The >20 000-record code paths, exercised on small data by lowering the thresholds."""
    import ailedger.screening.duplicates as dup
    from ailedger.screening.labels import _dense_models, cross_val_probs

    X, y = digits_small
    Z = X / 16.0
    exact_d, exact_i = dup.knn_graph(Z, 10)
    monkeypatch.setattr(dup, "LARGE_N_GRAPH", 100)
    d, i = dup.knn_graph(Z, 10)
    assert d.shape == exact_d.shape and (i[:, 0] == np.arange(len(y))).mean() > 0.99
    # distances are true full-space distances, sorted, never below the exact k-th neighbour
    assert np.allclose(d, np.sqrt(((Z[i] - Z[:, None, :]) ** 2).sum(-1)))
    assert (np.diff(d, axis=1) >= -1e-12).all() and (d[:, -1] >= exact_d[:, -1] - 1e-9).all()
    overlap = np.mean([len(set(a) & set(b)) / len(a) for a, b in zip(i[:, 1:], exact_i[:, 1:])])
    assert overlap > 0.8
    models = _dense_models(30_000, 0)
    assert [m for m, _ in models] == ["pca24_knn10", "logreg"]
    probs, _names = cross_val_probs(Z, y, 10, text=False, folds=5, models=models)
    assert probs.shape == (len(y), 10) and np.allclose(probs.sum(1), 1)
    assert (probs.argmax(1) == y).mean() > 0.9


def test_near_and_exact_duplicates_in_pixel_grid(digits):
    X, y = digits
    X, y = X[:600], y[:600]
    r = np.random.default_rng(0)
    src = r.choice(600, 20, replace=False)
    near = X[src].copy()
    for k in range(20):
        j = int(np.flatnonzero(near[k] < 15)[r.integers((near[k] < 15).sum())])
        near[k, j] += 1 + (k % 2)  # one pixel, one or two grey levels
    X2 = np.vstack([X, near, X[src[:5]]])
    y2 = np.concatenate([y, y[src], y[src[:5]]])
    y2[600] = (y2[600] + 1) % 10  # a near copy with another label
    rep = screen(digits_dataset(X2, y2), seed=0, loo=False)
    by = {f["record"]: f for f in rep["flagged"]}
    assert all("near_duplicate" in by[600 + k]["reasons"] for k in range(20))
    assert all(by[600 + k]["duplicate_of"] == int(src[k]) for k in range(20))
    assert all("exact_duplicate" in by[620 + k]["reasons"] for k in range(5))
    assert "duplicate_label_conflict" in by[600]["reasons"] and "duplicate_label_conflict" in by[int(src[0])]["reasons"]
    assert rep["summary"]["by_reason"]["near_duplicate"] == 20


def test_cleanlab_filter_loads_without_the_package_init():
    """find_label_errors imports cleanlab.filter without cleanlab's __init__ (which loads Datalab, Hugging Face
    datasets, pyarrow): same masks as the ordinary import, and a later `import cleanlab` still works."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import sys
        import numpy as np
        from ailedger.screening.labels import find_label_errors
        rng = np.random.default_rng(3)
        labels = rng.integers(0, 4, 400)
        probs = rng.dirichlet(np.ones(4), 400)
        probs[np.arange(400), labels] += 1.5 * rng.random(400)
        probs /= probs.sum(1, keepdims=True)
        issue, cl = find_label_errors(labels, probs)
        assert "cleanlab" not in sys.modules, "the bare package stayed in sys.modules"
        heavy = sorted(m for m in sys.modules if m.split(".")[0] == "datasets" or m.startswith("cleanlab.datalab"))
        assert heavy == [], heavy
        import cleanlab
        from cleanlab.filter import find_label_issues
        assert cleanlab.__version__ and hasattr(cleanlab, "Datalab")
        want = np.asarray(find_label_issues(labels, probs, filter_by="prune_by_noise_rate", n_jobs=1), dtype=bool)
        assert 0 < cl.sum() < 400, cl.sum()
        assert (cl == want).all()
        assert (issue == (want | (probs[np.arange(400), labels] < 0.25))).all()
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
