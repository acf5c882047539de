"""The rules of the ``agent.*`` entries (docs/authority.md): which count when read, and which admission refuses.

One rule per type, applied by the readers and by admission alike (``authority.hooks.use_judge("agent.", judge)``,
installed by ``ailedger/_registry.py``, asked by every write path: the HTTP ingest, ``Ledger.append_*``):

* ``agent.action`` -- :class:`ailedger.defi.actions.ActionFold`: well formed, an effective model registration
  whose model is usable, the first per (chain, agent, nonce) and per intent id;
* ``agent.backtest.plan`` -- :func:`plan_problem`: a plan object whose ``plan_sha256`` is its digest;
* ``agent.backtest.result`` -- :class:`ResultFold`: signed by the signer of the plan it names, logged after
  that plan, naming its digest and study, the first for that plan;
* ``agent.finding`` -- anyone (a statement by its signer): not judged.

Admission refuses what the readers would ignore (``NotAuthorisedError``: 403 over HTTP, exit 2 on the CLI),
so nothing without effect is logged by a path that asks; entries that reached the log another way (an older
ledger, a write straight into the store) are ignored by the readers and listed with why.

Light on purpose (no numpy, no web3): admission imports it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ailedger.encoding.canonical import canonical_json
from ailedger.errors import NotAuthorisedError

from .actions import ACTION, ActionFold, malformed, same_key_actions

__all__ = ["PLAN", "RESULT", "ResultFold", "effective_plans", "effective_results", "judge", "plan_digest",
           "plan_problem"]

PLAN = "agent.backtest.plan"
RESULT = "agent.backtest.result"


def plan_digest(plan: dict[str, Any]) -> str:
    """SHA-256 of the plan's RFC 8785 JSON: what ``agent.backtest.plan`` commits to (``plan_sha256``)."""
    return hashlib.sha256(canonical_json(plan)).hexdigest()


def plan_problem(body: Any) -> str | None:
    """Why an ``agent.backtest.plan`` body is malformed (None when it is a plan that counts)."""
    if not isinstance(body, dict) or not isinstance(body.get("plan"), dict):
        return "the body must be {\"plan\": {...}, \"plan_sha256\": ...}"
    plan = body["plan"]
    study = plan.get("study")
    if not isinstance(study, str) or not 0 < len(study) <= 200:
        return "plan.study must be a name of 1 to 200 characters"
    if not isinstance(plan.get("configs"), list) or not plan["configs"]:
        return "plan.configs must list the configurations tried"
    try:
        digest = plan_digest(plan)
    except (TypeError, ValueError) as exc:  # e.g. a float: signed records carry none
        return f"the plan has no canonical form: {exc}"
    if body.get("plan_sha256") != digest:
        return f"plan_sha256 {body.get('plan_sha256')!r} is not the plan's digest {digest}"
    return None


def effective_plans(ledger: Any, signer: str, study: str) -> list[tuple[int, Any]]:
    """``signer``'s well-formed plans of ``study``, in log order, the first per plan digest."""
    seen: set[str] = set()
    out: list[tuple[int, Any]] = []
    for idx, e in ledger.find(type=PLAN, signer=signer):
        if plan_problem(e.body) is not None or e.body["plan"]["study"] != study:
            continue
        if e.body["plan_sha256"] not in seen:
            seen.add(e.body["plan_sha256"])
            out.append((idx, e))
    return out


class ResultFold:
    """The ``agent.backtest.result`` rule, applied in log order (readers and admission)."""

    def __init__(self, ledger: Any, pending: dict[int, Any] | None = None) -> None:
        self.ledger = ledger
        self.pending = pending or {}  # entries of the batch being admitted, by the index they would get
        self.scored: dict[int, int] = {}  # plan index -> the result that counts
        self.kept: list[tuple[int, Any]] = []
        self.ignored: list[tuple[int, str]] = []

    def _entry(self, i: int) -> Any:
        return self.ledger.entry(i) if i < self.ledger.size else self.pending.get(i)

    def why_not(self, index: int, e: Any) -> str | None:
        b = e.body
        if not isinstance(b, dict) or type(b.get("plan")) is not int:
            return "malformed agent.backtest.result: body.plan must be the index of the plan's entry"
        p = b["plan"]
        if not 0 <= p < index:
            return f"a result names its plan logged before it; entry #{p} is not before #{index}"
        pe = self._entry(p)
        if pe is None or pe.type != PLAN:
            return f"entry #{p} is {'not logged' if pe is None else 'a ' + pe.type}, not an {PLAN}"
        bad = plan_problem(pe.body)
        if bad is not None:
            return f"the plan at entry #{p} is malformed: {bad}"
        if e.signer != pe.signer:
            return f"only the plan's signer {pe.signer} (signer of entry #{p}) may report its result"
        if b.get("plan_sha256") != pe.body["plan_sha256"] or b.get("study") != pe.body["plan"]["study"]:
            return f"body.plan_sha256 and body.study must be those of the plan at entry #{p}"
        if p in self.scored:
            return f"plan #{p} was already scored at entry #{self.scored[p]} (one result per plan)"
        return None

    def apply(self, index: int, e: Any) -> str | None:
        why = self.why_not(index, e)
        if why is not None:
            self.ignored.append((index, why))
            return why
        self.scored[e.body["plan"]] = index
        self.kept.append((index, e))
        return None


def effective_results(ledger: Any, study: str | None = None) -> tuple[list[tuple[int, Any]], list[tuple[int, str]]]:
    """The ``agent.backtest.result`` entries that count (:class:`ResultFold`), in log order, and the ignored ones
    with why -- a stranger's result, a second result for a plan, a result before its plan, however they reached
    the log.  ``study``: only that study's (the ignored list is not filtered)."""
    fold = ResultFold(ledger)
    for idx, e in ledger.find(type=RESULT):
        fold.apply(idx, e)
    kept = [(i, e) for i, e in fold.kept if study is None or e.body.get("study") == study]
    return kept, fold.ignored


def judge(ledger: Any, items: list[tuple[int, Any]]) -> list[NotAuthorisedError | None]:
    """Admission of ``agent.*`` entries: for each ``(index, entry)`` in log order, None when the readers would
    count it after the ones before it (in the log and earlier in ``items``), else the NotAuthorisedError saying
    why."""
    out: list[NotAuthorisedError | None] = []
    actions: dict[Any, ActionFold] = {}  # one fold per (chain, agent, nonce): all a verdict depends on
    by_key: dict[tuple[int, str, int], list[int]] | None = None
    results: ResultFold | None = None
    pending = {i: e for i, e in items}
    for index, e in items:
        why: str | None = None
        if e.type == ACTION:
            b = e.body
            key = (b["chain_id"], b["agent"], b["nonce"]) if malformed(b) is None else None
            if key not in actions:
                actions[key] = fold = ActionFold(ledger)
                if key is not None:
                    by_key = same_key_actions(ledger) if by_key is None else by_key
                    for i in by_key.get(key, []):
                        fold.apply(i, ledger.entry(i))
            why = actions[key].apply(index, e)
        elif e.type == PLAN:
            bad = plan_problem(e.body)
            why = None if bad is None else f"malformed agent.backtest.plan: {bad}"
        elif e.type == RESULT:
            if results is None:
                results = ResultFold(ledger, pending)
                for i, old in ledger.find(type=RESULT):
                    results.apply(i, old)
            why = results.apply(index, e)
        out.append(None if why is None else
                   NotAuthorisedError(f"{e.type} by {e.signer} has no effect: {why}", field="body"))
    return out
