"""Finding and describing the ledger entries of provenance records (models and datasets).

Shared by the model and dataset modules, so neither imports the other for them."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ailedger.encoding.records import parse_entry
from ailedger.tlog.proofbundle import verify_proof_bundle

__all__ = ["DATASET_RECORD", "MODEL_RECORD", "artifacts_dir", "entries_found", "entries_named", "entry_status"]

MODEL_RECORD = "model.register"
DATASET_RECORD = "dataset.commit"


def artifacts_dir(ledger: Any) -> Path:
    p = Path(ledger.path) / "artifacts"
    p.mkdir(parents=True, exist_ok=True)
    return p


def entries_found(ledger: Any, type_: str, terms: Iterable[str], holds: Any) -> list[tuple[int, Any]]:
    """Every ``type_`` entry listed under any of ``terms`` whose own signed body says so (``holds(body)``),
    once each, in log order.  The index is a lookup aid kept beside the log, not part of any signed entry:
    it only proposes candidates.  Give every term a reader may find the entry under: the one every write
    path indexes (services.ledger.entry_terms) and any older one a ledger indexed before that."""
    idxs: set[int] = set()
    for term in dict.fromkeys(terms):
        after = -1
        while got := ledger.store.find(term, after, 1000):
            idxs.update(got)
            after = got[-1]
    out = []
    for idx in sorted(idxs):
        e = ledger.entry(idx)
        if e.type == type_ and isinstance(e.body, dict) and holds(e.body):
            out.append((idx, e))
    return out


def entries_named(ledger: Any, type_: str, name: str, legacy_term: str | None = None) -> list[tuple[int, Any]]:
    """Every ``type_`` entry whose signed body's ``name`` is ``name``, whichever path logged it: found
    through the ``name:`` term every write path indexes (and ``legacy_term``, which ledgers indexed before
    names were carry for the entries the service wrote), confirmed against the body."""
    terms = [f"name:{name}"] + ([legacy_term] if legacy_term else [])
    return entries_found(ledger, type_, terms, lambda b: b.get("name") == name)


def _identity_names(ledger: Any) -> dict[str, str]:
    out = {}
    try:
        for n in ledger.identities.names():
            did = ledger.identities.did_of(n)
            if did:
                out[did] = n
    except Exception:  # noqa: BLE001, S110 - names are a nicety
        pass
    return out


def entry_status(ledger: Any, index: int) -> dict[str, Any]:
    """Who signed entry ``index``, when it entered the log, and the checkpoint that covers it
    (inclusion is actually verified against the signed checkpoint)."""
    data = ledger.entry_bytes(index)
    e = parse_entry(data, verify=True)
    bundle = ledger.prove(index)
    _, cp = verify_proof_bundle(bundle, ledger.verifier, entry=data)
    return {
        "index": index,
        "type": e.type,
        "signer": e.signer,
        "signer_name": _identity_names(ledger).get(e.signer),
        "time": e.time,
        "signature": "valid",
        "checkpoint": {"origin": cp.origin, "size": cp.size, "root": cp.root.hex(), "inclusion": "verified"},
    }
