"""The model: multinomial logistic regression (softmax) on the digits' 64 pixels, trained by full-batch
gradient descent in numpy.  Deterministic (no threads, no sampling), so a client's update is a function
of the global model and its data, and small (650 parameters), so a round of 10 clients takes milliseconds.

scikit-learn's ``LogisticRegression`` refits from scratch and drops classes a non-IID client never
sees; federated rounds need a warm start from the global model with all 10 classes, hence these lines."""

from __future__ import annotations

from typing import Any

__all__ = ["accuracy", "init_params", "train"]


def init_params(n_features: int = 64, n_classes: int = 10) -> list[Any]:
    import numpy as np

    return [np.zeros((n_features, n_classes), dtype=np.float64), np.zeros(n_classes, dtype=np.float64)]


def _probs(w: Any, b: Any, x: Any) -> Any:
    import numpy as np

    z = x @ w + b
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def train(params: list[Any], x: Any, y: Any, *, epochs: int = 20, lr: float = 0.5, mu: float = 0.0,
          l2: float = 1e-4) -> list[Any]:
    """``epochs`` steps of full-batch gradient descent from ``params``; ``mu`` > 0 adds FedProx's proximal
    term ``mu/2 ||w - w_global||^2``."""
    import numpy as np

    w0, b0 = (np.array(p, dtype=np.float64) for p in params)
    w, b = w0.copy(), b0.copy()
    onehot = np.eye(w.shape[1])[y]
    n = len(y)
    for _ in range(epochs):
        g = (_probs(w, b, x) - onehot) / n
        gw = x.T @ g + l2 * w + mu * (w - w0)
        gb = g.sum(axis=0) + mu * (b - b0)
        w -= lr * gw
        b -= lr * gb
    return [w, b]


def accuracy(params: list[Any], x: Any, y: Any) -> float:
    import numpy as np

    w, b = params
    return float(np.mean(np.argmax(x @ w + b, axis=1) == y))
