"""bench/limits.py's all-cores libsodium reference: a rate and the CPU of one verification from the same run."""

import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ailedger.encoding.identity import did_from_public_key
from ailedger.encoding.records import build_entry

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
limits = pytest.importorskip("limits")


def _entries(n: int) -> list[bytes]:
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    did = did_from_public_key(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    return [build_entry("bench.event", {"i": i}, did, "2026-12-07T00:00:00Z", key.sign).leaf_bytes for i in range(n)]


def test_sodium_all_cores_gives_a_rate_and_the_cpu_of_one_verify():
    rate, cpu_us = limits.sodium_all_cores(_entries(300), 2)
    assert rate > 100  # verifications per second on two workers
    # the CPU of one verification while the workers verify: tens of microseconds on any machine this runs on
    assert 5 < cpu_us < 5000
    # the quiet one-core figure measures the same operation
    one = limits.sodium_cpu_us_per_verify(_entries(300), 300)
    assert cpu_us / 20 < one < cpu_us * 20


def test_a_bad_signature_fails_the_reference():
    bad = _entries(10)
    bad[3] = bad[3].replace(b'"i":3', b'"i":4')
    with pytest.raises(Exception, match="(?i)signature|forged|fail"):
        limits.sodium_all_cores(bad, 2)


def test_the_pool_ends_when_this_process_has_its_own_sigterm_handler():
    # A CLI command run in process (monitor, storage node) leaves a Python SIGTERM handler behind, which forked
    # workers inherit; the pool's workers start from the default handlers and the pool ends by close() and
    # join(), not terminate() (whose race with the pool's worker replacement hung a pytest-xdist worker once).
    import signal
    import threading

    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        done: list[tuple[float, float]] = []
        t = threading.Thread(target=lambda: done.append(limits.sodium_all_cores(_entries(50), 2)), daemon=True)
        t.start()
        t.join(120)
        assert not t.is_alive(), "the pool did not end: a worker kept this process's SIGTERM handler"
        assert done and done[0][0] > 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_failing_reference_ends_its_pool_when_a_worker_starts_late(tmp_path, monkeypatch):
    # The failing reference can end before a slow worker has run its initializer (the other worker took every
    # task): a terminate() then hit that worker while it still held this process's Python SIGTERM handler; it
    # survived and the pool's exit waited for it forever (seen in a fresh-clone run). The first worker to start
    # here is held back for a second, the other fails the reference alone; the pool must end all the same.
    import os
    import signal
    import threading
    import time

    original = limits._default_signals
    flag = str(tmp_path / "first")

    def late_first() -> None:
        try:
            os.close(os.open(flag, os.O_CREAT | os.O_EXCL))
            time.sleep(1.0)
        except FileExistsError:
            pass
        original()

    monkeypatch.setattr(limits, "_default_signals", late_first)
    bad = _entries(10)
    bad[3] = bad[3].replace(b'"i":3', b'"i":4')
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        errors: list[BaseException] = []

        def run() -> None:
            try:
                limits.sodium_all_cores(bad, 2)
            except Exception as e:  # noqa: BLE001 - checked below
                errors.append(e)

        t = threading.Thread(target=run, daemon=True)
        t.start()
        t.join(60)
        assert not t.is_alive(), "a pool whose reference failed did not end"
        assert len(errors) == 1
        assert any(word in str(errors[0]).lower() for word in ("signature", "forged", "fail")), errors[0]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_forkserver_pool_works_and_ends_by_close_and_join():
    # gov_bench's pools start their workers from a fork server (no state of this process inherited)
    with limits.fork_pool(2, "forkserver") as pool:
        assert pool.map(abs, [-1, -2, 3]) == [1, 2, 3]
    # an unknown start method is refused before any worker starts
    with pytest.raises(ValueError), limits.fork_pool(2, "teleport"):
        pass
