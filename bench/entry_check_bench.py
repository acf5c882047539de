"""CPU cost of the C entry checker against the bare libsodium verify of the same entries (one thread).

`_speedups.verify_entries` (shape check, message, did:key, Ed25519 through PyNaCl's libsodium) against
`crypto_sign_open` on messages prepared beforehand (bench/limits.py: signed_messages), same entries, same
run, alternated; medians of --rounds. The last line is one JSON object."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from limits import signed_messages
from nacl.bindings import crypto_sign_open

from ailedger.encoding import records
from ailedger.encoding.identity import did_from_public_key


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=6)
    a = ap.parse_args()
    if not records.FAST_VERIFY:
        sys.exit("the C module _speedups is not built (or AILEDGER_PYTHON_VERIFY=1)")
    from ailedger.encoding import _speedups

    k = Ed25519PrivateKey.generate()
    did = did_from_public_key(k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    es = [records.build_entry("model.eval", {"i": i, "metric": "acc", "value": "0.9", "note": "x" * 120}, did,
                              "2026-01-02T03:04:05.678Z", k.sign).leaf_bytes for i in range(a.entries)]
    sm = signed_messages(es)
    raw, fast = [], []
    for _ in range(a.rounds):
        t = time.process_time()
        for m, pk in sm:
            crypto_sign_open(m, pk)
        raw.append((time.process_time() - t) / len(es) * 1e6)
        t = time.process_time()
        verdicts = _speedups.verify_entries(es)
        fast.append((time.process_time() - t) / len(es) * 1e6)
        assert verdicts == b"\x01" * len(es)
    r, f = statistics.median(raw), statistics.median(fast)
    print(f"{len(es):,} entries of ~{sum(map(len, es)) // len(es)} bytes: verify_entries {f:.1f} CPU-us per entry, "
          f"crypto_sign_open on prepared messages {r:.1f} -> ratio {r / f:.2f} (1.0 = the checker adds nothing)")
    print(json.dumps({"bench": "entry_check", "entries": len(es), "rounds": a.rounds,
                      "verify_entries_cpu_us": round(f, 2), "sodium_open_cpu_us": round(r, 2),
                      "ratio_sodium_vs_checker": round(r / f, 3)}))


if __name__ == "__main__":
    main()
