"""Sampling: prove a random, unpredictable fraction of calls after the fact, and audit that it was done.

A call ``rid`` logged in a batch at log index ``b`` is *selected* at rate ``f`` by the checkpoint at tree size
``s > b`` (a checkpoint signed after the call was logged, so its root was unknown when the call was served):
``int(SHA-256("ailedger-zk-sample/v1" || root_s || rid)) < f * 2^256``.  The gateway proves the selected calls
(``inference prove --receipt``); an auditor recomputes the selection from the same checkpoint and demands the
proofs.  A selected call without a logged proof is a finding, as is any call an auditor demands and does not
get.  Detection: when a swapped model served ``k`` calls, each is selected independently with probability
``f``, so the audit finds at least one with probability ``1 - (1 - f)^k``; for a fraction ``q`` of ``n``
calls, ``1 - (1 - f)^(q n)`` (:func:`detection_probability`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ailedger.errors import AiledgerError, BadInputError
from ailedger.inference.codec import parse_record
from ailedger.inference.payloads import inference_dir
from ailedger.inference.store import RecordStore
from ailedger.verifiable.zk import logged_proofs, prove_receipt

__all__ = ["detection_probability", "prove_sampled", "sample_audit", "selected"]

DOMAIN = b"ailedger-zk-sample/v1"


def selected(root: bytes, rid: str, rate: float) -> bool:
    if not 0 <= rate <= 1:
        raise BadInputError("the sampling rate must be in [0, 1]", field="rate", found=rate)
    x = int.from_bytes(hashlib.sha256(DOMAIN + root + rid.encode()).digest(), "big")
    return x < math.floor(rate * (1 << 256))


def detection_probability(rate: float, swapped_calls: float) -> float:
    """Probability that sampling at ``rate`` selects at least one of ``swapped_calls`` calls."""
    if not 0 <= rate <= 1 or swapped_calls < 0:
        raise BadInputError("need 0 <= rate <= 1 and swapped_calls >= 0")
    return 1.0 - (1.0 - rate) ** swapped_calls


def sample_audit(ledger: Any, model: str, rate: float, at: int | None = None,
                 demand: Sequence[str] = ()) -> dict[str, Any]:
    """Which calls of ``model`` the checkpoint at size ``at`` (default: the log's size) selects, plus the calls
    an auditor ``demand``s, and for each whether a proof of it is logged (in its record's ``meta.zk.proof`` or
    an ``inference.zk`` statement)."""
    size = ledger.size if at is None else at
    if not 0 < size <= ledger.size:
        raise BadInputError(f"--at must be a tree size in 1..{ledger.size}", field="at", found=at)
    root = ledger.log.root_at(size)
    rs = RecordStore(inference_dir(ledger.path))
    try:
        rows = list(rs.query(model, None, None))
    finally:
        rs.close()
    picked, pending, findings = [], 0, []
    total = 0
    wanted = set(demand)
    unknown = wanted - {r[0] for r in rows}
    if unknown:
        raise BadInputError(f"no call of model {model} with receipt {min(unknown)} in this ledger",
                            field="demand")
    for rid, _bid, _pos, _t, data, log_index in rows:
        demanded = rid in wanted
        if not demanded and (log_index is None or log_index >= size):
            pending += 1  # logged after the seeding checkpoint: a later checkpoint decides
            continue
        total += 1
        if not demanded and not selected(root, rid, rate):
            continue
        rec = parse_record(bytes(data))
        zk = (rec.get("meta") or {}).get("zk")
        proofs = logged_proofs(ledger, rid)
        if isinstance(zk, dict) and isinstance(zk.get("proof"), str):
            proofs.add(zk["proof"])
        item = {"receipt": rid, "proofs": sorted(proofs), "commitments": isinstance(zk, dict), "demanded": demanded}
        picked.append(item)
        if not proofs:
            findings.append(f"call {rid} was {'demanded' if demanded else 'selected'} and has no logged proof")
    return {"ok": not findings, "model": model, "rate": rate, "seed_size": size, "seed_root": root.hex(),
            "calls": total, "pending": pending, "selected": picked, "findings": findings,
            "detection_if_one_swapped_call": detection_probability(rate, 1)}


def prove_sampled(ledger: Any, model: str, rate: float, identity: Any, at: int | None = None,
                  demand: Sequence[str] = (), progress: Any = None,
                  out_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Prove every call of ``model`` the checkpoint at size ``at`` selects at ``rate`` (and every demanded call)
    that has no logged proof yet, logging an ``inference.zk`` statement for each.  A call that cannot be proven
    (the bound circuit does not give its logged commitments or its served class, its input was erased, it has no
    commitments) is a finding, and nothing is logged for it.  ``progress(n)`` is called after each call; ``out_dir``: write
    each proof bundle there as ``RECEIPT.zkproof.json`` (what ``inference verify-zk`` reads)."""
    audit = sample_audit(ledger, model, rate, at, demand)
    proven: list[dict[str, Any]] = []
    findings: list[str] = []
    for item in audit["selected"]:
        rid = item["receipt"]
        if not item["proofs"]:
            try:
                res = prove_receipt(ledger, rid, identity)
            except AiledgerError as exc:
                findings.append(f"call {rid} cannot be proven: {exc.message}")
            else:
                item["proofs"] = [res["proof_sha256"]]
                done = {"receipt": rid, "proof_sha256": res["proof_sha256"], "index": res["index"],
                        "prove_seconds": res["prove_seconds"]}
                if out_dir is not None:
                    Path(out_dir).mkdir(parents=True, exist_ok=True)
                    path = Path(out_dir) / f"{rid}.zkproof.json"
                    path.write_text(json.dumps(res, sort_keys=True) + "\n")
                    done["out"] = str(path)
                proven.append(done)
        if progress is not None:
            progress(1)
    return {**audit, "ok": not findings, "proven": proven, "findings": findings}
