"""The marketplace's ledger side and the parties' moves.

Entries (each names its job in ``subjects``: ``compute:<contract>:<job>``, so one term lookup finds a job's
history, whatever path wrote it):

* ``compute.job`` (the client): the spec, its hash, the dataset and initial-model roots, price, bond, the
  referee's did and address, the contract and job id on chain.
* ``compute.bid`` (a provider), ``compute.challenge`` (a challenger), ``compute.settle`` (a keeper):
  statements by their signers.
* ``compute.accept``: only the job's client.  ``compute.result``: only the accepted provider (final root,
  trace root, the step roots when they fit).  ``compute.verdict``: only the referee named in the job; it
  carries the one-step proof (the pre-state) so anyone can replay it (:func:`replay_verdict`).

:func:`job_view` is the one fold every reader calls; entries without authority are ignored and listed.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger.compute.job import TENSORS, JobSpec, State, run, state_root, step, trace_root
from ailedger.encoding.canonical import canonical_json
from ailedger.errors import BadInputError, NotAuthorisedError, NotFoundError, VerificationError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["JobView", "Trace", "admission_check", "decode_state", "encode_state", "job_term", "job_view", "judge",
           "referee_step", "replay_verdict", "spec_hash"]

MAX_ROOTS_IN_ENTRY = 400


def spec_hash(spec: JobSpec) -> bytes:
    return hashlib.sha256(canonical_json(spec.to_dict())).digest()


def job_term(contract: str, job: int) -> str:
    return f"compute:{contract.lower()}:{job}"


def encode_state(state: State) -> dict[str, Any]:
    return {n: {"shape": list(state[n].shape), "int64le": base64.b64encode(state[n].astype("<i8").tobytes()).decode()}
            for n in TENSORS}


def decode_state(d: Any) -> State:
    import numpy as np

    if not isinstance(d, dict) or set(d) != set(TENSORS):
        raise BadInputError(f"a state needs exactly the tensors {', '.join(TENSORS)}", field="state")
    out: State = {}
    for n in TENSORS:
        t = d[n]
        try:
            raw = base64.b64decode(t["int64le"], validate=True)
            a = np.frombuffer(raw, dtype="<i8").astype(np.int64).reshape(tuple(t["shape"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInputError(f"tensor {n} of the state is malformed: {exc}", field="state") from None
        out[n] = a
    return out


class Trace:
    """A party's local copy of a run: every state (``LEDGER/compute/<job>/<who>.npz``) and its roots."""

    def __init__(self, states: dict[str, np.ndarray], roots: list[bytes]) -> None:
        self.states, self.roots = states, roots

    @classmethod
    def compute(cls, spec: JobSpec, *, corrupt: int | None = None, progress: Any = None) -> Trace:
        import numpy as np

        kept: list[State] = []
        roots = run(spec, keep=lambda _i, s: kept.append(s), corrupt=corrupt, progress=progress)
        return cls({n: np.stack([s[n] for s in kept]) for n in TENSORS}, roots)

    def state(self, i: int) -> State:
        if not 0 <= i < len(self.roots):
            raise BadInputError(f"no state {i} in a trace of {len(self.roots) - 1} steps", field="step")
        return {n: self.states[n][i] for n in TENSORS}

    def save(self, path: Path) -> None:
        import numpy as np

        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            arrays = {"roots": np.frombuffer(b"".join(self.roots), dtype=np.uint8).reshape(-1, 32), **self.states}
            np.savez(f, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path) -> Trace:
        import numpy as np

        if not path.exists():
            raise NotFoundError(f"no trace at {path}: run the job first (`ailedger compute run`)", field="trace")
        with np.load(path) as z:
            return cls({n: z[n] for n in TENSORS}, [bytes(r) for r in z["roots"]])


def referee_step(spec: JobSpec, dispute: dict[str, Any], proof: dict[str, Any]) -> dict[str, Any]:
    """The referee's one-step check.  ``dispute``: the contract's ``lo, hi, lo_root, hi_root``; ``proof``:
    ``{"step": lo, "state": <the state after step lo>}`` from either party.  Refuses a proof for another
    step or a state whose root is not the agreed ``lo_root``; else re-executes step ``lo`` and says whether
    the provider's ``hi_root`` is right."""
    lo, hi = int(dispute["lo"]), int(dispute["hi"])
    if hi - lo != 1:
        raise BadInputError(f"the dispute is not down to one step yet ({lo}..{hi})", field="dispute")
    if proof.get("step") != lo:
        raise BadInputError(f"the step proof is for step {proof.get('step')!r}; the dispute is about step {lo} "
                            f"(the state after step {lo} -> step {hi})", field="step")
    pre = decode_state(proof.get("state"))
    got = state_root(pre).hex()
    if got != dispute["lo_root"]:
        raise BadInputError(f"the step proof's state has root {got}, not the agreed root {dispute['lo_root']} of "
                            f"step {lo}", field="state")
    post = state_root(step(spec, pre, lo)).hex()
    return {"step": lo, "pre_root": got, "claimed_root": dispute["hi_root"], "computed_root": post,
            "provider_right": post == dispute["hi_root"]}


def replay_verdict(body: dict[str, Any]) -> dict[str, Any]:
    """Re-execute the step of a ``compute.verdict`` body; raises VerificationError when it does not hold."""
    spec = JobSpec.from_dict(body["spec"])
    got = referee_step(spec, {"lo": body["step"], "hi": body["step"] + 1, "lo_root": body["pre_root"],
                              "hi_root": body["claimed_root"]}, {"step": body["step"], "state": body["state"]})
    if got["computed_root"] != body["computed_root"] or got["provider_right"] != body["provider_right"]:
        raise VerificationError("the verdict does not replay", expected=body["computed_root"],
                                found=got["computed_root"])
    return got


@dataclass
class JobView:
    """A job as the ledger tells it, with only the entries that have effect."""

    job: dict[str, Any] | None = None
    job_index: int | None = None
    bids: list[dict[str, Any]] = field(default_factory=list)
    accepted: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    challenges: list[dict[str, Any]] = field(default_factory=list)
    verdict: dict[str, Any] | None = None
    settlements: list[dict[str, Any]] = field(default_factory=list)
    ignored: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, index: int, e: Any) -> None:
        """The authority rules of docs/authority.md for compute entries, in log order."""
        b, t, who = e.body, e.type, e.signer

        def ignore(why: str) -> None:
            self.ignored.append({"index": index, "type": t, "signer": who, "why": why})

        row = {"index": index, "signer": who,
               **{k: v for k, v in b.items() if k not in ("state", "roots", "spec", "subjects")}}
        if t == "compute.job":
            if self.job is None:
                self.job, self.job_index = {"index": index, "signer": who, **b}, index
            else:
                ignore("the job was already posted")
        elif self.job is None:
            ignore("before the job's compute.job entry")
        elif t == "compute.bid":
            self.bids.append(row)
        elif t == "compute.accept":
            if who != self.job["signer"]:
                ignore(f"only the job's client {self.job['signer']} may accept a bid")
            elif self.accepted is not None:
                ignore("a bid was already accepted")
            else:
                self.accepted = row
        elif t == "compute.result":
            if self.accepted is None or who != self.accepted.get("provider"):
                ignore("only the accepted provider may log the result")
            elif self.result is not None:
                ignore("the result was already logged")
            else:
                self.result = {**row, "roots": b.get("roots")}
        elif t == "compute.challenge":
            self.challenges.append(row)
        elif t == "compute.verdict":
            if who != self.job.get("referee"):
                ignore(f"only the job's referee {self.job.get('referee')} may rule")
            elif self.verdict is not None:
                ignore("the referee already ruled")
            else:
                self.verdict = row
        elif t == "compute.settle":
            self.settlements.append(row)

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job, "bids": self.bids, "accepted": self.accepted, "result": self.result,
                "challenges": self.challenges, "verdict": self.verdict, "settlements": self.settlements,
                "ignored": self.ignored}


def job_view(ledger: Any, contract: str, job: int) -> JobView:
    """The one fold over a job's entries (the rules of docs/authority.md, ``compute.*`` rows)."""
    v = JobView()
    for index, e in ledger.find(term="subject:" + job_term(contract, job)):
        if e.type.startswith("compute.") and e.body.get("job") == job and \
                str(e.body.get("contract", "")).lower() == contract.lower():
            v.apply(index, e)
    if v.job is None:
        raise NotFoundError(f"no compute.job entry for job {job} of contract {contract} in this ledger", field="job")
    return v


def judge(ledger: Any, items: list[tuple[int, Any]]) -> list[NotAuthorisedError | None]:
    """Admission of ``compute.*`` entries (``authority.hooks.use_judge("compute.", ...)``, asked by every write
    path): for each ``(index, entry)`` in log order, None when the fold (:meth:`JobView.apply`) would give it
    effect after the ones before it, else the NotAuthorisedError saying why."""
    views: dict[tuple[str, int], JobView] = {}
    out: list[NotAuthorisedError | None] = []
    for index, e in items:
        b = e.body if isinstance(e.body, dict) else {}
        contract, job = b.get("contract"), b.get("job")
        if not isinstance(contract, str) or type(job) is not int:
            out.append(NotAuthorisedError(f"{e.type} by {e.signer} has no effect: a compute entry names its "
                                          "contract (a string) and job (an integer)", field="body"))
            continue
        key = (contract.lower(), job)
        if key not in views:
            try:
                views[key] = job_view(ledger, contract, job)
            except NotFoundError:
                views[key] = JobView()
        v = views[key]
        before = len(v.ignored)
        v.apply(index, e)
        out.append(NotAuthorisedError(f"{e.type} by {e.signer} has no effect: {v.ignored[-1]['why']}",
                                      field="signer") if len(v.ignored) > before else None)
    return out


def admission_check(ledger: Any, e: Any) -> str | None:
    """Why ``e``, appended next, would have no effect (None: it would count)."""
    err = judge(ledger, [(ledger.size, e)])[0]
    return None if err is None else err.message


def log_entry(ledger: Any, ident: Any, kind: str, contract: str, job: int, body: dict[str, Any]) -> int:
    """Append a compute entry (its ``subjects`` name the job, so every write path indexes it under
    ``subject:compute:<contract>:<job>``).  Admission refuses what the fold would ignore: nothing without
    effect is logged (``NotAuthorisedError``)."""
    full = {"contract": contract, "job": job, **body, "subjects": [job_term(contract, job)]}
    res = ledger.append_entry(ledger.make_entry(f"compute.{kind}", full, ident))
    return int(res.index)


def result_body(spec: JobSpec, roots: list[bytes]) -> dict[str, Any]:
    out: dict[str, Any] = {"steps": spec.steps, "final_root": roots[-1].hex(), "trace_root": trace_root(roots).hex()}
    if len(roots) <= MAX_ROOTS_IN_ENTRY:
        out["roots"] = [r.hex() for r in roots]
    return out


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True, default=str)
