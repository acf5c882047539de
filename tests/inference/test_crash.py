"""SIGKILL a real process that is logging inferences; check what each mode promised."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from ailedger.inference import InferenceTrail, verify_receipt_proof
from ailedger.inference.payloads import inference_dir
from ailedger.inference.receipts import receipt_proof
from ailedger.inference.sdk import recover_pending
from ailedger.inference.store import RecordStore
from ailedger.tlog.ledger import Ledger

CHILD = r"""
import os, sys, threading, time
from ailedger.tlog.ledger import Ledger
from ailedger.inference import InferenceTrail
import ailedger.inference.journal as journal
journal.SEGMENT_BYTES = int(os.environ.get("SEGMENT_BYTES", journal.SEGMENT_BYTES))  # small: many segments
journal.DEFAULT_WINDOW = int(os.environ.get("JOURNAL_INFLIGHT", journal.DEFAULT_WINDOW))  # frames in flight
led = Ledger.open(sys.argv[1])
trail = InferenceTrail(led, "iris", mode=sys.argv[2], flush_interval=float(sys.argv[3]))
out = threading.Lock()
print("READY", flush=True)

def caller(k):
    i = 0
    while True:
        r = trail.record({"i": i, "k": k}, {"o": i}, subject="s%d" % (i % 3))
        line = "%s %r\n" % (r.id, time.monotonic())  # written only once the call returned
        with out:
            sys.stdout.write(line)
            sys.stdout.flush()
        i += 1
        if sys.argv[2] == "fast":
            time.sleep(0.0005)

ts = [threading.Thread(target=caller, args=(k,)) for k in range(int(sys.argv[4]))]
for t in ts:
    t.start()
for t in ts:
    t.join()
"""


def _run_and_kill(led_dir, mode, min_calls, flush_interval=0.05, threads=1, segment_bytes=None, inflight=None):
    env = dict(os.environ, **({"SEGMENT_BYTES": str(segment_bytes)} if segment_bytes else {}),
               **({"JOURNAL_INFLIGHT": str(inflight)} if inflight else {}))
    p = subprocess.Popen([sys.executable, "-c", CHILD, str(led_dir), mode, str(flush_interval), str(threads)],
                         env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "READY", p.stderr.read()
    lines = []
    deadline = time.monotonic() + 60
    while len(lines) < min_calls and time.monotonic() < deadline:
        lines.append(p.stdout.readline())
    kill_time = time.monotonic()
    os.kill(p.pid, signal.SIGKILL)
    rest = p.stdout.read()
    p.wait(10)
    assert p.returncode == -signal.SIGKILL
    lines += rest.splitlines()
    calls = [(ln.split()[0], float(ln.split()[1])) for ln in lines if ln.strip() and len(ln.split()) == 2]
    return calls, kill_time


@pytest.mark.parametrize(("mode", "inflight"), [("durable", None), ("durable", 2), ("durable", 6), ("fast", None)])
def test_sigkill(tmp_path, ledger_dir, mode, inflight):
    calls, kill_time = _run_and_kill(tmp_path / "ledger", mode, 300 if mode == "durable" else 1500,
                                     threads=(8 if inflight else 4) if mode == "durable" else 1, inflight=inflight)
    assert len(calls) >= (300 if mode == "durable" else 1500)
    led = Ledger.open(tmp_path / "ledger")
    if mode == "durable":
        # the next trail to open logs what the dead one had journalled but not logged yet
        InferenceTrail(led, "iris").close()
        assert not any((inference_dir(led.path) / "journal").iterdir())
    rs = RecordStore(inference_dir(led.path))
    recover_pending(led, rs)  # a batch stored but not yet logged when the process died
    committed = [rid for rid, _ in calls if rs.record(rid) is not None]
    if mode == "durable":
        # every call that returned has its record logged, once
        assert committed == [rid for rid, _ in calls]
        stored = [r for (rids,) in rs.con.execute("SELECT rids FROM batches") for r in rids.split("\n")]
        assert len(stored) == len(set(stored))
    else:
        # what survives is a prefix of the calls; every call older than the loss window survives
        assert committed == [rid for rid, _ in calls[: len(committed)]]
        window = 2.0  # flush_interval (0.05 s) + one batch write, with a wide margin for a loaded machine
        old = [rid for rid, t in calls if t < kill_time - window]
        assert set(old) <= set(committed)
        lost = len(calls) - len(committed)
        print(f"fast mode: {len(calls)} calls returned, {lost} records lost at SIGKILL")
    for rid in committed[-3:] + committed[:2]:
        assert verify_receipt_proof(receipt_proof(led, rid, records=rs), led.verifier)["ok"]
    rs.close()
    rep = led.audit(signatures=True)
    assert rep.ok, rep.problems
    led.close()


def test_normal_exit_without_close_writes_the_queue(tmp_path, ledger_dir):
    code = ("import sys; from ailedger.tlog.ledger import Ledger; from ailedger.inference import"
            " InferenceTrail; t = InferenceTrail(Ledger.open(sys.argv[1]), 'iris', flush_interval=30);"
            " [print(t.record(i, i).id) for i in range(500)]")
    p = subprocess.run([sys.executable, "-c", code, str(ledger_dir)], capture_output=True, text=True, timeout=120,
                       check=False)
    assert p.returncode == 0, p.stderr
    rids = p.stdout.split()
    assert len(rids) == 500
    rs = RecordStore(inference_dir(ledger_dir))
    assert all(rs.record(r) is not None for r in rids)
    rs.close()
