"""What the agent.* admission judge costs per append: `agent.action` entries appended through `Ledger.append_record`
(the judge replays the agent's logged actions: the rule is a fold) at growing history sizes, against plain
`record` entries appended in the same run (the reference: the same write path, no judge).

    python bench/defi_admission_bench.py [--history 0,250,1000] [--n 40]

Prints one line per history size, then one JSON object: per-append milliseconds and the ratio to a record
append."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from ailedger.defi.actions import ACTION, commit_inputs, intent_id, validate_intent
from ailedger.tlog.ledger import Ledger

AGENT, GUARD, TOKEN, SINK = ("0x" + h * 20 for h in ("a1", "9a", "70", "22"))


def body(n: int, reg: int) -> dict:
    it = validate_intent({"kind": "transfer", "target": TOKEN, "to": SINK, "amount": str(10**18 + n)})
    return {"agent": AGENT, "chain_id": 31337, "guard": GUARD, "nonce": n, "model": "trader", "model_entry": reg,
            "inputs": {"alg": "sha256-salted-jcs", "commitment": commit_inputs({"n": n}, b"s" * 32)[0]},
            "intent": it, "intent_id": intent_id(31337, AGENT, n, it), "tx": "0x" + f"{n + 1:064x}"}


def timed(fn, n: int) -> float:
    ts = []
    for k in range(n):
        t0 = time.perf_counter()
        fn(k)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--history", default="0,250,1000")
    ap.add_argument("--n", type=int, default=40)
    a = ap.parse_args()
    sizes = [int(x) for x in a.history.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        lg = Ledger.init(Path(d) / "l", origin="bench.example/defi-admission")
        alice = lg.identities.create("alice")
        reg = lg.append_record("model.register", {"name": "trader", "manifest": {"root": "ab" * 32}}, alice).index
        nonce = 0
        for h in sizes:
            while nonce < h:  # grow the history (through the same path)
                lg.append_record(ACTION, body(nonce, reg), alice)
                nonce += 1
            base = nonce
            act_ms = timed(lambda k, b=base: lg.append_record(ACTION, body(b + k, reg), alice), a.n)
            nonce += a.n
            rec_ms = timed(lambda k, h=h: lg.append_record("record", {"bench": h, "k": k}, alice), a.n)
            rows.append({"history": base, "action_ms": round(act_ms, 3), "record_ms": round(rec_ms, 3),
                         "ratio": round(act_ms / rec_ms, 2)})
            print(f"history {base:>6} actions: agent.action append {act_ms:7.2f} ms, record append {rec_ms:6.2f} ms "
                  f"(x{act_ms / rec_ms:.1f})")
        lg.close()
    print(json.dumps({"bench": "defi_admission", "n": a.n, "rows": rows}))


if __name__ == "__main__":
    main()
