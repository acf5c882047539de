"""A real small model behind HTTP for the gateway tests: logistic regression on iris.

Run: ``python model_server.py`` -> prints ``PORT <n>`` once listening on 127.0.0.1 (port 0 = any).
Endpoints (POST, JSON):
  /predict                 {"features": [[4 floats], ...]} -> {"labels": [...], "probabilities": [[...]]}
  /v1/chat/completions     OpenAI shape; the last user message holds 4 comma-separated numbers
  /broken/predict          answers 200 with a body that is not JSON
  /broken/v1/chat/completions  answers 200 JSON without "choices"
  /fail/predict            answers 500
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


def train(path: str | None = None) -> LogisticRegression:
    X, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500).fit(X, y)
    if path:
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "model.pkl"), "wb") as f:
            pickle.dump(clf, f)
    return clf


NAMES = load_iris().target_names.tolist()


def make_ledger_with_model(root, name: str = "iris"):
    """A ledger with a publisher identity and this classifier (trained now) registered as ``name``."""
    from pathlib import Path

    from ailedger.provenance.models import register_model
    from ailedger.tlog.ledger import Ledger

    root = Path(root)
    led = Ledger.init(root / "ledger", origin="test.example/inference")
    pub, _ = led.new_identity("publisher")
    train(str(root / "model"))
    register_model(led, root / "model", name, pub)
    return led


def main() -> None:
    model_dir = sys.argv[1] if len(sys.argv) > 1 else None
    if model_dir and os.path.exists(os.path.join(model_dir, "model.pkl")):
        with open(os.path.join(model_dir, "model.pkl"), "rb") as f:
            clf = pickle.load(f)
    else:
        clf = train(model_dir)

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # as production servers do (TCP_NODELAY)

        def log_message(self, *a):  # quiet
            pass

        def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            req = json.loads(self.rfile.read(n) or b"null")
            p = self.path
            if p == "/broken/predict":
                return self._send(200, b"<html>oops</html>", "text/html")
            if p == "/broken/v1/chat/completions":
                return self._send(200, b'{"result": "no choices here"}')
            if p.startswith("/fail/"):
                return self._send(500, b'{"error": "boom"}')
            if p == "/predict":
                X = req["features"]
                labels = [NAMES[i] for i in clf.predict(X)]
                probs = [[round(float(v), 6) for v in row] for row in clf.predict_proba(X)]
                return self._send(200, json.dumps({"labels": labels, "probabilities": probs}).encode())
            if p == "/v1/chat/completions":
                text = req["messages"][-1]["content"]
                x = [float(v) for v in text.split(",")]
                label = NAMES[int(clf.predict([x])[0])]
                out = {"id": "chatcmpl-local", "object": "chat.completion", "created": int(time.time()),
                       "model": req.get("model", "iris"),
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": label},
                                    "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5}}
                return self._send(200, json.dumps(out).encode())
            return self._send(404, b'{"error": "no such endpoint"}')

    srv = ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("MODEL_PORT", "0"))), H)
    srv.daemon_threads = True
    print(f"PORT {srv.server_address[1]}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
