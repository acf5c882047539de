"""``ailedger audit-contract``: audit a Solidity file (Slither + the learned layer), optionally log it as a signed
``contract.audit`` entry, print SARIF 2.1.0, or replay a logged audit; ``ailedger audit-eval``: the evaluation
harness on a labelled corpus (docs/contract-audit.md)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from ailedger.cli._common import emit, json_option, ledger_option, open_ledger
from ailedger.errors import BadInputError


def _text(rep: dict[str, Any]) -> str:
    lines = [(f"{rep['file']}: {len(rep['findings'])} finding(s) in {rep['functions']} function(s), "
              f"{rep['seconds']:.1f} s"),
             f"  source sha256 {rep['source_sha256']}",
             f"  {rep['compiler']}; slither {rep['tools']['slither-analyzer']}; model {rep['model_root'][:16]}..."]
    for f in rep["findings"]:
        lines.append(f"  line {f['line']:>4}  {f['category']:<26} {f['rule']:<24} conf {f['confidence'] / 10:5.1f}%"
                     f"  [{f['tool']}]")
        lines.append(f"        {f['explanation'][:160]}")
    lines.append(f"  findings sha256 {rep['findings_sha256']}")
    return "\n".join(lines)


def _table(ev: dict[str, Any]) -> str:
    def pct(v: float | None) -> str:
        return "   -  " if v is None else f"{v * 100:5.1f}%"
    if "train_contracts" in ev:
        head = (f"corpus {ev['corpus']}: {ev['contracts']} contracts, {ev['labels']} labels; trained on "
                f"{ev['train_contracts']}, scored on the {ev['test_contracts']} held out ({ev['test_labels']} labels)")
    else:
        head = (f"corpus {ev['corpus']}: {ev['contracts']} contracts, {ev['labels']} labels, all held out; analysed "
                f"{ev['analysed']} ({len(ev['failed'])} did not compile)")
    lines = [head + f"; learned threshold {ev['threshold'] / 10:.0f}%",
             (f"{'category':<27}{'labels':>7}  {'slither R/P':>15}  {'rules R/P':>15}  {'learned R/P':>15}  "
              f"{'together R/P':>15}")]
    for cat in ev["slither"]:
        s, r, m, t = ev["slither"][cat], ev["rules"][cat], ev["learned"][cat], ev["together"][cat]
        lines.append(f"{cat:<27}{s['labels']:>7}  {pct(s['recall'])}/{pct(s['precision'])}  "
                     f"{pct(r['recall'])}/{pct(r['precision'])}  "
                     f"{pct(m['recall'])}/{pct(m['precision'])}  {pct(t['recall'])}/{pct(t['precision'])}")
    return "\n".join(lines)


def chart(ev: dict[str, Any], out: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cats = [c for c in ev["slither"] if ev["slither"][c]["labels"]]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    w = 0.27
    for k, (name, label) in enumerate((("slither", "Slither alone"), ("learned", "learned layer"),
                                       ("together", "ailedger (both)"))):
        ax.bar([i + (k - 1) * w for i in range(len(cats))], [(ev[name][c]["recall"] or 0) * 100 for c in cats],
               w, label=label)
    ax.set_xticks(range(len(cats)), [c.replace("_", "\n") for c in cats], fontsize=7)
    ax.set_ylabel("recall on held-out contracts (%)")
    ax.set_ylim(0, 105)
    ax.set_title("DASP recall per category, held-out split")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def register(main: click.Group) -> None:
    @main.command("audit-contract")
    @click.argument("path", required=False)
    @click.option("--sarif", is_flag=True, help="Print the findings as SARIF 2.1.0 instead.")
    @click.option("--sarif-out", default=None, metavar="FILE", help="Also write SARIF 2.1.0 to FILE.")
    @click.option("--as", "identity", default=None, help="Log the audit as a contract.audit entry signed by this identity.")
    @click.option("--replay", "replay", default=None, metavar="ENTRY",
                  help="Re-run the audit logged at ENTRY (#N) and check it finds the same findings.")
    @click.option("--source", "source", default=None, type=click.Path(dir_okay=False),
                  help="With --replay: the source file, when the ledger does not keep it.")
    @click.option("--model", "model_path", default=None, type=click.Path(file_okay=False),
                  help="The learned layer's folder, holding train.json (default: the one shipped).")
    @ledger_option
    @json_option
    def audit_contract(path: str | None, sarif: bool, sarif_out: str | None, identity: str | None,
                       replay: str | None, source: str | None, model_path: str | None, ledger_dir: Path | None,
                       as_json: bool) -> None:
        """Audit a Solidity file: Slither and a learned layer, findings in DASP categories."""
        from ailedger import contractaudit
        from ailedger.contractaudit.model import load_model

        if replay is not None:
            if path is not None:
                raise BadInputError("give either PATH or --replay ENTRY, not both", field="path")
            with open_ledger(ledger_dir) as lg:
                res = contractaudit.replay_audit(lg, replay, source, model_path)
            emit(as_json, res, f"entry #{res['entry']}: replay found the same {len(res['findings'])} finding(s) "
                 f"(findings sha256 {res['findings_sha256']})"
                 + "".join(f"\n  note: {k} changed since: {v}" for k, v in res["versions_changed"].items()))
            return
        if path is None:
            raise BadInputError("give the Solidity file to audit (or --replay ENTRY)", field="path")
        rep = contractaudit.audit_source(path, model=load_model(model_path))
        doc = None
        if sarif or sarif_out:
            from ailedger import __version__ as ver
            doc = contractaudit.to_sarif(rep, version=str(ver))
            if sarif_out:
                Path(sarif_out).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        logged = None
        if identity:
            raw = Path(path).read_bytes()
            with open_ledger(ledger_dir) as lg:
                ident = lg.identities.load(identity, os.environ.get("AILEDGER_PASSPHRASE"))
                logged = contractaudit.log_audit(lg, ident, rep, raw)
            rep = {**rep, "logged": {"index": logged["index"], "type": logged["type"]}}
        if sarif and doc is not None:
            click.echo(json.dumps(doc, indent=1))
            return
        text = _text(rep) + (f"\nlogged: entry #{logged['index']} (contract.audit)" if logged else "")
        emit(as_json, rep, text)

    @main.command("audit-eval")
    @click.argument("corpus", type=click.Path(file_okay=False, exists=True))
    @click.option("--labels", default=None, type=click.Path(dir_okay=False, exists=True),
                  help="The labels JSON (default: CORPUS/labels.json): a list of {file, line, category}, or "
                       "SmartBugs' vulnerabilities.json.")
    @click.option("--chart", "chart_out", default=None, metavar="PNG", help="Draw recall per category here.")
    @click.option("--write-model", default=None, metavar="DIR",
                  help="Write the model trained on the training split (DIR/train.json).")
    @click.option("--held-out", is_flag=True,
                  help="Train nothing: score the shipped model (or --model) on the whole corpus, each contract "
                       "compiled and analysed on its own (an external corpus such as SmartBugs curated).")
    @click.option("--model", "model_path", default=None, type=click.Path(file_okay=False),
                  help="With --held-out: the learned layer's folder (default: the one shipped).")
    @json_option
    def audit_eval(corpus: str, labels: str | None, chart_out: str | None, write_model: str | None,
                   held_out: bool, model_path: str | None, as_json: bool) -> None:
        """Recall and precision per DASP category: Slither alone, the learned layer, both (held-out split)."""
        from ailedger.contractaudit import evaluate_corpus
        from ailedger.contractaudit.model import training_bytes

        if held_out:
            if write_model:
                raise BadInputError("--write-model trains on the corpus; --held-out trains nothing", field="held_out")
            from ailedger.contractaudit.evaluate import evaluate_external
            from ailedger.contractaudit.model import load_model
            ev = evaluate_external(corpus, labels, load_model(model_path))
            if chart_out:
                chart(ev, chart_out)
            emit(as_json, ev, _table(ev) + f"\nmodel root {ev['model_root']}")
            return
        ev = evaluate_corpus(corpus, labels)
        if write_model:
            Path(write_model).mkdir(parents=True, exist_ok=True)
            (Path(write_model) / "train.json").write_bytes(training_bytes(ev["training"]))
        if chart_out:
            chart(ev, chart_out)
        out = {k: v for k, v in ev.items() if k != "training"}
        emit(as_json, out, _table(ev) + f"\nmodel root {ev['model_root']}")
