"""The two small digit classifiers private inference runs: a logistic regression and an MLP with a square
activation (a polynomial, so CKKS can evaluate it), trained on scikit-learn's bundled digits.

A model folder holds ``model.json`` (kind, layer shapes, preprocessing) and ``weights.npz`` (the arrays,
read with ``allow_pickle=False``); it is registered like any model (``ailedger model register``), and
private inference loads it only after the folder verified against that registration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.errors import BadInputError

__all__ = ["FORMAT", "KINDS", "DigitsModel", "load_model", "save_model", "test_split", "train"]

FORMAT = "ailedger-private-digits/1"
KINDS = ("logreg", "mlp")
INPUT_DIM = 64  # 8x8 pixels, values 0..16, scaled to [0, 1]
CLASSES = 10


def test_split() -> tuple[Any, Any, Any, Any]:
    """(X_train, X_test, y_train, y_test): digits scaled to [0, 1], 30% test, stratified, seed 0."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.3, random_state=0, stratify=y)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class DigitsModel:
    """Weights as float64 arrays: ``layers`` = [(W, b), ...]; the mlp squares its hidden layer."""

    kind: str
    layers: tuple[tuple[Any, Any], ...]

    def logits(self, X: Any) -> Any:
        import numpy as np

        h = np.asarray(X, dtype=np.float64)
        for i, (W, b) in enumerate(self.layers):
            h = h @ W + b
            if i < len(self.layers) - 1:
                h = h * h
        return h

    def predict(self, X: Any) -> Any:
        return self.logits(X).argmax(axis=-1)


def train(kind: str, *, hidden: int = 32, seed: int = 0, epochs: int = 400) -> DigitsModel:
    """Train on the digits training split.  logreg: scikit-learn's LogisticRegression; mlp: 64 -> hidden ->
    10 with x**2 activation, full-batch Adam on cross-entropy in numpy (scikit-learn's MLP has no square
    activation)."""
    import numpy as np

    Xtr, _, ytr, _ = test_split()
    if kind == "logreg":
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(max_iter=3000, C=1.0).fit(Xtr, ytr)
        return DigitsModel("logreg", ((clf.coef_.T.copy(), clf.intercept_.copy()),))
    if kind != "mlp":
        raise BadInputError(f"model kind must be one of {', '.join(KINDS)}", field="kind", found=kind)
    rng = np.random.default_rng(seed)
    params = [rng.normal(0, 0.5 / np.sqrt(INPUT_DIM), (INPUT_DIM, hidden)), np.zeros(hidden),
              rng.normal(0, 0.5 / np.sqrt(hidden), (hidden, CLASSES)), np.zeros(CLASSES)]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    Y = np.eye(CLASSES)[ytr]
    lr, b1, b2 = 0.01, 0.9, 0.999
    for t in range(1, epochs + 1):
        W1, c1, W2, c2 = params
        z = Xtr @ W1 + c1
        h = z * z
        o = h @ W2 + c2
        o -= o.max(axis=1, keepdims=True)
        p = np.exp(o)
        p /= p.sum(axis=1, keepdims=True)
        d_o = (p - Y) / len(Xtr)
        d_h = d_o @ W2.T
        d_z = d_h * 2 * z
        grads = [Xtr.T @ d_z + 1e-4 * W1, d_z.sum(0), h.T @ d_o + 1e-4 * W2, d_o.sum(0)]
        for i, g in enumerate(grads):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            params[i] = params[i] - lr * (m[i] / (1 - b1 ** t)) / (np.sqrt(v[i] / (1 - b2 ** t)) + 1e-8)
    return DigitsModel("mlp", ((params[0], params[1]), (params[2], params[3])))


def save_model(model: DigitsModel, folder: str | Path) -> Path:
    import numpy as np

    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {}
    for i, (W, b) in enumerate(model.layers):
        arrays[f"W{i}"] = np.asarray(W, dtype=np.float64)
        arrays[f"b{i}"] = np.asarray(b, dtype=np.float64)
    with open(d / "weights.npz", "wb") as f:
        np.savez(f, **arrays)
    meta = {"format": FORMAT, "kind": model.kind, "input": {"dim": INPUT_DIM, "scale": "pixel / 16"},
            "classes": CLASSES, "shapes": [[list(W.shape), list(b.shape)] for W, b in model.layers],
            "activation": "square" if len(model.layers) > 1 else None}
    (d / "model.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")
    return d


def load_model(folder: str | Path) -> DigitsModel:
    """Read a model folder written by :func:`save_model`; BadInputError naming what is wrong."""
    import numpy as np

    d = Path(folder)
    try:
        meta = json.loads((d / "model.json").read_text())
    except FileNotFoundError:
        raise BadInputError(f"{d} has no model.json: not a private-inference model folder", field="model") from None
    except ValueError as exc:
        raise BadInputError(f"{d}/model.json is not JSON: {exc}", field="model") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("kind") not in KINDS:
        raise BadInputError(f"{d}/model.json is not a {FORMAT} model", field="model")
    try:
        with np.load(d / "weights.npz", allow_pickle=False) as z:
            n = len(meta["shapes"])
            layers = tuple((z[f"W{i}"].astype(np.float64), z[f"b{i}"].astype(np.float64)) for i in range(n))
    except (OSError, KeyError, ValueError) as exc:
        raise BadInputError(f"{d}/weights.npz cannot be read: {exc}", field="model") from None
    dim = INPUT_DIM
    for i, (W, b) in enumerate(layers):
        if W.ndim != 2 or W.shape[0] != dim or b.shape != (W.shape[1],) or not np.isfinite(W).all():
            raise BadInputError(f"{d}/weights.npz layer {i} has shape {W.shape}/{b.shape}, expected ({dim}, k)/(k,)",
                                field="model")
        dim = W.shape[1]
    if dim != CLASSES or (meta["kind"] == "logreg") != (len(layers) == 1):
        raise BadInputError(f"{d}: a {meta['kind']} must end in {CLASSES} classes", field="model")
    return DigitsModel(meta["kind"], layers)


def check_input(x: Any) -> Any:
    """One digit as 64 floats in [0, 1] (BadInputError otherwise)."""
    import numpy as np

    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadInputError("the input must be a list of 64 numbers", field="input") from None
    if a.shape != (INPUT_DIM,):
        raise BadInputError(f"the input must be {INPUT_DIM} numbers (8x8 pixels / 16), got shape {a.shape}",
                            field="input")
    if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
        raise BadInputError("the input values must be in [0, 1] (pixel / 16)", field="input")
    return a
