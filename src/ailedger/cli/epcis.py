"""`ailedger epcis ...`: GS1 EPCIS 2.0 supply-chain events on the ledger (docs/supply-chain.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from ailedger.cli._common import emit, json_option, ledger_option, open_ledger
from ailedger.errors import BadInputError


def _short(h: str) -> str:
    return h.split(";", 1)[-1][:16] + "..."


def _write(report: dict[str, Any], output: str | None) -> None:
    if output:
        Path(output).write_text(json.dumps(report, indent=1, sort_keys=True), encoding="utf-8")


def register(main: click.Group) -> None:
    @main.group("epcis")
    def epcis() -> None:
        """GS1 EPCIS 2.0 supply chains: capture events, trace items, recall reports with proofs."""

    @epcis.command("hash")
    @click.argument("file", type=click.Path(dir_okay=False))
    @click.option("--prehash", is_flag=True, help="also print each event's pre-hash string")
    @json_option
    def hash_cmd(file: str, prehash: bool, as_json: bool) -> None:
        """Validate FILE (an EPCIS 2.0 JSON/JSON-LD or XML document) and print each event's CBV event hash ID.
        Offline: no ledger needed."""
        from ailedger.supplychain.eventhash import prehash as pre
        from ailedger.supplychain.events import validate_document
        from ailedger.supplychain.xmldoc import load_document

        events = validate_document(load_document(file))
        rows = [{"type": e.type, "hash": e.hash, **({"prehash": pre(e.data, e.context)} if prehash else {})}
                for e in events]
        emit(as_json, {"events": rows}, lambda: "\n".join(
            f"{r['hash']}  {r['type']}" + (f"\n  {r['prehash']}" if prehash else "") for r in rows))

    @epcis.command("capture")
    @click.argument("file", type=click.Path(dir_okay=False))
    @click.option("--as", "identity", required=True, help="identity name that signs the events")
    @ledger_option
    @json_option
    def capture_cmd(file: str, identity: str, ledger_dir: Path | None, as_json: bool) -> None:
        """Validate FILE (EPCIS 2.0 JSON-LD or XML: schema, CBV vocabulary, declared event hashes, stock) and log
        each event under its CBV event hash; an event already logged keeps its first entry."""
        from ailedger.supplychain.service import capture
        from ailedger.supplychain.xmldoc import load_document

        doc = load_document(file)
        with open_ledger(ledger_dir) as led:
            ident = led.identities.load(identity, os.environ.get("AILEDGER_PASSPHRASE"))
            res = capture(led, ident, doc)
        rows = [c.as_dict() for c in res]
        new = sum(not c.duplicate for c in res)
        emit(as_json, {"events": rows, "logged": new, "duplicates": len(res) - new},
             lambda: "\n".join([(f"captured {len(res)} event(s) from {file}: {new} logged, "
                                 f"{len(res) - new} already in the log")]
                               + [f"  #{c.index} {c.type:<20} {c.hash}" + ("  (already logged)" if c.duplicate
                                                                            else "") for c in res]))

    @epcis.command("trace")
    @click.argument("epc")
    @click.option("--forward/--backward", default=True, show_default=True,
                  help="forward: where the item went; backward: what went into it")
    @click.option("--depth", type=click.IntRange(1, 10_000), default=64, show_default=True,
                  help="hops to follow at most")
    @click.option("-o", "--output", type=click.Path(dir_okay=False), help="write the report (with proofs) here")
    @ledger_option
    @json_option
    def trace_cmd(epc: str, forward: bool, depth: int, output: str | None, ledger_dir: Path | None,
                  as_json: bool) -> None:
        """Follow EPC (an EPC URI or GS1 Digital Link URI) through transformation, aggregation and association
        events; every event comes with its inclusion proof (an inspection verdict with its inference record's)."""
        from ailedger.supplychain.service import trace

        with open_ledger(ledger_dir, read_only=True) as led:
            rep = trace(led, epc, forward=forward, max_depth=depth)
        _write(rep, output)
        emit(as_json, rep, lambda: "\n".join(
            [(f"{rep['direction']} trace of {rep['item']}: {len(rep['items'])} item(s), {len(rep['events'])} "
              f"event(s), each with an inclusion proof at log size {rep['size']}")]
            + [f"  {'  ' * it['depth']}{it['item']}" + (f"  (via #{it['via']})" if it["via"] is not None else "")
               for it in rep["items"]]
            + ["events:"] + [f"  #{e['index']} {e['type']:<20} {e.get('bizStep') or '':<14} {_short(e['hash'])}"
                             for e in rep["events"]]
            + ([f"report written to {output}"] if output else [])))

    @epcis.command("recall")
    @click.argument("epc")
    @click.option("-o", "--output", type=click.Path(dir_okay=False), help="write the report (with proofs) here")
    @ledger_option
    @json_option
    def recall_cmd(epc: str, output: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """A recall report for EPC (typically a lot): every downstream item with the event that links it
        and that event's inclusion proof."""
        from ailedger.supplychain.service import recall

        with open_ledger(ledger_dir, read_only=True) as led:
            rep = recall(led, epc)
        _write(rep, output)
        emit(as_json, rep, lambda: "\n".join(
            [f"recall of {rep['recall']}: {len(rep['affected'])} affected item(s)"]
            + [f"  {a['item']}  (depth {a['depth']}, via #{a['via']} {_short(a['event'])})" for a in rep["affected"]]
            + ([f"report written to {output}"] if output else [])))

    @epcis.command("verify")
    @click.argument("report", type=click.Path(dir_okay=False))
    @ledger_option
    @json_option
    def verify_cmd(report: str, ledger_dir: Path | None, as_json: bool) -> None:
        """Check a trace or recall REPORT: every event's inclusion proof against the log key, and that the
        proved entry holds an event with that hash (exit 1 when one does not)."""
        from ailedger.supplychain.service import verify_logged

        try:
            rep = json.loads(Path(report).read_bytes())
        except FileNotFoundError:
            raise BadInputError(f"no such file: {report}", field="report") from None
        except ValueError as exc:
            raise BadInputError(f"{report} is not JSON: {exc}", field="report") from None
        if not isinstance(rep, dict) or "events" not in rep or "vkey" not in rep:
            raise BadInputError(f"{report} is not an epcis trace or recall report", field="report")
        with open_ledger(ledger_dir, read_only=True) as led:
            res = verify_logged(led, rep)
        emit(as_json, res, f"OK: {res['events']} event(s), each proved in the log and holding its event hash")

    @epcis.command("inspect")
    @click.argument("model")
    @click.option("--model-dir", required=True, type=click.Path(exists=True, file_okay=False),
                  help="the registered model's files (checked against its registration)")
    @click.option("--item", "items", multiple=True, required=True, metavar="EPC=IMAGE",
                  help="an item and its image (.npy 8x8 array or an image file); repeatable")
    @click.option("--read-point", required=True, help="where the inspection happens (an SGLN URI)")
    @click.option("--as", "identity", required=True, help="identity name that signs the verdict events")
    @ledger_option
    @json_option
    def inspect_cmd(model: str, model_dir: str, items: tuple[str, ...], read_point: str, identity: str,
                    ledger_dir: Path | None, as_json: bool) -> None:
        """Inspect items with registered MODEL; each inference is logged as an inference record (an
        inference.batch entry) and each verdict as an EPCIS ObjectEvent naming the model and referencing its
        record.  A revoked model is refused (exit 1)."""
        from ailedger.supplychain.inspection import inspect

        pairs = []
        for it in items:
            epc, sep, img = it.partition("=")
            if not sep or not epc or not img:
                raise BadInputError(f"--item takes EPC=IMAGE, got {it!r}", field="item")
            pairs.append((epc, img))
        with open_ledger(ledger_dir) as led:
            ident = led.identities.load(identity, os.environ.get("AILEDGER_PASSPHRASE"))
            res = inspect(led, ident, model, model_dir, pairs, read_point=read_point,
                          passphrase=os.environ.get("AILEDGER_PASSPHRASE"))
        emit(as_json, {"verdicts": res}, lambda: "\n".join(
            [f"inspected {len(res)} item(s) with model {model}:"]
            + [f"  #{r['index']} {r['epc']}: {r['verdict']} (score {r['score']}, inference record {r['receipt']})"
               for r in res]))

    @epcis.command("allocate")
    @click.argument("needs", type=click.Path(dir_okay=False), required=False)
    @click.option("--as", "identity", help="identity name that signs the plan")
    @click.option("--check", "check_index", type=int, default=None, metavar="N",
                  help="recompute the plan logged at entry N from its logged inputs instead (exit 1 if it differs)")
    @ledger_option
    @json_option
    def allocate_cmd(needs: str | None, identity: str | None, check_index: int | None, ledger_dir: Path | None,
                     as_json: bool) -> None:
        """Allocate relief supplies from the logged stock (stock_taking events) to the sites in NEEDS
        ({"needs": {site: {class: qty}}, "costs": {depot: {site: cost}}}) with scipy's milp, and log the plan
        with its inputs; or --check N a logged plan."""
        from ailedger.supplychain.allocation import allocate, check

        if check_index is not None:
            with open_ledger(ledger_dir, read_only=True) as led:
                res = check(led, check_index)
            emit(as_json, res, f"OK: plan #{check_index} is the optimum of its logged inputs "
                                f"(cost {res['cost']}, {res['unmet_units']} unit(s) unmet, "
                                f"{res['stock_events']} stock event(s))")
            return
        if not needs or not identity:
            raise BadInputError("give NEEDS and --as ID (or --check N)", field="needs")
        try:
            spec = json.loads(Path(needs).read_bytes())
        except FileNotFoundError:
            raise BadInputError(f"no such file: {needs}", field="needs") from None
        except ValueError as exc:
            raise BadInputError(f"{needs} is not JSON: {exc}", field="needs") from None
        with open_ledger(ledger_dir) as led:
            ident = led.identities.load(identity, os.environ.get("AILEDGER_PASSPHRASE"))
            res = allocate(led, ident, spec)
        emit(as_json, res, lambda: "\n".join(
            [(f"plan logged at #{res['index']}: cost {res['cost']}, {res['unmet_units']} unit(s) unmet, "
              f"from {len(res['stock_events'])} stock event(s)")]
            + [f"  {a['quantity']:>6} x {a['class']}  {a['from']} -> {a['to']}" for a in res["shipments"]]
            + [f"  unmet: {u['quantity']} x {u['class']} at {u['site']}" for u in res["unmet"]]))
