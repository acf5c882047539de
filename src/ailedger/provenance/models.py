"""Model registration ("model.register" records), verification, part proofs and lineage."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ailedger.authority.service import (
    is_effective_registration,
    model_registration,
    require_model_usable,
    state,
)
from ailedger.encoding.canonical import canonical_json, parse_json
from ailedger.encoding.records import parse_entry
from ailedger.encoding.refs import entry_ref
from ailedger.errors import AiledgerError, BadInputError, NotFoundError, ProofError, VerificationError
from ailedger.provenance.datasets import find_dataset
from ailedger.provenance.entries import (  # noqa: F401 - their names in this module are kept
    DATASET_RECORD,
    MODEL_RECORD,
    _identity_names,
    artifacts_dir,
    entries_found,
    entries_named,
    entry_status,
)
from ailedger.provenance.hashing import HashCache, HashStats, hash_model_dir
from ailedger.provenance.manifest import (
    DEFAULT_CHUNK_SIZE,
    MANIFEST_FORMAT,
    Manifest,
    check_part_proof,
    diff_manifests,
    verify_chunk_digest,
    verify_chunk_list,
)
from ailedger.tlog.note import parse_vkey
from ailedger.tlog.proofbundle import verify_proof_bundle

__all__ = [
    "DATASET_RECORD",
    "MODEL_PART_PROOF",
    "MODEL_RECORD",
    "cache_for",
    "entry_status",
    "find_dataset",
    "find_model",
    "find_model_version",
    "manifest_store",
    "prove_model_part",
    "register_model",
    "verify_model",
    "verify_model_part",
]

MODEL_PART_PROOF = "ailedger-model-part-proof/v1"
MAX_FILES_IN_BODY = 200


def cache_for(ledger: Any) -> HashCache:
    return HashCache(artifacts_dir(ledger) / "hashcache.sqlite")


def manifest_store(ledger: Any) -> Path:
    p = artifacts_dir(ledger) / "manifests"
    p.mkdir(parents=True, exist_ok=True)
    return p


def save_manifest(ledger: Any, m: Manifest) -> tuple[Path, str]:
    data = m.to_bytes()
    p = manifest_store(ledger) / f"{m.root.hex()}.json"
    if not p.exists():
        tmp = p.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, p)
    return p, hashlib.sha256(data).hexdigest()


def load_manifest(ledger: Any, root_hex: str) -> Manifest | None:
    p = manifest_store(ledger) / f"{root_hex}.json"
    if not p.exists():
        return None
    m = Manifest.from_bytes(p.read_bytes())
    if m.root.hex() != root_hex:
        raise ProofError(f"stored manifest {p} does not hash to its name", expected=root_hex, found=m.root.hex())
    return m


def _manifest_root(body: Any) -> Any:
    m = body.get("manifest") if isinstance(body, dict) else None
    return m.get("root") if isinstance(m, dict) else None


def find_model(ledger: Any, ref: str) -> tuple[int, Any]:
    """A model by name (its owner's latest version), ``#INDEX`` or manifest root hex: the effective
    registration by the authority rules (a stranger's registration of an owned name is never found)."""
    return model_registration(ledger, ref)


def find_model_version(ledger: Any, ref: str) -> tuple[int, Any]:
    """:func:`find_model`, and ``NAME@N``: the N-th registration (1 = the first) of NAME by its owner."""
    name, at, n = ref.rpartition("@")
    if not at or not name or not n.isascii() or not n.isdigit():
        return find_model(ledger, ref)
    m = state(ledger).models.models.get(name)
    if m is None or not m.versions:
        raise NotFoundError(f"no registered model named {name!r}", field="model")
    k = int(n)
    if not 1 <= k <= len(m.versions):
        raise NotFoundError(f"model {name} has {len(m.versions)} version(s); there is no version {k}", field="model")
    return m.versions[k - 1], ledger.entry(m.versions[k - 1])


LIST_CAP = 200  # paths listed per kind in a register's answer (the counts are always complete)


def _incremental(ledger: Any, m: Manifest, st: HashStats, prev: tuple[int, Any] | None) -> dict[str, Any]:
    """What this register read and what it took from the hash cache, and, when there is a previous
    version, which files changed since it.  Files from the cache are ones this ledger hashed before and
    whose (real path, size, mtime, ctime, inode, device) have not moved since; nothing else is reused."""
    out: dict[str, Any] = {"rehashed": st.hashed_paths[:LIST_CAP], "reused": st.cached_paths[:LIST_CAP],
                           "rehashed_files": st.files_hashed, "reused_files": st.files_from_cache,
                           "rehashed_bytes": st.bytes_hashed, "reused_bytes": st.bytes_from_cache,
                           "previous": None}
    if prev is None:
        return out
    idx, e = prev
    pm = e.body.get("manifest") or {}
    out["previous"] = {"name": e.body.get("name"), "index": idx, "manifest_root": pm.get("root")}
    theirs: dict[str, str] | None = None
    try:  # the entry is logged by now: a damaged stored manifest only costs the comparison
        exp = load_manifest(ledger, str(pm.get("root")))
    except AiledgerError:
        exp = None
    if exp is not None:
        theirs = {f.path: f.root.hex() for f in exp.files}
    elif isinstance(e.body.get("files"), list):
        try:
            theirs = {str(f["path"]): str(f["root"]) for f in e.body["files"]}
        except (KeyError, TypeError):
            theirs = None
    if pm.get("chunk_size") != m.chunk_size:
        out["previous"]["note"] = (f"the previous version was cut into {pm.get('chunk_size')}-byte chunks, this "
                                   f"one into {m.chunk_size}: their file roots cannot be compared")
        return out
    if theirs is None:
        out["previous"]["note"] = "the previous version's manifest is not stored in this ledger"
        return out
    mine = {f.path: f.root.hex() for f in m.files}
    changed = sorted(p for p in mine.keys() & theirs.keys() if mine[p] != theirs[p])
    kinds = {"changed": changed, "added": sorted(mine.keys() - theirs.keys()),
             "removed": sorted(theirs.keys() - mine.keys()),
             "unchanged": sorted(p for p in mine.keys() & theirs.keys() if mine[p] == theirs[p])}
    for k, v in kinds.items():
        out["previous"][k] = v[:LIST_CAP]
        out["previous"][k + "_files"] = len(v)
    return out


def _name_ok(name: str, what: str) -> None:
    if not name or len(name) > 200 or any(c.isspace() for c in name) or name.startswith("#"):
        raise BadInputError(f"{what} name must be a non-empty word without spaces", field="name")


def register_model(ledger: Any, path: str | os.PathLike[str], name: str, identity: Any, *,
                   datasets: Iterable[str] = (), base: str | None = None, code_repo: str | None = None,
                   code_commit: str | None = None, hyperparameters: dict[str, Any] | None = None,
                   metadata: dict[str, Any] | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
                   workers: int | None = None, progress: bool = False, follow_external_symlinks: bool = False,
                   ignore: Iterable[str] = (), stats: HashStats | None = None,
                   hasher: Callable[..., Manifest] = hash_model_dir, previous: str | None = None) -> dict[str, Any]:
    """Hash, sign and log a model with its lineage. Any error leaves the log unchanged.

    ``hasher``: what hashes the folder (:func:`hashing.hash_model_dir` on this host, or a
    :class:`model_distributed.DaskModelHasher`'s on a Dask cluster: the same manifest either way).
    ``previous`` (NAME, NAME@N, #INDEX or a manifest root; default: the current registration of
    ``name``, if any): the version this one is compared with; the answer's ``incremental`` says which
    files were re-hashed and which were taken from the hash cache, and which changed since then."""
    _name_ok(name, "model")
    prev: tuple[int, Any] | None = None
    if previous:
        prev = find_model_version(ledger, previous)
    else:
        try:
            prev = find_model(ledger, name)
        except AiledgerError:  # a first version (or a name this ledger ignores): nothing to compare with
            prev = None
    ds_refs = []
    for d in datasets:
        idx, e = find_dataset(ledger, d)
        ds_refs.append({"name": e.body.get("name"), "index": idx, "root": e.body.get("root")})
    base_ref = None
    if base:
        idx, e = find_model(ledger, base)
        base_ref = {"name": e.body.get("name"), "index": idx, "manifest_root": e.body["manifest"]["root"]}
    stats = stats if stats is not None else HashStats()
    cache = cache_for(ledger)
    try:
        m = hasher(path, chunk_size=chunk_size, workers=workers, cache=cache, progress=progress,
                   follow_external_symlinks=follow_external_symlinks, ignore=ignore, stats=stats)
    finally:
        cache.close()
    _, doc_sha = save_manifest(ledger, m)
    code: dict[str, Any] = {}
    if code_repo:
        code["repo"] = code_repo
    if code_commit:
        code["commit"] = code_commit
    body: dict[str, Any] = {
        "name": name,
        "manifest": {"format": MANIFEST_FORMAT, "root": m.root.hex(), "chunk_size": m.chunk_size,
                     "files": len(m.files), "bytes": m.total_bytes, "doc_sha256": doc_sha},
        "lineage": {"datasets": ds_refs, "base_model": base_ref, "code": code or None,
                    "hyperparameters": hyperparameters or {}},
        "metadata": metadata or {},
    }
    if len(m.files) <= MAX_FILES_IN_BODY:
        body["files"] = [{"path": f.path, "size": f.size, "root": f.root.hex()} for f in m.files]
    canonical_json(body)  # raises BadInputError on non-JSON metadata before anything is logged
    # its lookup terms (model:, manifest:, trained-on:, base:) come from the signed body, on every write path
    res = ledger.append_record(MODEL_RECORD, body, identity)
    return {"index": res.index, "duplicate": res.duplicate, "name": name, "manifest_root": m.root.hex(),
            "files": len(m.files), "bytes": m.total_bytes, "signer": identity.did,
            "incremental": _incremental(ledger, m, stats, prev)}


def verify_model(ledger: Any, path: str | os.PathLike[str], *, name: str | None = None,
                 chunk_size: int | None = None, workers: int | None = None, progress: bool = False,
                 follow_external_symlinks: bool = False, ignore: Iterable[str] = (),
                 trust_cache: bool = False, hasher: Callable[..., Manifest] = hash_model_dir) -> dict[str, Any]:
    """Re-hash every byte of ``path`` and find the record it matches; else the closest record and
    what differs.  A damaged copy (a safetensors file cut short or with an unreadable header) is a
    mismatch to report, not bad input.

    ``trust_cache``: take the digests of files whose (path, size, mtime, ctime, inode) are in the
    hash cache from there instead of reading them; the answer then says how much came from the
    cache (``from_cache``), since it is only as good as that cache."""
    candidates: list[tuple[int, Any]] = []
    if name:
        candidates = [find_model(ledger, name)]
    else:
        candidates = [(i, e) for i, e in ledger.find(type=MODEL_RECORD) if is_effective_registration(ledger, i)]
        if not candidates:
            raise NotFoundError("no model is registered in this ledger", field="model")
    sizes = sorted({e.body["manifest"]["chunk_size"] for _, e in candidates}, key=lambda c: c != DEFAULT_CHUNK_SIZE)
    if chunk_size:
        sizes = [chunk_size]
    cache = cache_for(ledger) if trust_cache else None
    manifests = {}
    hstats: dict[int, HashStats] = {}
    try:
        for cs in sizes[:3]:
            hstats[cs] = HashStats()
            manifests[cs] = hasher(path, chunk_size=cs, workers=workers, cache=cache, progress=progress,
                                   follow_external_symlinks=follow_external_symlinks, ignore=ignore,
                                   stats=hstats[cs], strict=False)
    finally:
        if cache is not None:
            cache.close()

    def hashing(cs: int) -> dict[str, Any]:
        h = hstats[cs]
        out: dict[str, Any] = {"files_read": h.files_hashed, "bytes_read": h.bytes_hashed,
                               "seconds": round(h.seconds, 3)}
        if trust_cache:
            out["from_cache"] = {"files": h.files_from_cache, "bytes": h.bytes_from_cache}
        return out

    want = entry_ref(name, "model") if name else None
    # exact match? (the term index only finds candidates: the signed body must name this root; ``hash:`` is
    # what every write path indexes, ``manifest:`` what ledgers indexed before that carry)
    for cs, m in manifests.items():
        root = m.root.hex()
        hits = [(i, e) for i, e in entries_found(ledger, MODEL_RECORD, [f"hash:{root}", f"manifest:{root}"],
                                                 lambda b, root=root: _manifest_root(b) == root)
                if e.body["manifest"].get("chunk_size") == cs
                and (name is None or (i == want if want is not None else e.body.get("name") == name))
                and is_effective_registration(ledger, i)]  # a stranger's claim on an owned name is no match
        if hits:
            idx, e = hits[-1]
            # revoked or suspended (by its owner, the DAO or its guardians: services.authority): does not verify
            require_model_usable(ledger, str(e.body.get("name")))
            st = entry_status(ledger, idx)
            return {"ok": True, "name": e.body.get("name"), "manifest_root": m.root.hex(), "record": st,
                    "files": len(m.files), "bytes": m.total_bytes, "differences": [],
                    "lineage": e.body.get("lineage"), "hashing": hashing(cs)}
    # closest record: most files with equal roots
    best = None
    for idx, e in candidates:
        cs = e.body["manifest"]["chunk_size"]
        if cs not in manifests:
            continue
        m = manifests[cs]
        my_roots = {f.path: f.root.hex() for f in m.files}
        theirs = {f["path"]: f["root"] for f in e.body.get("files", [])}
        exp = load_manifest(ledger, e.body["manifest"]["root"])
        if exp is not None:
            theirs = {f.path: f.root.hex() for f in exp.files}
        score = (sum(1 for p, r in theirs.items() if my_roots.get(p) == r)
                 + 0.5 * len(theirs.keys() & my_roots.keys()))
        if best is None or score > best[0] or (score == best[0] and idx > best[1]):
            best = (score, idx, e, exp, m)
    if best is None or (best[0] == 0 and not name):
        root = next(iter(manifests.values())).root.hex()
        raise NotFoundError(f"no registered model matches {path} (manifest root {root}) and none shares a file "
                            "with it; pass --name to compare with a given model", field="model")
    _, idx, e, exp, m = best
    if exp is not None:
        diffs = [d.to_dict() for d in diff_manifests(exp, m)]
    else:
        diffs = []
        theirs = {f["path"]: f for f in e.body.get("files", [])}
        mine = {f.path: f for f in m.files}
        for p in sorted(theirs.keys() - mine.keys()):
            diffs.append({"kind": "missing", "path": p, "detail": f"{p} is in the registered model but missing here"})
        for p in sorted(mine.keys() - theirs.keys()):
            diffs.append({"kind": "extra", "path": p, "detail": f"{p} is here but not in the registered model"})
        for p in sorted(mine.keys() & theirs.keys()):
            if mine[p].size != theirs[p].get("size"):
                diffs.append({"kind": "size", "path": p,
                              "detail": f"{p} was {theirs[p].get('size')} bytes, is {mine[p].size} bytes"})
            if mine[p].root.hex() != theirs[p]["root"]:
                diffs.append({"kind": "file", "path": p, "detail": f"{p} changed (the manifest with chunk "
                              "digests is not in this ledger, so the chunk is not known)"})
            for t in mine[p].tensors or ():
                if t.end > mine[p].size:  # its own header says so
                    diffs.append({"kind": "tensor", "path": p, "tensor": t.name, "change": "beyond-end",
                                  "detail": f"{p} tensor {t.name!r} (bytes {t.begin}..{t.end}) lies beyond the "
                                            f"end of the file (now {mine[p].size} bytes)"})
    st = entry_status(ledger, idx)
    return {"ok": False, "name": e.body.get("name"), "manifest_root": m.root.hex(),
            "expected_root": e.body["manifest"]["root"], "record": st, "files": len(m.files),
            "bytes": m.total_bytes, "differences": diffs, "lineage": e.body.get("lineage"),
            "hashing": hashing(e.body["manifest"]["chunk_size"])}


# -- part proofs: one file or one chunk, O(log n) ---------------------------------------------


def prove_model_part(ledger: Any, ref: str, file_path: str, chunk: int | None = None) -> bytes:
    idx, e = find_model(ledger, ref)
    m = load_manifest(ledger, e.body["manifest"]["root"])
    if m is None:
        raise NotFoundError("the manifest of this model is not stored in this ledger", field="model")
    proof = m.chunk_proof(file_path, chunk) if chunk is not None else m.file_proof(file_path)
    doc = {"type": MODEL_PART_PROOF, "model": e.body.get("name"), "index": idx,
           "entry": base64.b64encode(ledger.entry_bytes(idx)).decode(),
           "tlog_proof": ledger.prove(idx).decode(), **proof}
    return (MODEL_PART_PROOF + "\n").encode() + canonical_json(doc) + b"\n"


def _open_part_proof(data: bytes, vkey: str) -> tuple[dict[str, Any], Any, Any, int]:
    """(document, the logged entry, the checkpoint, the index its inclusion was verified at).

    BadInputError (exit 2) for a file that is not a model part proof (wrong header, not JSON, a field
    missing or of the wrong kind); a VerificationError subclass (exit 1) for one that does not hold."""
    head = (MODEL_PART_PROOF + "\n").encode()
    if not data.startswith(head):
        raise BadInputError(f"not an {MODEL_PART_PROOF} file", field="proof")
    doc = parse_json(data[len(head):], what="model part proof")
    if not isinstance(doc, dict) or doc.get("type", MODEL_PART_PROOF) != MODEL_PART_PROOF:
        raise BadInputError(f"the {MODEL_PART_PROOF} document is not a JSON object of that type", field="proof")
    check_part_proof(doc)
    try:
        entry_bytes = base64.b64decode(doc["entry"], validate=True)
        bundle_bytes = doc["tlog_proof"].encode()
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadInputError("the model part proof needs its entry (base64) and tlog_proof (text)",
                            field="proof") from exc
    e = parse_entry(entry_bytes, verify=True)
    bundle, cp = verify_proof_bundle(bundle_bytes, parse_vkey(vkey), entry=entry_bytes)
    if e.type != MODEL_RECORD:
        raise ProofError(f"the logged entry is a {e.type}, not a {MODEL_RECORD}", expected=MODEL_RECORD, found=e.type)
    logged_root = _manifest_root(e.body)
    if logged_root != doc["manifest_root"]:
        raise ProofError("the proof's manifest root is not the logged one", expected=logged_root,
                         found=doc["manifest_root"])
    if "index" in doc and doc["index"] != bundle.index:  # what is shown must be what was verified
        raise ProofError(f"the proof names entry {doc['index']!r} but its inclusion proof is for entry "
                         f"{bundle.index}", expected=bundle.index, found=doc["index"])
    return doc, e, cp, bundle.index


def verify_model_part(data: bytes, content_path: str | os.PathLike[str], vkey: str) -> dict[str, Any]:
    """Verify one chunk (content = the chunk's bytes, or the whole file) or one whole file
    (streamed chunk by chunk, stopping at the first chunk that differs)."""
    doc, e, cp, index = _open_part_proof(data, vkey)
    root = bytes.fromhex(doc["manifest_root"])
    out = {"model": e.body.get("name"), "index": index, "signer": e.signer, "time": e.time,
           "checkpoint": {"origin": cp.origin, "size": cp.size, "root": cp.root.hex()},
           "file": doc["file"]["path"]}
    p = Path(content_path)
    if "chunk" in doc:
        c = doc["chunk"]
        size = p.stat().st_size
        h, n = hashlib.sha256(), 0
        with open(p, "rb") as fh:  # streamed: the proof's length is not trusted with memory
            if size != c["length"]:
                fh.seek(c["offset"])
            while n < c["length"] and (piece := fh.read(min(1 << 22, c["length"] - n))):
                h.update(piece)
                n += len(piece)
        verify_chunk_digest(doc, h.digest(), n, root)
        out.update({"ok": True, "chunk": c["index"], "bytes": n})
        return out
    digests = verify_chunk_list(doc, root)
    offsets = doc["chunk_offsets"] + [doc["file"]["size"]]
    if p.stat().st_size != doc["file"]["size"]:
        raise VerificationError(f"{doc['file']['path']} has the wrong size", expected=doc["file"]["size"],
                                found=p.stat().st_size)
    with open(p, "rb") as fh:
        for i, d in enumerate(digests):
            h, left = hashlib.sha256(), offsets[i + 1] - offsets[i]
            while left > 0 and (piece := fh.read(min(1 << 22, left))):  # the offsets are the proof's word
                h.update(piece)
                left -= len(piece)
            got = h.digest()
            if got != d:
                raise VerificationError(f"{doc['file']['path']} chunk {i} (bytes {offsets[i]}..{offsets[i + 1]}) "
                                        "differs", expected=d.hex(), found=got.hex(), chunk=i)
    out.update({"ok": True, "chunks": len(digests), "bytes": doc["file"]["size"]})
    return out
