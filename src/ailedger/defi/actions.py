"""Every agent action on the record: ``agent.action`` entries logged *before* the transaction is broadcast, and
the audit that matches the chain against them.

An action entry names the registered model that decided (its effective ``model.register``; a revoked or
suspended model cannot act: :func:`ailedger.authority.service.require_model_usable`), a salted SHA-256
commitment to the model's inputs (the salt stays with the agent; revealing it and the inputs proves them), the
decoded intent (what the transaction does, in words a reviewer checks against the calldata) and the hash of the
locally signed transaction, known before it is sent.

The rule (docs/authority.md, ``agent.action``): the first action per (chain, agent address, nonce) counts; a
later one with the same nonce or the same intent id is a replay and is refused when logged and ignored when
read (:func:`effective_actions`, the one function every reader calls).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from pathlib import Path
from typing import Any

from ailedger.authority.service import (
    is_effective_registration,
    model_registration,
    model_status,
    require_model_usable,
)
from ailedger.encoding.canonical import canonical_json
from ailedger.errors import BadInputError, ConflictError

__all__ = ["ACTION", "ActionFold", "audit", "commit_inputs", "effective_actions", "intent_id", "log_action", "malformed",
           "same_key_actions", "validate_intent"]

ACTION = "agent.action"
KINDS = {"transfer": "0xa9059cbb", "approve": "0x095ea7b3", "swap": "0xf3e6ea8a"}
_ADDR = re.compile(r"0x[0-9a-f]{40}")
_UINT = re.compile(r"(0|[1-9][0-9]{0,77})")
_HASH = re.compile(r"0x[0-9a-f]{64}")


def _addr(v: Any, key: str) -> str:
    if not isinstance(v, str) or not _ADDR.fullmatch(v.lower()):
        raise BadInputError(f"intent.{key} must be a 0x-prefixed 20-byte hex address, got {v!r}", field=key)
    return v.lower()


def _uint(v: Any, key: str) -> str:
    s = str(v) if isinstance(v, int) and not isinstance(v, bool) else v
    if not isinstance(s, str) or not _UINT.fullmatch(s) or int(s) >= 2**256:
        raise BadInputError(f"intent.{key} must be a non-negative integer below 2**256 (decimal string), got {v!r}",
                            field=key)
    return s


def validate_intent(intent: Any) -> dict[str, Any]:
    """The intent in canonical form (lower-case addresses, amounts as decimal strings); BadInputError naming the
    field for anything malformed."""
    if not isinstance(intent, dict):
        raise BadInputError("intent must be a JSON object", field="intent")
    kind = intent.get("kind")
    if kind not in KINDS:
        raise BadInputError(f"intent.kind must be one of {sorted(KINDS)}, got {kind!r}", field="kind")
    allowed = {"kind", "target", "selector", "to", "amount"} | ({"token_in", "min_out"} if kind == "swap" else set())
    extra = sorted(set(intent) - allowed)
    if extra:
        raise BadInputError(f"intent has unknown field(s) {extra} for a {kind}", field=extra[0])
    out = {"kind": kind, "target": _addr(intent.get("target"), "target"), "to": _addr(intent.get("to"), "to"),
           "amount": _uint(intent.get("amount"), "amount"), "selector": KINDS[kind]}
    if intent.get("selector", out["selector"]) != out["selector"]:
        raise BadInputError(f"intent.selector {intent['selector']!r} is not {kind}'s {out['selector']}",
                            field="selector")
    if out["amount"] == "0":
        raise BadInputError("intent.amount must be positive", field="amount")
    if kind == "swap":
        out["token_in"] = _addr(intent.get("token_in"), "token_in")
        out["min_out"] = _uint(intent.get("min_out"), "min_out")
    return out


def calldata(intent: dict[str, Any]) -> bytes:
    """The call the intent describes (the guard forwards it to ``intent.target``)."""
    from eth_abi import encode

    sel = bytes.fromhex(intent["selector"][2:])
    if intent["kind"] == "swap":
        return sel + encode(["address", "uint256", "uint256", "address"],
                            [intent["token_in"], int(intent["amount"]), int(intent["min_out"]), intent["to"]])
    return sel + encode(["address", "uint256"], [intent["to"], int(intent["amount"])])


def commit_inputs(inputs: Any, salt: bytes | None = None) -> tuple[str, bytes]:
    """``sha256(salt || RFC 8785 JSON of inputs)`` and the 32-byte salt (fresh unless given)."""
    salt = secrets.token_bytes(32) if salt is None else salt
    if len(salt) != 32:
        raise BadInputError("the input salt must be 32 bytes", field="salt")
    return hashlib.sha256(salt + canonical_json(inputs)).hexdigest(), salt


def intent_id(chain_id: int, agent: str, nonce: int, intent: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json({"chain_id": chain_id, "agent": agent.lower(), "nonce": nonce,
                                          "intent": intent})).hexdigest()


def malformed(b: Any) -> str | None:
    """Why an ``agent.action`` body is malformed (None when it is well formed): the form :func:`log_action`
    writes, field by field."""
    if not isinstance(b, dict):
        return "the body is not a JSON object"
    for k in ("chain_id", "nonce", "model_entry"):
        if type(b.get(k)) is not int or b[k] < 0:
            return f"body.{k} must be a non-negative integer"
    for k in ("agent", "guard"):
        if not isinstance(b.get(k), str) or not _ADDR.fullmatch(b[k]):
            return f"body.{k} must be a lower-case 0x-prefixed 20-byte hex address"
    if not isinstance(b.get("tx"), str) or not _HASH.fullmatch(b["tx"]):
        return "body.tx must be a lower-case 0x-prefixed 32-byte hex hash"
    if not isinstance(b.get("model"), str) or not b["model"]:
        return "body.model must name the model"
    inp = b.get("inputs")
    if not (isinstance(inp, dict) and inp.get("alg") == "sha256-salted-jcs" and isinstance(inp.get("commitment"), str)
            and re.fullmatch(r"[0-9a-f]{64}", inp["commitment"])):
        return 'body.inputs must be {"alg": "sha256-salted-jcs", "commitment": <64 hex digits>}'
    try:
        it = validate_intent(b.get("intent"))
    except BadInputError as exc:
        return exc.message
    if it != b.get("intent"):
        return "body.intent is not in canonical form (lower-case addresses, decimal-string amounts, the selector)"
    if b.get("intent_id") != intent_id(b["chain_id"], b["agent"], b["nonce"], it):
        return "body.intent_id is not the sha256 of its chain, agent, nonce and intent"
    return None


class ActionFold:
    """The ``agent.action`` rule (docs/authority.md), applied to entries in log order.  The one rule the readers
    (:func:`effective_actions`) and admission (:func:`ailedger.defi.rules.judge`) apply: an action counts when its
    body is well formed, it names an effective model registration logged before it (``body.model`` its name),
    no revocation or suspension of that model in force was logged before it, and it is the first for its
    (chain, agent, nonce) and for its intent id.

    A ruling since lifted is not seen by a reader (it reads the rulings in force); admission reads the status
    at the time of writing, where the two agree."""

    def __init__(self, ledger: Any, agent: str | None = None) -> None:
        self.ledger = ledger
        self.agent = None if agent is None else agent.lower()
        self.seen_nonce: dict[tuple[int, str, int], int] = {}
        self.seen_id: dict[str, int] = {}
        self.kept: list[tuple[int, Any]] = []
        self.ignored: list[tuple[int, str]] = []
        self._rulings: dict[str, list[Any]] = {}
        self._regs: dict[int, tuple[bool, Any]] = {}

    def _stopping(self, name: str) -> list[Any]:
        if name not in self._rulings:
            st = model_status(self.ledger, name)
            self._rulings[name] = [r for r in st.rulings if r.state in ("revoked", "suspended")]
        return self._rulings[name]

    def _registration(self, me: int) -> tuple[bool, Any]:
        if me not in self._regs:
            ok = is_effective_registration(self.ledger, me)
            reg = self.ledger.entry(me) if ok else None
            self._regs[me] = (ok, reg.body.get("name") if reg is not None and isinstance(reg.body, dict) else None)
        return self._regs[me]

    def why_not(self, index: int, e: Any, bad: str | None = "?") -> str | None:
        """Why ``e`` at ``index`` has no effect after the entries applied so far (None: it counts)."""
        b = e.body
        bad = malformed(b) if bad == "?" else bad
        if bad is not None:
            return f"malformed agent.action body: {bad}"
        me = b["model_entry"]
        if me >= index or me >= self.ledger.size:
            return f"body.model_entry #{me} is not a model.register logged before it"
        ok, name = self._registration(me)
        if not ok:
            return f"entry #{me} is not an effective model registration"
        if b["model"] != name:
            return f"body.model {b['model']!r} is not {name!r}, the name registered at entry #{me}"
        for r in self._stopping(str(name)):
            if r.entry < index:
                return f"model {name} was {r.state} by {r.by} (entry #{r.entry}) before this action"
        key = (b["chain_id"], b["agent"], b["nonce"])
        iid = b["intent_id"]
        if key in self.seen_nonce:
            return (f"replayed intent: agent {b['agent']} nonce {b['nonce']} on chain {b['chain_id']} was already "
                    f"logged at entry #{self.seen_nonce[key]}")
        if iid in self.seen_id:  # the intent id hashes chain, agent and nonce: kept for a clear message
            return f"replayed intent: intent id {iid} was already logged at entry #{self.seen_id[iid]}"
        return None

    def apply(self, index: int, e: Any) -> str | None:
        """Apply ``e`` (an ``agent.action`` at ``index``); the reason it is ignored, or None when it counts."""
        b = e.body
        bad = malformed(b)
        if self.agent is not None and bad is None and b["agent"] != self.agent:
            return None  # another agent's: not this fold's business
        why = self.why_not(index, e, bad)
        if why is not None:
            self.ignored.append((index, why))
            return why
        self.seen_nonce[(b["chain_id"], b["agent"], b["nonce"])] = self.seen_id[b["intent_id"]] = index
        self.kept.append((index, e))
        return None


_by_key: dict[str, tuple[int, dict[tuple[int, str, int], list[int]]]] = {}
_by_key_lock = threading.Lock()


def same_key_actions(ledger: Any) -> dict[tuple[int, str, int], list[int]]:
    """Every well-formed ``agent.action`` in the log by its (chain, agent, nonce), in log order: an index kept in
    memory per ledger and extended with the entries logged since (each entry is read once).  An action's verdict
    depends on its body, the model's standing and the earlier well-formed actions with its key only (an intent
    id hashes chain, agent and nonce), so admission replays just those (:func:`ailedger.defi.rules.judge`)."""
    with _by_key_lock:
        where = str(Path(ledger.path).resolve())
        size = ledger.size
        after, idx = _by_key.get(where, (-1, {}))
        if after >= size:  # another log at the same path (re-created): start again
            after, idx = -1, {}
        while True:
            got = [i for i in ledger.store.find(f"type:{ACTION}", after, 2000) if i < size]
            for i in got:
                b = ledger.entry(i).body
                if malformed(b) is None:
                    idx.setdefault((b["chain_id"], b["agent"], b["nonce"]), []).append(i)
            if len(got) < 2000:
                break
            after = got[-1]
        _by_key[where] = (size - 1, idx)
        return {k: list(v) for k, v in idx.items()}


def effective_actions(ledger: Any, agent: str | None = None) -> tuple[list[tuple[int, Any]], list[tuple[int, str]]]:
    """The ``agent.action`` entries that count, in log order, and the ignored ones with why (:class:`ActionFold`):
    malformed bodies, a model entry that is not an effective registration, a model revoked or suspended before
    the action, and replays (a second action for the same chain, agent and nonce, or the same intent id), however
    they reached the log."""
    fold = ActionFold(ledger, agent)
    for idx, e in ledger.find(type=ACTION):
        fold.apply(idx, e)
    return fold.kept, fold.ignored


def log_action(ledger: Any, identity: Any, *, model: str, inputs: Any, intent: Any, chain_id: int, agent: str,
               nonce: int, tx_hash: str, guard: str, salt: bytes | None = None) -> dict[str, Any]:
    """Append the ``agent.action`` for a signed, not yet sent transaction.  Refused: a malformed intent
    (BadInputError), a model that may not be used (VerificationError), a replayed nonce or intent
    (ConflictError)."""
    it = validate_intent(intent)
    idx, reg = model_registration(ledger, model)
    name = reg.body.get("name", model)
    require_model_usable(ledger, name)
    if not _HASH.fullmatch(tx_hash.lower()):
        raise BadInputError("tx_hash must be a 0x-prefixed 32-byte hex hash", field="tx")
    agent = _addr(agent, "agent")
    kept, _ = effective_actions(ledger, agent)
    iid = intent_id(chain_id, agent, nonce, it)
    for i, e in kept:
        if e.body["chain_id"] == chain_id and (e.body["nonce"] == nonce or
                                               intent_id(chain_id, agent, e.body["nonce"], e.body["intent"]) == iid):
            raise ConflictError(f"replayed intent: agent {agent} nonce {nonce} was already logged at entry #{i}",
                                field="nonce", entry=i)
    commitment, salt = commit_inputs(inputs, salt)
    body = {"agent": agent, "chain_id": chain_id, "guard": _addr(guard, "guard"), "nonce": nonce,
            "model": name, "model_entry": idx, "inputs": {"alg": "sha256-salted-jcs", "commitment": commitment},
            "intent": it, "intent_id": iid, "tx": tx_hash.lower()}
    res = ledger.append_record(ACTION, body, identity)
    return {"index": res.index, "body": body, "salt": salt.hex()}


def act(ledger: Any, identity: Any, market: Any, *, model: str, inputs: Any, intent: Any,
        salt: bytes | None = None) -> dict[str, Any]:
    """The agent's one way to act: sign the guard call locally, log the decision (with the transaction's hash),
    then broadcast.  The guard refuses anything outside the DAO's policy (GuardRefused, nothing logged: the
    refusal comes from the contract's own simulation before anything is signed)."""
    from .chain import build_signed

    w3 = market.w3
    it = validate_intent(intent)
    fn = market.guard.functions.execute(w3.to_checksum_address(it["target"]), calldata(it))
    signed = build_signed(w3, fn, market.agent)
    nonce = w3.eth.get_transaction_count(market.agent.address)
    logged = log_action(ledger, identity, model=model, inputs=inputs, intent=it, chain_id=w3.eth.chain_id,
                        agent=market.agent.address, nonce=nonce, tx_hash="0x" + bytes(signed.hash).hex(),
                        guard=market.guard.address, salt=salt)
    h = w3.eth.send_raw_transaction(signed.raw_transaction)
    rcpt = w3.eth.wait_for_transaction_receipt(h, timeout=60)
    logged.update(status=int(rcpt["status"]), gas=int(rcpt["gasUsed"]), block=int(rcpt["blockNumber"]))
    return logged


def audit(ledger: Any, w3: Any, agent: str, *, from_block: int = 0, to_block: int | None = None) -> dict[str, Any]:
    """Match every transaction sent by ``agent`` in the block range with the logged intents.  ``ok`` is False
    when a transaction has no logged decision, or its calldata does not say what the logged intent says."""
    from .chain import decode_call

    agent = _addr(agent, "agent")
    kept, ignored = effective_actions(ledger, agent)
    chain_id = w3.eth.chain_id
    by_tx = {e.body["tx"]: (i, e) for i, e in kept if e.body["chain_id"] == chain_id}
    end = w3.eth.block_number if to_block is None else to_block
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n in range(from_block, end + 1):
        blk = w3.eth.get_block(n, full_transactions=True)
        for tx in blk["transactions"]:
            if str(tx["from"]).lower() != agent:
                continue
            h = "0x" + bytes(tx["hash"]).hex()
            seen.add(h)
            row: dict[str, Any] = {"tx": h, "block": n, "nonce": int(tx["nonce"])}
            hit = by_tx.get(h)
            if hit is None:
                row.update(status="unlogged", why="no agent.action names this transaction")
            else:
                row["entry"] = hit[0]
                try:
                    decoded = decode_call(bytes(tx["input"] if "input" in tx else tx["data"]))
                except BadInputError as exc:
                    decoded = {"error": exc.message}
                logged = hit[1].body["intent"]
                same = all(decoded.get(k) == logged[k] for k in logged if k != "selector") and \
                    decoded.get("selector") == logged["selector"]
                row.update(status="matched" if same else "mismatch",
                           **({} if same else {"why": "calldata differs from the logged intent", "decoded": decoded}))
            rows.append(row)
    missing = [{"entry": i, "tx": e.body["tx"], "status": "not_on_chain"} for i, e in kept
               if e.body["chain_id"] == chain_id and e.body["tx"] not in seen]
    counts = {s: sum(r["status"] == s for r in rows) for s in ("matched", "unlogged", "mismatch")}
    return {"agent": agent, "chain_id": chain_id, "blocks": [from_block, end], "transactions": rows,
            "logged_not_on_chain": missing, "ignored_entries": [{"entry": i, "why": w} for i, w in ignored],
            "counts": {**counts, "not_on_chain": len(missing)},
            "ok": counts["unlogged"] == 0 and counts["mismatch"] == 0}
