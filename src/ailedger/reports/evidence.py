"""Statements that carry their evidence: the entry a claim rests on, its leaf bytes and a C2SP tlog-proof.

A statement is ``{"id", "section", "kind", "claim", "entry", "fields", "entry_file", "proof"}``: ``fields``
maps a name to ``[path, value]`` where ``path`` is a dotted path into the signed entry (``type``,
``signer``, ``time``, ``body.sources.0.license``).  The ``claim`` is the text of :data:`TEMPLATES` [kind]
filled with the fields' values, so a verifier recomputes it: editing the claim, a value or the entry breaks
the report.  The folder holds ``entries/N.json`` (the leaf bytes) and ``proofs/N.tlog-proof`` for every
entry it cites, the log's checkpoint and its verifier key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ailedger.encoding.canonical import canonical_json
from ailedger.encoding.times import time_ms
from ailedger.errors import BadInputError, VerificationError

__all__ = ["FORMAT", "NOT_RECORDED", "TEMPLATES", "UNREVEALED", "VOID_WHY", "Evidence", "claim_text", "eval_late",
           "eval_opens", "lookup"]

FORMAT = "ailedger-report/v1"
NOT_RECORDED = "(not recorded)"

# kind -> the sentence a statement of that kind says; {name} are its fields
TEMPLATES: dict[str, str] = {
    "registration": "model {name} was registered by {signer} at {time} (manifest root {root}, {files} files, "
                      "{bytes} bytes)",
    "version": "model {name} has a version registered by {signer} at {time} (manifest root {root})",
    "code": "the training code of model {name} is recorded as {code}",
    "hyperparameters": "the hyperparameters of model {name} are recorded as {hyperparameters}",
    "base": "model {name} was fine-tuned from the model registered at entry {base}",
    "descendant": "model {name} registered at {time} by {signer} names model entry {base} as its base",
    "dataset": "dataset {name} was committed by {signer} at {time}: {records} records, commitment root "
                      "{root}, licence {license}, consent basis {consent}",
    "screening": "dataset {dataset} was screened by {signer} at {time}: verdict {verdict}, {flagged} of "
                         "{records} records flagged (report sha256 {report})",
    "eval-commit": "evaluation {evaluation} ({role}) was committed by {signer} at {time}, to be revealed by "
                   "{reveal_by}",
    "eval-reveal": "evaluation {evaluation} was revealed by {signer} at {time}, by its deadline, opening "
                   "commitment {commit}: {content}",
    "eval-late": "evaluation {evaluation}: commitment {commit} was revealed by {signer} at {time}, after its "
                 "deadline: not a result",
    "eval-void": "evaluation {evaluation}: the reveal signed by {signer} at {time} naming commitment {commit} has "
                 "no effect ({why}): not a result",
    "eval-unrevealed": "evaluation {evaluation} ({role}) committed by {signer} at {time} {outcome} (deadline "
                       "{reveal_by}): no result",
    "ruling": "model {model} is {state}: entry {entry} ({type}) signed by {signer} at {time}",
    "proposal": "proposal {entry} ({type}) was made by {signer} at {time}: {description}",
    "event": "{type} signed by {signer} at {time} names model {model}",
    "erasure": "an erasure of {records} inference records of one subject was logged by {signer} at {time} "
               "(key destroyed: {key_destroyed})",
    "batch": "{count} inference records of model {model} were committed by {signer}, from {from} to "
                       "{to} (batch root {root})",
    "governance": "{type} signed by {signer} at {time}",
    "boundary": "entry {entry} ({type}, at {time}) lies {side} the period: the range covers the whole period",
}


# eval-void reasons and eval-unrevealed outcomes a report may give (report verify checks each against the entries)
VOID_WHY = {"open": "it does not open the commitment", "signer": "it is not signed by the committer"}
UNREVEALED = {"never": "was never revealed", "pending": "is not revealed yet"}


def eval_opens(commit_body: dict[str, Any], reveal_body: dict[str, Any]) -> bool:
    """Does an ``eval.reveal`` body open an ``eval.commit`` body: SHA-256(salt || JCS(content)) == commitment
    (the formula of ``verifiable.evalreveal``; pure, so ``report verify`` recomputes it offline)."""
    salt, content = reveal_body.get("salt"), reveal_body.get("content")
    if not isinstance(salt, str) or not isinstance(content, dict):
        return False
    try:
        raw = bytes.fromhex(salt)
    except ValueError:
        return False
    return hashlib.sha256(raw + canonical_json(content)).hexdigest() == commit_body.get("commitment")


def eval_late(commit_body: dict[str, Any], at: Any) -> bool | None:
    """Is time ``at`` after the commitment's ``reveal_by``; None when either is not an RFC 3339 time."""
    try:
        return bool(time_ms(str(at)) > time_ms(str(commit_body.get("reveal_by"))))
    except (BadInputError, ValueError):
        return None


def lookup(obj: Any, path: str) -> Any:
    """The value at a dotted path (list items by number); None when absent."""
    cur = obj
    for part in path.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part)
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return None
    return cur


def _show(v: Any) -> str:
    if v is None:
        return NOT_RECORDED
    if isinstance(v, str):
        return v
    return canonical_json(v).decode()


def claim_text(kind: str, values: dict[str, Any]) -> str:
    tpl = TEMPLATES.get(kind)
    if tpl is None:
        raise BadInputError(f"unknown statement kind {kind!r}", field="kind")
    try:
        return tpl.format(**{k: _show(v) for k, v in values.items()})
    except KeyError as exc:
        raise VerificationError(f"statement of kind {kind} lacks field {exc.args[0]}", field="fields") from None


class Evidence:
    """Collects statements for a report folder, writing each cited entry and its proof once."""

    def __init__(self, ledger: Any, out: Path) -> None:
        self.ledger = ledger
        self.out = out
        (out / "entries").mkdir(parents=True, exist_ok=True)
        (out / "proofs").mkdir(parents=True, exist_ok=True)
        self.statements: list[dict[str, Any]] = []
        self._cited: dict[int, dict[str, Any]] = {}

    def cite(self, index: int) -> dict[str, Any]:
        """Write entry ``index`` and its proof into the folder; its parsed JSON."""
        got = self._cited.get(index)
        if got is None:
            leaf = self.ledger.entry_bytes(index)
            (self.out / "entries" / f"{index}.json").write_bytes(leaf)
            (self.out / "proofs" / f"{index}.tlog-proof").write_bytes(self.ledger.prove(index))
            got = self._cited[index] = json.loads(leaf)
        return got

    def state(self, section: str, kind: str, index: int, paths: dict[str, str],
              extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """A statement on entry ``index``: ``paths`` name -> dotted path into the entry. ``extra``: values
        that are not in the entry but fixed by the report (the model name it is about); they are shown as
        such and checked against the report's own header."""
        e = self.cite(index)
        fields = {name: [p, lookup(e, p)] for name, p in paths.items()}
        values = {**(extra or {}), **{k: v for k, (_p, v) in fields.items()}}
        st = {"id": f"s{len(self.statements) + 1}", "section": section, "kind": kind, "entry": index,
              "fields": fields, "fixed": extra or {}, "claim": claim_text(kind, values),
              "entry_file": f"entries/{index}.json", "proof": f"proofs/{index}.tlog-proof"}
        self.statements.append(st)
        return st
