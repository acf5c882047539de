"""Recovery of inference batches stored but not yet in the log (a crash between the two writes).

Its own module because both the SDK (when a trail opens) and the receipt proofs (when a receipt names
such a batch) call it, and neither may import the other in a circle."""

from __future__ import annotations

from typing import Any

from ailedger.encoding.records import parse_entry
from ailedger.errors import AiledgerError
from ailedger.inference.store import RecordStore
from ailedger.tlog.merkle import leaf_hash

__all__ = ["recover_pending"]


def recover_pending(ledger: Any, records: RecordStore, *, strict: bool = False) -> int:
    """Append batch entries stored but not yet in the log (a crash between the two writes)."""
    n = 0
    for bid, entry_bytes in records.pending_batches():
        got = ledger.store.indices_of([leaf_hash(entry_bytes)])
        if got:  # already in the log; only the bookkeeping was missing
            records.set_log_index(bid, next(iter(got.values())))
            continue
        e = parse_entry(entry_bytes, verify=True)
        model = e.body.get("models", [{}])[0].get("name", "")
        try:
            res = ledger.append_entry(e, terms=[f"inference-model:{model}",
                                                f"inference-stream:{e.body.get('stream')}"],
                                      late_ok=True)  # signed before a crash: its log index says when it landed
        except AiledgerError:
            if strict:
                raise
            continue  # e.g. its operator key was revoked since: it stays pending, reported by `counts()`
        records.set_log_index(bid, res.index)
        n += 1
    return n
