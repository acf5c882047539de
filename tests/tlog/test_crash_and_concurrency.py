"""Real subprocesses: SIGKILL mid-append loses nothing acknowledged; concurrent writers leave no gap."""

import random
import signal
import subprocess
import sys
import textwrap
import time

from ailedger.tlog.ledger import Ledger

WRITER = textwrap.dedent("""
    import sys
    from ailedger.tlog.ledger import Ledger
    led = Ledger.open(sys.argv[1])
    who = sys.argv[2]
    n = int(sys.argv[3])
    batch = int(sys.argv[4])
    a = led.identities.load("w")
    for start in range(0, n, batch):
        datas = [led.make_entry("note", {"w": who, "i": i}, a).leaf_bytes for i in range(start, start + batch)]
        res = led.append_entries(datas, parallel=False)
        for i, r in zip(range(start, start + batch), res):
            print(f"ack {who} {i} {r.index}", flush=True)
""")


def _ledger(tmp_path):
    led = Ledger.init(tmp_path / "ledger", "example.org/crash")
    led.new_identity("w")
    led.close()
    return tmp_path / "ledger"


def _present(path):
    led = Ledger.open(path)
    try:
        seen = {}
        for idx, e in led.find(type="note"):
            key = (e.body["w"], e.body["i"])
            assert key not in seen, f"duplicate entry {key}"
            seen[key] = idx
        rep = led.audit(signatures=True)
        return seen, rep, led.size
    finally:
        led.close()


def test_sigkill_loses_no_acknowledged_entry(tmp_path):
    path = _ledger(tmp_path)
    rng = random.Random(7)
    acked = set()
    for round_ in range(12):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"r{round_}", "100000", "50"],
                             stdout=subprocess.PIPE, text=True)
        first = p.stdout.readline()  # wait until it is really appending (start-up is slow on a busy machine)
        assert first.startswith("ack"), first
        time.sleep(rng.uniform(0.0, 0.8))
        p.send_signal(signal.SIGKILL)
        out, _ = p.communicate()
        for line in [first] + out.splitlines():
            _, who, i, _idx = line.split()
            acked.add((who, int(i)))
    seen, rep, size = _present(path)
    assert acked, "the writer never acknowledged anything"
    missing = acked - set(seen)
    assert not missing, f"acknowledged entries lost: {sorted(missing)[:5]}"
    assert rep.ok, rep.problems[:3]
    assert sorted(seen.values()) == list(range(1, size))  # no gap after the identity entry


def test_concurrent_writers_no_gap_no_duplicate(tmp_path):
    path = _ledger(tmp_path)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"p{k}", "300", "20"],
                              stdout=subprocess.PIPE, text=True) for k in range(4)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    seen, rep, size = _present(path)
    assert len(seen) == 1200 and size == 1201
    assert sorted(seen.values()) == list(range(1, 1201))
    acks = {tuple(line.split()[1:3]) for o in outs for line in o.splitlines()}
    assert len(acks) == 1200
    assert rep.ok
