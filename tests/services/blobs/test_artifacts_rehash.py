"""`model push` stores only what was registered: it re-reads the local copy instead of trusting
the hash cache (issue 17: a byte flipped in place with its mtime put back passed the check)."""

import os
import shutil
import subprocess
import time

import pytest

from ailedger.core.errors import VerificationError
from ailedger.services.artifacts import register_model
from ailedger.services.blobs.artifacts import push_model


def test_push_refuses_a_copy_changed_in_place_with_its_mtime_put_back(ledger, people, make_nodes, tmp_path):
    nodes = [n.url for n in make_nodes(3)]
    m = tmp_path / "m"
    m.mkdir()
    (m / "config.json").write_text('{"layers": 2}')
    (m / "weights.bin").write_bytes(os.urandom(300_000))
    time.sleep(0.1)  # past the "racy" window: registering fills the hash cache
    register_model(ledger, m, "tiny", people["alice"])
    w = m / "weights.bin"
    shutil.copy2(w, tmp_path / "ref")
    with open(w, "r+b") as f:
        f.seek(1234)
        b = f.read(1)
        f.seek(1234)
        f.write(bytes([b[0] ^ 0xFF]))
    subprocess.run(["touch", "-r", str(tmp_path / "ref"), str(w)], check=True)
    n0 = ledger.size
    with pytest.raises(VerificationError, match="is not model tiny"):
        push_model(ledger, "tiny", str(m), nodes, people["alice"], k=2, n=3)
    assert ledger.size == n0  # no blob.put, no blob.attach
