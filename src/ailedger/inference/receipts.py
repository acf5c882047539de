"""Receipt proofs and disclosures.

A receipt id names one call's record.  It resolves to an ``ailedger-inference-receipt/v1``
JSON document:

``record``       the record's canonical JSON text (its RFC 6962 leaf hash is a leaf of the batch tree)
``position``     the record's index among the batch's ``count`` records
``batch_path``   the RFC 6962 inclusion path (hex) of the record in the batch tree
``batch_root``   the batch tree's root (hex); the signed batch entry's ``body.root``
``batch_entry``  the signed ``inference.batch`` entry (canonical JSON text; a leaf of the log)
``tlog_proof``   a C2SP tlog-proof of that entry against a signed checkpoint of the log

A disclosure (``ailedger-inference-disclosure/v1``) adds, for one receipt, the 16-byte salt and
the canonical input and output text; anyone can check ``SHA-256(salt || text)`` against the
commitments in the proven record.  Nothing about any other call is revealed.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from ailedger.encoding.records import parse_entry
from ailedger.errors import BadInputError, NotFoundError, ProofError, VerificationError
from ailedger.inference.codec import BATCH_TYPE, parse_record
from ailedger.inference.payloads import PayloadStore, inference_dir
from ailedger.inference.recovery import recover_pending
from ailedger.inference.store import RecordStore, split_rid
from ailedger.tlog.merkle import (
    inclusion_plan,
    leaf_hash,
    rehash_plan,
    root_from_leaf_hashes,
    verify_inclusion,
)
from ailedger.tlog.note import Verifier
from ailedger.tlog.proofbundle import verify_proof_bundle

__all__ = [
    "DISCLOSURE_FORMAT",
    "RECEIPT_FORMAT",
    "batch_inclusion_path",
    "disclose",
    "receipt_proof",
    "verify_disclosure",
    "verify_receipt_proof",
]

RECEIPT_FORMAT = "ailedger-inference-receipt/v1"
DISCLOSURE_FORMAT = "ailedger-inference-disclosure/v1"


def batch_levels(leaves: list[bytes]) -> list[list[bytes]]:
    """All levels of the batch tree, built level by level; an unpaired last node moves up as is, so
    node i of level l is the RFC 6962 hash of leaves [i*2^l, min((i+1)*2^l, n))."""
    levels = [list(leaves)]
    sha = hashlib.sha256
    while len(levels[-1]) > 1:
        cur = levels[-1]
        nxt = [sha(b"\x01" + a + b).digest() for a, b in zip(cur[0::2], cur[1::2])]
        if len(cur) & 1:
            nxt.append(cur[-1])
        levels.append(nxt)
    return levels


def path_from_levels(levels: list[list[bytes]], pos: int) -> list[bytes]:
    """RFC 6962 inclusion path (leaf to root) of leaf ``pos``."""
    path = []
    for level in levels[:-1]:
        sib = pos ^ 1
        if sib < len(level):
            path.append(level[sib])
        pos >>= 1
    return path


def batch_inclusion_path(leaves: list[bytes], pos: int) -> list[bytes]:
    if not 0 <= pos < len(leaves):
        raise BadInputError(f"position {pos} is outside the batch of {len(leaves)}", field="position")
    return path_from_levels(batch_levels(leaves), pos)


def _reference_path(leaves: list[bytes], pos: int) -> list[bytes]:
    """The same path through core's plan -> fetch -> rehash (slow; used by the tests as the reference)."""
    plan = inclusion_plan(pos, len(leaves))

    def node(nid: tuple[int, int]) -> bytes:
        level, index = nid
        return root_from_leaf_hashes(leaves[index << level : (index + 1) << level])

    return rehash_plan(plan, node)


def receipt_proof(ledger: Any, rid: str, *, records: RecordStore | None = None) -> dict[str, Any]:
    own = records is None
    rs = records or RecordStore(inference_dir(ledger.path))
    try:
        got = rs.record(rid)
        if got is None:
            stream, _ = split_rid(rid)
            if (inference_dir(ledger.path) / "journal" / stream).is_dir():
                raise NotFoundError(f"receipt {rid} is not logged yet: its trail journals durable calls and logs them "
                                    "in its next batch (within its flush_interval; Receipt.proof() waits for it); if "
                                    "that trail is gone, the next trail opened on this ledger logs them",
                                    field="receipt")
            raise NotFoundError(f"no inference record with receipt {rid} (unknown, or not written yet)",
                                field="receipt")
        data, bid, pos = got
        b = rs.batch(bid)
        if b["log_index"] is None:
            got = ledger.store.indices_of([leaf_hash(b["entry"])])
            if got:  # in the log; the writer has not noted the index yet
                b["log_index"] = next(iter(got.values()))
            else:  # stored but never appended (a crash between the two writes): append it now
                recover_pending(ledger, rs, strict=True)
                b = rs.batch(bid)
        leaves = [leaf_hash(d) for d in rs.batch_records(bid)]
    finally:
        if own:
            rs.close()
    path = batch_inclusion_path(leaves, pos)
    tlog = ledger.prove(b["log_index"])
    return {"format": RECEIPT_FORMAT, "receipt": rid, "record": data.decode(), "position": pos,
            "count": len(leaves), "batch_root": b["root"].hex(), "batch_path": [h.hex() for h in path],
            "batch_index": b["log_index"], "batch_entry": b["entry"].decode(), "tlog_proof": tlog.decode()}


def verify_receipt_proof(doc: dict[str, Any], verifier: Verifier) -> dict[str, Any]:
    """Check a receipt proof offline; returns the record. Raises VerificationError subclasses."""
    if not isinstance(doc, dict) or doc.get("format") != RECEIPT_FORMAT:
        raise BadInputError(f"not an {RECEIPT_FORMAT} document", field="format")
    try:
        record_b = doc["record"].encode()
        pos, count = int(doc["position"]), int(doc["count"])
        path = [bytes.fromhex(h) for h in doc["batch_path"]]
        entry_b = doc["batch_entry"].encode()
        tlog = doc["tlog_proof"].encode()
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadInputError(f"receipt proof is malformed: {exc}") from exc
    record = parse_record(record_b)
    if record["id"] != doc.get("receipt"):
        raise VerificationError("the record is not the one the receipt names", expected=doc.get("receipt"),
                                found=record["id"])
    entry = parse_entry(entry_b, verify=True)  # SignatureError if the operator's signature fails
    if entry.type != BATCH_TYPE:
        raise VerificationError("the proven entry is not an inference batch", expected=BATCH_TYPE, found=entry.type)
    root_hex = entry.body.get("root")
    if entry.body.get("count") != count:
        raise ProofError("batch size differs from the signed batch entry", expected=entry.body.get("count"),
                         found=count)
    if not isinstance(root_hex, str) or len(root_hex) != 64:
        raise VerificationError("batch entry has no Merkle root")
    try:
        verify_inclusion(pos, count, leaf_hash(record_b), path, bytes.fromhex(root_hex))
    except ProofError as exc:
        raise ProofError(f"the record is not in the signed batch: {exc.message}", expected=root_hex,
                         found=exc.found) from exc
    bundle, cp = verify_proof_bundle(tlog, verifier, entry=entry.leaf_bytes)
    if doc.get("batch_index") is not None and bundle.index != doc["batch_index"]:
        raise ProofError("tlog-proof index differs from batch_index", expected=doc["batch_index"],
                         found=bundle.index)
    return {"ok": True, "receipt": record["id"], "record": record, "batch_index": bundle.index,
            "position": pos, "count": count, "operator": entry.signer, "checkpoint_size": cp.size,
            "checkpoint_root": cp.root.hex()}


def disclose(ledger: Any, rid: str) -> dict[str, Any]:
    """The salt and canonical payloads of one call (raises ErasedError if its subject was erased)."""
    ps = PayloadStore(ledger.path)
    try:
        it = ps.get(rid)
    finally:
        ps.close()
    return {"format": DISCLOSURE_FORMAT, "receipt": rid, "salt": it.salt.hex(),
            "input": None if it.input is None else it.input.decode(),
            "output": None if it.output is None else it.output.decode()}


def verify_disclosure(receipt_doc: dict[str, Any], disclosure: dict[str, Any], verifier: Verifier) -> dict[str, Any]:
    """Check the receipt proof, then that the disclosed payloads match the record's commitments."""
    res = verify_receipt_proof(receipt_doc, verifier)
    if not isinstance(disclosure, dict) or disclosure.get("format") != DISCLOSURE_FORMAT:
        raise BadInputError(f"not an {DISCLOSURE_FORMAT} document", field="format")
    if disclosure.get("receipt") != res["receipt"]:
        raise VerificationError("disclosure is for another receipt", expected=res["receipt"],
                                found=disclosure.get("receipt"))
    try:
        salt = bytes.fromhex(disclosure["salt"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInputError("disclosure salt must be hex", field="salt") from exc
    rec = res["record"]
    for field, key in (("input", "in"), ("output", "out")):
        text = disclosure.get(field)
        want = rec.get(key)
        if text is None and want is None:
            continue
        if text is None or want is None:
            raise VerificationError(f"disclosed {field} presence differs from the record", expected=want,
                                    found=None if text is None else "present")
        got = hashlib.sha256(salt + text.encode()).hexdigest()
        if got != want:
            raise VerificationError(f"disclosed {field} does not match the record's commitment",
                                    expected=want, found=got)
    return {**res, "disclosure": "matches"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
