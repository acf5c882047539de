"""``ailedger report``: compliance reports generated from the ledger, every statement with its proof."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import click

from ailedger.cli._common import emit, json_option, ledger_option, open_ledger, progress, read_vkey
from ailedger.errors import BadInputError


def _prepare(out: str, force: bool) -> Path:
    p = Path(out)
    if p.exists():
        if not p.is_dir():
            raise BadInputError(f"{out} is a file, not a folder", field="out")
        if any(p.iterdir()):
            if not (force and (p / "report.json").is_file()):
                raise BadInputError(f"{out} is not empty (pass --force to replace an earlier report there)",
                                    field="out")
            shutil.rmtree(p)
    p.mkdir(parents=True, exist_ok=True)
    return p


def _finish(rep: dict[str, Any], out: Path, pdf: bool) -> list[str]:
    from ailedger.reports.render import render_html, render_pdf, write_pictures
    from ailedger.reports.technical import dump

    (out / "report.json").write_text(dump(rep))
    files = ["report.json", "report.html", *write_pictures(rep, out)]
    (out / "report.html").write_text(render_html(rep))
    if pdf:
        render_pdf(out)
        files.append("report.pdf")
    return files


def _summary_text(rep: dict[str, Any], out: Path, files: list[str]) -> str:
    lines = [f"{rep['kind']} report for model {rep['model']} -> {out}",
             f"  {len(rep['statements'])} statements, each with its entry and proof; {len(rep['gaps'])} gaps"]
    if rep.get("status"):
        lines.append(f"  status: {rep['status']['text']}")
    if rep["kind"] == "record-keeping":
        s = rep["summary"]
        lines.append(f"  {s['inference_records']} inference records in {s['inference_batches']} batches, "
                     f"{len(s['erasures'])} erasures, {len(s['events'])} events, {len(s['timeline_gaps'])} gaps in "
                     f"the time line; range [{rep['range']['opening_size']}, {rep['range']['closing_size']})")
    lines.append("  files: " + ", ".join(files))
    return "\n".join(lines)


def register(main: click.Group) -> None:
    @main.group("report")
    def report() -> None:
        """Compliance reports (Annex IV technical documentation, Article 12 record-keeping) with proofs."""

    @report.command("technical-doc")
    @click.argument("model")
    @click.option("-o", "--out", "out", required=True, metavar="DIR", help="Folder to write the report into.")
    @click.option("--pdf", is_flag=True, help="Also write report.pdf (WeasyPrint).")
    @click.option("--force", is_flag=True, help="Replace an earlier report in DIR.")
    @ledger_option
    @json_option
    def technical_doc(model: str, out: str, pdf: bool, force: bool, ledger_dir: Path | None, as_json: bool) -> None:
        """Technical documentation of MODEL in the structure of EU AI Act Annex IV."""
        from ailedger.reports.technical import build_technical_doc

        with open_ledger(ledger_dir) as ledger:
            from ailedger.reports.technical import model_or_error

            model_or_error(ledger, model)  # before anything is written
            d = _prepare(out, force)
            with progress(ledger.size, "reading the log", enabled=not as_json) as bar:
                rep = build_technical_doc(ledger, model, d, progress=bar.update)
        files = _finish(rep, d, pdf)
        emit(as_json, {"ok": True, "out": str(d), "kind": rep["kind"], "model": model, "status": rep["status"],
                       "statements": len(rep["statements"]), "gaps": rep["gaps"], "files": files},
             lambda: _summary_text(rep, d, files))

    @report.command("record-keeping")
    @click.argument("model")
    @click.option("--from", "t_from", required=True, help="Start of the period (date or RFC 3339, UTC).")
    @click.option("--to", "t_to", required=True, help="End of the period, exclusive (date or RFC 3339, UTC).")
    @click.option("--gap-hours", type=click.IntRange(min=1), default=24, show_default=True,
                  help="List silences in the inference time line longer than this.")
    @click.option("-o", "--out", "out", required=True, metavar="DIR", help="Folder to write the report into.")
    @click.option("--pdf", is_flag=True, help="Also write report.pdf (WeasyPrint).")
    @click.option("--force", is_flag=True, help="Replace an earlier report in DIR.")
    @ledger_option
    @json_option
    def record_keeping(model: str, t_from: str, t_to: str, gap_hours: int, out: str, pdf: bool, force: bool,
                       ledger_dir: Path | None, as_json: bool) -> None:
        """Article 12-style record-keeping of MODEL over a period, with proof no record was removed."""
        from ailedger.reports.records import build_record_keeping
        from ailedger.reports.scan import parse_when
        from ailedger.reports.technical import model_or_error

        if parse_when(t_to, "to") <= parse_when(t_from, "from"):
            raise BadInputError(f"--to ({t_to}) must be after --from ({t_from})", field="to")
        with open_ledger(ledger_dir) as ledger:
            model_or_error(ledger, model)
            d = _prepare(out, force)
            with progress(ledger.size, "reading the log", enabled=not as_json) as bar:
                rep = build_record_keeping(ledger, model, t_from, t_to, d, gap_hours=gap_hours, progress=bar.update)
        files = _finish(rep, d, pdf)
        emit(as_json, {"ok": True, "out": str(d), "kind": rep["kind"], "model": model, "summary": rep["summary"],
                       "statements": len(rep["statements"]), "gaps": rep["gaps"], "files": files},
             lambda: _summary_text(rep, d, files))

    @report.command("verify")
    @click.argument("folder", type=click.Path(exists=True, file_okay=False))
    @click.option("--vkey", default=None, help="The log's verifier key (inline or a file); default: the folder's "
                                               "log.vkey (then you trust the folder's key)")
    @json_option
    def verify(folder: str, vkey: str | None, as_json: bool) -> None:
        """Check a report offline: every proof, every signature, every claim against its entry."""
        from ailedger.reports.verify import verify_report

        key = read_vkey(vkey).vkey if vkey else None
        res = verify_report(Path(folder), key)
        text = (f"OK: {res['kind']} report for model {res['model']}: {res['statements']} statements, proofs and "
                f"signatures checked against checkpoint size {res['checkpoint_size']} (key: {res['vkey_from']})")
        if "range" in res:
            text += (f"; range {res['range']} rebuilt from its entries: {res['inference_records']} inference "
                     "records, none removed")
        emit(as_json, res, text)
