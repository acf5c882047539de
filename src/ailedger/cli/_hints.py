"""Errors that name their fix: a hint for an error, chosen by its class, its field and the command that met it.

The message says what is wrong (it comes from the layer that found it); the hint says which command or
option fixes it, which only the CLI knows.  A command that can tell more (it looked at the state) raises
its error with ``with_hint`` itself; this table covers the errors any command may meet.  cli/main.py
prints ``error: MESSAGE; HINT`` and puts ``hint`` in the JSON error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import click

from ailedger.errors import AiledgerError, BadInputError, ConflictError, NotFoundError

__all__ = ["RULES", "hint_for"]


@dataclass(frozen=True)
class Rule:
    error: type[AiledgerError]
    field: str | None  # the error's field (None: any)
    command: str  # prefix of the command path after "ailedger" ("" : every command)
    hint: Callable[[AiledgerError], str | None] | str


def _not_found(what: str, find: str, make: str) -> str:
    return f"`ailedger find --type {find}` lists the {what} in this ledger; make one with `{make}`"


def _coding(exc: AiledgerError) -> str | None:
    k, n = exc.details.get("suggest_k"), exc.details.get("suggest_n")
    if k is None or n is None:
        return None
    return f"pass --k {k} --n {n} (or leave both out: one shard per node, docs/storage.md)"


def _receipt(exc: AiledgerError) -> str | None:
    """A malformed or unknown receipt id (not an erased payload: that has no fix)."""
    if type(exc) is BadInputError or (type(exc) is NotFoundError and "no inference record" in exc.message):
        return "`ailedger inference show` lists the receipt ids (receipt=...)"
    return None


def _cid(exc: AiledgerError) -> str:
    """An unknown blob id, or one whose blob was re-encrypted as a new one (then the id was right: name the new one)."""
    new = exc.details.get("superseded_by")
    if new:
        return f"its readers fetch it with `ailedger blob get {new} -o FILE --as READER`"
    return ("blob commands take the CID `blob put` printed (the encrypted object's) or its entry #N; the CID "
            "`blob cid FILE` prints is the plaintext's, which the ledger does not record (docs/cli.md, ids)")


RULES: tuple[Rule, ...] = (
    Rule(BadInputError, None, "", _coding),
    Rule(NotFoundError, "identity", "", "`ailedger identity list` shows the identities held here; make one with "
                                        "`ailedger identity new NAME`, or give a did:key"),
    Rule(NotFoundError, "model", "", _not_found("models", "model.register",
                                                "ailedger model register DIR --name NAME --as YOU")),
    Rule(NotFoundError, "dataset", "dataset screening-proof", "log one with `ailedger dataset screen PATH --log "
                                                              "--dataset NAME --as YOU`"),
    Rule(NotFoundError, "dataset", "", _not_found("datasets", "dataset.commit",
                                                  "ailedger dataset commit PATH --name NAME --as YOU")),
    Rule(NotFoundError, "proposal", "", "`ailedger find --type gov.propose` lists the proposals; a proposal's id is "
                                        "the entry index `gov propose` printed"),
    Rule(NotFoundError, "claim", "", "`ailedger find --type stake.claim` lists the claims; a claim's id is the entry "
                                     "index `stake claim` printed"),
    Rule(NotFoundError, "dispute", "", "`ailedger find --type stake.dispute` lists the disputes; a dispute's id is the "
                                       "entry index `stake dispute` printed"),
    Rule(ConflictError, "path", "init", "use it with `--ledger PATH` (or `export AILEDGER_LEDGER=PATH`), or give "
                                        "init a new PATH"),
    Rule(ConflictError, "name", "identity new", "`ailedger identity list` shows it; pick another name, or give it "
                                                "a new key with `ailedger identity rotate NAME`"),
    Rule(BadInputError, "receipt", "inference", _receipt),
    Rule(BadInputError, "entry", "verify", "`ailedger entry N -o FILE` writes entry N's exact bytes where the ledger "
                                           "is (N: the index the proof is for, as given to `prove`)"),
    Rule(NotFoundError, "cid", "blob", _cid),
)


def hint_for(exc: AiledgerError, ctx: click.Context) -> str | None:
    """The first rule matching ``exc`` met by the command that ran (recorded in ``ctx.meta``)."""
    path = str(ctx.meta.get("ailedger.command", "")).split(" ", 1)
    command = path[1] if len(path) > 1 else ""
    field = exc.details.get("field")
    for r in RULES:
        if isinstance(exc, r.error) and (r.field is None or r.field == field) and \
                (command + " ").startswith(r.command + " " if r.command else ""):
            hint = r.hint(exc) if callable(r.hint) else r.hint
            if hint:
                return hint
    return None
