"""``ailedger inference``: replay, receipts, disclosure, erasure and reports of inference trails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ailedger.cli._common import (
    emit,
    json_option,
    ledger_option,
    log_verifier,
    open_ledger,
    out_option,
    read_input_file,
)
from ailedger.encoding.canonical import parse_json
from ailedger.errors import BadInputError


def _load_doc(path: str, what: str) -> dict[str, Any]:
    doc = parse_json(read_input_file(path, what), what=what)
    if not isinstance(doc, dict):
        raise BadInputError(f"{what} must be a JSON object")
    return doc


def _write_or_print(out: str | None, doc: dict[str, Any], as_json: bool, summary: str) -> None:
    text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    if out:
        Path(out).write_text(text)
        emit(as_json, {"ok": True, "out": out, **{k: doc[k] for k in ("receipt",) if k in doc}}, f"{summary} -> {out}")
    else:
        click.echo(text, nl=False)


def register(main: click.Group) -> None:
    @main.group("inference")
    def inference() -> None:
        """Inference audit trails: records, receipts, disclosure, erasure, reports."""

    @inference.command("show")
    @click.option("--model", default=None, help="Model name (default: every model).")
    @click.option("--from", "t_from", default=None, help="From this time (RFC 3339 or date, UTC).")
    @click.option("--to", "t_to", default=None, help="Up to this time (exclusive).")
    @click.option("--proofs/--no-proofs", default=True, show_default=True,
                  help="Include each record's receipt proof (batch path, batch entry, tlog-proof).")
    @click.option("--limit", type=int, default=None)
    @ledger_option
    @json_option
    def show(model: str | None, t_from: str | None, t_to: str | None, proofs: bool, limit: int | None,
             ledger_dir: Path | None, as_json: bool) -> None:
        """List recorded decisions (time order) with where they are proven."""
        from ailedger.inference import list_records

        with open_ledger(ledger_dir) as ledger:
            items = list_records(ledger, model, t_from, t_to, proofs=proofs, limit=limit)

        def text() -> str:
            lines = [f"{len(items)} decisions"]
            for it in items:
                r = it["record"]
                lines.append(f"{r['time']}  {r['model']}  {r['status']:<6} caller={r['caller']}  "
                             f"receipt={it['receipt']}  batch=#{it['batch_index']}[{it['position']}]")
            return "\n".join(lines)

        emit(as_json, {"ok": True, "count": len(items), "records": items}, text)

    @inference.command("receipt")
    @click.argument("receipt_id")
    @out_option("Write the receipt proof to this file (default: print it).", name="out")
    @ledger_option
    @json_option
    def receipt(receipt_id: str, out: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Resolve a receipt id to its proof (record, batch position and path, tlog-proof)."""
        from ailedger.inference import receipt_proof

        with open_ledger(ledger_dir) as ledger:
            doc = receipt_proof(ledger, receipt_id)
        _write_or_print(out, doc, as_json, f"receipt {receipt_id} (batch entry #{doc['batch_index']})")

    @inference.command("disclose")
    @click.argument("receipt_id")
    @out_option("Write the disclosure to this file (default: print it).", name="out")
    @ledger_option
    @json_option
    def disclose_cmd(receipt_id: str, out: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Give the salt and payloads of ONE call (for an auditor); nothing else is revealed."""
        from ailedger.inference import disclose

        with open_ledger(ledger_dir) as ledger:
            doc = disclose(ledger, receipt_id)
        _write_or_print(out, doc, as_json, f"disclosure of {receipt_id}")

    @inference.command("verify")
    @click.argument("proof_file")
    @click.option("--disclosure", default=None, help="Also check this disclosure against the record.")
    @click.option("--vkey", default=None, help="Log verifier key (text or file); default: the ledger's.")
    @ledger_option
    @json_option
    def verify(proof_file: str, disclosure: str | None, vkey: str | None, ledger_dir: Path | None,
               as_json: bool) -> None:
        """Check a receipt proof offline (and optionally a disclosure)."""
        from ailedger.inference import verify_disclosure, verify_receipt_proof

        verifier = log_verifier(vkey, ledger_dir)
        doc = _load_doc(proof_file, "receipt proof")
        if disclosure:
            res = verify_disclosure(doc, _load_doc(disclosure, "disclosure"), verifier)
        else:
            res = verify_receipt_proof(doc, verifier)
        r = res["record"]
        emit(as_json, res, f"OK: receipt {res['receipt']} ({r['model']}, {r['time']}) is record {res['position']}"
             f" of {res['count']} in batch entry #{res['batch_index']}, included in checkpoint size "
             f"{res['checkpoint_size']}" + ("; disclosed payloads match" if disclosure else ""))

    @inference.command("erase")
    @click.option("--subject", required=True, help="The data subject whose payloads are destroyed.")
    @click.option("--operator", default="inference", help="Identity that signs the erasure record.")
    @out_option("Also write the erasure report here.", name="out")
    @ledger_option
    @json_option
    def erase(subject: str, operator: str, out: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Destroy a subject's payload key (crypto-shredding); records stay verifiable."""
        import os

        from ailedger.inference import erase_subject

        with open_ledger(ledger_dir) as ledger:
            rep = erase_subject(ledger, subject, operator=operator, passphrase=os.environ.get("AILEDGER_PASSPHRASE"))
        if out:
            Path(out).write_text(json.dumps(rep, indent=1) + "\n")
        emit(as_json, {"ok": True, **rep},
             f"erased {rep['records']} payloads ({rep['ciphertexts']} ciphertexts) of subject ref "
             f"{rep['subject_ref'][:16]}… at {rep['erased_at']}; key destroyed: {rep['key_destroyed']}; "
             f"logged as entry #{rep['log_index']}")

    @inference.command("report")
    @click.option("--model", default=None)
    @click.option("--from", "t_from", default=None)
    @click.option("--to", "t_to", default=None)
    @out_option("Output file (.html or .pdf).", name="out", required=True)
    @ledger_option
    @json_option
    def report(model: str | None, t_from: str | None, t_to: str | None, out: str, ledger_dir: Path | None,
               as_json: bool) -> None:
        """An HTML or PDF report with a chart of decisions over time per model."""
        from ailedger.inference import list_records, render_html
        from ailedger.inference.report import render_pdf

        if not out.endswith((".html", ".htm", ".pdf")):
            raise BadInputError(f"--out {out} must be an .html or .pdf file", field="out")
        with open_ledger(ledger_dir) as ledger:
            items = list_records(ledger, model, t_from, t_to)
            title = f"Inference decisions{' of ' + model if model else ''}"
            if out.endswith(".pdf"):
                render_pdf(items, out, title=title, vkey=ledger.vkey)
            else:
                Path(out).write_text(render_html(items, title=title, vkey=ledger.vkey))
        emit(as_json, {"ok": True, "out": out, "count": len(items)}, f"{len(items)} decisions -> {out}")
