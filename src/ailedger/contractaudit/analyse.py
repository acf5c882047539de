"""Slither over the npm solc shim, and the per-function features the learned layer reads.

One :func:`run_slither` call compiles any number of files, one standard-JSON compilation per compiler their
pragmas pick (:func:`.solc.compiler_for`), and returns, per file, Slither's DASP findings and one feature row
per function.  Slither and
crytic-compile are imported here, lazily (the ``contractaudit`` extra).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ailedger.errors import AiledgerError

from .dasp import SLITHER_TO_DASP
from .frontrun import front_running
from .solc import compiler_for

__all__ = ["FunctionRow", "SlitherRun", "run_slither", "tool_versions"]


@dataclass
class FunctionRow:
    file: str
    contract: str
    function: str
    start: int
    end: int
    features: dict[str, int]
    nodes: list[tuple[int, dict[str, int]]] = field(default_factory=list)  # (line, features of that line)


@dataclass
class SlitherRun:
    findings: dict[str, list[dict[str, Any]]]   # file -> DASP findings
    functions: dict[str, list[FunctionRow]]     # file -> rows
    rules: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # file -> ailedger's own rules' findings
    compilers: dict[str, str] = field(default_factory=dict)  # file -> compiler version
    errors: dict[str, str] = field(default_factory=dict)     # file -> why it was not analysed (keep_going)


def tool_versions() -> dict[str, str]:
    from importlib.metadata import version
    return {name: version(name) for name in ("slither-analyzer", "crytic-compile", "scikit-learn")}


def _lines(obj: Any) -> list[int]:
    sm = getattr(obj, "source_mapping", None)
    return list(sm.lines) if sm is not None and sm.lines else []


_BLOCK = {"block.timestamp", "now", "block.number", "block.prevrandao", "block.difficulty", "blockhash(uint256)",
          "block.coinbase", "block.gaslimit"}


def _node_features(node: Any, state_names: set[str]) -> dict[str, int]:
    from slither.slithir.operations import (
        Binary,
        Condition,
        HighLevelCall,
        Length,
        LowLevelCall,
        Send,
        SolidityCall,
        Transfer,
        TypeConversion,
    )
    f: dict[str, int] = {}

    def add(k: str, v: int = 1) -> None:
        f[k] = f.get(k, 0) + v

    checked = bool(getattr(node.scope, "is_checked", True))
    svars = {v.name for v in node.solidity_variables_read}
    for v in sorted(svars):
        add(f"solvar:{v}")
    block = bool(svars & _BLOCK)
    cond = node.contains_require_or_assert() or node.contains_if()
    if cond:
        add("cond")
    for ir in node.irs:
        name = type(ir).__name__
        add(f"ir:{name}")
        if isinstance(ir, SolidityCall):
            fn = ir.function.name
            add(f"call:{fn}")
            if fn.startswith("blockhash"):
                block = True
        if isinstance(ir, Binary):
            op = str(getattr(ir.type, "value", ir.type))
            add(f"op:{op}")
            if not checked and op in ("+", "-", "*", "**"):
                add("unchecked_arith")
        if isinstance(ir, TypeConversion) and str(ir.type).startswith(("uint", "int")) and str(ir.type) not in (
                "uint256", "int256"):
            add("narrowing_cast")
        if isinstance(ir, (LowLevelCall, Send)) and (ir.lvalue is None or not ir.lvalue.name):
            add("result_ignored")
        if isinstance(ir, (LowLevelCall, HighLevelCall, Send, Transfer)):
            add("external_call")
            if getattr(ir, "call_value", None) is not None or isinstance(ir, (Send, Transfer)):
                add("sends_value")
        if isinstance(ir, Length):
            add("reads_length")
        if isinstance(ir, Condition):
            add("branch")
    if block:
        add("block_value")
        if cond:
            add("block_in_condition")
        if "call:keccak256(bytes)" in f or "op:%" in f:
            add("block_derived_number")
    if "msg.sender" in svars and cond:
        add("sender_checked")
    if "tx.origin" in svars and cond:
        add("origin_checked")
    if node.state_variables_written:
        add("writes_state")
    if node.type.name in ("STARTLOOP", "IFLOOP"):
        add("loop")
    return f


def _function_row(fn: Any, file: str) -> FunctionRow | None:
    lines = _lines(fn)
    if not lines or fn.is_shadowed or fn.name.startswith("slitherConstructor"):  # Slither's synthetic ones
        return None
    state_names = {v.name for v in fn.contract.state_variables}
    feats: dict[str, int] = {}
    nodes: list[tuple[int, dict[str, int]]] = []
    seen_call = False
    write_after_call = 0
    in_loop = 0
    call_in_loop = 0
    for node in fn.nodes:
        nf = _node_features(node, state_names)
        if node.type.name == "STARTLOOP":
            in_loop += 1
        if node.type.name == "ENDLOOP":
            in_loop = max(0, in_loop - 1)
        if in_loop and "external_call" in nf:
            call_in_loop += 1
            nf["call_in_loop"] = 1
        if seen_call and "writes_state" in nf:
            write_after_call += 1
            nf["write_after_call"] = 1
        if "external_call" in nf:
            seen_call = True
        for k, v in nf.items():
            feats[k] = feats.get(k, 0) + v
        nl = _lines(node)
        if nl and nf:
            nodes.append((nl[0], nf))
    if write_after_call:
        feats["write_after_call"] = write_after_call
    if call_in_loop:
        feats["call_in_loop"] = call_in_loop
    vis = getattr(fn, "visibility", "")
    feats[f"visibility:{vis}"] = 1
    if fn.payable:
        feats["payable"] = 1
    if fn.view or fn.pure:
        feats["readonly"] = 1
    if fn.modifiers:
        feats["has_modifier"] = 1
    if fn.is_constructor:
        feats["constructor"] = 1
    params = [str(p.type) for p in fn.parameters]
    feats["params_address"] = int(sum(t.startswith("address") and "[" not in t for t in params))
    feats["params_uint"] = int(sum(t.startswith("uint") for t in params))
    if any(p.name in state_names for p in fn.parameters):
        feats["param_shadows_state"] = 1
    if vis in ("public", "external") and not fn.view and not fn.pure and "sender_checked" not in feats \
            and not fn.modifiers and not fn.is_constructor:
        feats["unguarded_public_write"] = 1 if "writes_state" in feats else 0
    written = {v.name for f2 in fn.contract.functions_and_modifiers for v in f2.state_variables_written}
    uninit = [v for v in fn.state_variables_read if v.name not in written and v.expression is None
              and not v.is_constant and not v.is_immutable]
    if uninit:
        feats["reads_never_written_state"] = len(uninit)
    return FunctionRow(file=file, contract=fn.contract.name, function=fn.full_name, start=lines[0], end=lines[-1],
                       features={k: v for k, v in sorted(feats.items()) if v}, nodes=nodes)


def run_slither(paths: list[Path], *, keep_going: bool = False, per_file: bool = False) -> SlitherRun:
    """Compile ``paths`` (together, one standard-JSON compilation per picked compiler; or one by one with
    ``per_file``) and run every Slither detector.  With ``keep_going`` a file that cannot be compiled or
    analysed is left out and named in ``errors`` (a failed group is retried file by file) instead of failing
    the whole run."""
    groups: dict[str, list[Path]] = {}
    out = SlitherRun(findings={}, functions={})
    for p in paths:
        try:
            c = compiler_for(Path(p).read_text(encoding="utf-8", errors="replace"), Path(p).name)
        except AiledgerError as e:
            if not keep_going:
                raise
            out.errors[str(Path(p).resolve())] = str(e)
            continue
        out.compilers[str(Path(p).resolve())] = c.version
        groups.setdefault(str(c.shim), []).append(p)
    for shim, ps in sorted(groups.items()):
        batches = [[p] for p in ps] if per_file else [ps]
        for batch in batches:
            try:
                r = _run_group(batch, shim)
            except AiledgerError as e:
                if not keep_going:
                    raise
                if len(batch) > 1:
                    r = run_slither(batch, keep_going=True, per_file=True)
                    out.errors.update(r.errors)
                else:
                    out.errors[str(Path(batch[0]).resolve())] = str(e)
                    continue
            out.findings.update(r.findings)
            out.functions.update(r.functions)
            out.rules.update(r.rules)
    return out


def _run_group(paths: list[Path], shim: str) -> SlitherRun:
    import inspect

    from crytic_compile import CryticCompile
    from crytic_compile.platform.solc_standard_json import SolcStandardJson
    from slither import Slither
    from slither.detectors import all_detectors
    from slither.detectors.abstract_detector import AbstractDetector

    for name in ("Slither", "CryticCompile", "Detectors", "Printers", "ContractSolcParsing", "FunctionSolc"):
        logging.getLogger(name).setLevel(logging.ERROR)
    abs_paths = [str(p.resolve()) for p in paths]
    platform = SolcStandardJson()
    for p in abs_paths:
        platform.add_source_file(p)
    try:
        cc = CryticCompile(platform, solc=shim)
        sl = Slither(cc)
    except AiledgerError:
        raise
    except Exception as e:  # crytic-compile / Slither raise their own bare exception types
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip() and not set(ln.strip()) <= set("|^ -")]
        why = next((ln for ln in lines if "Error" in ln), lines[-1] if lines else repr(e))
        raise AiledgerError(f"slither failed: {why}") from e
    detectors: list[Any] = sorted((d for _, d in inspect.getmembers(all_detectors, inspect.isclass)
                                   if issubclass(d, AbstractDetector) and getattr(d, "ARGUMENT", "") in SLITHER_TO_DASP),
                                  key=lambda d: str(getattr(d, "ARGUMENT", "")))
    for d in detectors:
        sl.register_detector(d)
    by_abs = {p: p for p in abs_paths}
    findings: dict[str, list[dict[str, Any]]] = {p: [] for p in abs_paths}
    for results in sl.run_detectors():
        for r in results:
            els = [e for e in r.get("elements", []) if e.get("source_mapping", {}).get("lines")]
            if not els:
                continue
            sm = els[0]["source_mapping"]
            file = str(Path(sm.get("filename_absolute") or sm["filename_used"]).resolve())
            if file not in by_abs:
                continue
            lines = sm["lines"]
            findings[file].append({
                "tool": "slither", "rule": r["check"], "category": SLITHER_TO_DASP[r["check"]],
                "line": int(lines[0]), "end_line": int(lines[-1]),
                "slither_confidence": r["confidence"], "impact": r["impact"],
                "explanation": " ".join(r["description"].split())[:400],
            })
    functions: dict[str, list[FunctionRow]] = {p: [] for p in abs_paths}
    for c in sl.contracts:
        if c.is_interface:
            continue
        for fn in c.functions_and_modifiers_declared:
            sm = fn.source_mapping
            if sm is None:
                continue
            file = str(Path(sm.filename.absolute).resolve())
            if file not in functions:
                continue
            row = _function_row(fn, file)
            if row is not None and row.nodes:
                functions[file].append(row)
    for rows in functions.values():
        rows.sort(key=lambda r: (r.start, r.contract, r.function))
    for fl in findings.values():
        fl.sort(key=lambda x: (x["line"], x["rule"], x["explanation"]))
    rules: dict[str, list[dict[str, Any]]] = {p: [] for p in abs_paths}
    rules.update(front_running(sl.contracts, set(abs_paths)))
    return SlitherRun(findings=findings, functions=functions, rules=rules)
