"""`ailedger gov advise / advice / advice-replay / analyst-manifest`: the DAO's proposal analyst.  It writes
signed ``dao.advice`` entries (risk score, predicted effect, whale-simulation figures, reasons in words) that
anyone can replay; it never votes or executes.  See docs/dao-ai.md."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from ailedger.cli._common import INDEX, emit, json_option, ledger_option, open_ledger, out_option
from ailedger.errors import BadInputError


def _text(idx: int, b: dict[str, Any]) -> str:
    o = b["output"]
    s = o["simulation"]
    return "\n".join([f"advice (entry {idx}, model {b['model']}): risk {o['risk'].upper()} ({o['risk_score']:.2f})",
                      *(f"  effect:   {e}" for e in o["predicted_effect"]),
                      (f"  whales:   top 3 holders decide {s['top3_decide_rate']:.0%} of simulated votes "
                       f"({s['strategy']}, {s['holders']} holders, turnout {s['turnout']:.0%})"),
                      *(f"  because:  {r}" for r in o["reasons"])])


def advice_lines(ledger: Any, pid: int) -> tuple[list[dict[str, Any]], str]:
    """The advice on proposal ``pid`` that counts, for `gov show` (JSON list and text)."""
    from ailedger.daoai.analyst import effective_advice

    kept, _ = effective_advice(ledger, pid)
    rows = [{"entry": i, "signer": e.signer, **e.body} for i, e in kept]
    return rows, "\n".join(_text(i, e.body) for i, e in kept)


def register(main: click.Group) -> None:
    gov_group = main.commands.get("gov")
    if not isinstance(gov_group, click.Group):  # pragma: no cover - gov is registered before this module
        raise TypeError("ailedger.cli.daoai needs the gov group (COMMANDS order)")

    @gov_group.command("analyst-manifest")
    @json_option
    def analyst_manifest(as_json: bool) -> None:
        """The proposal analyst's manifest root (register it with `model register` before advising)."""
        from ailedger.daoai.analyst import manifest

        m = manifest()
        emit(as_json, {"root": m["root"], "train": m["train"], "features": m["features"], "nodes": len(m["nodes"])},
             f"{m['root']}  (decision tree, {len(m['nodes'])} nodes, trained on {m['train']['samples']} "
             f"generated proposals, seed {m['train']['seed']})")

    @gov_group.command("analyst-export")
    @click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
    @json_option
    def analyst_export(folder: Path, as_json: bool) -> None:
        """Write the analyst's model folder (analyst.json) to FOLDER, for `ailedger model register FOLDER`."""
        from ailedger.daoai.analyst import export, manifest

        path = export(folder)
        root = manifest()["root"]
        emit(as_json, {"path": str(path), "root": root},
             f"wrote {path}; register it: ailedger model register {folder} --name NAME --as WHO  (root {root})")

    @gov_group.command("advise")
    @click.argument("proposal", type=INDEX)
    @click.option("--model", required=True, help="The analyst's registered model name (or #INDEX / root).")
    @click.option("--as", "who", required=True, help="Identity that signs the advice.")
    @out_option("Write the opened inputs and salt to this file (what `advice-replay` needs).", name="save_inputs",
                type=click.Path(dir_okay=False, path_type=Path), default=None)
    @ledger_option
    @json_option
    def gov_advise(proposal: int, model: str, who: str, save_inputs: Path | None, ledger_dir: Path | None,
                   as_json: bool) -> None:
        """Log the analyst's advice on PROPOSAL (a dao.advice entry; it never votes)."""
        from ailedger.daoai.analyst import log_advice

        with open_ledger(ledger_dir) as led:
            ident = led.identities.load(who, os.environ.get("AILEDGER_PASSPHRASE"))
            r = log_advice(led, ident, proposal, model=model)
        if save_inputs is not None:
            save_inputs.write_text(json.dumps({"inputs": r["inputs"], "salt": r["salt"]}, indent=1))
        emit(as_json, r, _text(r["index"], r["body"]) + (f"\n  inputs and salt saved to {save_inputs}"
                                                         if save_inputs else ""))

    @gov_group.command("advice")
    @click.argument("proposal", type=INDEX)
    @ledger_option
    @json_option
    def gov_advice(proposal: int, ledger_dir: Path | None, as_json: bool) -> None:
        """The advice logged on PROPOSAL."""
        with open_ledger(ledger_dir, read_only=True) as led:
            rows, text = advice_lines(led, proposal)
        emit(as_json, {"proposal": proposal, "advice": rows}, text or f"no advice on proposal {proposal}")

    @gov_group.command("advice-replay")
    @click.argument("entry", type=INDEX)
    @click.option("--inputs", "inputs_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
                  help="JSON file {inputs, salt} (as `gov advise -o` writes it).")
    @ledger_option
    @json_option
    def gov_advice_replay(entry: int, inputs_file: Path, ledger_dir: Path | None, as_json: bool) -> None:
        """Recompute the advice at ENTRY from its opened inputs; exit 1 unless identical."""
        from ailedger.daoai.analyst import replay

        try:
            doc = json.loads(inputs_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise BadInputError(f"--inputs: cannot read {inputs_file} as JSON: {exc}", field="inputs") from None
        if not isinstance(doc, dict) or "inputs" not in doc or not isinstance(doc.get("salt"), str):
            raise BadInputError("--inputs must be a JSON object with 'inputs' and 'salt'", field="inputs")
        with open_ledger(ledger_dir, read_only=True) as led:
            r = replay(led, entry, doc["inputs"], doc["salt"])
        emit(as_json, r, f"advice {entry} on proposal {r['proposal']}: replay "
                         + ("IDENTICAL" if r["identical"] else "DIFFERS"))
        if not r["identical"]:
            raise SystemExit(1)
