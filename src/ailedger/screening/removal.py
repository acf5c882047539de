"""Cut flagged sources out of a committed data set: a new root, and a proof of exactly which records left.

``remove_sources`` filters the rows whose source column holds one of the given values out of the data
file, commits the rest as a new ``dataset.commit`` (the artifacts service builds the sparse Merkle root),
and logs a ``dataset.source-removal`` record tying the old and new commitments together.  The proof file
(``ailedger-removal-proof/v1``) holds the keys that left (SHA-256 of a removed record's RFC 8785 form, as
the dataset commitment defines leaves) and, for each, a deletion step (``ailedger.provenance.smt_removal``): a
membership proof under the current root plus a witness that lets the verifier recompute the root without
that key.  Applied in order from the old root they must end exactly on the new root, so the new set is
the old set minus exactly those keys: nothing else left and nothing was added.  The verifier also checks
the three signed entries and their tlog inclusion proofs.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
from bisect import bisect_left
from pathlib import Path
from typing import Any

from ailedger.authority.service import raise_first
from ailedger.encoding.canonical import canonical_json, parse_json
from ailedger.encoding.records import parse_entry
from ailedger.errors import BadInputError, ProofError
from ailedger.provenance import DATASET_RECORD, commit_dataset, find_dataset, scan_dir, smt
from ailedger.provenance.datasets import CROISSANT_FIELDS, _json_value, record_key
from ailedger.provenance.smt_removal import DeletionStep, delete_all, deletion_step
from ailedger.tlog.note import parse_vkey
from ailedger.tlog.proofbundle import verify_proof_bundle

REMOVAL_RECORD = "dataset.source-removal"
REMOVAL_PROOF = "ailedger-removal-proof/v1"


def _rows_with_keys(path: Path, source_column: str) -> tuple[str, list[tuple[str, bytes, Any]], Any]:
    """(kind, [(source value, record key, raw row)], header/schema) in file order, keys as the dataset
    commitment computes them."""
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


def _step_json(st: DeletionStep) -> dict[str, Any]:
    out: dict[str, Any] = {"key": st.key.hex(), "proof": base64.b64encode(smt.encode_proof(st.proof)).decode()}
    if st.leaf_key is not None:
        out["leaf_key"] = st.leaf_key.hex()
    if st.chain:
        out["chain"] = [[a.hex(), b_.hex()] for a, b_ in st.chain]
    return out


def _step_from_json(o: dict[str, Any]) -> DeletionStep:
    lk = o.get("leaf_key")
    return DeletionStep(key=bytes.fromhex(o["key"]), proof=smt.decode_proof(base64.b64decode(o["proof"], validate=True)),
                        leaf_key=bytes.fromhex(lk) if lk is not None else None,
                        chain=tuple((bytes.fromhex(a), bytes.fromhex(b_)) for a, b_ in o.get("chain", [])))


def path_keys(path: Path, *, follow_symlinks: bool = False) -> list[bytes]:
    """Record keys of one committed PATH, as ``dataset commit`` computes them (files: SHA-256 of the
    bytes; JSONL / CSV / Parquet: SHA-256 of each record's RFC 8785 form)."""
    if path.is_dir():
        out = []
        for f in scan_dir(path, follow_external_symlinks=follow_symlinks, ignore=()):
            with open(f.path, "rb") as fh:
                out.append(hashlib.file_digest(fh, "sha256").digest())
        return out
    s = path.name.lower()
    if s.endswith(".csv"):
        with open(path, newline="", encoding="utf-8") as fh:
            rd = csv.reader(fh)
            header = next(rd)
            return [record_key(canonical_json(dict(zip(header, row)))) for row in rd if row]
    if s.endswith((".jsonl", ".ndjson", ".jsonl.txt")):
        with open(path, "rb") as fh:
            return [record_key(canonical_json(json.loads(line))) for line in fh if line.strip()]
    if s.endswith(".parquet"):
        import pyarrow.parquet as pq

        return [record_key(canonical_json(_json_value(r))) for r in pq.read_table(path).to_pylist()]
    raise BadInputError(f"{path}: unknown record format", field="path")


def _deletion_steps(all_keys: list[bytes], gone: list[bytes]) -> tuple[list[DeletionStep], bytes]:
    keys_now = list(all_keys)
    steps = []
    for k in gone:
        steps.append(deletion_step(keys_now, k))
        keys_now.pop(bisect_left(keys_now, k))
    return steps, smt.subtree_root(keys_now)


def _proof_file(ledger: Any, old_idx: int, new_idx: int, rem_idx: int, steps: list[DeletionStep],
                removed_rows: list[int] | None) -> bytes:
    def part(i: int) -> dict[str, Any]:
        return {"index": i, "entry": base64.b64encode(ledger.entry_bytes(i)).decode(),
                "tlog_proof": ledger.prove(i).decode()}

    doc: dict[str, Any] = {"type": REMOVAL_PROOF, "old": part(old_idx), "new": part(new_idx),
                           "removal": part(rem_idx), "steps": [_step_json(x) for x in steps]}
    if removed_rows is not None:
        doc["removed_rows"] = removed_rows
    return (REMOVAL_PROOF + "\n").encode() + canonical_json(doc) + b"\n"


def _require_removal_authority(ledger: Any, identity: Any, dataset_name: str) -> None:
    """Refuse before anything is written (not after the new commitment): only the dataset's committer may
    log its source removal (docs/authority.md)."""
    raise_first(ledger.admit([ledger.make_entry(REMOVAL_RECORD, {"dataset": dataset_name}, identity)]))


def remove_paths(ledger: Any, identity: Any, dataset_ref: str, paths: list[str], drop: list[str], *,
                 new_name: str, screening_index: int | None = None, workers: int | None = None,
                 follow_symlinks: bool = False) -> tuple[bytes, dict[str, Any]]:
    """Cut whole PATHs (the sources of a multi-PATH ``dataset commit``) out: ``paths`` are all the committed
    PATHs, ``drop`` those to cut.  Commits the rest as NEW_NAME and returns the removal proof."""
    old_idx, old_e = find_dataset(ledger, dataset_ref)
    _require_removal_authority(ledger, identity, old_e.body["name"])
    if old_e.body.get("leaf") != "sha256":
        raise BadInputError("removal proofs need a public (sha256-leaf) dataset", field="dataset")
    unknown = [d for d in drop if d not in paths]
    if unknown or not drop:
        raise BadInputError(f"--drop must name some of the PATHs given (not {', '.join(unknown) or 'nothing'})",
                            field="drop")
    kept = [p for p in paths if p not in drop]
    if not kept:
        raise BadInputError("cannot cut every PATH: nothing would be left", field="drop")
    keys = {p: path_keys(Path(p), follow_symlinks=follow_symlinks) for p in paths}
    all_keys = sorted({k for ks in keys.values() for k in ks})
    if smt.subtree_root(all_keys).hex() != old_e.body["root"]:
        raise BadInputError(f"these PATHs are not the data committed as {old_e.body['name']} (their records give "
                            "another root)", field="path")
    kept_keys = {k for p in kept for k in keys[p]}
    gone = sorted({k for p in drop for k in keys[p]} - kept_keys)
    steps, expected_new = _deletion_steps(all_keys, gone)
    by_name = {s.get("name"): s for s in old_e.body.get("sources", [])}
    meta = [{k: v for k, v in by_name.get(Path(p).name or p, {}).items() if k in CROISSANT_FIELDS and k != "name"}
            for p in kept]
    res = commit_dataset(ledger, kept, new_name, identity, workers=workers, follow_symlinks=follow_symlinks,
                         source_meta=meta if any(meta) else None,
                         description=f"{old_e.body['name']} without {', '.join(Path(d).name for d in drop)}")
    new_idx = res["index"]
    new_e = ledger.entry(new_idx)
    if new_e.body["root"] != expected_new.hex():
        raise ProofError("the new commitment is not the old set minus the removed records",
                         expected=expected_new.hex(), found=new_e.body["root"])
    rows = sum(len(keys[p]) for p in drop)
    body: dict[str, Any] = {
        "dataset": old_e.body["name"], "dataset_index": old_idx, "old_root": old_e.body["root"],
        "old_records": int(old_e.body["records"]),
        "new_dataset": new_name, "new_index": new_idx, "new_root": new_e.body["root"],
        "new_records": int(new_e.body["records"]),
        "source_kind": "path", "removed_sources": sorted(Path(d).name or d for d in drop),
        "removed_rows": rows, "removed_keys": len(gone),
        "rows_still_present_as_duplicates": rows - len({k for p in drop for k in keys[p]} - kept_keys),
        "removed_keys_sha256": hashlib.sha256(b"".join(gone)).hexdigest(),
    }
    if screening_index is not None:
        body["screening_index"] = int(screening_index)
    rec = ledger.append_record(REMOVAL_RECORD, body, identity,
                               terms=[f"dataset:{old_e.body['name']}", f"dataset:{new_name}",
                                      f"dataset-root:{new_e.body['root']}"])
    data = _proof_file(ledger, old_idx, new_idx, rec.index, steps, None)
    info = {"removal_index": rec.index, "old_index": old_idx, "old_root": body["old_root"], "new_index": new_idx,
            "new_root": body["new_root"], "removed_rows": rows, "removed_keys": len(gone),
            "rows_still_present_as_duplicates": body["rows_still_present_as_duplicates"],
            "old_records": body["old_records"], "new_records": body["new_records"], "proof_bytes": len(data)}
    return data, info


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
    if not sources:
        raise BadInputError("name at least one source to remove", field="source")
    old_idx, old_e = find_dataset(ledger, dataset_ref)
    _require_removal_authority(ledger, identity, old_e.body["name"])
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
    all_keys = sorted({r[1] for r in rows})
    if smt.subtree_root(all_keys).hex() != old_e.body["root"]:
        raise BadInputError(f"{p.name} is not the data committed as {old_e.body['name']} (its records give another "
                            "root)", field="path")
    keys_now = list(all_keys)
    steps = []
    for k in gone:
        steps.append(deletion_step(keys_now, k))
        keys_now.pop(bisect_left(keys_now, k))
    expected_new = smt.subtree_root(keys_now)
    dest = Path(output_data)
    _write_filtered(kind, rows, keep, header, dest)
    _, new_rows, _ = _rows_with_keys(dest, source_column)
    written = smt.subtree_root(sorted({r[1] for r in new_rows}))
    if written != expected_new:  # checked before anything is logged
        raise ProofError("the new commitment is not the old set minus the removed records",
                         expected=expected_new.hex(), found=written.hex())
    res = commit_dataset(ledger, [str(dest)], new_name, identity, workers=workers,
                         description=f"{old_e.body['name']} without source(s) {', '.join(sources)} "
                                     f"(column {source_column})")
    new_idx = res["index"]
    new_e = ledger.entry(new_idx)
    if new_e.body["root"] != expected_new.hex():
        raise ProofError("the new commitment is not the old set minus the removed records",
                         expected=expected_new.hex(), found=new_e.body["root"])
    keys_digest = hashlib.sha256(b"".join(gone)).hexdigest()
    body: dict[str, Any] = {
        "dataset": old_e.body["name"], "dataset_index": old_idx, "old_root": old_e.body["root"],
        "old_records": int(old_e.body["records"]),
        "new_dataset": new_name, "new_index": new_idx, "new_root": new_e.body["root"],
        "new_records": int(new_e.body["records"]),
        "source_kind": "column", "source_column": source_column, "removed_sources": sorted(sources),
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
        "removed_rows": removed_rows,
        "steps": [_step_json(x) for x in steps],
    }
    data = (REMOVAL_PROOF + "\n").encode() + canonical_json(doc) + b"\n"
    info = {"removal_index": rec.index, "old_index": old_idx, "old_root": body["old_root"], "new_index": new_idx,
            "new_root": body["new_root"], "removed_rows": len(removed_rows), "removed_keys": len(gone),
            "rows_still_present_as_duplicates": len(stayed), "old_records": body["old_records"],
            "new_records": body["new_records"], "output_data": str(dest), "proof_bytes": len(data)}
    return data, info


def verify_removal_proof(data: bytes, vkey: str) -> dict[str, Any]:
    """Offline check of a removal proof; raises VerificationError subclasses when anything fails."""
    head = (REMOVAL_PROOF + "\n").encode()
    if not data.startswith(head):
        raise BadInputError(f"not an {REMOVAL_PROOF} file", field="proof")
    doc = parse_json(data[len(head):], what="removal proof")
    if not isinstance(doc, dict) or doc.get("type") != REMOVAL_PROOF:
        raise BadInputError("removal proof body is malformed", field="proof")
    key = parse_vkey(vkey)
    entries, index = {}, {}
    for part in ("old", "new", "removal"):
        try:
            eb = base64.b64decode(doc[part]["entry"], validate=True)
            bundle = doc[part]["tlog_proof"].encode()
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BadInputError(f"removal proof lacks its {part} entry", field="proof") from exc
        e = parse_entry(eb, verify=True)
        bdl, _ = verify_proof_bundle(bundle, key, entry=eb)
        if doc[part].get("index") != bdl.index:  # what is shown and compared is what was verified
            raise ProofError(f"the {part} part names entry {doc[part].get('index')!r} but its inclusion proof is for "
                             f"entry {bdl.index}", expected=bdl.index, found=doc[part].get("index"))
        entries[part], index[part] = e, bdl.index
    old, new, rem = entries["old"], entries["new"], entries["removal"]
    if old.type != DATASET_RECORD or new.type != DATASET_RECORD or rem.type != REMOVAL_RECORD:
        raise ProofError("the entries are not dataset.commit, dataset.commit, dataset.source-removal",
                         expected=[DATASET_RECORD, DATASET_RECORD, REMOVAL_RECORD], found=[old.type, new.type, rem.type])
    if not old.signer == new.signer == rem.signer:  # who may: the dataset's committer (docs/authority.md)
        raise ProofError("a source removal counts only when the dataset's committer signs the removal and the new "
                         "commitment", expected=old.signer, found=sorted({new.signer, rem.signer} - {old.signer}))

    def commitment(e: Any, which: str) -> tuple[bytes, int]:
        root, records = e.body.get("root"), e.body.get("records")
        if not (isinstance(root, str) and len(root) == 64 and all(c in "0123456789abcdef" for c in root)) \
                or type(records) is not int:
            raise ProofError(f"the {which} dataset.commit has no root (64 hex) and record count",
                             expected="root and records", found={"root": root, "records": records})
        return bytes.fromhex(root), records

    (old_root, old_n), (new_root, new_n) = commitment(old, "old"), commitment(new, "new")
    b = rem.body
    checks = {"dataset_index": index["old"], "new_index": index["new"], "old_root": old_root.hex(),
              "new_root": new_root.hex(), "old_records": old_n, "new_records": new_n}
    for k, v in checks.items():
        if b.get(k) != v:
            raise ProofError(f"the removal record's {k} does not match the committed entry", expected=v,
                             found=b.get(k))
    try:
        steps = [_step_from_json(x) for x in doc["steps"]]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadInputError("removal proof steps are malformed", field="proof") from exc
    keys = [st.key for st in steps]
    digest = hashlib.sha256(b"".join(keys)).hexdigest()
    if digest != b.get("removed_keys_sha256") or len(keys) != b.get("removed_keys"):
        raise ProofError("the deleted keys are not the ones the removal record commits to",
                         expected=b.get("removed_keys_sha256"), found=digest)
    calc = delete_all(old_root, steps)
    if calc != new_root:
        raise ProofError("deleting the listed keys from the old root does not give the new root",
                         expected=new_root.hex(), found=calc.hex())
    if old_n - new_n != len(keys):
        raise ProofError("record counts do not differ by the number of removed keys",
                         expected=old_n - len(keys), found=new_n)
    return {"ok": True, "dataset": old.body.get("name"), "old_index": index["old"], "old_root": old_root.hex(),
            "new_dataset": new.body.get("name"), "new_index": index["new"], "new_root": new_root.hex(),
            "removed_sources": b.get("removed_sources"), "removed_keys": len(keys), "old_records": old_n,
            "new_records": new_n, "removal_index": index["removal"],
            "signer": rem.signer, "time": rem.time}
