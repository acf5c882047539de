from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def make_ledger_with_model(root: Path, name: str = "iris"):
    """A ledger with a publisher identity and a scikit-learn model (trained now) registered as ``name``."""
    sys.path.insert(0, str(HERE))
    from model_server import train

    from ailedger.services.artifacts.models import register_model
    from ailedger.services.ledger import Ledger

    led = Ledger.init(root / "ledger", origin="test.example/inference")
    pub, _ = led.new_identity("publisher")
    train(str(root / "model"))
    register_model(led, root / "model", name, pub)
    return led


@pytest.fixture
def ledger(tmp_path):
    led = make_ledger_with_model(tmp_path)
    yield led
    led.close()


@pytest.fixture
def model_server(tmp_path):
    """The iris classifier served over HTTP on 127.0.0.1 by a real subprocess."""
    p = subprocess.Popen([sys.executable, str(HERE / "model_server.py"), str(tmp_path / "model")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if not line.startswith("PORT "):
        p.kill()
        raise RuntimeError(f"model server did not start: {line!r} {p.stderr.read()}")
    yield f"http://127.0.0.1:{int(line.split()[1])}"
    p.terminate()
    p.wait(10)


def grep_tree(root: Path, needle: bytes) -> list[str]:
    hits = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            if needle in p.read_bytes():
                hits.append(str(p))
    return hits
