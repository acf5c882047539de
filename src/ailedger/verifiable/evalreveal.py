"""Verified AI with delayed publication: commit, then reveal, a model's claimed scores and a hidden test set.

A model owner logs ``eval.commit`` (role ``model``) binding ``SHA-256(salt || JCS(content))`` where content is
the model file's SHA-256, its registered manifest root when given, and the scores it claims; a test-set owner
logs ``eval.commit`` (role ``data``) for its test set's SHA-256.  Both name the evaluation and a reveal
deadline.  At reveal time each logs ``eval.reveal`` with the salt and content; ``verify_eval`` then checks,
from the log and the published files alone: both commitments exist and were logged before either reveal
(so neither side could tune to the other), each reveal opens its commitment and is on time, the files are
the committed ones, and the scores recomputed from the revealed model on the revealed test set (ONNX Runtime,
accuracy) equal the claimed ones.  Each failure is a finding.

The test set is an ``.npz`` file holding ``X`` (float32 features) and ``y`` (integer labels); the model an
ONNX file whose first output is class scores or labels.  Time lock: the deadline is enforced by the log's
entry times (a reveal logged after it is a finding), not by timelock encryption (docs/zk.md says why).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from ailedger.authority.service import eval_reveal_allowed, model_registration
from ailedger.encoding.canonical import canonical_json
from ailedger.encoding.times import time_ms
from ailedger.errors import BadInputError, NotFoundError, VerificationError

__all__ = ["COMMIT_TYPE", "REVEAL_TYPE", "commit", "recompute_scores", "reveal", "verify_eval"]

COMMIT_TYPE = "eval.commit"
REVEAL_TYPE = "eval.reveal"
OPENING_FORMAT = "ailedger-eval-opening/v1"
ROLES = ("model", "data")


def _sha256(path: Path) -> str:
    if not path.is_file():
        raise BadInputError(f"no file at {path}", field="file")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest_root(ledger: Any, ref: str) -> str:
    """A manifest root given as 64 hex digits, or the root of the registration NAME / #INDEX names."""
    if len(ref) == 64 and all(c in "0123456789abcdef" for c in ref):
        return ref
    _idx, e = model_registration(ledger, ref)
    root = (e.body.get("manifest") or {}).get("root")
    if not isinstance(root, str):
        raise BadInputError(f"registration {ref} has no manifest root", field="manifest_root")
    return root


def _seal(salt: bytes, content: dict[str, Any]) -> str:
    return hashlib.sha256(salt + canonical_json(content)).hexdigest()


def _load_npz(path: Path) -> tuple[Any, Any]:
    import numpy as np

    try:
        with np.load(path) as z:
            return np.asarray(z["X"], dtype=np.float32), np.asarray(z["y"])
    except (OSError, KeyError, ValueError) as exc:
        raise BadInputError(f"{path} is not an .npz test set with arrays X and y: {exc}", field="data") from exc


def recompute_scores(model: Path, data: Path) -> dict[str, float]:
    """Accuracy of the ONNX model on the test set, one row at a time (ONNX Runtime, CPU; deterministic)."""
    import numpy as np
    import onnxruntime as ort

    x, y = _load_npz(data)
    try:
        sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise BadInputError(f"{model} is not an ONNX model ONNX Runtime can load: {exc}", field="model") from exc
    name = sess.get_inputs()[0].name
    preds = []
    for row in x:
        out = np.asarray(sess.run(None, {name: row.reshape(1, -1)})[0])
        preds.append(int(out.argmax()) if out.size > 1 else int(out.ravel()[0]))
    acc = float(np.mean(np.asarray(preds) == y.astype(np.int64)))
    return {"accuracy": round(acc, 6), "n": len(y)}


def commit(ledger: Any, evaluation: str, role: str, identity: Any, *, deadline: str, model: str | None = None,
           scores: dict[str, Any] | None = None, data: str | None = None, manifest_root: str | None = None,
           note: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
    """Log an ``eval.commit``; returns (the answer, the opening to keep secret until the reveal)."""
    if role not in ROLES:
        raise BadInputError(f"role must be one of {', '.join(ROLES)}", field="role", found=role)
    try:
        dl = time_ms(deadline)
    except (BadInputError, ValueError) as exc:
        raise BadInputError(f"--reveal-by must be an RFC 3339 time: {deadline!r}", field="reveal_by") from exc
    if role == "model":
        if model is None or scores is None:
            raise BadInputError("a model commitment needs the model file and its claimed scores", field="model")
        content: dict[str, Any] = {"model_sha256": _sha256(Path(model)), "scores": scores}
        if manifest_root:
            content["manifest_root"] = _manifest_root(ledger, manifest_root)
    else:
        if data is None:
            raise BadInputError("a test-set commitment needs the test set file", field="data")
        content = {"data_sha256": _sha256(Path(data))}
    salt = os.urandom(32)
    body = {"evaluation": evaluation, "role": role, "commitment": _seal(salt, content), "reveal_by": deadline,
            "note": note}
    if "manifest_root" in content:  # public: which registered model the evaluation is of (the scores stay sealed),
        body["manifest_root"] = content["manifest_root"]  # so a commitment never revealed is seen (reports)
    res = ledger.append_record(COMMIT_TYPE, body, identity, terms=[f"eval:{evaluation}"])
    opening = {"format": OPENING_FORMAT, "evaluation": evaluation, "role": role, "commit": res.index,
               "salt": salt.hex(), "content": content}
    return {"ok": True, "index": res.index, "evaluation": evaluation, "role": role, "reveal_by": dl and deadline,
            "commitment": body["commitment"]}, opening


def _opens(ce: Any, salt_hex: Any, content: Any) -> str | None:
    """Why (salt, content) does not open commitment entry ``ce``; None when it does."""
    try:
        salt = bytes.fromhex(salt_hex)
    except (TypeError, ValueError):
        return "the salt is not hex"
    if not isinstance(content, dict):
        return "the content is not an object"
    got = _seal(salt, content)
    if got != ce.body.get("commitment"):
        return f"SHA-256(salt || content) is {got}, the commitment is {ce.body.get('commitment')}"
    return None


def _late(ce: Any, at: str) -> bool:
    return bool(time_ms(at) > time_ms(ce.body["reveal_by"]))


def reveal(ledger: Any, opening: dict[str, Any], identity: Any) -> dict[str, Any]:
    """Log the ``eval.reveal`` of an opening, after checking it opens its commitment and is on time (a reveal
    that does not, or comes late, is refused: nothing is logged)."""
    if not isinstance(opening, dict) or opening.get("format") != OPENING_FORMAT:
        raise BadInputError(f"not an {OPENING_FORMAT} document", field="format")
    idx = opening.get("commit")
    if type(idx) is not int or not 0 <= idx < ledger.size:
        raise NotFoundError(f"the opening names no entry of this log: {idx!r}", field="commit")
    ce = ledger.entry(idx)
    if ce.type != COMMIT_TYPE:
        raise NotFoundError(f"entry #{idx} is a {ce.type}, not an {COMMIT_TYPE}", field="commit")
    why = _opens(ce, opening.get("salt"), opening.get("content"))
    if why:
        raise VerificationError(f"the reveal does not open commitment #{idx}: {why}",
                                expected=ce.body.get("commitment"))
    e = ledger.make_entry(REVEAL_TYPE, {"evaluation": ce.body.get("evaluation"), "commit": idx,
                                        "salt": opening["salt"], "content": opening["content"]}, identity)
    if _late(ce, e.time):
        raise VerificationError(f"the reveal deadline of commitment #{idx} passed ({ce.body['reveal_by']}); "
                                "a reveal now is late", expected=f"<= {ce.body['reveal_by']}", found=e.time)
    res = ledger.append_entry(e, terms=[f"eval:{ce.body.get('evaluation')}"])
    return {"ok": True, "index": res.index, "commit": idx, "evaluation": ce.body.get("evaluation"),
            "role": ce.body.get("role"), "time": e.time}


def verify_eval(ledger: Any, evaluation: str, *, model: str | None = None, data: str | None = None) -> dict[str, Any]:
    """Judge an evaluation from the log and the published files; ``ok`` is False when there is any finding."""
    commits: dict[str, list[tuple[int, Any]]] = {r: [] for r in ROLES}
    reveals: list[tuple[int, Any]] = []
    for i, e in ledger.find(term=f"eval:{evaluation}"):
        if e.body.get("evaluation") != evaluation:
            continue
        if e.type == COMMIT_TYPE and e.body.get("role") in ROLES:
            commits[e.body["role"]].append((i, e))
        elif e.type == REVEAL_TYPE:
            reveals.append((i, e))
    findings: list[str] = []
    opened: dict[str, dict[str, Any]] = {}
    first_reveal = min((i for i, _ in reveals), default=None)
    for role in ROLES:
        if not commits[role]:
            findings.append(f"no {role} commitment for evaluation {evaluation}")
            continue
        ci, ce = commits[role][0]
        if first_reveal is not None and ci > first_reveal:
            findings.append(f"the {role} commitment #{ci} was logged after a reveal (#{first_reveal}): it could "
                            "be tuned to the other side")
        mine = [(i, r) for i, r in reveals if r.body.get("commit") == ci]
        good = None
        for i, r in mine:
            why = eval_reveal_allowed(ledger, r)
            if why:
                findings.append(f"reveal #{i} has no effect: {why}")
                continue
            bad = _opens(ce, r.body.get("salt"), r.body.get("content"))
            if bad:
                findings.append(f"reveal #{i} does not open the {role} commitment #{ci}: {bad}")
                continue
            if _late(ce, r.time):
                findings.append(f"reveal #{i} of the {role} commitment is late: {r.time} after {ce.body['reveal_by']}")
                continue
            good = r.body["content"]
            break
        if good is None:
            if not mine:
                findings.append(f"the {role} commitment #{ci} was never revealed (deadline {ce.body['reveal_by']})")
            continue
        opened[role] = good
    recomputed = None
    if "model" in opened and "data" in opened:
        if model is None or data is None:
            raise BadInputError("give the published model (--model) and test set (--data) to recompute the scores",
                                field="model")
        for what, path, key, role in (("model", model, "model_sha256", "model"), ("test set", data, "data_sha256",
                                                                                  "data")):
            got = _sha256(Path(path))
            if got != opened[role][key]:
                findings.append(f"the published {what} {path} is not the committed one: SHA-256 {got}, committed "
                                f"{opened[role][key]}")
        if not findings:
            recomputed = recompute_scores(Path(model), Path(data))
            claimed = opened["model"].get("scores") or {}
            for k, v in claimed.items():
                if k in recomputed and abs(float(v) - recomputed[k]) > 1e-6:
                    findings.append(f"claimed {k} {v} differs from the recomputed {recomputed[k]}")
    return {"ok": not findings, "evaluation": evaluation, "findings": findings, "opened": opened,
            "recomputed": recomputed,
            "commits": {r: [i for i, _ in commits[r]] for r in ROLES}, "reveals": [i for i, _ in reveals]}
