from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


from tests.inference.model_server import make_ledger_with_model


@pytest.fixture(scope="session")
def ledger_template(tmp_path_factory):
    """One ledger with the model registered, built once; tests get copies (same keys, fresh state)."""
    root = tmp_path_factory.mktemp("inference-template")
    make_ledger_with_model(root).close()
    return root


@pytest.fixture
def ledger_dir(ledger_template, tmp_path):
    import shutil

    shutil.copytree(ledger_template / "ledger", tmp_path / "ledger")
    shutil.copytree(ledger_template / "model", tmp_path / "model")
    return tmp_path / "ledger"


@pytest.fixture
def ledger(ledger_dir):
    from ailedger.tlog.ledger import Ledger

    led = Ledger.open(ledger_dir)
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
