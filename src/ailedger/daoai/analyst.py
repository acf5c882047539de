"""The proposal analyst: a depth-4 decision tree (scikit-learn) trained on generated proposals, plus the
governance module's whale simulation on the proposal's parameters.

Everything is reproducible from a fixed training spec (``TRAIN``): retraining gives the same tree, hence the
same ``analyst.json`` (RFC 8785 JSON of the spec and the tree's nodes, floats as ``float.hex``) and the same
model manifest root of the folder holding it (what ``ailedger model register`` logs).
An advice entry names the effective ``model.register`` of that root (usable when logged:
:func:`ailedger.authority.service.require_model_usable`), a salted commitment to the inputs (the proposal's
parameters and the simulation settings) and the output; :func:`replay` recomputes the output from the opened
inputs and says whether it is identical byte for byte.
"""

from __future__ import annotations

import functools
import hashlib
import random
import secrets
import tempfile
from pathlib import Path
from typing import Any

from ailedger.authority.service import is_effective_registration, model_registration, require_model_usable
from ailedger.encoding.canonical import canonical_json
from ailedger.errors import BadInputError, NotFoundError, VerificationError
from ailedger.governance.service import proposal_info, simulate, state
from ailedger.provenance.hashing import hash_model_dir

from . import ADVICE

__all__ = ["FEATURES", "TRAIN", "advise", "advise_inputs", "analyse", "commit", "effective_advice", "export",
           "generate_proposals", "log_advice", "manifest", "replay"]

TRAIN: dict[str, Any] = {"name": "daoai-proposal-risk", "version": 1, "samples": 3000, "seed": 20261206, "max_depth": 4,
         "label_noise": 0.05}
FEATURES = ("n_actions", "n_revoke", "n_approve", "n_param", "param_quorum_drop", "quorum_bps", "cap_bps",
            "strategy_token", "description_words", "whale_decide_rate")
_WORDS = {"n_actions": "the number of actions", "n_revoke": "the number of revocations",
          "n_approve": "the number of approvals", "n_param": "the number of parameter changes",
          "param_quorum_drop": "how far it lowers the quorum (basis points)",
          "quorum_bps": "the quorum as a share of voting power (basis points)",
          "cap_bps": "the per-voter cap (basis points of supply)", "strategy_token": "one-token-one-vote counting",
          "description_words": "the length of the description (words)",
          "whale_decide_rate": "how often the 3 largest holders alone decide a vote (simulation)"}
SIM = {"holders": 200, "trials": 200, "turnout": 0.3}


def _label(x: list[float], rng: random.Random) -> int:
    """The hidden rule the generated proposals follow (what 'risky' means here, noise added)."""
    risky = (x[4] >= 500 or (x[1] > 0 and x[5] < 1500) or x[9] > 0.35 or (x[3] >= 2 and x[8] < 15)
             or (x[7] == 1 and x[9] > 0.2 and x[5] < 1000))
    if rng.random() < TRAIN["label_noise"]:
        risky = not risky
    return int(risky)


def generate_proposals(n: int, seed: int) -> list[list[float]]:
    """``n`` generated feature vectors (see FEATURES)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        rev, app, par = rng.randint(0, 2), rng.randint(0, 2), rng.randint(0, 3)
        if rev + app + par == 0:
            par = 1
        drop = rng.choice([0, 0, 0, rng.randint(0, 3000)]) if par else 0
        out.append([float(rev + app + par), float(rev), float(app), float(par), float(drop),
                    float(rng.randint(100, 4000)), float(rng.choice([10000, 500, 1000, 2000])),
                    float(rng.random() < 0.5), float(rng.randint(2, 80)), round(rng.random() * 0.6, 4)])
    return out


@functools.lru_cache(maxsize=1)
def _model() -> Any:
    from sklearn.tree import DecisionTreeClassifier

    xs = generate_proposals(int(TRAIN["samples"]), int(TRAIN["seed"]))
    rng = random.Random(int(TRAIN["seed"]) + 1)
    ys = [_label(x, rng) for x in xs]
    clf = DecisionTreeClassifier(max_depth=int(TRAIN["max_depth"]), random_state=0)
    clf.fit(xs, ys)
    return clf


@functools.lru_cache(maxsize=1)
def manifest() -> dict[str, Any]:
    """The analyst's manifest: training spec, features and tree nodes, and its root."""
    t = _model().tree_
    nodes = [{"feature": int(t.feature[i]), "threshold": float(t.threshold[i]).hex(),
              "left": int(t.children_left[i]), "right": int(t.children_right[i]),
              "value": [float(v).hex() for v in t.value[i][0]]} for i in range(t.node_count)]
    body = {"train": TRAIN, "features": list(FEATURES), "library": "scikit-learn DecisionTreeClassifier",
            "nodes": nodes}
    with tempfile.TemporaryDirectory(prefix="ailedger-analyst-") as d:
        export(d, body)
        root = hash_model_dir(d, workers=1).root.hex()
    return {**body, "root": root}


def export(folder: str | Path, body: dict[str, Any] | None = None) -> Path:
    """Write the analyst's model folder (``analyst.json``: the RFC 8785 JSON of its manifest body); its
    ailedger model manifest root (what ``ailedger model register FOLDER`` logs) is ``manifest()["root"]``."""
    if body is None:
        body = {k: v for k, v in manifest().items() if k != "root"}
    p = Path(folder)
    p.mkdir(parents=True, exist_ok=True)
    (p / "analyst.json").write_bytes(canonical_json(body))
    return p / "analyst.json"


def _features(prop: dict[str, Any], whale: float) -> list[float]:
    acts = prop["actions"]
    kinds = [a.get("kind", "") for a in acts]
    drop = 0
    for a in acts:
        if a.get("kind") == "param.set" and a.get("key") == "quorum_bps" and isinstance(a.get("value"), int):
            drop = max(drop, int(prop.get("quorum_bps", 0)) - int(a["value"]))
    cap = prop.get("cap")
    cap_bps = 10000 if not cap else cap * 10000 // max(1, prop["total_power"])
    return [float(len(acts)), float(sum(k.endswith(".revoke") for k in kinds)),
            float(sum(k.endswith(".approve") for k in kinds)), float(sum(k == "param.set" for k in kinds)),
            float(max(0, drop)), float(prop["quorum"] * 10000 // max(1, prop["total_power"])), float(cap_bps),
            float(prop["strategy"] == "token"), float(len(str(prop.get("description", "")).split())), whale]


def _effect(a: dict[str, Any]) -> str:
    k = a.get("kind", "")
    if k == "param.set":
        return f"sets the DAO parameter {a.get('key')} to {a.get('value')}"
    target = a.get("model") or a.get("dataset")
    return {"model.revoke": f"revokes model {target}: its use is refused from execution on",
            "model.approve": f"approves model {target}", "dataset.approve": f"approves dataset {target}",
            "dataset.revoke": f"revokes dataset {target}", "suspension.confirm": f"confirms the suspension of {target}",
            "suspension.lift": f"lifts the suspension of {target}"}.get(k, f"{k} {target}")


def analyse(inputs: dict[str, Any]) -> dict[str, Any]:
    """The advice for opened inputs: deterministic (same inputs, same bytes)."""
    prop, sim = inputs["proposal"], inputs["simulation"]
    cap = prop.get("cap")
    cap_bps = 500 if not cap else max(1, cap * 10000 // max(1, prop["total_power"]))
    s = simulate(holders=sim["holders"], trials=sim["trials"], turnout=sim["turnout"], seed=sim["seed"],
                 cap_bps=cap_bps, strategies=[prop["strategy"]])["strategies"][prop["strategy"]]
    x = _features(prop, s["top3_decide_rate"])
    clf = _model()
    risk = round(float(clf.predict_proba([x])[0][1]), 6)
    t = clf.tree_
    reasons, node = [], 0
    while t.children_left[node] != -1:
        f, thr = int(t.feature[node]), float(t.threshold[node])
        below = x[f] <= thr
        reasons.append(f"{_WORDS[FEATURES[f]]} is {x[f]:g}, {'at most' if below else 'above'} {thr:g}")
        node = int(t.children_left[node] if below else t.children_right[node])
    verdict = "high" if risk >= 0.5 else "low"
    return {"risk_score": risk, "risk": verdict, "predicted_effect": [_effect(a) for a in prop["actions"]],
            "simulation": {**s, "strategy": prop["strategy"], "cap_bps": cap_bps, **sim},
            "reasons": reasons + [f"so the risk is {verdict} ({risk:.2f})"]}


def advise_inputs(prop: dict[str, Any], quorum_bps: int = 0) -> dict[str, Any]:
    """The inputs of the advice for a proposal (``proposal_info``'s dict): fixed at creation, not the tally."""
    keep = {k: prop[k] for k in ("id", "actions", "description", "strategy", "cap", "quorum", "total_power",
                                 "proposal_hash")}
    seed = int(prop["proposal_hash"][:8], 16)
    return {"proposal": {**keep, "quorum_bps": quorum_bps}, "simulation": {**SIM, "seed": seed}}


def commit(inputs: Any, salt: bytes) -> str:
    if len(salt) != 32:
        raise BadInputError("the input salt must be 32 bytes (64 hex digits)", field="salt")
    return hashlib.sha256(salt + canonical_json(inputs)).hexdigest()


def _check_model(ledger: Any, model: str) -> tuple[int, str]:
    idx, reg = model_registration(ledger, model)
    name = str(reg.body.get("name", model))
    require_model_usable(ledger, name)
    root = str((reg.body.get("manifest") or {}).get("root", ""))
    if root != manifest()["root"]:
        raise VerificationError(f"model {name} (entry #{idx}) has manifest root {root[:16]}..., not the analyst's "
                                f"{manifest()['root'][:16]}...", field="model", expected=manifest()["root"],
                                found=root)
    return idx, name


def advise(ledger: Any, pid: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(inputs, output) for proposal ``pid``; NotFoundError for an unknown proposal."""
    prop = proposal_info(ledger, pid)
    q = state(ledger).params.get("quorum_bps", 0)
    inputs = advise_inputs(prop, int(q) if isinstance(q, int) else 0)
    return inputs, analyse(inputs)


def log_advice(ledger: Any, identity: Any, pid: int, *, model: str, salt: bytes | None = None) -> dict[str, Any]:
    """Append a ``dao.advice`` for proposal ``pid``.  Refused: an unknown proposal (NotFoundError), an
    unregistered model (NotFoundError), a revoked/suspended one or one whose root is not the analyst's
    (VerificationError)."""
    midx, name = _check_model(ledger, model)
    inputs, out = advise(ledger, pid)
    salt = secrets.token_bytes(32) if salt is None else salt
    body = {"proposal": pid, "proposal_hash": inputs["proposal"]["proposal_hash"], "model": name,
            "model_entry": midx, "manifest_root": manifest()["root"],
            "inputs": {"alg": "sha256-salted-jcs", "commitment": commit(inputs, salt)}, "output": out}
    res = ledger.append_record(ADVICE, body, identity)
    return {"index": res.index, "body": body, "inputs": inputs, "salt": salt.hex()}


def effective_advice(ledger: Any, pid: int | None = None) -> tuple[list[tuple[int, Any]], list[tuple[int, str]]]:
    """The ``dao.advice`` entries that count (the one reader): well formed, naming an effective model
    registration.  Advice is a statement by its signer: no governance rule reads it."""
    kept: list[tuple[int, Any]] = []
    ignored: list[tuple[int, str]] = []
    for idx, e in ledger.find(type=ADVICE):
        b = e.body
        ok = (isinstance(b, dict) and isinstance(b.get("proposal"), int) and isinstance(b.get("model_entry"), int)
              and isinstance(b.get("output"), dict) and isinstance(b.get("inputs"), dict))
        if not ok:
            ignored.append((idx, "malformed dao.advice body"))
            continue
        if pid is not None and b["proposal"] != pid:
            continue
        if not is_effective_registration(ledger, b["model_entry"]):
            ignored.append((idx, f"entry #{b['model_entry']} is not an effective model registration"))
            continue
        kept.append((idx, e))
    return kept, ignored


def replay(ledger: Any, index: int, inputs: Any, salt_hex: str) -> dict[str, Any]:
    """Open the commitment of advice ``index`` and recompute it.  VerificationError when the inputs do not
    open the commitment; ``identical`` says whether the recomputed output equals the logged one byte for byte."""
    try:
        e = ledger.entry(index)
    except Exception:  # noqa: BLE001 - any lookup failure is an unknown entry
        raise NotFoundError(f"no entry {index} in this ledger", field="entry", found=index) from None
    if e.type != ADVICE:
        raise BadInputError(f"entry {index} is a {e.type}, not a {ADVICE}", field="entry", found=e.type)
    try:
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        raise BadInputError("salt must be hex", field="salt") from None
    want = e.body["inputs"]["commitment"]
    got = commit(inputs, salt)
    if got != want:
        raise VerificationError(f"the inputs do not open the commitment of entry {index}", field="inputs",
                                expected=want, found=got)
    if e.body.get("manifest_root") != manifest()["root"]:
        raise VerificationError("the advice names another model root than this analyst's", field="manifest_root",
                                expected=manifest()["root"], found=e.body.get("manifest_root"))
    out = analyse(inputs)
    same = canonical_json(out) == canonical_json(e.body["output"])
    return {"entry": index, "proposal": e.body["proposal"], "identical": same, "output": out}
