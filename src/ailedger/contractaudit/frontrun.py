"""Front-running (DASP 7, SWC-114 transaction-order dependence): rules over Slither's IR, which has no
detector for it.  Four patterns, each a finding of category ``front_running`` (tool ``ailedger``):

* ``tx-order-dependence``: a public function sends value (ether, or a token ``transfer``) whose amount, or the
  price a condition compares ``msg.value`` against, is a state variable another public function writes; or a
  condition guarding the payout reads a state variable that another *paying* public function writes (two
  payouts racing, the order of the two transactions decides who is paid what).  Per-user state (mappings,
  arrays) is left out: it does not race between users.
* ``erc20-approve-race``: ``approve(address,uint256)`` overwrites an allowance without any condition on the
  allowance it replaces (the spender can spend the old and the new allowance by front-running the change;
  the ERC-20 standard's own warning).
* ``revealed-solution``: a public function pays ``msg.sender`` (or records ``msg.sender`` in state) when a
  parameter passes an equality check (a hash preimage, the answer to a puzzle), with no check on who the
  caller is: anyone who sees the transaction in the mempool can send the same answer first.

* ``revealed-choice``: a payable function stores the caller's parameter (a move, a bid) in state and a
  payout is decided on it, with no commit-reveal: the next caller reads it and answers to win.

Each finding has the line of the statement (the payout, the condition, the write) and the function's line
range, like Slither's findings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["RULE_CONFIDENCE", "front_running"]

RULE_CONFIDENCE = 900  # per mille: a rule match, not a probability (docs/contract-audit.md)

_TOKEN_SENDS = {"transfer", "transferFrom", "send", "safeTransfer", "safeTransferFrom"}
_SENDER = ("msg.sender", "tx.origin")


def _lines(obj: Any) -> list[int]:
    sm = getattr(obj, "source_mapping", None)
    return list(sm.lines) if sm is not None and sm.lines else []


def _is_scalar_state(v: Any) -> bool:
    from slither.core.solidity_types import ArrayType, MappingType
    from slither.core.variables.state_variable import StateVariable
    return isinstance(v, StateVariable) and not isinstance(v.type, (MappingType, ArrayType)) \
        and not v.is_constant and not getattr(v, "is_immutable", False)


def _payouts(fn: Any) -> list[tuple[Any, Any, Any]]:
    """(node, amount, destination) of each value transfer in ``fn``."""
    from slither.slithir.operations import HighLevelCall, LowLevelCall, Send, Transfer
    out = []
    for node in fn.nodes:
        for ir in node.irs:
            if isinstance(ir, (Transfer, Send)) or isinstance(ir, LowLevelCall) and ir.call_value is not None:
                out.append((node, ir.call_value, ir.destination))
            elif isinstance(ir, HighLevelCall) and str(getattr(ir.function_name, "value", ir.function_name)) \
                    in _TOKEN_SENDS and ir.arguments:
                out.append((node, ir.arguments[-1], ir.arguments[0] if len(ir.arguments) == 2 else ir.arguments[1]))
    return out


def _conditions(fn: Any) -> list[Any]:
    return [n for n in fn.nodes if n.contains_require_or_assert() or n.contains_if()]


def _depends(var: Any, on: Any, fn: Any) -> bool:
    from slither.analyses.data_dependency.data_dependency import is_dependent
    if var is None:
        return False
    try:
        return var == on or bool(is_dependent(var, on, fn))
    except Exception:  # noqa: BLE001 - Slither's dependency analysis is best-effort on odd IR
        return False


def _sender_read(node: Any) -> bool:
    return any(v.name in _SENDER for v in node.solidity_variables_read)


def _public_writers(contract: Any) -> dict[Any, set[Any]]:
    """state variable -> the public, state-changing, non-constructor functions that write it (modifiers'
    writes included)."""
    out: dict[Any, set[Any]] = {}
    for f in contract.functions:
        if f.visibility not in ("public", "external") or f.is_constructor or f.view or f.pure:
            continue
        if f.name in ("slitherConstructorVariables", "slitherConstructorConstantVariables"):
            continue
        for v in f.all_state_variables_written():
            out.setdefault(v, set()).add(f)
    return out


def _finding(fn: Any, rule: str, line: int, why: str, file: str) -> dict[str, Any]:
    fl = _lines(fn)
    return {"tool": "ailedger", "rule": rule, "category": "front_running", "line": int(line),
            "start_line": int(fl[0]) if fl else int(line), "end_line": int(fl[-1]) if fl else int(line),
            "function": f"{fn.contract.name}.{fn.full_name}", "confidence": RULE_CONFIDENCE,
            "explanation": f"{fn.contract.name}.{fn.full_name}: {why}"[:400], "file": file}


def _tod(c: Any, fn: Any, writers: dict[Any, set[Any]], payers: set[Any], file: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    pays = _payouts(fn)

    def others(v: Any) -> set[Any]:
        return {g for g in writers.get(v, set()) if g is not fn}
    scalars = [v for v in c.state_variables if _is_scalar_state(v)]
    for node, amount, _ in pays:
        for v in scalars:
            if others(v) and _depends(amount, v, fn):
                g = min(others(v), key=lambda x: x.full_name)
                out.append(_finding(fn, "tx-order-dependence", _lines(node)[0] if _lines(node) else 0,
                                    f"pays an amount read from `{v.name}`, which {g.full_name} can change in a "
                                    "transaction ordered before this one", file))
                break
        else:
            continue
        break
    if not out and pays:
        for cond in _conditions(fn):
            hit = [v for v in cond.state_variables_read if _is_scalar_state(v) and others(v) & payers]
            if hit:
                v = min(hit, key=lambda x: x.name)
                g = min(others(v) & payers, key=lambda x: x.full_name)
                node = pays[0][0]
                out.append(_finding(fn, "tx-order-dependence", _lines(node)[0] if _lines(node) else 0,
                                    f"its payout is guarded by `{v.name}`, which {g.full_name} (also paying) "
                                    "changes: the order of the two transactions decides the payout", file))
                break
    if not out and fn.payable:
        for cond in _conditions(fn):
            if not any(v.name == "msg.value" for v in cond.solidity_variables_read):
                continue
            hit = [v for v in cond.state_variables_read if _is_scalar_state(v) and others(v)]
            if hit:
                v = min(hit, key=lambda x: x.name)
                g = min(others(v), key=lambda x: x.full_name)
                out.append(_finding(fn, "tx-order-dependence", _lines(cond)[0] if _lines(cond) else 0,
                                    f"the price checked against msg.value is `{v.name}`, which {g.full_name} can "
                                    "change in a transaction ordered before this one", file))
                break
    return out


def _approve(fn: Any, file: str) -> list[dict[str, Any]]:
    if fn.full_name != "approve(address,uint256)" or fn.view or fn.pure:
        return []
    written = set(fn.all_state_variables_written())
    if not written:
        return []
    for cond in _conditions(fn):
        if set(cond.state_variables_read) & written:
            return []  # e.g. require(value == 0 || allowed[msg.sender][spender] == 0)
    node = next((n for n in fn.nodes if set(n.state_variables_written) & written), None)
    line = _lines(node)[0] if node is not None and _lines(node) else (_lines(fn) or [0])[0]
    return [_finding(fn, "erc20-approve-race", line, "approve overwrites the allowance without checking the old "
                     "one: the spender can front-run the change and spend both", file)]


def _solution(fn: Any, file: str) -> list[dict[str, Any]]:
    from slither.core.declarations.solidity_variables import SolidityVariableComposed
    from slither.slithir.operations import Binary, BinaryType
    if fn.modifiers or not fn.parameters:
        return []
    conds = _conditions(fn)
    if any(_sender_read(n) for n in conds):
        return []  # the caller is checked (an owner, a per-user balance): not anyone's answer
    sender = SolidityVariableComposed("msg.sender")
    rewards = any(_depends(dest, sender, fn) for _, _, dest in _payouts(fn)) or any(
        _is_scalar_state(v) and any(_depends(v, sender, fn) or sender in n.solidity_variables_read
                                    for n in fn.nodes if v in n.state_variables_written)
        for v in fn.all_state_variables_written())
    if not rewards:
        return []
    for cond in conds:
        for ir in cond.irs:
            if isinstance(ir, Binary) and ir.type == BinaryType.EQUAL and any(
                    _depends(x, p, fn) for x in (ir.variable_left, ir.variable_right) for p in fn.parameters):
                return [_finding(fn, "revealed-solution", _lines(cond)[0] if _lines(cond) else 0,
                                 "rewards the caller for an answer checked by equality, with no check on who "
                                 "calls: the answer is public in the mempool and can be sent first by anyone",
                                 file)]
    return []


def _choice(fn: Any, file: str) -> list[dict[str, Any]]:
    """A payable function stores the caller's parameter (a move, a bid, a guess) in public state, and a payout
    is decided on it: the next caller sees it and answers to win (no commit-reveal)."""
    if not fn.payable or not fn.parameters:
        return []
    called = (getattr(c, "function", c) for c in fn.all_internal_calls())  # InternalCall IRs in Slither 0.11
    callees = [fn, *[g for g in called if hasattr(g, "nodes")]]
    if not any(_payouts(g) for g in callees):
        return []
    conds = [(g, n) for g in callees for n in _conditions(g)]

    pays = [(g, x) for g in callees for node, amount, dest in _payouts(g) for x in (amount, dest, *node.variables_read)]

    def decides(v: Any) -> bool:
        return any(v in n.state_variables_read or any(_depends(x, v, g) for x in n.variables_read) for g, n in conds) \
            or any(_depends(x, v, g) for g, x in pays)  # who is paid, or how much (an index read counts)
    for node in fn.nodes:
        for v in node.state_variables_written:
            if decides(v) and any(_depends(x, p, fn) for x in node.variables_read for p in fn.parameters):
                return [_finding(fn, "revealed-choice", _lines(node)[0] if _lines(node) else 0,
                                 f"stores the caller's `{', '.join(p.name for p in fn.parameters)}` in `{v.name}`, "
                                 "which decides a payout: the next caller reads it and answers to win "
                                 "(no commit-reveal)", file)]
    return []


def front_running(contracts: Any, files: set[str]) -> dict[str, list[dict[str, Any]]]:
    """The four rules over Slither's contracts; findings per (resolved) file, for files in ``files``."""
    out: dict[str, list[dict[str, Any]]] = {}
    for c in contracts:
        if c.is_interface:
            continue
        writers = _public_writers(c)
        fns = [f for f in c.functions_declared if f.visibility in ("public", "external") and not f.is_constructor
               and not f.view and not f.pure and not f.is_shadowed and not f.name.startswith("slitherConstructor")]
        payers = {f for f in c.functions if _payouts(f)}
        for fn in fns:
            sm = fn.source_mapping
            if sm is None:
                continue
            file = str(Path(sm.filename.absolute).resolve())
            if file not in files:
                continue
            got = [*_approve(fn, file), *_solution(fn, file), *_choice(fn, file), *_tod(c, fn, writers, payers, file)]
            for f in got:
                f.pop("file")
                out.setdefault(file, []).append(f)
    for fl in out.values():
        fl.sort(key=lambda x: (x["line"], x["rule"], x["explanation"]))
    return out
