"""Inference shared among three parties (MPyC, Shamir secret sharing, honest majority, semi-honest).

Party 0, the model owner, secret-shares the registered model's weights; party 1, the client, its digit;
party 2 is a helper.  The parties compute the logits and their argmax on shares; only the class is opened,
to the client.  Every party also opens one *fingerprint*: ``sum(c_i * w_i)`` over the shared weights with
public coefficients ``c_i`` drawn from SHA-256 of the run id and the owner's weights commitment (fixed
before any share is sent).  An auditor recomputes it from the registered model folder: equal means the
shared weights were that model's (up to a 2^-16 chance per run for a forged set); the run also checks it
before anything is logged.

:func:`run_mpc` starts the three parties on 127.0.0.1 (ports ``base_port`` .. +2), waits for all of them,
and only when every party finished and the fingerprint matched logs three ``mpc.commit`` entries (one per
party, each signed by that party's identity) in one append.  A party that exits early or a run past its
deadline aborts the run: the other parties are stopped and nothing is logged.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ailedger.encoding.canonical import canonical_json
from ailedger.errors import BadInputError, NetworkError, StorageError, VerificationError
from ailedger.private.binding import RegisteredModel
from ailedger.private.digits import check_input
from ailedger.private.mpc_party import fingerprint_coefficients

__all__ = ["COMMIT_TYPE", "FRAC_BITS", "ROLES", "audit_run", "expected_fingerprint", "file_sha256", "run_mpc"]

COMMIT_TYPE = "mpc.commit"
ROLES = ("owner", "client", "helper")
BIT_LENGTH = 32
FRAC_BITS = 16


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def expected_fingerprint(model: Any, run: str, weights_sha256: str) -> int:
    """``sum(c_i * round(w_i * 2^16))`` over the model's weights in the order the owner shares them
    (W0, b0, W1, b1, ...), as the integer the opened fingerprint times 2^16 must equal."""
    flat = [float(v) for W, b in model.layers for a in (W, b) for v in a.ravel()]
    coeff = fingerprint_coefficients(f"{run}:{weights_sha256}", len(flat))
    return sum(c * round(w * (1 << FRAC_BITS)) for c, w in zip(coeff, flat))


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass


def run_mpc(ledger: Any, reg: RegisteredModel, x: Any, *, base_port: int = 18300, timeout: float = 120.0,
            identities: tuple[Any, Any, Any], on_started: Callable[[list[int]], None] | None = None,
            env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one three-party inference of registered model ``reg`` on digit ``x``; log the parties'
    commitments.  ``identities``: the owner's, the client's and the helper's ledger identities (the owner's
    must be the model's owner key only by convention: the authority rule makes ``mpc.commit`` a statement).
    Raises NetworkError when a party drops out or the deadline passes, VerificationError when the shared
    weights are not the registered model's; nothing is logged then."""
    a = check_input(x)
    if not 1024 <= base_port <= 65533:
        raise BadInputError("base_port must leave three ports below 65536", field="base_port")
    run = os.urandom(16).hex()
    weights = reg.folder / "weights.npz"
    w_sha = file_sha256(weights)
    salt_x = os.urandom(16)
    x_commit = hashlib.sha256(salt_x + canonical_json([float(v) for v in a])).hexdigest()
    shapes = [list(W.shape) for W, _ in reg.model.layers]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ailedger-mpc-") as tmp:
        d = Path(tmp)
        (d / "input.json").write_text(json.dumps(a.tolist()))
        job = {"run": run, "ports": [base_port, base_port + 1, base_port + 2], "bit_length": BIT_LENGTH,
               "frac_bits": FRAC_BITS, "shapes": shapes, "dir": str(d), "weights": str(weights.resolve()),
               "input": str(d / "input.json"), "weights_commitment": w_sha}
        (d / "job.json").write_text(json.dumps(job))
        penv = {**os.environ, **(env or {})}
        errs = [open(d / f"party-{i}.err", "wb") for i in range(3)]  # noqa: SIM115 (closed below)
        procs = [subprocess.Popen([sys.executable, "-m", "ailedger.private.mpc_party", str(d / "job.json"), str(i)],
                                  stdout=subprocess.DEVNULL, stderr=errs[i], env=penv) for i in range(3)]
        try:
            if on_started is not None:
                on_started([p.pid for p in procs])
            deadline = time.monotonic() + timeout
            while True:
                codes = [p.poll() for p in procs]
                bad = [i for i, c in enumerate(codes) if c not in (None, 0)]
                if bad:
                    i = bad[0]
                    err = (d / f"party-{i}.err").read_bytes()[-4000:].decode(errors="replace").strip()
                    last = err.splitlines()[-1] if err else ""
                    raise NetworkError(f"MPC party {i} ({ROLES[i]}) dropped out (exit code {codes[i]}"
                                       f"{': ' + last if last else ''}); the run {run[:12]} is aborted and nothing "
                                       "was logged")
                if all(c == 0 for c in codes):
                    break
                if time.monotonic() > deadline:
                    waiting = [f"{i} ({ROLES[i]})" for i, c in enumerate(codes) if c is None]
                    raise NetworkError(f"MPC run {run[:12]} passed its {timeout:g} s deadline waiting for party "
                                       f"{', '.join(waiting)}; aborted, nothing was logged")
                time.sleep(0.02)
        finally:
            _stop(procs)
            for f in errs:
                f.close()
        seconds = time.perf_counter() - t0
        try:
            outs = [json.loads((d / f"party-{i}.json").read_text()) for i in range(3)]
        except (OSError, ValueError) as exc:
            raise StorageError(f"an MPC party left no result: {exc}; nothing was logged") from None
    fps = {o["fingerprint"] for o in outs}
    want = expected_fingerprint(reg.model, run, w_sha)
    got = round(outs[0]["fingerprint"] * (1 << FRAC_BITS))
    if len(fps) != 1 or got != want:
        raise VerificationError(f"the weights the owner shared in run {run[:12]} are not those of the registered "
                                f"model {reg.name} (fingerprint mismatch); nothing was logged",
                                expected=str(want), found=str(got))
    cls = int(outs[1]["class"])
    base = {"run": run, "model": reg.name, "model_index": reg.index, "parties": 3, "threshold": 1,
            "ports": job["ports"], "fingerprint": outs[0]["fingerprint"], "frac_bits": FRAC_BITS}
    bodies = [
        {**base, "party": 0, "role": "owner", "manifest_root": reg.manifest_root,
         "weights": {"path": "weights.npz", "sha256": w_sha}, "commitment": w_sha},
        {**base, "party": 1, "role": "client", "commitment": x_commit},
        {**base, "party": 2, "role": "helper",
         "commitment": hashlib.sha256(canonical_json({"run": run, "fingerprint": outs[2]["fingerprint"],
                                                      "owner": w_sha, "client": x_commit})).hexdigest()},
    ]
    entries = [ledger.make_entry(COMMIT_TYPE, b, ident) for b, ident in zip(bodies, identities)]
    res = ledger.append_entries([e.leaf_bytes for e in entries], parallel=False)
    failed = [r for r in res if isinstance(r, str)]
    if failed:
        raise StorageError(f"the MPC commitments were not all logged: {failed[0]}")
    return {"ok": True, "run": run, "class": cls, "model": reg.name, "model_index": reg.index,
            "indices": [r.index for r in res if not isinstance(r, str)], "seconds": round(seconds, 3),
            "bytes_sent": sum(int(o.get("bytes_sent", 0)) for o in outs),
            "client_opening": {"salt": salt_x.hex(), "commitment": x_commit},
            "fingerprint": outs[0]["fingerprint"]}


def audit_run(ledger: Any, run: str, reg: RegisteredModel) -> dict[str, Any]:
    """Check a logged run against a registered model folder (:func:`~ailedger.private.binding.registered_model`):
    its manifest root and weights digest must be those the owner's commitment names, and the fingerprint
    the parties opened must be that folder's weights'.  VerificationError naming the first difference."""
    hits = [e for _, e in ledger.find(type=COMMIT_TYPE) if e.body.get("run") == run]
    if not hits:
        raise BadInputError(f"no mpc.commit entries for run {run} in this ledger", field="run")
    by_role = {e.body.get("role"): e for e in hits}
    if set(by_role) != set(ROLES):
        raise VerificationError(f"run {run} does not have one commitment per party", expected="owner, client, helper",
                                found=", ".join(sorted(str(r) for r in by_role)))
    owner = by_role["owner"].body
    fps = {e.body.get("fingerprint") for e in hits}
    if len(fps) != 1:
        raise VerificationError(f"the parties of run {run} logged different fingerprints", expected="one value",
                                found=str(sorted(map(str, fps))))
    if reg.manifest_root != owner.get("manifest_root"):
        raise VerificationError(f"run {run} names model manifest {str(owner.get('manifest_root'))[:16]}..., not "
                                f"{reg.name}'s registered {reg.manifest_root[:16]}...",
                                expected=str(owner.get("manifest_root")), found=reg.manifest_root)
    folder = reg.folder
    w_sha = file_sha256(folder / "weights.npz")
    if w_sha != owner.get("weights", {}).get("sha256"):
        raise VerificationError(f"{folder}/weights.npz is not the weights file the owner committed to in run {run}",
                                expected=str(owner.get("weights", {}).get("sha256")), found=w_sha)
    want = expected_fingerprint(reg.model, run, w_sha)
    got = round(float(owner["fingerprint"]) * (1 << FRAC_BITS))
    if want != got:
        raise VerificationError(f"the weights shared in run {run} are not those of {folder}", expected=str(want),
                                found=str(got))
    return {"ok": True, "run": run, "model": owner.get("model"), "model_index": owner.get("model_index"),
            "manifest_root": owner.get("manifest_root"), "signers": {r: by_role[r].signer for r in ROLES}}
