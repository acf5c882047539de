"""Cut flagged sources out of a committed data set: a new root, and a proof of which records left.

``remove_sources`` filters the rows whose source column holds one of the given values out of the data
file, commits the rest as a new ``dataset.commit`` (the artifacts service builds the sparse Merkle root),
and logs a ``dataset.source-removal`` record tying the old and new commitments together.  The proof file
(``ailedger-removal-proof/v1``) holds, for every key that left (SHA-256 of a removed record's RFC 8785
form, as the dataset commitment defines it), a sparse Merkle membership proof against the old root and an
absence proof against the new root, plus the three signed entries with their tlog inclusion proofs.

The verifier checks offline: signatures and inclusion of the three entries, that the removal record names
exactly the old and new commitments, that the listed keys hash to the logged digest, each key's
membership in the old root and absence from the new one, and that the record counts differ by exactly the
number of keys.  Together these show those records left and, by the count, that no other record left
*unless one was also added in exchange*; excluding such a swap needs the kept key list (see
docs/screening.md, "Blind spots").
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

from ailedger.core import smt
from ailedger.core.canonical import canonical_json, parse_json
from ailedger.core.errors import BadInputError, ProofError

REMOVAL_RECORD = "dataset.source-removal"
REMOVAL_PROOF = "ailedger-removal-proof/v1"


def _rows_with_keys(path: Path, source_column: str) -> tuple[str, list[tuple[str, bytes, Any]], Any]:
    """(kind, [(source value, record key, raw row)], header/schema) in file order, keys as the dataset
    commitment computes them."""
    from ailedger.services.artifacts.datasets import _json_value, record_key

    s = path.name.lower()
    out: list[tuple[str, bytes, Any]] = []
    if s.endswith(".csv"):
        with open(path, newline="", encoding="utf-8") as fh:
            rd = csv.reader(fh)
            header = next(rd)
            if source_column not in header:
                raise BadInputError(f"source column {source_column!r} not in {path.name}", field="source_column")
            j = header.index(source_column)
            for row in rd:
                if not row:
                    continue
                out.append((row[j], record_key(canonical_json(dict(zip(header, row)))), row))
        return "csv", out, header
    if s.endswith((".jsonl", ".ndjson")):
        with open(path, "rb") as fh:
            for line in fh:
                if not line.strip():
                    continue
                obj = json.loads(line)
                if source_column not in obj:
                    raise BadInputError(f"a record of {path.name} has no {source_column!r}", field="source_column")
                out.append((str(obj[source_column]), record_key(canonical_json(obj)), line))
        return "jsonl", out, None
    if s.endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        if source_column not in table.column_names:
            raise BadInputError(f"source column {source_column!r} not in {path.name}", field="source_column")
        for i, row in enumerate(table.to_pylist()):
            out.append((str(row[source_column]), record_key(canonical_json(_json_value(row))), i))
        return "parquet", out, table
    raise BadInputError("source removal reads .csv, .jsonl or .parquet files", field="path")


def _write_filtered(kind: str, rows: list[tuple[str, bytes, Any]], keep: list[bool], header: Any, dest: Path) -> None:
    if kind == "csv":
        with open(dest, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            for (_, _, row), k in zip(rows, keep):
                if k:
                    w.writerow(row)
    elif kind == "jsonl":
        with open(dest, "wb") as fh:
            for (_, _, line), k in zip(rows, keep):
                if k:
                    fh.write(line if line.endswith(b"\n") else line + b"\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(header.filter(pa.array(keep)), dest)


def remove_sources(ledger: Any, identity: Any, dataset_ref: str, data_path: str, *, source_column: str,
                   sources: list[str], new_name: str, output_data: str, screening_index: int | None = None,
                   workers: int | None = None) -> tuple[bytes, dict[str, Any]]:
    from ailedger.services.artifacts import commit_dataset, find_dataset
    from ailedger.services.artifacts.datasets import open_index

    if not sources:
        raise BadInputError("name at least one source to remove", field="source")
    old_idx, old_e = find_dataset(ledger, dataset_ref)
    if old_e.body.get("leaf") != "sha256":
        raise BadInputError("source removal proofs need a public (sha256-leaf) dataset", field="dataset")
    p = Path(data_path)
    kind, rows, header = _rows_with_keys(p, source_column)
    present = {r[0] for r in rows}
    missing = [s for s in sources if s not in present]
    if missing:
        raise BadInputError(f"source(s) not in the data: {', '.join(map(repr, missing))}", field="source")
    drop = set(sources)
    keep = [r[0] not in drop for r in rows]
    kept_keys = {r[1] for r, k in zip(rows, keep) if k}
    removed_rows = [i for i, k in enumerate(keep) if not k]
    gone = sorted({rows[i][1] for i in removed_rows} - kept_keys)
    stayed = [i for i in removed_rows if rows[i][1] in kept_keys]
    old_ix = open_index(ledger, old_idx, old_e.body)
    try:
        if old_ix.root.hex() != old_e.body["root"]:
            raise ProofError("the local index does not match the logged root", expected=old_e.body["root"],
                             found=old_ix.root.hex())
        all_keys = {r[1] for r in rows}
        if len(all_keys) != int(old_e.body["records"]):
            raise BadInputError(f"{p.name} holds {len(all_keys)} distinct records, the commitment "
                                f"{old_e.body['records']}: not the committed data", field="path")
        member = [old_ix.prove(k) for k in gone]
        for k, pr in zip(gone, member):
            if not smt.verify_proof(old_ix.root, k, pr):
                raise BadInputError(f"{p.name} is not the committed data (record key {k.hex()[:16]}... is not in "
                                    "the old root)", field="path")
    finally:
        old_ix.close()
    dest = Path(output_data)
    _write_filtered(kind, rows, keep, header, dest)
    res = commit_dataset(ledger, [str(dest)], new_name, identity, workers=workers,
                         description=f"{old_e.body['name']} without source(s) {', '.join(sources)} "
                                     f"(column {source_column})")
    new_idx = res["index"]
    new_e = ledger.entry(new_idx)
    new_ix = open_index(ledger, new_idx, new_e.body)
    try:
        absent = [new_ix.prove(k) for k in gone]
        for k, pr in zip(gone, absent):
            if smt.verify_proof(new_ix.root, k, pr):
                raise ProofError("a removed record is still in the new root", expected="absent", found="member")
    finally:
        new_ix.close()
    keys_digest = hashlib.sha256(b"".join(gone)).hexdigest()
    body: dict[str, Any] = {
        "dataset": old_e.body["name"], "dataset_index": old_idx, "old_root": old_e.body["root"],
        "old_records": int(old_e.body["records"]),
        "new_dataset": new_name, "new_index": new_idx, "new_root": new_e.body["root"],
        "new_records": int(new_e.body["records"]),
        "source_column": source_column, "removed_sources": sorted(sources),
        "removed_rows": len(removed_rows), "removed_keys": len(gone), "rows_still_present_as_duplicates": len(stayed),
        "removed_keys_sha256": keys_digest,
    }
    if screening_index is not None:
        body["screening_index"] = int(screening_index)
    rec = ledger.append_record(REMOVAL_RECORD, body, identity,
                               terms=[f"dataset:{old_e.body['name']}", f"dataset:{new_name}",
                                      f"dataset-root:{new_e.body['root']}"])
    doc = {
        "type": REMOVAL_PROOF,
        "old": {"index": old_idx, "entry": base64.b64encode(ledger.entry_bytes(old_idx)).decode(),
                "tlog_proof": ledger.prove(old_idx).decode()},
        "new": {"index": new_idx, "entry": base64.b64encode(ledger.entry_bytes(new_idx)).decode(),
                "tlog_proof": ledger.prove(new_idx).decode()},
        "removal": {"index": rec.index, "entry": base64.b64encode(ledger.entry_bytes(rec.index)).decode(),
                    "tlog_proof": ledger.prove(rec.index).decode()},
        "keys": [k.hex() for k in gone],
        "removed_rows": removed_rows,
        "member_proofs": [base64.b64encode(smt.encode_proof(x)).decode() for x in member],
        "absence_proofs": [base64.b64encode(smt.encode_proof(x)).decode() for x in absent],
    }
    data = (REMOVAL_PROOF + "\n").encode() + canonical_json(doc) + b"\n"
    info = {"removal_index": rec.index, "old_index": old_idx, "old_root": body["old_root"], "new_index": new_idx,
            "new_root": body["new_root"], "removed_rows": len(removed_rows), "removed_keys": len(gone),
            "rows_still_present_as_duplicates": len(stayed), "old_records": body["old_records"],
            "new_records": body["new_records"], "output_data": str(dest), "proof_bytes": len(data)}
    return data, info


def verify_removal_proof(data: bytes, vkey: str) -> dict[str, Any]:
    """Offline check of a removal proof; raises VerificationError subclasses when anything fails."""
    from ailedger.core.note import parse_vkey
    from ailedger.core.proofbundle import verify_proof_bundle
    from ailedger.core.records import parse_entry
    from ailedger.services.artifacts import DATASET_RECORD

    head = (REMOVAL_PROOF + "\n").encode()
    if not data.startswith(head):
        raise BadInputError(f"not an {REMOVAL_PROOF} file", field="proof")
    doc = parse_json(data[len(head):], what="removal proof")
    if not isinstance(doc, dict) or doc.get("type") != REMOVAL_PROOF:
        raise BadInputError("removal proof body is malformed", field="proof")
    key = parse_vkey(vkey)
    entries = {}
    for part in ("old", "new", "removal"):
        try:
            eb = base64.b64decode(doc[part]["entry"], validate=True)
            bundle = doc[part]["tlog_proof"].encode()
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInputError(f"removal proof lacks its {part} entry", field="proof") from exc
        e = parse_entry(eb, verify=True)
        verify_proof_bundle(bundle, key, entry=eb)
        entries[part] = e
    old, new, rem = entries["old"], entries["new"], entries["removal"]
    if old.type != DATASET_RECORD or new.type != DATASET_RECORD or rem.type != REMOVAL_RECORD:
        raise ProofError("the entries are not dataset.commit, dataset.commit, dataset.source-removal",
                         expected=[DATASET_RECORD, DATASET_RECORD, REMOVAL_RECORD], found=[old.type, new.type, rem.type])
    b = rem.body
    checks = {"dataset_index": doc["old"]["index"], "new_index": doc["new"]["index"], "old_root": old.body["root"],
              "new_root": new.body["root"], "old_records": old.body["records"], "new_records": new.body["records"]}
    for k, v in checks.items():
        if b.get(k) != v:
            raise ProofError(f"the removal record's {k} does not match the committed entry", expected=v,
                             found=b.get(k))
    keys = [bytes.fromhex(k) for k in doc["keys"]]
    digest = hashlib.sha256(b"".join(keys)).hexdigest()
    if digest != b["removed_keys_sha256"] or len(keys) != b["removed_keys"]:
        raise ProofError("the listed keys are not the ones the removal record commits to",
                         expected=b["removed_keys_sha256"], found=digest)
    if len(doc["member_proofs"]) != len(keys) or len(doc["absence_proofs"]) != len(keys):
        raise BadInputError("one membership and one absence proof per key are needed", field="proof")
    old_root, new_root = bytes.fromhex(old.body["root"]), bytes.fromhex(new.body["root"])
    for k, mp, ap in zip(keys, doc["member_proofs"], doc["absence_proofs"]):
        if not smt.verify_proof(old_root, k, smt.decode_proof(base64.b64decode(mp))):
            raise ProofError(f"key {k.hex()[:16]}... is not in the old root", expected="member", found="absent")
        if smt.verify_proof(new_root, k, smt.decode_proof(base64.b64decode(ap))):
            raise ProofError(f"key {k.hex()[:16]}... is still in the new root", expected="absent", found="member")
    if int(old.body["records"]) - int(new.body["records"]) != len(keys):
        raise ProofError("record counts do not differ by the number of removed keys",
                         expected=int(old.body["records"]) - len(keys), found=int(new.body["records"]))
    return {"ok": True, "dataset": old.body["name"], "old_index": doc["old"]["index"], "old_root": old.body["root"],
            "new_dataset": new.body["name"], "new_index": doc["new"]["index"], "new_root": new.body["root"],
            "removed_sources": b["removed_sources"], "removed_keys": len(keys), "old_records": old.body["records"],
            "new_records": new.body["records"], "removal_index": doc["removal"]["index"],
            "signer": rem.signer, "time": rem.time}
