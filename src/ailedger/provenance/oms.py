"""OpenSSF Model Signing (OMS) interoperability: write and verify signatures of the
``model_signing`` 1.x format with elliptic-curve keys.

Format (from the model_signing v1.0 predicate and the DSSE / Sigstore bundle specs):
a Sigstore bundle (``application/vnd.dev.sigstore.bundle.v0.3+json``) whose ``dsseEnvelope`` holds
an in-toto Statement v1 (payload type ``application/vnd.in-toto+json``) with predicate type
``https://model_signing/signature/v1.0``; the predicate lists ``resources`` (name, algorithm,
digest), sorted by name, and the ``serialization`` used (``files`` or ``shards``); the subject digest
is SHA-256 over the concatenated resource digests.  The DSSE signature is ECDSA over the PAE
encoding, with SHA-256/384/512 for P-256/384/521; ``verificationMaterial.publicKey.hint`` is the
hex SHA-256 of the public key's PEM (SubjectPublicKeyInfo).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ailedger.errors import BadInputError, SignatureError, VerificationError
from ailedger.provenance.hashing import HashCache, cpu_workers, hash_files_whole, scan_dir
from ailedger.provenance.manifest import plan_chunks

__all__ = ["BUNDLE_MEDIA_TYPE", "PREDICATE_TYPE", "oms_sign", "oms_verify"]

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
_CURVES: dict[str, type[hashes.HashAlgorithm]] = {"secp256r1": hashes.SHA256, "secp384r1": hashes.SHA384,
                                                  "secp521r1": hashes.SHA512}
_ALGOS = {"sha256": "sha256", "blake2": "blake2b"}


def pae(payload: bytes, payload_type: str = PAYLOAD_TYPE) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def _pem_hint(pub: ec.EllipticCurvePublicKey) -> str:
    pem = pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(pem).hexdigest()


def _curve_hash(pub: ec.EllipticCurvePublicKey) -> hashes.HashAlgorithm:
    name = pub.curve.name
    if name not in _CURVES:
        raise BadInputError(f"OpenSSF model signing takes P-256, P-384 or P-521 keys, not {name}", field="key")
    return _CURVES[name]()


def _rel_inside(directory: str, p: str | os.PathLike[str]) -> str | None:
    rel = os.path.relpath(os.path.abspath(p), os.path.abspath(directory))
    return None if rel.startswith("..") else Path(rel).as_posix()


def _hash_shard(path: str, rel: str, start: int, end: int, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb", buffering=0) as fh:
        fh.seek(start)
        left = end - start
        while left:
            b = fh.read(min(left, 4 << 20))
            if not b:
                raise BadInputError(f"{rel} changed while it was being hashed", field="path")
            h.update(b)
            left -= len(b)
    return h.hexdigest()


def _digests(directory: str, method: str, algo_name: str, shard_size: int | None, ignore: list[str],
             workers: int | None, cache: HashCache | None, progress: bool) -> dict[str, str]:
    if algo_name == "blake3":
        raise BadInputError("blake3 OpenSSF signatures are not supported here; use sha256", field="hash_type")
    if algo_name not in _ALGOS:
        raise BadInputError(f"unknown OpenSSF hash_type {algo_name!r}", field="hash_type")
    algo = _ALGOS[algo_name]
    files = scan_dir(directory, ignore=ignore)
    if method == "files":
        return hash_files_whole(files, algo=algo, workers=workers, cache=cache, progress=progress)
    if method != "shards":
        raise BadInputError(f"unknown OpenSSF serialization method {method!r}", field="method")
    if not shard_size or shard_size <= 0:
        raise BadInputError("shards serialization needs a positive shard_size", field="shard_size")
    jobs = []
    for f in files:
        plan = plan_chunks(f.st.st_size, shard_size)  # an empty file has no shard (as model_signing does)
        for off, ln in plan:
            jobs.append((f"{f.rel}:{off}:{off + ln}", f.path, f.rel, off, off + ln))
    with ThreadPoolExecutor(max_workers=workers or cpu_workers()) as pool:
        res = list(pool.map(lambda j: _hash_shard(j[1], j[2], j[3], j[4], algo), jobs))
    return {j[0]: d for j, d in zip(jobs, res)}


def oms_sign(directory: str, key_pem: str, output: str, *, method: str = "files", shard_size: int | None = None,
             workers: int | None = None, cache: HashCache | None = None, progress: bool = False,
             password: bytes | None = None) -> dict[str, Any]:
    try:
        key = serialization.load_pem_private_key(Path(key_pem).read_bytes(), password)
    except (ValueError, TypeError, OSError) as e:
        raise BadInputError(f"cannot load private key {key_pem}: {e}", field="key") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise BadInputError("OpenSSF model signing's key method takes elliptic-curve keys", field="key")
    hash_alg = _curve_hash(key.public_key())
    ignore = []
    rel_out = _rel_inside(directory, output)
    if rel_out:
        ignore.append(rel_out)
    if method == "shards" and shard_size is None:
        shard_size = 1_000_000_000
    digests = _digests(directory, method, "sha256", shard_size, ignore, workers, cache, progress)
    algorithm = "sha256" if method == "files" else f"sha256-sharded-{shard_size}"
    resources = [{"name": n, "algorithm": algorithm, "digest": digests[n]} for n in sorted(digests)]
    root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources)).hexdigest()
    ser: dict[str, Any] = {"method": method, "hash_type": "sha256", "allow_symlinks": False}
    if method == "shards":
        ser["shard_size"] = shard_size
    if ignore:
        ser["ignore_paths"] = ignore
    name = Path(directory).name or os.path.basename(os.path.abspath(directory))
    statement = {"_type": STATEMENT_TYPE, "subject": [{"name": name, "digest": {"sha256": root}}],
                 "predicateType": PREDICATE_TYPE, "predicate": {"serialization": ser, "resources": resources}}
    payload = json.dumps(statement, sort_keys=True).encode()
    sig = key.sign(pae(payload), ec.ECDSA(hash_alg))
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": _pem_hint(key.public_key())}, "tlogEntries": []},
        "dsseEnvelope": {"payload": base64.b64encode(payload).decode(), "payloadType": PAYLOAD_TYPE,
                         "signatures": [{"sig": base64.b64encode(sig).decode()}]},
    }
    Path(output).write_text(json.dumps(bundle, indent=2) + "\n")
    return {"output": output, "resources": len(resources), "root": root, "method": method,
            "key_curve": key.curve.name}


def oms_verify(directory: str, sig_path: str, pub_pem: str, *, workers: int | None = None,
               progress: bool = False) -> dict[str, Any]:
    """Verify an OMS signature (EC key method) over ``directory``; report differences by name."""
    try:
        bundle = json.loads(Path(sig_path).read_text())
        pub = serialization.load_pem_public_key(Path(pub_pem).read_bytes())
    except (OSError, ValueError) as e:
        raise BadInputError(f"cannot read signature or key: {e}", field="signature") from e
    if not isinstance(pub, ec.EllipticCurvePublicKey):
        raise BadInputError("the public key is not an elliptic-curve key", field="public_key")
    hash_alg = _curve_hash(pub)
    if not isinstance(bundle, dict) or not str(bundle.get("mediaType", "")).startswith(
            "application/vnd.dev.sigstore.bundle"):
        raise BadInputError(f"{sig_path} is not a Sigstore bundle", field="signature")
    hint = (bundle.get("verificationMaterial") or {}).get("publicKey", {}).get("hint")
    if hint and hint != _pem_hint(pub):
        raise SignatureError("the signature names a different public key", expected=hint, found=_pem_hint(pub))
    env = bundle.get("dsseEnvelope") or {}
    if env.get("payloadType") != PAYLOAD_TYPE:
        raise VerificationError("DSSE payload is not an in-toto statement", expected=PAYLOAD_TYPE,
                                found=env.get("payloadType"))
    payload = base64.b64decode(env.get("payload", ""))
    sigs = env.get("signatures") or []
    ok = False
    for s in sigs:
        try:
            pub.verify(base64.b64decode(s.get("sig", "")), pae(payload), ec.ECDSA(hash_alg))
            ok = True
            break
        except InvalidSignature:
            continue
    if not ok:
        raise SignatureError("the DSSE signature does not verify under this public key")
    st = json.loads(payload)
    if st.get("_type") != STATEMENT_TYPE or st.get("predicateType") != PREDICATE_TYPE:
        raise VerificationError("not a model_signing v1.0 statement", expected=PREDICATE_TYPE,
                                found=st.get("predicateType"))
    pred = st["predicate"]
    resources = pred["resources"]
    calc = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources)).hexdigest()
    if calc != st["subject"][0]["digest"]["sha256"]:
        raise VerificationError("statement subject digest does not match its resources",
                                expected=st["subject"][0]["digest"]["sha256"], found=calc)
    ser = pred["serialization"]
    ignore = list(ser.get("ignore_paths", []))
    rel_sig = _rel_inside(directory, sig_path)
    if rel_sig:
        ignore.append(rel_sig)
    actual = _digests(directory, ser["method"], ser["hash_type"], ser.get("shard_size"), ignore, workers, None,
                      progress)
    expected = {r["name"]: r["digest"] for r in resources}
    diffs = []
    for n in sorted(expected.keys() - actual.keys()):
        diffs.append({"kind": "missing", "path": n, "detail": f"{n} is signed but missing here"})
    for n in sorted(actual.keys() - expected.keys()):
        diffs.append({"kind": "extra", "path": n, "detail": f"{n} is here but not signed"})
    for n in sorted(expected.keys() & actual.keys()):
        if expected[n] != actual[n]:
            diffs.append({"kind": "digest", "path": n, "detail": f"{n} differs from the signed digest",
                          "expected": expected[n], "found": actual[n]})
    return {"ok": not diffs, "model_name": st["subject"][0]["name"], "resources": len(resources),
            "serialization": ser, "key_curve": pub.curve.name, "root": calc, "differences": diffs}
