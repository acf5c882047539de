"""Big files are hashed from one shared mapping under a kernel read lease: same digests as the
pread path, and a writer or a truncation during hashing is a clear error, never a SIGBUS crash."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from ailedger.errors import BadInputError
from ailedger.provenance import hashing as H

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="read leases are Linux's")

CHUNK = 1 << 20


@pytest.fixture()
def big_model(tmp_path, monkeypatch):
    monkeypatch.setattr(H, "MAP_MIN", 4 << 20)  # map files from 4 MiB up, to keep the test small
    d = tmp_path / "m"
    d.mkdir()
    rnd = os.urandom(1 << 16)
    (d / "weights.bin").write_bytes(rnd * 160)  # 10 MiB: mapped
    (d / "small.txt").write_bytes(b"x" * 1000)  # pread
    return d


def test_lease_path_gives_the_pread_digests(big_model, monkeypatch):
    used = []
    orig = H._LeasedMap.__init__

    def spy(self, *a, **k):
        used.append(a[1])
        orig(self, *a, **k)

    monkeypatch.setattr(H._LeasedMap, "__init__", spy)
    leased = H.hash_model_dir(big_model, chunk_size=CHUNK)
    assert used == ["weights.bin"]
    monkeypatch.setattr(H, "READ_MODE", "pread")
    plain = H.hash_model_dir(big_model, chunk_size=CHUNK)
    assert leased.root == plain.root
    assert leased.to_dict() == plain.to_dict()
    # one byte changed: a different root, and the changed chunk is the only differing one
    p = big_model / "weights.bin"
    data = bytearray(p.read_bytes())
    data[5 * CHUNK + 7] ^= 1
    p.write_bytes(bytes(data))
    monkeypatch.setattr(H, "READ_MODE", "auto")
    after = H.hash_model_dir(big_model, chunk_size=CHUNK)
    assert after.root != leased.root
    fa = {f.path: f for f in after.files}["weights.bin"]
    fb = {f.path: f for f in leased.files}["weights.bin"]
    assert [i for i, (a, b) in enumerate(zip(fa.chunks, fb.chunks)) if a.digest != b.digest] == [5]


def test_open_for_writing_during_hashing_is_a_clear_error(big_model):
    target = big_model / "weights.bin"
    fds = []

    def writer(rel, i, n):
        if rel == "weights.bin" and i == 0 and not fds:
            try:  # non-blocking open for writing: starts breaking our lease and returns at once
                fds.append(os.open(target, os.O_WRONLY | os.O_NONBLOCK))
            except BlockingIOError:
                fds.append(None)

    with pytest.raises(BadInputError, match="weights.bin was opened for writing while it was being hashed"):
        H.hash_model_dir(big_model, chunk_size=CHUNK, workers=1, on_chunk=writer)
    assert fds == [None]  # the open was held back by the lease
    fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK)  # lease released: writers proceed
    os.close(fd)


def test_truncation_during_hashing_cannot_crash(big_model, tmp_path):
    """Another process truncates the file mid-hash: it waits for our lease, we stop with a clear
    error, then the truncation goes through.  (Without the lease this is a SIGBUS.)"""
    target = big_model / "weights.bin"
    started = threading.Event()
    procs = []

    def truncate(rel, i, n):
        if rel == "weights.bin" and not started.is_set():
            started.set()
            procs.append(subprocess.Popen([sys.executable, "-c",
                                           f"import os; os.truncate({str(target)!r}, 4096)"]))
            time.sleep(0.3)  # the truncate is now blocked on our lease

    with pytest.raises(BadInputError, match="weights.bin was opened for writing|weights.bin changed while"):
        H.hash_model_dir(big_model, chunk_size=CHUNK, workers=1, on_chunk=truncate)
    assert procs[0].wait(30) == 0
    assert target.stat().st_size == 4096


def test_file_open_for_writing_elsewhere_falls_back_to_pread(big_model, monkeypatch):
    used = []
    orig = H._read_range

    def spy(path, rel, *a, **k):
        used.append(rel)
        return orig(path, rel, *a, **k)

    monkeypatch.setattr(H, "_read_range", spy)
    with open(big_model / "weights.bin", "r+b"):  # someone holds it open for writing: no lease
        m = H.hash_model_dir(big_model, chunk_size=CHUNK)
    assert used.count("weights.bin") == 10
    monkeypatch.setattr(H, "READ_MODE", "pread")
    assert H.hash_model_dir(big_model, chunk_size=CHUNK).root == m.root
