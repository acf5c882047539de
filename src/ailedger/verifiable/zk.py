"""Zero-knowledge proofs of inference with EZKL, bound to a registered model (docs/zk.md).

``setup_circuit``   compiles an ONNX model into an EZKL (Halo2, KZG) circuit, runs the key set-up and logs a
                    ``model.zk`` entry binding: the registered model (its ``model.register`` index and
                    manifest root), the ONNX file's digest and its file root in that manifest, the digests of
                    the circuit settings, the compiled circuit, the verifying key and the SRS, and the
                    visibility of input, output and parameters (``hashed`` / ``public`` / ``private``; the
                    hash of hashed parameters too).  Only the model's owner may log it, for a usable model.
``prove_call``      runs one call through the circuit, proves it and logs the call as an inference record
                    whose ``meta.zk`` carries the proof's digest and the circuit's public commitments to the
                    input and output (Poseidon hashes, or the quantised values when public).
``prove_receipt``   proves an already logged call after the fact (sampling, an auditor's demand) from its
                    stored input, and logs an ``inference.zk`` statement naming the proof's digest.
``verify_zk``       checks a proof bundle offline against the ledger: the proof (EZKL), the verifying key,
                    settings and SRS against the digests logged in ``model.zk``, the entry's authority, the
                    model's status (revoked or suspended: refused), and the proof's public instances against
                    the commitments in the call's record.

EZKL is imported inside the functions that use it.  Everything runs offline: the SRS is a file (a test-only
one from ``ezkl.gen_srs``, or a public ceremony's file sized to the circuit's logrows for production).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ailedger.authority.service import model_registration, model_status, zk_setup_allowed
from ailedger.encoding.canonical import parse_json
from ailedger.errors import BadInputError, NotFoundError, ProofError, VerificationError
from ailedger.inference.codec import canonical_payload, parse_record
from ailedger.inference.payloads import inference_dir
from ailedger.inference.receipts import disclose, receipt_proof, verify_receipt_proof
from ailedger.inference.sdk import InferenceTrail
from ailedger.inference.store import RecordStore
from ailedger.tlog.merkle import leaf_hash, root_from_leaf_hashes
from ailedger.verifiable.fields import argmax, pick_vector, served_class

__all__ = [
    "INFERENCE_ZK_TYPE",
    "PROOF_FORMAT",
    "VISIBILITIES",
    "ZK_TYPE",
    "artefact_dir",
    "find_setup",
    "forward",
    "proof_digest",
    "prove_call",
    "prove_receipt",
    "setup_circuit",
    "verify_zk",
]

ZK_TYPE = "model.zk"
INFERENCE_ZK_TYPE = "inference.zk"
PROOF_FORMAT = "ailedger-zk-proof/v1"
VISIBILITIES = ("hashed", "public", "private")
PARAM_VISIBILITIES = ("fixed", "hashed", "private")
EZKL_VERSION = "23.0.5"


_DIGESTS: dict[tuple[int, int, int, int, int], str] = {}


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, remembered in this process while its device, inode, size, mtime and ctime stay the
    same (a verifier checking many proofs hashes the SRS and key once)."""
    st = os.stat(path)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    got = _DIGESTS.get(key)
    if got is None:
        got = _DIGESTS[key] = _sha256_now(path)
        if len(_DIGESTS) > 256:
            _DIGESTS.pop(next(iter(_DIGESTS)))
    return got


def _sha256_now(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_root(path: Path, chunk_size: int) -> str:
    """The file's root as a model manifest computes it for a plain file (RFC 6962 tree over the SHA-256 of its
    fixed-size chunks; provenance/manifest.py)."""
    leaves = []
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            leaves.append(leaf_hash(hashlib.sha256(chunk).digest()))
    return root_from_leaf_hashes(leaves).hex()


def artefact_dir(ledger: Any) -> Path:
    p = Path(ledger.path) / "zk"
    p.mkdir(parents=True, exist_ok=True)
    return p


def _ezkl() -> Any:
    import ezkl

    return ezkl


def proof_digest(proof: dict[str, Any]) -> str:
    """SHA-256 of the RFC 8785 JSON of the parts of an EZKL proof file the proof covers: ``{"instances": [[hex
    field elements]], "proof": hex of the proof bytes}`` (``pretty_public_inputs`` and ``hex_proof`` are not
    covered by the proof, and are left out)."""
    try:
        raw = bytes(proof["proof"]).hex() if isinstance(proof["proof"], list) else str(proof["proof"])
        inst = proof["instances"]
        if not isinstance(inst, list) or not all(isinstance(r, list) and all(isinstance(x, str) for x in r)
                                                 for r in inst):
            raise TypeError("instances must be lists of hex strings")
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInputError(f"not an EZKL proof: {exc}", field="proof") from exc
    return hashlib.sha256(canonical_payload({"instances": inst, "proof": raw.removeprefix("0x")})).hexdigest()


def _input_vector(data: Any, n: int) -> list[float]:
    """One call's input: a flat list of numbers (or EZKL's ``{"input_data": [[...]]}``) of length n."""
    if isinstance(data, dict) and "input_data" in data:
        data = data["input_data"]
        if isinstance(data, list) and len(data) == 1 and isinstance(data[0], list):
            data = data[0]
    if not isinstance(data, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in data):
        raise BadInputError("the input must be a JSON list of numbers (or EZKL's {\"input_data\": [[...]]})",
                            field="input")
    if len(data) != n:
        raise BadInputError(f"the circuit takes {n} input values, the input has {len(data)}", field="input",
                            expected=n, found=len(data))
    return [float(x) for x in data]


def _instance_parts(witness: dict[str, Any], vis: dict[str, str]) -> dict[str, list[str]]:
    """What the circuit makes public for each part, from a witness: the Poseidon hash (hashed), the quantised
    field elements (public), nothing (private / fixed).  In EZKL's instance order: input, params, output."""
    out: dict[str, list[str]] = {}
    for part, key in (("input", "inputs"), ("params", "params"), ("output", "outputs")):
        v = vis[part]
        if v == "hashed":
            out[part] = list(witness[f"processed_{key}"]["poseidon_hash"])
        elif v == "public" and key != "params":
            out[part] = [x for row in witness[key] for x in row]
        else:
            out[part] = []
    return out


def _run_args(vis: dict[str, str], scale: int | None) -> Any:
    ezkl = _ezkl()
    ra = ezkl.PyRunArgs()
    ra.input_visibility = vis["input"]
    ra.output_visibility = vis["output"]
    ra.param_visibility = vis["params"]
    if scale is not None:
        ra.input_scale = scale
        ra.param_scale = scale
    return ra


def setup_circuit(ledger: Any, onnx_path: str | os.PathLike[str], name: str, identity: Any, *,
                  input_visibility: str = "hashed", output_visibility: str = "hashed",
                  param_visibility: str = "fixed", calibration: Sequence[Sequence[float]] | None = None,
                  scale: int | None = None, srs: str | os.PathLike[str] | None = None,
                  progress: Any = None) -> dict[str, Any]:
    """Compile ``onnx_path`` for the registered model ``name``, set up its keys and log ``model.zk``.

    ``srs``: an SRS file for the circuit's logrows (a public ceremony's); None makes a test-only local one
    with ``ezkl.gen_srs`` (anyone who made it can forge proofs: tests and demos only)."""
    ezkl = _ezkl()
    step = progress or (lambda _msg: None)
    vis = {"input": input_visibility, "output": output_visibility, "params": param_visibility}
    for part in ("input", "output"):
        if vis[part] not in VISIBILITIES:
            raise BadInputError(f"{part} visibility must be one of {', '.join(VISIBILITIES)}", field=part,
                                found=vis[part])
    if vis["params"] not in PARAM_VISIBILITIES:
        raise BadInputError(f"parameter visibility must be one of {', '.join(PARAM_VISIBILITIES)}",
                            field="params", found=vis["params"])
    src = Path(onnx_path)
    if not src.is_file():
        raise BadInputError(f"no ONNX file at {src}", field="model")
    reg_index, reg = model_registration(ledger, name)
    st = model_status(ledger, name)
    if not st.usable:
        raise VerificationError(f"model {name} is {st.state}: {st.describe()}; no circuit may be bound to it",
                                expected="a usable model", found=st.state)
    manifest = reg.body.get("manifest") or {}
    chunk = int(manifest.get("chunk_size") or 4 << 20)
    root = file_root(src, chunk)
    files = reg.body.get("files")
    if not isinstance(files, list) or root not in {f.get("root") for f in files if isinstance(f, dict)}:
        raise VerificationError(f"{src.name} is not a file of registered model {name} (entry #{reg_index}): its "
                                "file root is not in the model's manifest", expected="a file of the manifest",
                                found=root)
    import onnx

    graph = onnx.load(str(src)).graph
    dims = [d.dim_value or 1 for d in graph.input[0].type.tensor_type.shape.dim]
    n_in = 1
    for d in dims:
        n_in *= d
    work = Path(tempfile.mkdtemp(prefix="zk-setup-", dir=artefact_dir(ledger)))
    try:
        shutil.copyfile(src, work / "net.onnx")
        model_p, settings_p, circuit_p = work / "net.onnx", work / "settings.json", work / "circuit.ezkl"
        step("settings")
        ezkl.gen_settings(str(model_p), str(settings_p), py_run_args=_run_args(vis, scale))
        rows = [list(map(float, r)) for r in (calibration or [])] or [[0.0] * n_in]
        for r in rows:
            _input_vector(r, n_in)
        if scale is None:
            step("calibrate")
            # EZKL calibrates on one input of the circuit's shape: the first typical input (the others are
            # only checked for their length)
            (work / "cal1.json").write_text(json.dumps({"input_data": [rows[0]]}))
            ezkl.calibrate_settings(str(work / "cal1.json"), str(model_p), str(settings_p), "resources")
        step("compile")
        ezkl.compile_circuit(str(model_p), str(circuit_p), str(settings_p))
        settings = json.loads(settings_p.read_text())
        logrows = int(settings["run_args"]["logrows"])
        srs_p = work / "kzg.srs"
        if srs is None:
            step(f"test-only SRS (2^{logrows})")
            ezkl.gen_srs(str(srs_p), logrows)
            srs_kind = "local-test-only"
        else:
            shutil.copyfile(srs, srs_p)
            srs_kind = "supplied"
        step("keys")
        (work / "in.json").write_text(json.dumps({"input_data": [rows[0]]}))
        witness = ezkl.gen_witness(str(work / "in.json"), str(circuit_p), str(work / "witness.json"))
        ezkl.setup(str(circuit_p), str(work / "vk.key"), str(work / "pk.key"), str(srs_p))
        parts = _instance_parts(witness, vis)
        body: dict[str, Any] = {
            "model": name, "model_index": reg_index, "manifest_root": manifest.get("root"),
            "onnx": {"sha256": sha256_file(model_p), "file_root": root, "bytes": model_p.stat().st_size,
                     "input_shape": dims},
            "circuit": {"sha256": sha256_file(circuit_p), "logrows": logrows,
                        "settings_sha256": sha256_file(settings_p),
                        "input_scale": settings["run_args"]["input_scale"],
                        "output_scales": settings.get("model_output_scales"),
                        "instances": {k: len(v) for k, v in parts.items()}},
            "vk_sha256": sha256_file(work / "vk.key"),
            "srs": {"sha256": sha256_file(srs_p), "kind": srs_kind},
            "visibility": vis, "proof_system": "ezkl/halo2-kzg-bn254", "ezkl": ezkl_version(),
        }
        if vis["params"] == "hashed":
            body["params_hash"] = parts["params"][0]
        final = artefact_dir(ledger) / body["vk_sha256"][:32]
        res = ledger.append_record(ZK_TYPE, body, identity)
        if final.exists():
            shutil.rmtree(work)
        else:
            os.replace(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return {"ok": True, "index": res.index, "model": name, "model_index": reg_index, "dir": str(final),
            "logrows": logrows, "vk_sha256": body["vk_sha256"], "visibility": vis, "srs": srs_kind,
            "pk_bytes": (final / "pk.key").stat().st_size}


def ezkl_version() -> str:
    from importlib.metadata import version

    return version("ezkl")


def find_setup(ledger: Any, ref: str | int) -> tuple[int, Any]:
    """A ``model.zk`` entry: ``#N`` / N, or a model name (the latest effective binding for it)."""
    if isinstance(ref, int) or (isinstance(ref, str) and ref.lstrip("#").isdigit()):
        idx = int(str(ref).lstrip("#"))
        if not 0 <= idx < ledger.size:
            raise NotFoundError(f"no entry #{idx} in this ledger", field="setup")
        e = ledger.entry(idx)
        if e.type != ZK_TYPE:
            raise NotFoundError(f"entry #{idx} is a {e.type}, not a {ZK_TYPE}", field="setup")
        return idx, e
    best = None
    for idx, e in ledger.find(type=ZK_TYPE):
        if e.body.get("model") == ref and zk_setup_allowed(ledger, e, idx) is None:
            best = (idx, e)
    if best is None:
        raise NotFoundError(f"no circuit is bound to model {ref!r} (run: ailedger model zk-setup)", field="model")
    return best


def _files(ledger: Any, entry: Any) -> dict[str, Path]:
    d = Path(ledger.path) / "zk" / str(entry.body["vk_sha256"])[:32]
    return {"dir": d, "settings": d / "settings.json", "circuit": d / "circuit.ezkl", "vk": d / "vk.key",
            "pk": d / "pk.key", "srs": d / "kzg.srs"}


def forward(ledger: Any, setup: tuple[int, Any], data: Any, work: Path) -> tuple[list[float], dict[str, Any], list[float]]:
    """Run one input through the circuit (EZKL's witness: the quantised forward pass, milliseconds):
    (input, the circuit's public parts, output as floats)."""
    ezkl = _ezkl()
    _idx, e = setup
    f = _files(ledger, e)
    if not f["circuit"].exists():
        raise NotFoundError(f"the circuit files of model.zk #{_idx} are not in {f['dir']}", field="setup")
    n_in = 1
    for d in e.body["onnx"]["input_shape"]:
        n_in *= int(d)
    x = _input_vector(data, n_in)
    (work / "in.json").write_text(json.dumps({"input_data": [x]}))
    w = ezkl.gen_witness(str(work / "in.json"), str(f["circuit"]), str(work / "witness.json"))
    parts = _instance_parts(w, e.body["visibility"])
    scales = e.body["circuit"].get("output_scales") or [e.body["circuit"]["input_scale"]]
    out = [float(ezkl.felt_to_float(v, scales[0])) for row in w["outputs"] for v in row]
    return x, parts, out


def _prove(ledger: Any, e: Any, work: Path) -> dict[str, Any]:
    ezkl = _ezkl()
    f = _files(ledger, e)
    ezkl.prove(str(work / "witness.json"), str(f["circuit"]), str(f["pk"]), str(work / "proof.json"), str(f["srs"]))
    proof: dict[str, Any] = json.loads((work / "proof.json").read_text())
    return proof


def _bundle(model: str, setup_index: int, rid: str, proof: dict[str, Any]) -> dict[str, Any]:
    return {"format": PROOF_FORMAT, "model": model, "setup": setup_index, "receipt": rid,
            "proof_sha256": proof_digest(proof), "proof": proof}


def prove_call(ledger: Any, model: str, data: Any, *, operator: str = "inference", caller: str | None = None,
               defer: bool = False) -> dict[str, Any]:
    """Run, prove (unless ``defer``) and log one call of ``model``; the record's ``meta.zk`` carries the
    circuit's commitments to input and output and the proof's digest.  Returns the proof bundle (no
    ``proof`` when deferred) with timings."""
    setup = find_setup(ledger, model)
    why = zk_setup_allowed(ledger, setup[1], setup[0])
    if why is not None:
        raise VerificationError(f"model.zk #{setup[0]} has no effect: {why}")
    work = Path(tempfile.mkdtemp(prefix="zk-prove-", dir=artefact_dir(ledger)))
    try:
        t0 = time.perf_counter()
        x, parts, out = forward(ledger, setup, data, work)
        t1 = time.perf_counter()
        proof = None if defer else _prove(ledger, setup[1], work)
        t2 = time.perf_counter()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    zk: dict[str, Any] = {"setup": setup[0], "in": parts["input"], "out": parts["output"]}
    if parts["params"]:
        zk["params"] = parts["params"]
    if proof is not None:
        zk["proof"] = proof_digest(proof)
    with InferenceTrail(ledger, model, mode="durable", operator=operator, caller=caller) as trail:
        rid = str(trail.record(x, out, meta={"zk": zk}))
    res: dict[str, Any] = {"format": PROOF_FORMAT, "model": model, "setup": setup[0], "receipt": rid,
                           "output": out, "forward_seconds": round(t1 - t0, 4), "prove_seconds": round(t2 - t1, 3),
                           "receipt_proof": receipt_proof(ledger, rid)}
    if proof is not None:
        res.update({"proof_sha256": zk["proof"], "proof": proof})
    return res


_STORES: dict[str, RecordStore] = {}
_STORES_LOCK = threading.Lock()


def _record(ledger: Any, rid: str) -> dict[str, Any]:
    """The record of call ``rid`` (one read-only record store kept open per ledger folder in this process: a
    verifier checking many proofs opens it once)."""
    key = str(Path(ledger.path).resolve())
    with _STORES_LOCK:
        rs = _STORES.get(key)
        if rs is None:
            rs = _STORES[key] = RecordStore(inference_dir(ledger.path), durable=False)
        got = rs.record(rid)
    if got is None:
        raise NotFoundError(f"no inference record with receipt {rid} in this ledger", field="receipt")
    return parse_record(got[0])


def prove_receipt(ledger: Any, rid: str, identity: Any) -> dict[str, Any]:
    """Prove an already logged call from its stored input (sampling, or an auditor's demand) and log an
    ``inference.zk`` statement.  A call whose input no longer runs to the logged commitments through the
    bound circuit (the model was swapped for that call) is a finding: VerificationError, nothing logged."""
    rec = _record(ledger, rid)
    zk = (rec.get("meta") or {}).get("zk")
    if not isinstance(zk, dict) or not isinstance(zk.get("setup"), int):
        raise VerificationError(f"record {rid} carries no circuit commitments (meta.zk): it cannot be proven "
                                "after the fact", expected="meta.zk", found=None)
    setup = find_setup(ledger, zk["setup"])
    d = disclose(ledger, rid)
    if d["input"] is None:
        raise NotFoundError(f"the input of {rid} is not stored", field="receipt")
    data = parse_json(d["input"].encode(), what="input")
    if "input_field" in zk:  # a gateway call: the circuit's input is a field of the stored request
        data = pick_vector(data, zk["input_field"])
    work = Path(tempfile.mkdtemp(prefix="zk-prove-", dir=artefact_dir(ledger)))
    try:
        t0 = time.perf_counter()
        _x, parts, circ_out = forward(ledger, setup, data, work)
        if parts["input"] != zk.get("in") or parts["output"] != zk.get("out"):
            raise VerificationError(f"call {rid}: the bound circuit of model {rec['model']} does not give the "
                                    "logged commitments for the logged input: the call was not served by it",
                                    expected={"in": zk.get("in"), "out": zk.get("out")},
                                    found={"in": parts["input"], "out": parts["output"]})
        if isinstance(zk.get("output_field"), str):  # a gateway call: what it served must be what the circuit gives
            if d["output"] is None:
                raise NotFoundError(f"the answer of {rid} is not stored", field="receipt")
            served = served_class(parse_json(d["output"].encode(), what="output"), zk["output_field"])
            if served != argmax(circ_out):
                raise VerificationError(f"call {rid}: the answer served names class {served}, the bound circuit of "
                                        f"model {rec['model']} gives class {argmax(circ_out)} for the logged input: "
                                        "the call was not served by it", expected=argmax(circ_out), found=served)
        proof = _prove(ledger, setup[1], work)
        t1 = time.perf_counter()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    digest = proof_digest(proof)
    res = ledger.append_record(INFERENCE_ZK_TYPE, {"receipt": rid, "model": rec["model"], "setup": setup[0],
                                                   "proof_sha256": digest}, identity, terms=[f"receipt:{rid}"])
    out = _bundle(rec["model"], setup[0], rid, proof)
    out.update({"index": res.index, "prove_seconds": round(t1 - t0, 3), "receipt_proof": receipt_proof(ledger, rid)})
    return out


def logged_proofs(ledger: Any, rid: str) -> set[str]:
    """The proof digests logged for call ``rid`` (its record's ``meta.zk.proof`` excluded)."""
    found = set()
    for _i, e in ledger.find(type=INFERENCE_ZK_TYPE, term=f"receipt:{rid}"):
        if e.body.get("receipt") == rid and isinstance(e.body.get("proof_sha256"), str):
            found.add(e.body["proof_sha256"])
    return found


def _bundle_record(ledger: Any, bundle: dict[str, Any], rid: str) -> dict[str, Any]:
    """The call's record: from this ledger's record store (the operator's folder), else from the receipt proof
    the bundle carries, checked against this log's key (an auditor with a copy of the log and no records)."""
    try:
        return _record(ledger, rid)
    except NotFoundError:
        doc = bundle.get("receipt_proof")
        if not isinstance(doc, dict):
            raise
    res = verify_receipt_proof(doc, ledger.verifier)  # VerificationError subclasses when it does not hold
    if res["receipt"] != rid:
        raise VerificationError("the bundle's receipt proof is for another call", expected=rid, found=res["receipt"])
    rec: dict[str, Any] = res["record"]
    return rec


def _flat(instances: Any) -> list[str]:
    if not isinstance(instances, list) or not all(isinstance(r, list) for r in instances):
        raise BadInputError("the proof's instances must be a list of lists", field="proof.instances")
    return [str(x) for r in instances for x in r]


def verify_zk(ledger: Any, bundle: dict[str, Any], *, vk: str | None = None, settings: str | None = None,
              srs: str | None = None) -> dict[str, Any]:
    """Check a proof bundle offline: see the module docstring.  Raises VerificationError (or a subclass)
    naming the first check that fails; BadInputError for a malformed bundle."""
    t_start = time.perf_counter()
    if not isinstance(bundle, dict) or bundle.get("format") != PROOF_FORMAT:
        raise BadInputError(f"not an {PROOF_FORMAT} document", field="format")
    proof, rid, setup_ref = bundle.get("proof"), bundle.get("receipt"), bundle.get("setup")
    if not isinstance(proof, dict) or not isinstance(rid, str) or type(setup_ref) is not int:
        raise BadInputError("a proof bundle needs proof (object), receipt (string) and setup (entry index)")
    digest = proof_digest(proof)
    instances = _flat(proof.get("instances"))
    try:
        idx, e = find_setup(ledger, setup_ref)
    except NotFoundError as exc:
        raise VerificationError(f"the proof names no circuit of this log: {exc.message}",
                                expected=ZK_TYPE, found=f"#{setup_ref}") from exc
    why = zk_setup_allowed(ledger, e, idx)
    if why is not None:
        raise VerificationError(f"model.zk #{idx} has no effect: {why}", expected="an effective model.zk")
    body = e.body
    model = body["model"]
    rec = _bundle_record(ledger, bundle, rid)
    if rec.get("model") != model:
        raise VerificationError(f"the proof is for model {model}'s circuit (model.zk #{idx}), but call {rid} was "
                                f"logged for model {rec.get('model')}", expected=rec.get("model"), found=model)
    st = model_status(ledger, model)
    if not st.usable:
        raise VerificationError(f"model {model} is {st.state}: {st.describe()}", expected="a usable model",
                                found=st.state)
    # the files the verifier uses: each must be the one the log names
    f = _files(ledger, e)
    paths = {"vk": Path(vk) if vk else f["vk"], "settings": Path(settings) if settings else f["settings"],
             "srs": Path(srs) if srs else f["srs"]}
    for what, p in paths.items():
        if not p.is_file():
            raise BadInputError(f"no {what} file at {p}", field=what)
    logged = {"vk": body["vk_sha256"], "settings": body["circuit"]["settings_sha256"], "srs": body["srs"]["sha256"]}
    for what in ("vk", "settings", "srs"):
        got = sha256_file(paths[what])
        if got != logged[what]:
            others = [i for i, o in ledger.find(type=ZK_TYPE) if what == "vk" and o.body.get("vk_sha256") == got]
            where = (f"it is the key of model.zk #{others[0]}" if others else "it is in no model.zk entry of this log")
            raise VerificationError(f"the {'verifying key' if what == 'vk' else what} is not the one logged for "
                                    f"model {model} at model.zk #{idx}: {where}", expected=logged[what], found=got)
    # the call's record: its commitments, and that this proof is the one logged for it
    zk = (rec.get("meta") or {}).get("zk")
    if not isinstance(zk, dict) or zk.get("setup") != idx:
        raise VerificationError(f"call {rid} was not logged with the commitments of model.zk #{idx}",
                                expected=idx, found=None if not isinstance(zk, dict) else zk.get("setup"))
    n = body["circuit"]["instances"]
    if len(instances) != n["input"] + n["params"] + n["output"]:
        raise VerificationError("the proof's public instances do not have the circuit's layout",
                                expected=n, found=len(instances))
    p_in = instances[:n["input"]]
    p_params = instances[n["input"]:n["input"] + n["params"]]
    p_out = instances[n["input"] + n["params"]:]
    if p_in != zk.get("in"):
        raise VerificationError(f"the proof's public input differs from the commitment in record {rid}",
                                expected=zk.get("in"), found=p_in)
    if p_out != zk.get("out"):
        raise VerificationError(f"the proof's public output differs from the commitment in record {rid}",
                                expected=zk.get("out"), found=p_out)
    if body["visibility"]["params"] == "hashed" and p_params != [body.get("params_hash")]:
        raise VerificationError("the proof's parameter hash is not the one logged in model.zk: other weights",
                                expected=body.get("params_hash"), found=p_params)
    known = logged_proofs(ledger, rid) | ({zk["proof"]} if isinstance(zk.get("proof"), str) else set())
    if digest not in known:
        raise VerificationError(f"this proof is not the one logged for call {rid}", expected=sorted(known) or None,
                                found=digest)
    # the proof itself (EZKL raises on a bad proof rather than returning False; it reads a file)
    ezkl = _ezkl()
    fd, tmp = tempfile.mkstemp(suffix=".json", prefix="verify-", dir=f["dir"])
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(proof))
        t0 = time.perf_counter()
        try:
            ok = ezkl.verify(tmp, str(paths["settings"]), str(paths["vk"]), str(paths["srs"]))
        except Exception as exc:
            raise ProofError(f"the zero-knowledge proof does not verify against the logged key: {exc}") from exc
        t_ezkl = time.perf_counter() - t0
    finally:
        os.unlink(tmp)
    t_bind = time.perf_counter() - t_start - t_ezkl  # everything ailedger adds around EZKL's verify
    if ok is not True:
        raise ProofError("the zero-knowledge proof does not verify against the logged key")
    return {"ok": True, "receipt": rid, "model": model, "setup": idx, "model_index": body["model_index"],
            "manifest_root": body["manifest_root"], "status": st.state, "proof_sha256": digest,
            "visibility": body["visibility"], "ezkl_verify_seconds": round(t_ezkl, 5),
            "binding_seconds": round(t_bind, 5)}
