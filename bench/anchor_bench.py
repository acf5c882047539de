"""Gas and latency of anchoring checkpoints on Ethereum, measured on a local anvil node.

Prints human lines, then one JSON object as the last line.

* gas of the first anchor and of later anchors (the same whatever the number of records covered);
* gas per record when one anchor covers 10^2, 10^4, 10^6 records (real roots of that many leaves);
* the reference, measured in the same run: registering records on chain one by one
  (RecordRegistry.register: one transaction and one storage slot per record; and emitOnly: an
  event only, the cheapest possible). The per-record gas is measured for a few records and
  multiplied out for 10^4 and 10^6 records (extrapolated, not sent);
* time from append to anchored checkpoint: one-shot `anchor_now`, and the service (`--entries 1`,
  default poll 1 s, 1 confirmation) on an anvil mining on demand and one mining every 2 s.

Usage: .venv/bin/python bench/anchor_bench.py [--samples 20]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from eth_account import Account

from ailedger.anchoring.service import AnchorService, connect, log_id
from ailedger.tlog.merkle import CompactRange, leaf_hash

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: the test helpers (anvil)
from tests.devchain import ANVIL_KEYS, AnvilNode

from ailedger.tlog.ledger import Ledger

ROOT = Path(__file__).resolve().parents[1]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, round(p / 100 * (len(xs) - 1))))
    return xs[k]


def root_of(n: int) -> bytes:
    cr = CompactRange()
    for i in range(n):
        cr.append(leaf_hash(b"record-%d" % i))
    return cr.root()


def send(w3, acct, fn, gas: int = 300_000) -> dict:
    tx = fn.build_transaction({"from": acct.address, "nonce": w3.eth.get_transaction_count(acct.address, "pending"),
                               "chainId": w3.eth.chain_id, "gas": gas})
    h = w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction)
    r = w3.eth.wait_for_transaction_receipt(h, timeout=60)
    assert r["status"] == 1, r
    return r


def gas_figures(url: str, tmp: Path) -> dict:
    w3 = connect(url)
    acct = Account.from_key(ANVIL_KEYS[0])
    lg = Ledger.init(tmp / "gas-ledger", origin="bench.example/gas")
    svc = AnchorService(lg, w3, acct)
    svc.deploy()
    c = svc.chain
    lid = log_id(lg.origin)
    out: dict = {"anchor": {}}
    sizes = {"1e2": 100, "1e4": 10_000, "1e6": 1_000_000}
    # anchors of real roots; the first anchor of a log pays for two fresh storage slots
    t0 = time.perf_counter()
    roots = {k: root_of(n) for k, n in sizes.items()}
    out["root_compute_s"] = round(time.perf_counter() - t0, 2)
    first = send(w3, acct, c.contract.functions.anchor(lid, 10, root_of(10)))
    out["anchor"]["first_gas"] = int(first["gasUsed"])
    for k, n in sizes.items():
        r = send(w3, acct, c.contract.functions.anchor(lid, n, roots[k]))
        out["anchor"][f"gas_{k}"] = int(r["gasUsed"])
    # the same through the service on a real ledger of 10^2 then 10^4 records
    lg.log.append_data([b"rec-%d" % i for i in range(100)])
    svc2_ledger = Ledger.init(tmp / "gas-ledger2", origin="bench.example/gas2")
    svc2 = AnchorService(svc2_ledger, w3, acct, c.address)
    svc2_ledger.log.append_data([b"rec-%d" % i for i in range(100)])
    g_first = svc2.anchor_now(timeout=60, poll=0.05).gas_used
    svc2_ledger.log.append_data([b"rec-%d" % i for i in range(100, 10_100)])
    g_next = svc2.anchor_now(timeout=60, poll=0.05).gas_used
    out["anchor"]["service_first_gas_100_records"] = g_first
    out["anchor"]["service_next_gas_10100_records"] = g_next
    # the reference: one transaction per record
    art = json.loads((ROOT / "contracts" / "build" / "RecordRegistry.json").read_text())
    reg_c = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    dep = send(w3, acct, reg_c.constructor(), gas=1_000_000)
    reg = w3.eth.contract(address=dep["contractAddress"], abi=art["abi"])
    store, emit = [], []
    for i in range(5):
        h = hashlib.sha256(b"rec-%d" % i).digest()
        store.append(int(send(w3, acct, reg.functions.register(h))["gasUsed"]))
        emit.append(int(send(w3, acct, reg.functions.emitOnly(h))["gasUsed"]))
    out["per_record_register_gas_measured"] = store
    out["per_record_emit_only_gas_measured"] = emit
    svc.close()
    svc2.close()
    lg.close()
    svc2_ledger.close()
    return out


def latency(url: str, tmp: Path, samples: int, name: str) -> dict:
    w3 = connect(url)
    acct = Account.from_key(ANVIL_KEYS[1])
    lg = Ledger.init(tmp / f"lat-{name}", origin=f"bench.example/lat-{name}")
    lg.log.append_data([b"seed"])
    svc = AnchorService(lg, w3, acct)
    svc.deploy()
    one_shot = []
    for i in range(samples):
        t = time.perf_counter()
        lg.log.append_data([b"one-%d" % i])
        svc.anchor_now(timeout=60, poll=0.05)
        one_shot.append(time.perf_counter() - t)
    # the service with its defaults (poll 1 s, 1 confirmation), anchoring on every new entry
    stop = threading.Event()
    th = threading.Thread(target=svc.serve, kwargs={"entries": 1, "stop": stop}, daemon=True)
    th.start()
    service = []
    for i in range(samples):
        lg.log.append_data([b"svc-%d" % i])
        target = lg.size
        t = time.perf_counter()
        while True:
            rs = svc.queue.rows("status = 'confirmed' AND tree_size >= ?", (target,))
            if rs:
                break
            time.sleep(0.01)
        service.append(time.perf_counter() - t)
    stop.set()
    th.join(10)
    svc.close()
    lg.close()
    f = lambda xs: {"p50_s": round(pct(xs, 50), 3), "p99_s": round(pct(xs, 99), 3),
                    "mean_s": round(statistics.mean(xs), 3), "n": len(xs)}
    return {"one_shot": f(one_shot), "service_entries_1_poll_1s": f(service)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        with AnvilNode() as node:
            version = node.rpc("web3_clientVersion")
            gas = gas_figures(node.url, tmp)
            lat_auto = latency(node.url, tmp, args.samples, "automine")
        with AnvilNode(block_time=2) as node:
            lat_2s = latency(node.url, tmp, max(5, args.samples // 4), "block2s")
    a = gas["anchor"]
    later = [a["gas_1e2"], a["gas_1e4"], a["gas_1e6"]]
    reg = statistics.mean(gas["per_record_register_gas_measured"])
    emit = statistics.mean(gas["per_record_emit_only_gas_measured"])
    print(f"anvil: {version}")
    print(f"gas, first anchor of a log: {a['first_gas']}")
    print(f"gas per later anchor: {later} (10^2, 10^4, 10^6 records covered)")
    per_rec = {}
    for k, n in (("1e2", 100), ("1e4", 10_000), ("1e6", 1_000_000)):
        per_rec[k] = {
            "records": n,
            "anchor_gas_per_record": a[f"gas_{k}"] / n,
            "one_by_one_register_gas_per_record": reg,
            "one_by_one_register_total_gas": int(reg * n),
            "one_by_one_emit_only_total_gas": int(emit * n),
            "ratio_register_vs_anchor": round(reg * n / a[f"gas_{k}"], 1),
        }
        print(f"  {n:>9,} records: anchoring {a[f'gas_{k}'] / n:10.4f} gas/record  vs one by one "
              f"{reg:,.0f} gas/record (storage) / {emit:,.0f} (event only): "
              f"{reg * n / a[f'gas_{k}']:,.0f}x cheaper")
    print(f"one-by-one per-record gas measured on {len(gas['per_record_register_gas_measured'])} records "
          f"(register: {gas['per_record_register_gas_measured']}, emit-only: "
          f"{gas['per_record_emit_only_gas_measured']}) and multiplied out for 10^4 and 10^6 (not sent)")
    print(f"service on a real ledger: first anchor {a['service_first_gas_100_records']} gas (100 records), "
          f"next {a['service_next_gas_10100_records']} gas (10,100 records)")
    for name, lat in (("anvil automine", lat_auto), ("anvil block every 2 s", lat_2s)):
        print(f"append -> anchored ({name}): one-shot p50 {lat['one_shot']['p50_s']} s p99 "
              f"{lat['one_shot']['p99_s']} s; service (--entries 1, poll 1 s, 1 confirmation) p50 "
              f"{lat['service_entries_1_poll_1s']['p50_s']} s p99 {lat['service_entries_1_poll_1s']['p99_s']} s")
    print(json.dumps({
        "bench": "anchor", "anvil": version, "evm_version": "cancun",
        "anchor_gas_first": a["first_gas"], "anchor_gas_later": later,
        "anchor_gas_service": [a["service_first_gas_100_records"], a["service_next_gas_10100_records"]],
        "per_record": per_rec,
        "reference_register_gas_per_record_measured": gas["per_record_register_gas_measured"],
        "reference_emit_only_gas_per_record_measured": gas["per_record_emit_only_gas_measured"],
        "reference_note": "one-by-one totals for 10^4 and 10^6 are measured per-record gas x N (extrapolated)",
        "latency_automine": lat_auto, "latency_block_time_2s": lat_2s,
        "root_compute_s_for_1e6": gas["root_compute_s"],
    }))


if __name__ == "__main__":
    main()
