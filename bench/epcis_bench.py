"""EPCIS capture throughput and trace latency (issue 29 figures).

1. Events captured per second with schema validation and hashing (``capture``: GS1 JSON schema, CBV
   vocabulary, event hash, duplicate lookup, signing, durable append), against validation + hashing without
   the log, and against hashing alone (the reference); the schema check alone, compiled (fastjsonschema)
   against jsonschema's validator on the same events.
2. Trace latency for an item ``--hops`` deep (a chain of TransformationEvents, lot 0 -> lot 1 -> ... ) in a
   log of ``--log-size`` events (the chain's events spread through unrelated ObjectEvents, written in bulk
   with ``Ledger.append_entries``), backward from the last lot, with and without inclusion proofs.

Usage: python bench/epcis_bench.py [--events 2000] [--log-size 1000000] [--hops 10]
The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ailedger.supplychain.eventhash import event_hash
from ailedger.supplychain.events import Event, _compiled, _validator, validate_document
from ailedger.supplychain.service import EVENT_RECORD, capture, event_body, trace
from ailedger.tlog.ledger import Ledger

CTX = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]
SITE = "urn:epc:id:sgln:4012345.00001.0"


def observe(i: int) -> dict:
    return {"type": "ObjectEvent", "eventTime": f"2026-01-01T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:"
            f"{i % 60:02d}.{i % 1000:03d}Z", "eventTimeZoneOffset": "+00:00", "action": "OBSERVE",
            "epcList": [f"urn:epc:id:sgtin:4012345.077889.{i}"], "bizStep": "shipping", "disposition": "in_transit",
            "readPoint": {"id": SITE}}


def lot(h: int) -> str:
    return f"urn:epc:class:lgtin:4012345.011111.L{h}"


def chain_events(hops: int) -> list[dict]:
    out = [{"type": "ObjectEvent", "eventTime": "2026-01-01T00:00:00.000Z", "eventTimeZoneOffset": "+00:00",
            "action": "ADD", "epcList": [], "quantityList": [{"epcClass": lot(0), "quantity": 1000}],
            "bizStep": "commissioning", "readPoint": {"id": SITE}}]
    for h in range(1, hops + 1):
        out.append({"type": "TransformationEvent", "eventTime": f"2026-01-01T00:{h:02d}:00.000Z",
                    "eventTimeZoneOffset": "+00:00", "inputQuantityList": [{"epcClass": lot(h - 1), "quantity": 10}],
                    "outputQuantityList": [{"epcClass": lot(h), "quantity": 10}], "bizStep": "commissioning",
                    "readPoint": {"id": SITE}})
    return out


def doc(events: list[dict]) -> dict:
    return {"@context": CTX, "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-01-01T00:00:00Z",
            "epcisBody": {"eventList": events}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--log-size", type=int, default=1_000_000)
    ap.add_argument("--hops", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=20)
    a = ap.parse_args()
    from tqdm import tqdm

    tmp = Path(tempfile.mkdtemp(prefix="epcis-bench-"))
    evs = [observe(i) for i in range(a.events)]

    t0 = time.perf_counter()
    for e in evs:
        event_hash(e, CTX)
    t_hash = time.perf_counter() - t0
    # the schema check: GS1's schema compiled by fastjsonschema (built once per process: timed apart) against
    # the reference validator, jsonschema's Draft 7 (what capture used before), on the same events
    t0 = time.perf_counter()
    _compiled()
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    validate_document(doc(evs))
    t_valid = time.perf_counter() - t0
    n_ref = min(a.events, 500)
    ref_doc = doc(evs[:n_ref])
    t0 = time.perf_counter()
    assert not list(_validator().iter_errors(ref_doc))
    t_ref_schema = time.perf_counter() - t0
    t0 = time.perf_counter()
    _compiled()(ref_doc)
    t_fast_schema = time.perf_counter() - t0
    led = Ledger.init(tmp / "cap", origin="bench.example/epcis-capture")
    who = led.new_identity("bench")[0]
    t0 = time.perf_counter()
    for i in range(0, a.events, 100):
        capture(led, who, doc(evs[i:i + 100]))
    t_cap = time.perf_counter() - t0
    led.close()
    hash_rate, valid_rate, cap_rate = a.events / t_hash, a.events / t_valid, a.events / t_cap
    print(f"hashing alone:                {hash_rate:10.0f} events/s")
    print(f"schema + vocabulary + hash:   {valid_rate:10.0f} events/s")
    print(f"schema alone: compiled {n_ref / t_fast_schema:10.0f} events/s, jsonschema {n_ref / t_ref_schema:8.0f} "
          f"events/s ({t_ref_schema / t_fast_schema:.1f}x; compiling it took {t_compile:.2f} s once)")
    print(f"capture (all checks, logged): {cap_rate:10.0f} events/s ({a.events} events, documents of 100)")

    # -- trace in a big log ----------------------------------------------------------------------------------
    led = Ledger.init(tmp / "big", origin="bench.example/epcis-trace")
    who = led.new_identity("bench")[0]
    chain = chain_events(a.hops)
    filler = a.log_size - len(chain) - led.size
    spread = {int((k + 1) * filler / (len(chain) + 1)): ev for k, ev in enumerate(chain)}
    t0 = time.perf_counter()
    batch: list[bytes] = []
    bar = tqdm(total=a.log_size, desc="writing the log", unit="event", unit_scale=True, file=sys.stderr,
               disable=not sys.stderr.isatty())

    def flush() -> None:
        res = led.append_entries(batch, parallel=True, batch=5000, commit_every=50_000)
        bad = [r for r in res if isinstance(r, str)]
        if bad:
            raise SystemExit(f"append failed: {bad[0]}")
        bar.update(len(batch))
        batch.clear()

    for i in range(filler + 1):
        if i in spread:
            ev = spread[i]
            batch.append(led.make_entry(EVENT_RECORD, event_body(Event(ev, CTX, event_hash(ev, CTX))), who).leaf_bytes)
        if i < filler:
            ev = observe(10_000_000 + i)
            batch.append(led.make_entry(EVENT_RECORD, event_body(Event(ev, CTX, event_hash(ev, CTX))), who).leaf_bytes)
        if len(batch) >= 100_000:
            flush()
    if batch:
        flush()
    bar.close()
    t_write = time.perf_counter() - t0
    print(f"log of {led.size} events written in {t_write:.0f} s ({led.size / t_write:.0f} events/s, bulk path)")

    def timed(proofs: bool) -> tuple[float, dict]:
        ts = []
        rep: dict = {}
        for _ in range(a.repeat):
            t = time.perf_counter()
            rep = trace(led, lot(a.hops), forward=False, proofs=proofs)
            ts.append(time.perf_counter() - t)
        return statistics.median(ts), rep

    t_np, rep = timed(False)
    t_p, rep = timed(True)
    depth = max(it["depth"] for it in rep["items"])
    assert depth == a.hops and len(rep["events"]) == a.hops + 1, (depth, len(rep["events"]))
    t_lookup = []
    for _ in range(a.repeat):
        t = time.perf_counter()
        list(led.find(term=f"subject:epc:{rep['items'][0]['item']}"))
        t_lookup.append(time.perf_counter() - t)
    print(f"trace {a.hops} hops back in {led.size} events: {1000 * t_p:.1f} ms with proofs, {1000 * t_np:.1f} ms "
          f"without (median of {a.repeat}); one indexed lookup {1000 * statistics.median(t_lookup):.2f} ms")
    led.close()
    print(json.dumps({
        "events": a.events, "hash_events_per_s": round(hash_rate), "validate_events_per_s": round(valid_rate),
        "capture_events_per_s": round(cap_rate), "capture_vs_hash": round(cap_rate / hash_rate, 4),
        "validate_vs_hash": round(valid_rate / hash_rate, 4),
        "schema_compiled_events_per_s": round(n_ref / t_fast_schema),
        "schema_jsonschema_events_per_s": round(n_ref / t_ref_schema),
        "schema_compiled_vs_jsonschema": round(t_ref_schema / t_fast_schema, 2), "schema_compile_s": round(t_compile, 2),
        "log_size": led.size, "hops": a.hops, "trace_ms_with_proofs": round(1000 * t_p, 2),
        "trace_ms_without_proofs": round(1000 * t_np, 2),
        "one_lookup_ms": round(1000 * statistics.median(t_lookup), 3),
        "trace_vs_lookup": round(t_p / statistics.median(t_lookup), 1),
        "bulk_write_events_per_s": round(led.size / t_write), "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
