"""The extraction harness: substitute-model attacks on a digits classifier, locally or through a gateway.

Attacks (as evaluated in PRADA, Juuti et al. EuroS&P 2019, section V):

* ``jbda`` -- Papernot et al. (AsiaCCS 2017) Jacobian-based dataset augmentation: start from one natural
  sample per class, label it with the target, train the substitute, then add
  ``x + lambda * sign(d F_sub[label(x)] / dx)`` for every known ``x`` (the set doubles each round).
* ``rnd`` -- the same augmentation with a random sign direction instead of the gradient (PRADA's T-RND
  without its targeting).
* ``random`` -- queries drawn uniformly from the input space (Tramer et al., USENIX Security 2016).

The substitute is a scikit-learn ``MLPClassifier``; its input gradient is computed from its weights
(ReLU layers, logits).  The target and the substitute agree on a sample when they predict the same class;
agreement is measured on the held-out digits test set.  An *honest* client replays that test set in
random order.

Run ``python -m ailedger.inference.extraction_attack serve MODEL_DIR`` for a target model server on
127.0.0.1 (prints ``PORT n``; ``POST /predict {"features": [[64 floats]]}`` -> ``{"labels", "probabilities"}``).
"""

from __future__ import annotations

import http.client
import json
import os
import pickle
import socket
import sys
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ailedger.errors import BadInputError, NetworkError

__all__ = ["ATTACKS", "AttackResult", "Blocked", "HttpOracle", "LocalOracle", "digits_split", "honest_replay",
           "run_attack", "train_target"]

ATTACKS = ("jbda", "rnd", "random")
LOW, HIGH = 0.0, 16.0      # the digits' pixel range
MODEL_FILE = "target.pkl"  # the pickled target in its model directory
STEP = 2.0                 # lambda: one augmentation step, in pixel units (Papernot's 0.1 of a [0,1] range ~ 1.6)


class Blocked(Exception):
    """The gateway refused a query (budget exhausted, identity suspended)."""

    def __init__(self, status: int, code: str, message: str, answered: list[int] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.answered = answered or []   # the labels of the queries answered before the refusal


def digits_split(seed: int = 0) -> dict[str, Any]:
    """scikit-learn's digits, stratified: 60 % to train the target, 20 % the attacker's pool of natural
    samples (its seeds), 20 % the test set (agreement, honest replay)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    Xt, Xr, yt, yr = train_test_split(X, y, test_size=0.4, random_state=seed, stratify=y)
    Xp, Xs, yp, ys = train_test_split(Xr, yr, test_size=0.5, random_state=seed, stratify=yr)
    return {"train": (Xt, yt), "pool": (Xp, yp), "test": (Xs, ys)}


def train_target(X: Any, y: Any, seed: int = 0) -> Any:
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return MLPClassifier(hidden_layer_sizes=(64,), max_iter=400, random_state=seed).fit(X / HIGH, y)


class _Scaled:
    """A model trained on pixels / 16, answering raw pixels."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, X: Any) -> Any:
        return self.model.predict(X / HIGH)

    def predict_proba(self, X: Any) -> Any:
        return self.model.predict_proba(X / HIGH)


def target_model(seed: int = 0) -> Any:
    X, y = digits_split(seed)["train"]
    return _Scaled(train_target(X, y, seed=seed))


class LocalOracle:
    """The target in-process; ``observer(x, label)`` sees each query (e.g. a detector)."""

    def __init__(self, model: Any, observer: Callable[[Any, int], Any] | None = None) -> None:
        self.model, self.observer, self.queries = model, observer, 0

    def query(self, X: Any) -> list[int]:
        import numpy as np

        labels = [int(v) for v in self.model.predict(np.asarray(X, dtype=np.float64))]
        for i, (x, lab) in enumerate(zip(X, labels)):
            self.queries += 1
            if self.observer is not None:
                try:
                    self.observer(x, lab)
                except Blocked as exc:
                    exc.answered = labels[: i + 1]
                    raise
        return labels


class HttpOracle:
    """The target behind a gateway (or a bare model server): one query per request, ``POST path``
    ``{"features": [x]}`` with ``Authorization: Bearer KEY``.  Raises :class:`Blocked` on 403/429."""

    def __init__(self, url: str, key: str | None, path: str = "/predict", timeout: float = 30.0) -> None:
        u = urllib.parse.urlsplit(url)
        if u.scheme != "http" or not u.hostname:
            raise BadInputError("gateway URL must look like http://127.0.0.1:PORT", field="url", found=url)
        self.host, self.port, self.path, self.key, self.timeout = u.hostname, u.port or 80, path, key, timeout
        self.conn: http.client.HTTPConnection | None = None
        self.queries = 0
        self.probs: list[Any] = []   # the probability row of each answer (None when the gateway dropped them)

    def _post(self, body: bytes) -> tuple[int, bytes]:
        for attempt in (0, 1):
            headers = {"Content-Type": "application/json"}
            if self.key:
                headers["Authorization"] = f"Bearer {self.key}"
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                    self.conn.connect()
                    # http.client sends the head and the body in two writes: without TCP_NODELAY the body
                    # waits for the server's delayed ACK of the head (40 ms a query on Linux)
                    assert self.conn.sock is not None
                    self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.conn.request("POST", self.path, body=body, headers=headers)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (OSError, http.client.HTTPException) as exc:
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if attempt:
                    raise NetworkError(f"gateway {self.host}:{self.port} failed: {exc}") from None
        raise AssertionError("unreachable")

    def query(self, X: Any) -> list[int]:
        out: list[int] = []
        for x in X:
            status, body = self._post(json.dumps({"features": [[round(float(v), 4) for v in x]]}).encode())
            if status in (401, 403, 429):
                try:
                    err = json.loads(body)
                except ValueError:
                    err = {}
                raise Blocked(status, str(err.get("code", status)), str(err.get("message", body[:200])), out)
            if status != 200:
                raise NetworkError(f"gateway answered {status}: {body[:200]!r}")
            self.queries += 1
            ans = json.loads(body)
            out.append(int(ans["labels"][0]))
            probs = ans.get("probabilities")
            self.probs.append(probs[0] if isinstance(probs, list) and probs else None)
        return out

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# -- the substitute ------------------------------------------------------------------------------------

def _substitute(seed: int) -> Any:
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=(100,), max_iter=300, random_state=seed)


def _fit(sub: Any, X: Any, y: Any) -> Any:
    import warnings

    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    # one BLAS thread: these matrices are tiny, and threads fighting over busy cores cost 10x here
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        return sub.fit(np.asarray(X) / HIGH, np.asarray(y))


def _input_gradient(sub: Any, X: Any, labels: Any) -> Any:
    """d logit[label] / dx for each row of X (pixel units), from the MLP's weights (ReLU hidden layers)."""
    import numpy as np

    a = np.asarray(X, dtype=np.float64) / HIGH
    acts, masks = [a], []
    for W, b in zip(sub.coefs_[:-1], sub.intercepts_[:-1]):
        z = acts[-1] @ W + b
        masks.append(z > 0)
        acts.append(np.maximum(z, 0))
    W_out = sub.coefs_[-1]
    cls = list(sub.classes_)
    if W_out.shape[1] == 1:  # a binary substitute has one logit (for classes_[1])
        cols = np.where(np.asarray([cls.index(v) if v in cls else 0 for v in labels]) == 1, 1.0, -1.0)
        g = W_out[:, 0][None, :] * cols[:, None]
    else:
        idx = np.asarray([cls.index(v) if v in cls else 0 for v in labels])
        g = W_out[:, idx].T
    for W, m in zip(reversed(sub.coefs_[:-1]), reversed(masks)):
        g = (g * m) @ W.T
    return g / HIGH


def agreement(sub: Any, target_labels: Any, X_test: Any) -> float:
    import numpy as np

    return float((sub.predict(np.asarray(X_test) / HIGH) == np.asarray(target_labels)).mean())


@dataclass
class AttackResult:
    attack: str
    queries: int = 0
    curve: list[tuple[int, float]] = field(default_factory=list)   # (queries spent, agreement)
    stopped: str = ""                                              # why the attack stopped early
    final_agreement: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"attack": self.attack, "queries": self.queries, "final_agreement": round(self.final_agreement, 4),
                "curve": [[q, round(a, 4)] for q, a in self.curve], "stopped": self.stopped}


def run_attack(oracle: Any, attack: str, budget: int, pool: Any, X_test: Any, test_labels: Any, *,
               seed: int = 0, progress: Callable[[int], Any] | None = None) -> AttackResult:
    """Spend up to ``budget`` queries on ``attack`` against ``oracle``; the substitute's agreement with
    ``test_labels`` (the target's answers on ``X_test``) after each round."""
    import numpy as np

    if attack not in ATTACKS:
        raise BadInputError(f"attack must be one of {', '.join(ATTACKS)}", field="attack", found=attack)
    if budget < 10:
        raise BadInputError("budget must be at least 10 queries", field="budget", found=budget)
    rng = np.random.default_rng(seed)
    res = AttackResult(attack)
    Xp, yp = pool
    sub = _substitute(seed)
    known_X: list[Any] = []
    known_y: list[int] = []

    def ask(X: Any) -> bool:
        X = np.clip(np.asarray(X, dtype=np.float64), LOW, HIGH)[: budget - res.queries]
        if len(X) == 0:
            return False
        got: list[int] = []
        try:
            for i in range(0, len(X), 50):
                part = X[i:i + 50]
                labs = oracle.query(part)
                got.extend(labs)
                res.queries += len(labs)
                if progress is not None:
                    progress(len(labs))
        except Blocked as exc:
            got.extend(exc.answered)
            res.queries += len(exc.answered)
            res.stopped = f"{exc.status} {exc.code} after {res.queries} queries: {exc.message}"
        known_X.extend(X[: len(got)])
        known_y.extend(got)
        return not res.stopped

    def checkpoint() -> None:
        if len(set(known_y)) >= 2:
            _fit(sub, known_X, known_y)
            res.curve.append((res.queries, agreement(sub, test_labels, X_test)))

    if attack == "random":
        size = 10
        while res.queries < budget and not res.stopped:
            n = min(size, budget) - res.queries
            ask(rng.uniform(LOW, HIGH, size=(n, Xp.shape[1])))
            checkpoint()
            size *= 2
    else:
        seeds = np.stack([Xp[np.flatnonzero(yp == c)[rng.integers(0, (yp == c).sum())]] for c in np.unique(yp)])
        ask(seeds)
        checkpoint()
        rnd = 0
        while res.queries < budget and not res.stopped and len(set(known_y)) >= 2:
            Xk = np.asarray(known_X)
            step = STEP * (1 if rnd % 2 == 0 else -1) if attack == "jbda" else STEP  # Papernot's periodic step
            if attack == "jbda":
                direction = np.sign(_input_gradient(sub, Xk, known_y))
            else:
                direction = rng.choice([-1.0, 1.0], size=Xk.shape)
            ask(Xk + step * direction)
            checkpoint()
            rnd += 1
    res.final_agreement = res.curve[-1][1] if res.curve else 0.0
    return res


def honest_replay(oracle: Any, X_test: Any, seed: int = 0) -> list[int]:
    """An honest client: the test set once, in random order (answers in the test set's order)."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(X_test))
    labels = oracle.query(np.asarray(X_test)[order])
    out = [0] * len(order)
    for i, lab in zip(order, labels):
        out[int(i)] = lab
    return out


# -- a target model server -------------------------------------------------------------------------------------

def save_target(model_dir: str, seed: int = 0) -> Any:
    os.makedirs(model_dir, exist_ok=True)
    m = target_model(seed)
    with open(os.path.join(model_dir, MODEL_FILE), "wb") as f:
        pickle.dump(m.model, f)
    with open(os.path.join(model_dir, "README.txt"), "w") as f:
        f.write(f"digits MLP (64 hidden), inputs are pixels / 16, split seed {seed}\n")
    return m


def serve(model_dir: str, port: int = 0) -> None:  # pragma: no cover - run in a subprocess by tests and bench
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import numpy as np

    with open(os.path.join(model_dir, MODEL_FILE), "rb") as f:
        model = _Scaled(pickle.load(f))  # the model this harness saved itself

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *a: Any) -> None:
            pass

        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            try:
                X = np.asarray(json.loads(self.rfile.read(n))["features"], dtype=np.float64)
                body = json.dumps({"labels": [int(v) for v in model.predict(X)],
                                   "probabilities": [[round(float(p), 6) for p in row]
                                                     for row in model.predict_proba(X)]}).encode()
                status = 200 if self.path == "/predict" else 404
            except (ValueError, KeyError, TypeError):
                body, status = b'{"error": "bad features"}', 400
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", port), H)
    srv.daemon_threads = True
    print(f"PORT {srv.server_address[1]}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        if not os.path.exists(os.path.join(sys.argv[2], MODEL_FILE)):
            save_target(sys.argv[2])
        serve(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    else:
        print("usage: python -m ailedger.inference.extraction_attack serve MODEL_DIR [PORT]", file=sys.stderr)
        sys.exit(2)
