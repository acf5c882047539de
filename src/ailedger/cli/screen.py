"""`ailedger dataset screen ...`: screen training data for poisoning before it is committed.

Also adds ``--screen`` (with ``--screen-policy``) to ``dataset commit`` when that command exists, and
``dataset remove-source`` / ``dataset verify-removal`` to cut a flagged source out with a provable change
of root.  See docs/screening.md.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any

import click

from ailedger.cli._common import emit, json_option, ledger_option, log_verifier, open_ledger
from ailedger.errors import VerificationError


def _summary_text(rep: dict[str, Any], max_flagged: int = 20) -> str:
    ds, sm = rep["dataset"], rep["summary"]
    lines = [
        (f"screened {ds['path']}: {ds['records']} records, {ds['modality']}, {len(ds['class_counts'])} classes, "
        f"{ds['sources']} source(s)"),
        f"verdict:  {rep['verdict'].upper()} - {sm['flagged']} flagged ({100 * sm['flagged_fraction']:.2f}%): "
        + (", ".join(f"{k} {v}" for k, v in sorted(sm["by_reason"].items())) or "nothing"),
        (f"model:    cross-validated accuracy vs given labels {100 * sm['cv_accuracy']:.2f}% "
        f"({rep['parameters']['folds']} folds, {'+'.join(rep['parameters']['models'])})"),
    ]
    if sm["backdoor_suspected_classes"]:
        lines.append("backdoor: suspected in class(es) " + ", ".join(map(str, sm["backdoor_suspected_classes"])))
    lines.append("sources:")
    for s in rep["sources"]:
        loo = "" if s["loo_delta_accuracy"] is None else f", leave-out {100 * s['loo_delta_accuracy']:+.2f} pts"
        lines.append(f"  {s['verdict']:<6} {s['source']}: {s['records']} records, {s['label_flagged']} label "
                     f"problems ({100 * s['flag_rate']:.1f}%){loo}" + (f" - {'; '.join(s['reasons'])}" if s["reasons"]
                                                                    else ""))
    if rep["flagged"]:
        lines.append(f"flagged (first {min(max_flagged, len(rep['flagged']))} of {len(rep['flagged'])}; row index "
                     "from 0 in file order):")
        for f in rep["flagged"][:max_flagged]:
            extra = f" -> {f['suggested_label']}" if "suggested_label" in f else ""
            extra += f" (duplicate of {f['duplicate_of']})" if "duplicate_of" in f else ""
            lines.append(f"  #{f['record']}: {', '.join(f['reasons'])}, score {f['score']:.3f}, label "
                         f"{f['label']}{extra}")
    for n in rep["notes"]:
        lines.append("note:     " + n)
    return "\n".join(lines)


def _write_outputs(rep: dict[str, Any], html_out: str | None, json_out: str | None, images: Any = None) -> None:
    from ailedger.screening import render_html, report_bytes

    if html_out:
        Path(html_out).write_text(render_html(rep, images=images), encoding="utf-8")
    if json_out:
        Path(json_out).write_bytes(report_bytes(rep))


def _screen_options(f: Any) -> Any:
    for opt in reversed([
        click.option("--label-column", default=None, help="Label column (default: 'label')."),
        click.option("--source-column", default=None, help="Source column (default: 'source' if present)."),
        click.option("--text-column", default=None, help="Free-text column (text data)."),
        click.option("--image-column", default=None, help="Column of image file paths (image data)."),
        click.option("--modality", type=click.Choice(["auto", "tabular", "image", "text"]), default="auto",
                     show_default=True),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--no-loo", is_flag=True, help="Skip the leave-one-source-out retraining."),
        click.option("--ignore-column", "ignore_columns", multiple=True,
                     help="Column not to use as a feature, e.g. a record id (repeatable)."),
    ]):
        f = opt(f)
    return f


def _current_commit(ledger: Any, name: str) -> tuple[int, Any] | None:
    """The dataset's current version, by the service's rule (whichever path committed it)."""
    from ailedger.provenance.datasets import current_dataset

    return current_dataset(ledger, name)


def _wrap_commit(group: click.Group) -> None:
    commit = group.commands.get("commit")
    if commit is None or getattr(commit, "_ailedger_screen", False) or commit.callback is None:
        return
    orig = commit.callback
    commit.params.extend([
        click.Option(["--screen"], is_flag=True,
                     help="Screen each PATH for poisoning first and log the report beside the commitment."),
        click.Option(["--screen-policy"], type=click.Choice(["default", "strict", "warn"]), default="default",
                     show_default=True,
                     help="default: refuse on FAIL, warn on WARN; strict: refuse on either; warn: never refuse."),
        click.Option(["--screen-label-column"], default=None, help="Label column for screening."),
        click.Option(["--screen-source-column"], default=None, help="Source column for screening."),
    ])

    @functools.wraps(orig)
    def wrapped(**kw: Any) -> Any:
        do = kw.pop("screen", False)
        policy = kw.pop("screen_policy", "default")
        label_col = kw.pop("screen_label_column", None)
        source_col = kw.pop("screen_source_column", None)
        if not do:
            return orig(**kw)
        from ailedger.errors import BadInputError
        from ailedger.screening import (
            ScreeningRefused,
            decide,
            load_dataset,
            log_screening,
            render_html,
            screen,
            store_report,
        )

        if not {"paths", "name", "identity"} <= set(kw):
            raise BadInputError("--screen cannot read this version of `dataset commit`'s arguments; run "
                                "`ailedger dataset screen PATH --log` beside the commit instead", field="screen")

        datasets = [load_dataset(p, label_column=label_col, source_column=source_col) for p in kw["paths"]]
        reports = [screen(ds) for ds in datasets]
        htmls = [render_html(r, images=ds.images) for r, ds in zip(reports, datasets)]
        decisions = [decide(r, policy) for r in reports]
        ledger_dir = kw.get("ledger_path", kw.get("ledger_dir"))
        refused = [(p, r, d, h) for p, r, d, h in zip(kw["paths"], reports, decisions, htmls) if d.action == "refuse"]
        if refused:
            with open_ledger(ledger_dir) as lg:
                where = [str(store_report(lg, r, h)[2]) for _, r, _, h in refused]
            p, r, d, _ = refused[0]
            raise ScreeningRefused(
                f"screening policy {policy!r} refuses to commit {p}: verdict {r['verdict'].upper()} - "
                + "; ".join(d.reasons) + f"; nothing was logged; report: {where[0]}", field="screen",
                reports=where)
        for p, d in zip(kw["paths"], decisions):
            if d.action == "warn":
                click.echo(f"warning: screening of {p}: verdict {d.verdict.upper()} - " + "; ".join(d.reasons),
                           err=True)
        out = orig(**kw)
        with open_ledger(ledger_dir) as lg:
            hit = _current_commit(lg, kw["name"])
            ident = lg.identities.load(kw["identity"], os.environ.get("AILEDGER_PASSPHRASE"))
            for p, r, d, h in zip(kw["paths"], reports, decisions, htmls):
                res = log_screening(lg, ident, r, dataset=kw["name"], decision=d,
                                    dataset_index=hit[0] if hit else None,
                                    dataset_root=hit[1].body.get("root") if hit else None, html=h)
                click.echo(f"screening of {p} logged as entry #{res['index']} ({r['verdict']}, report sha256 "
                           f"{res['report_sha256'][:16]}..., HTML {res['report_html']})", err=True)
        return out

    commit.callback = wrapped
    commit._ailedger_screen = True  # type: ignore[attr-defined]


def register(main: click.Group) -> None:
    group = main.commands.get("dataset")
    if not isinstance(group, click.Group):
        @main.group("dataset")
        def dataset() -> None:
            """Datasets: commitments and screening."""

        group = dataset
    _wrap_commit(group)

    @group.command("screen")
    @click.argument("path")
    @_screen_options
    @click.option("--html", "html_out", default=None, help="Write the HTML report (with charts) here.")
    @click.option("--report", "json_out", default=None, help="Write the JSON report (RFC 8785 bytes) here.")
    @click.option("--fail-on", type=click.Choice(["never", "warn", "fail"]), default="never", show_default=True,
                  help="Exit with status 1 when the verdict is at least this bad.")
    @click.option("--log", "do_log", is_flag=True,
                  help="Log the report as a dataset.screening record (needs --as and --dataset).")
    @click.option("--dataset", "dataset_name", default=None,
                  help="Dataset name the report belongs to (linked to its latest dataset.commit if any).")
    @click.option("--commit-name", "commit_name", default=None, hidden=True)
    @click.option("--as", "identity", default=None, help="Identity that signs the screening record.")
    @ledger_option
    @json_option
    def dataset_screen(path: str, label_column: str | None, source_column: str | None, text_column: str | None,
                       image_column: str | None, modality: str, seed: int, no_loo: bool,
                       ignore_columns: tuple[str, ...], html_out: str | None,
                       json_out: str | None, fail_on: str, do_log: bool, dataset_name: str | None,
                       commit_name: str | None, identity: str | None, ledger_dir: Path | None,
                       as_json: bool) -> None:
        """Screen the labelled data at PATH (CSV, JSONL, Parquet, or a folder of class sub-folders of images)
        for label errors, duplicates, outliers, class balance by source and backdoor signs."""
        from ailedger.errors import BadInputError
        from ailedger.screening import load_dataset, render_html, screen

        dataset_name = dataset_name or commit_name
        if do_log and (not identity or not dataset_name):
            raise BadInputError("--log needs --as IDENTITY and --dataset NAME", field="log")
        ds = load_dataset(path, label_column=label_column, source_column=source_column, text_column=text_column,
                          image_column=image_column, modality=modality, ignore_columns=ignore_columns)
        rep = screen(ds, seed=seed, loo=not no_loo)
        _write_outputs(rep, html_out, json_out, ds.images)
        logged = None
        if do_log:
            # the ledger side (it loads ailedger.provenance) only when logging
            from ailedger.screening import log_screening

            assert dataset_name is not None  # checked above
            with open_ledger(ledger_dir) as lg:
                ident = lg.identities.load(identity, os.environ.get("AILEDGER_PASSPHRASE"))
                hit = _current_commit(lg, dataset_name)
                logged = log_screening(lg, ident, rep, dataset=dataset_name, dataset_index=hit[0] if hit else None,
                                       dataset_root=hit[1].body.get("root") if hit else None,
                                       html=render_html(rep, images=ds.images))
            rep_out = {**rep, "logged": {k: v for k, v in logged.items() if k != "body"}}
        else:
            rep_out = rep
        text = _summary_text(rep)
        if logged:
            text += (f"\nlogged:   entry #{logged['index']} (dataset.screening), report sha256 "
                     f"{logged['report_sha256']}, HTML {logged['report_html']}")
        if html_out:
            text += f"\nHTML report: {html_out}"
        emit(as_json, rep_out, text)
        order = {"pass": 0, "warn": 1, "fail": 2}
        if fail_on != "never" and order[rep["verdict"]] >= order[fail_on]:
            sys.exit(1)

    @group.command("remove-source")
    @click.argument("dataset_ref")
    @click.argument("data_path", type=click.Path(dir_okay=False, exists=True))
    @click.option("--source-column", required=True)
    @click.option("--source", "sources", multiple=True, required=True, help="Source value to cut (repeatable).")
    @click.option("--name", "new_name", required=True, help="Name of the new dataset commitment.")
    @click.option("--as", "identity", required=True)
    @click.option("--output-data", required=True, help="Where to write the filtered data file.")
    @click.option("-o", "--output", required=True, help="Removal proof file to write.")
    @ledger_option
    @json_option
    def dataset_remove_source(dataset_ref: str, data_path: str, source_column: str, sources: tuple[str, ...],
                              new_name: str, identity: str, output_data: str, output: str,
                              ledger_dir: Path | None, as_json: bool) -> None:
        """Cut SOURCE(s) out of committed dataset DATASET_REF (whose records are DATA_PATH): commit the rest as
        a new root and write a proof of exactly which records left."""
        from ailedger.screening import remove_sources
        from ailedger.screening.ledger_log import latest_screening

        with open_ledger(ledger_dir) as lg:
            ident = lg.identities.load(identity, os.environ.get("AILEDGER_PASSPHRASE"))
            from ailedger.provenance import find_dataset

            _, old_e = find_dataset(lg, dataset_ref)
            scr = latest_screening(lg, old_e.body["name"])
            data, info = remove_sources(lg, ident, dataset_ref, data_path, source_column=source_column,
                                        sources=list(sources), new_name=new_name, output_data=output_data,
                                        screening_index=scr[0] if scr else None)
        Path(output).write_bytes(data)
        info["output"] = output
        emit(as_json, info,
             f"removed source(s) {', '.join(sources)}: {info['removed_rows']} rows, {info['removed_keys']} distinct "
             f"records left ({info['rows_still_present_as_duplicates']} rows stay as duplicates of kept records)\n"
             f"old root {info['old_root']} (#{info['old_index']}, {info['old_records']} records)\n"
             f"new root {info['new_root']} (#{info['new_index']}, {info['new_records']} records)\n"
             f"removal record #{info['removal_index']}; proof {output} ({info['proof_bytes']} bytes)")

    @group.command("remove-path")
    @click.argument("dataset_ref")
    @click.argument("paths", nargs=-1, required=True)
    @click.option("--drop", "drop", multiple=True, required=True, help="A committed PATH to cut (repeatable).")
    @click.option("--name", "new_name", required=True, help="Name of the new dataset commitment.")
    @click.option("--as", "identity", required=True)
    @click.option("-o", "--output", required=True, help="Removal proof file to write.")
    @click.option("--follow-symlinks", is_flag=True)
    @ledger_option
    @json_option
    def dataset_remove_path(dataset_ref: str, paths: tuple[str, ...], drop: tuple[str, ...], new_name: str,
                            identity: str, output: str, follow_symlinks: bool, ledger_dir: Path | None,
                            as_json: bool) -> None:
        """Cut whole source PATHs out of DATASET_REF (committed from PATHS): commit the rest as a new root and
        write a proof of exactly which records left."""
        from ailedger.provenance import find_dataset
        from ailedger.screening import remove_paths
        from ailedger.screening.ledger_log import latest_screening

        with open_ledger(ledger_dir) as lg:
            ident = lg.identities.load(identity, os.environ.get("AILEDGER_PASSPHRASE"))
            _, old_e = find_dataset(lg, dataset_ref)
            scr = latest_screening(lg, old_e.body["name"])
            data, info = remove_paths(lg, ident, dataset_ref, list(paths), list(drop), new_name=new_name,
                                      screening_index=scr[0] if scr else None, follow_symlinks=follow_symlinks)
        Path(output).write_bytes(data)
        info["output"] = output
        emit(as_json, info,
             f"removed {', '.join(drop)}: {info['removed_keys']} distinct records left "
             f"({info['rows_still_present_as_duplicates']} stay as duplicates of kept records)\n"
             f"old root {info['old_root']} (#{info['old_index']}, {info['old_records']} records)\n"
             f"new root {info['new_root']} (#{info['new_index']}, {info['new_records']} records)\n"
             f"removal record #{info['removal_index']}; proof {output} ({info['proof_bytes']} bytes)")

    @group.command("screening-proof")
    @click.argument("ref")
    @click.option("-o", "--output", required=True, help="Proof file to write.")
    @ledger_option
    @json_option
    def dataset_screening_proof(ref: str, output: str, ledger_dir: Path | None, as_json: bool) -> None:
        """Bundle the latest screening of dataset REF (or entry #N) with its report and inclusion proofs."""
        from ailedger.screening import screening_proof

        with open_ledger(ledger_dir) as lg:
            data, info = screening_proof(lg, ref)
        Path(output).write_bytes(data)
        info["output"] = output
        emit(as_json, info, f"wrote {output} ({info['bytes']} bytes): screening #{info['index']} of dataset "
                            f"{info['dataset']}, verdict {info['verdict']}")

    @group.command("verify-screening")
    @click.argument("proof_file", type=click.Path(dir_okay=False, exists=True))
    @click.option("--vkey", default=None, help="Log verifier key, inline or a file (default: the ledger's).")
    @click.option("--report", "report_out", default=None, help="Also write the verified JSON report here.")
    @click.option("--html", "html_out", default=None, help="Also render the verified report as HTML here.")
    @ledger_option
    @json_option
    def dataset_verify_screening(proof_file: str, vkey: str | None, report_out: str | None, html_out: str | None,
                                 ledger_dir: Path | None, as_json: bool) -> None:
        """Check offline that a screening report was logged unchanged (and beside which dataset root)."""
        from ailedger.screening import render_html, report_bytes, verify_screening_proof

        vkey = log_verifier(vkey, ledger_dir).vkey
        try:
            rep, report = verify_screening_proof(Path(proof_file).read_bytes(), vkey)
        except VerificationError as e:
            emit(as_json, {"ok": False, "error": e.to_dict()}, f"FAILED: {e.message}")
            sys.exit(1)
        page = render_html(report) if html_out else None  # before any file is written (the charts need matplotlib)
        if report_out:
            Path(report_out).write_bytes(report_bytes(report))
        if html_out and page is not None:
            Path(html_out).write_text(page, encoding="utf-8")
        root = f", beside dataset root {rep['dataset_root'][:16]}... (#{rep['dataset_index']})" \
            if "dataset_root" in rep else ""
        emit(as_json, rep, f"OK: screening #{rep['screening_index']} of dataset {rep['dataset']}: verdict "
                           f"{rep['verdict']}, {rep['flagged']} flagged, report sha256 {rep['report_sha256'][:16]}..."
                           f"{root}; signed by {rep['signer']} at {rep['time']}")

    @group.command("verify-removal")
    @click.argument("proof_file", type=click.Path(dir_okay=False, exists=True))
    @click.option("--vkey", default=None, help="Log verifier key, inline or a file (default: the ledger's).")
    @ledger_option
    @json_option
    def dataset_verify_removal(proof_file: str, vkey: str | None, ledger_dir: Path | None, as_json: bool) -> None:
        """Check a removal proof offline: which records left between the old and the new root."""
        from ailedger.screening import verify_removal_proof

        vkey = log_verifier(vkey, ledger_dir).vkey
        try:
            rep = verify_removal_proof(Path(proof_file).read_bytes(), vkey)
        except VerificationError as e:
            emit(as_json, {"ok": False, "error": e.to_dict()}, f"FAILED: {e.message}")
            sys.exit(1)
        emit(as_json, rep,
             f"OK: {rep['removed_keys']} records left dataset {rep['dataset']} (#{rep['old_index']}, "
             f"{rep['old_records']} records, root {rep['old_root'][:16]}...) -> {rep['new_dataset']} "
             f"(#{rep['new_index']}, {rep['new_records']} records, root {rep['new_root'][:16]}...); "
             f"sources removed: {', '.join(rep['removed_sources'])}")
